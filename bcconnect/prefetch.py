"""One piece of work done ahead, in a thread of its own that never outlives its owner.

Paging uses it to fetch page N+1 while the caller reads page N. A plain thread per piece of
work, joined on `result()` or `cancel()`, rather than a pool: a pool would outlive the
generator that started the work, and its threads would be nobody's to join.
"""

import threading
from collections.abc import Callable
from typing import Any

SLEEP_SLICE = 0.1  # Seconds: how late a cancelled wait notices that it was cancelled.


class Cancelled(Exception):
    """Raised inside the work when its owner no longer wants the result."""


class Ahead:
    """Runs `work(cancelled)` in a new thread at once; `result()` waits for its outcome.

    `work` should check the `cancelled` event between steps (raise `Cancelled`), so that
    `cancel()` returns as soon as the step under way ends. An exception from `work` is
    raised by `result()`, in the owner's thread, not before.
    """

    def __init__(self, work: Callable[[threading.Event], Any], *, name: str) -> None:
        self.cancelled = threading.Event()
        self._value = self._error = None
        self._thread = threading.Thread(target=self._run, args=(work,), name=name, daemon=True)
        self._thread.start()

    def _run(self, work):
        try:
            self._value = work(self.cancelled)
        except BaseException as err:  # Handed to the owner's thread by result().
            self._error = err

    def result(self) -> Any:
        self._thread.join()
        value, error = self._value, self._error
        self._value = self._error = None  # Held by the caller from here on, not by us.
        if error is not None:
            raise error
        return value

    def cancel(self) -> None:
        """Ask the work to stop, wait for its thread to end, and drop its outcome."""
        self.cancelled.set()
        # A generator can be finalised by the garbage collector in any thread, this one too.
        if self._thread is not threading.current_thread():
            self._thread.join()
        self._value = self._error = None


def cancellable_sleep(
    sleep: Callable[[float], object], cancelled: threading.Event
) -> Callable[[float], None]:
    """`sleep`, in slices, raising `Cancelled` once `cancelled` is set."""

    def pause(seconds: float) -> None:
        remaining = seconds
        while True:
            if cancelled.is_set():
                raise Cancelled
            if remaining <= 0:
                return
            sleep(min(remaining, SLEEP_SLICE))
            remaining -= SLEEP_SLICE

    return pause
