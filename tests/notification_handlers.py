"""Handlers that tests and benchmarks name in BC_NOTIFICATION_HANDLERS for a worker process.

`customers`: appends one line per delivered change (key, record, type) to the file named by
NOTIFICATION_LOG, after NOTIFICATION_DELAY seconds, so a test can kill the worker mid-way
and count what arrived. `items`: does nothing (the benchmark's no-op handler).
"""

import os
import time

from authentications import change_notifications


@change_notifications.on("customers")
def record_customer_change(change):
    time.sleep(float(os.environ.get("NOTIFICATION_DELAY", "0")))
    with open(os.environ["NOTIFICATION_LOG"], "a") as log:
        log.write(f"{change.key} {change.record_id} {change.change_type}\n")


@change_notifications.on("items")
def ignore_item_change(change):
    pass
