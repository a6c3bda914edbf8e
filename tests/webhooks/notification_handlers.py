"""Handlers that tests and benchmarks name in BC_NOTIFICATION_HANDLERS for a worker process.

`customers`: appends one line per delivered change (key, record, type) to the file named by
NOTIFICATION_LOG, after NOTIFICATION_DELAY seconds, so a test can kill the worker mid-way
and count what arrived. It first appends the key to NOTIFICATION_STARTED (when set), so a
test knows a delivery is under way, and kills its own process (`os._exit`, as the OOM killer
would) for the record ids listed in NOTIFICATION_DIE_FOR. `items`: does nothing (the
benchmark's no-op handler).
"""

import os
import time

from authentications.webhooks import handlers


@handlers.on("customers")
def record_customer_change(change):
    if os.environ.get("NOTIFICATION_STARTED"):
        with open(os.environ["NOTIFICATION_STARTED"], "a") as started:
            started.write(f"{change.key}\n")
    if change.record_id and change.record_id in os.environ.get("NOTIFICATION_DIE_FOR", "").split(
        ","
    ):
        os._exit(137)
    time.sleep(float(os.environ.get("NOTIFICATION_DELAY", "0")))
    with open(os.environ["NOTIFICATION_LOG"], "a") as log:
        log.write(f"{change.key} {change.record_id} {change.change_type}\n")


@handlers.on("items")
def ignore_item_change(change):
    pass
