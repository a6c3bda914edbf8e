"""The admin as a new user first sees it: branded, without the task backend's raw tables,
and with lists that leave their columns the room (no navigation sidebar)."""

from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from pytest_django.asserts import assertContains, assertNotContains

TASKS_URL = "/admin/django_tasks_database/dbtaskresult/"


def failed_task(**fields):
    now = timezone.now()
    values = {
        "status": "FAILED",
        "args_kwargs": {"args": [["raw-argument-marker"]], "kwargs": {}},
        "task_path": "authentications.webhooks.tasks.deliver_notifications",
        "backend_name": "default",
        "run_after": now,
        "started_at": now,
        "finished_at": now,
        "exception_class_path": "builtins.RuntimeError",
        "traceback": "Traceback (most recent call last):\nRuntimeError: handler broke",
        "return_value": {"raw": "return-value-marker"},
        **fields,
    }
    return DBTaskResult.objects.create(**values)


def test_the_admin_says_bcconnect_not_django_administration(admin_client):
    index = admin_client.get("/admin/")

    assertContains(index, "bcconnect: Business Central connections")
    assertContains(index, "<title>Business Central connections | bcconnect</title>", html=False)
    assertNotContains(index, "Django administration")
    assertNotContains(index, "Django site admin")


def test_lists_have_no_navigation_sidebar(admin_client):
    listing = admin_client.get("/admin/authentications/changenotification/")

    assert listing.status_code == 200
    assertNotContains(listing, 'id="nav-sidebar"')


def test_failed_tasks_are_listed_by_name_with_their_error_and_nothing_raw(admin_client):
    task = failed_task()

    listing = admin_client.get(TASKS_URL)
    page = admin_client.get(f"{TASKS_URL}{task.pk}/change/")

    assertContains(listing, "deliver_notifications")
    assertContains(listing, "RuntimeError")
    assertContains(page, "handler broke")
    for response in (listing, page):
        assertNotContains(response, "raw-argument-marker")
        assertNotContains(response, "return-value-marker")


def test_task_results_cannot_be_added_changed_or_deleted(admin_client):
    task = failed_task()

    listing = admin_client.get(TASKS_URL)
    add = admin_client.get(f"{TASKS_URL}add/")
    delete = admin_client.post(f"{TASKS_URL}{task.pk}/delete/", {"post": "yes"})
    change = admin_client.post(f"{TASKS_URL}{task.pk}/change/", {"status": "SUCCESSFUL"})

    assertNotContains(listing, 'value="delete_selected"')
    assert add.status_code == 403 and delete.status_code == 403
    assert change.status_code == 403
    assert DBTaskResult.objects.get().status == "FAILED"
