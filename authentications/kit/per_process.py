"""Objects made once per process, lazily.

gunicorn preloads the app and forks workers; a `requests.Session` made before the fork
would share its pooled sockets between processes. Each process makes its own instead.
"""

import os
import threading


class PerProcess:
    def __init__(self, factory):
        self._factory = factory
        self._lock = threading.Lock()
        self._pid = None
        self._value = None

    def get(self):
        with self._lock:
            if self._pid != os.getpid():
                self._value, self._pid = self._factory(), os.getpid()
            return self._value
