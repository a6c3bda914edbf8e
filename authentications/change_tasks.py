"""The tasks of change notifications, run by whatever backend TASKS names (db_worker by default).

Arguments are record keys only: the notifications themselves are rows, so a task lost with
a queue (another backend) loses no change; `notification_delivery.requeue_stalled` finds
them again.
"""

from django_tasks import task

from authentications import notification_delivery


@task()
def deliver_records(record_keys):
    return notification_delivery.deliver_records(record_keys)
