"""The task backend's results, read-only and in words, in place of its raw admin.

django_tasks_db registers an admin that lists every column of its table (arguments, worker
ids, return values). Operators want one thing from it: which background task failed, when,
and why. This admin shows that and nothing else; it changes, adds and deletes nothing (the
worker and the pruning own these rows).
"""

from django.contrib import admin
from django.utils.html import format_html
from django_tasks_db import admin as backend_admin  # noqa: F401 - registers the raw admin
from django_tasks_db.models import DBTaskResult


@admin.display(description="Task", ordering="task_path")
def task_name(obj):
    """The task's function name: its module path is the same for every row of a kind."""
    return obj.task_path.rpartition(".")[2]


@admin.display(description="Finished", ordering="finished_at")
def finished(obj):
    return obj.finished_at


@admin.display(description="Failed with")
def failed_with(obj):
    return obj.exception_class_path.rpartition(".")[2]


@admin.display(description="Traceback")
def traceback_display(obj):
    return format_html("<pre>{}</pre>", obj.traceback) if obj.traceback else None


if admin.site.is_registered(DBTaskResult):
    admin.site.unregister(DBTaskResult)


@admin.register(DBTaskResult)
class TaskResultAdmin(admin.ModelAdmin):
    list_display = (task_name, "status", "enqueued_at", finished, failed_with)
    list_filter = ("status", "task_path")
    ordering = ["-enqueued_at"]
    fields = readonly_fields = (
        "task_path",
        "status",
        "enqueued_at",
        "started_at",
        "finished_at",
        "exception_class_path",
        traceback_display,
    )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
