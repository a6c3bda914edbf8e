"""What happened at Microsoft, in a token refresh and at the HTTP API, told to whoever listens.

The code that talks to Entra and BC sits below the operating door that counts it (metrics
live in `authentications.operations`), so it announces and the door listens. Every value
sent is one of a few words chosen here, never anything a request or an answer carried.
"""

from django.dispatch import Signal

# One HTTP request to Microsoft. sender: "entra" or "bc"; seconds; answer: see `answer`.
outside_request = Signal()
# One token request's outcome. outcome: "refreshed", "transient", "refused", or the status
# a person must fix ("needs_sign_in", "secret_invalid", "app_missing").
token_refresh = Signal()
# One call to the HTTP API for other services. scope: the scope the call needed (a name
# from the API's code); status: the HTTP status answered.
api_call = Signal()

ANSWERS = ("2xx", "3xx", "4xx", "429", "5xx", "timeout", "network_error")


def answer(*, status=None, timed_out=False):
    """The class of an answer: "429" and "5xx" apart from "4xx", or why none came."""
    if status is None:
        return "timeout" if timed_out else "network_error"
    if status == 429:
        return "429"
    return f"{min(max(status // 100, 2), 5)}xx"


def sent_outside(system, seconds, *, status=None, timed_out=False):
    """Announce one request to `system` that took `seconds`; no `status` if none came."""
    outside_request.send(
        sender=system, seconds=seconds, answer=answer(status=status, timed_out=timed_out)
    )
