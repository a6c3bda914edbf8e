"""Where Microsoft should be, an outage: a local port that refuses, drops or never answers.

Point BC_AUTHORITY_HOST at `DeadHost(...).url`. Modes:

- "refused": nothing listens (connection refused, like a host that is down);
- "close": accepts each connection and closes it at once (a reset mid-request);
- "silent": accepts and never says a word, not even TLS (the connect timeout fires);
- "silent-tls": completes the TLS handshake, then never answers (the read timeout fires).

`connections` counts the TCP connections accepted: the requests that reached the host.
"""

import socket
import ssl
import threading

from .certs import make_certificates

MODES = ("refused", "close", "silent", "silent-tls")


class DeadHost:
    def __init__(self, mode, *, cert_dir=None):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}")
        self.mode = mode
        self.connections = 0
        self._held = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.port = self._listener.getsockname()[1]
        self._tls = None
        if mode == "silent-tls":
            _, cert_path, key_path = make_certificates(cert_dir)
            self._tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self._tls.load_cert_chain(cert_path, key_path)
        if mode == "refused":
            self._listener.close()  # The port is free again: connecting to it is refused.
        self._thread = None

    @property
    def url(self):
        return f"https://127.0.0.1:{self.port}"

    def start(self):
        if self.mode != "refused":
            self._thread = threading.Thread(target=self._accept, daemon=True)
            self._thread.start()
        return self

    def stop(self):
        self._stopped.set()
        if self.mode != "refused":
            self._listener.close()
        with self._lock:
            for held in self._held:
                held.close()
            self._held.clear()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def _accept(self):
        self._listener.settimeout(0.1)
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with self._lock:
                self.connections += 1
            if self.mode == "close":
                client.close()
            elif self.mode == "silent":
                self._hold(client)
            else:
                threading.Thread(target=self._handshake_then_hold, args=(client,)).start()

    def _hold(self, client):
        with self._lock:
            self._held.append(client)

    def _handshake_then_hold(self, client):
        try:
            client.settimeout(10)
            self._hold(self._tls.wrap_socket(client, server_side=True))
        except (OSError, ssl.SSLError):
            client.close()
