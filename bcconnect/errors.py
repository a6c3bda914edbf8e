"""The one shape every bcconnect error has: a message for people, a code for machines.

`transient` is the only retry flag: True when the same call may succeed later unchanged
(network, throttling, an outage), False when a person has to act. Each outside system keeps
its own subclasses (`authentications.connections.oauth`, `bcconnect.client`); callers
that only report an error read these three attributes and nothing else. No Django here: the
BC client, a plain library, builds on it too.
"""


class BcconnectError(Exception):
    """Base of the app's errors. `message` never holds a secret: it is shown and logged."""

    transient = False

    def __init__(self, message: str, *, code: str, transient: bool | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        if transient is not None:
            self.transient = transient

    def __str__(self) -> str:
        return self.message
