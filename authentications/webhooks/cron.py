"""The subscriptions' part of the cron run (`refresh_tokens` calls `keep_alive`).

Renewing here, not in a command of its own, keeps cron at one line: whatever keeps the
tokens alive keeps the subscriptions alive too.
"""

import json

from authentications.webhooks import subscriptions, tasks
from authentications.webhooks.subscriptions import Renewal


def keep_alive(stdout, *, dry_run=False, as_json=False):
    """Renew due subscriptions and requeue stalled deliveries; returns failures.

    (Delivered notifications and finished task rows are purged by `webhooks.retention`.)"""
    if dry_run:
        for subscription in subscriptions.due_subscriptions():
            planned = Renewal(subscription, subscriptions.planned_outcome(subscription))
            stdout.write(_json(planned) if as_json else planned.line())
        return 0
    renewals = subscriptions.renew_due()
    for renewal in renewals:
        stdout.write(_json(renewal) if as_json else renewal.line())
    requeued = tasks.requeue_stalled()
    if requeued and not as_json:
        stdout.write(f"Queued the delivery of {requeued} records again (stalled).")
    return sum(1 for renewal in renewals if renewal.outcome == "failed")


def _json(renewal):
    subscription = renewal.subscription
    expires = subscription.expires_at.isoformat() if subscription.expires_at else None
    return json.dumps(
        {
            "subscription": str(subscription),
            "outcome": renewal.outcome,
            "expires_at": expires,
            "error": renewal.error or None,
        }
    )
