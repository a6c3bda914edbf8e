"""A notification URL for the fake BC to call: a tiny HTTP server on 127.0.0.1.

It answers handshakes (`?validationToken=`) the way a test tells it to (`handshake`:
"echo", "wrong", an HTTP status, or seconds to stall before echoing) and answers
notifications with the statuses queued in `answers` (then `default_status`); a float
in `answers` stalls that many seconds first (a receiver too slow for BC's timeout). A 3xx
answer redirects to the same URL, so a client that follows redirects shows up in `requests`.
"""

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        self.server.receiver.note(self.command, self.path)
        self._send(405, "")

    def do_POST(self):
        receiver = self.server.receiver
        receiver.note(self.command, self.path)
        parts = urlsplit(self.path)
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if "validationToken" in query:
            status, text = receiver.answer_handshake(parts.path, query)
        else:
            status, text = receiver.answer_notification(parts.path, body)
        self._send(status, text)

    def _send(self, status, text):
        payload = text.encode()
        try:
            self.send_response(status)
            if 300 <= status < 400:  # Back to this very URL: a client that follows comes again.
                self.send_header("Location", self.path)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # The fake gave up waiting (its timeout): what the test wanted.


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class WebhookReceiver:
    def __init__(self):
        self.lock = threading.Lock()
        self.handshake = "echo"
        self.answers = deque()
        self.default_status = 202
        self.requests = []  # (method, path with query) of every request received
        self.handshakes = []  # (path, query) of each handshake received
        self.notifications = []  # parsed JSON body of each notification POST
        self.raw = []  # the bytes of each notification POST, as they came
        self._stopped = False
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/notifications/"

    @property
    def items(self):
        """Every notification item received, in order, whatever POST carried it."""
        with self.lock:
            return [item for body in self.notifications for item in body.get("value", [])]

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        if self._stopped:
            return
        self._stopped = True
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def note(self, method, path):
        with self.lock:
            self.requests.append((method, path))

    def answer_handshake(self, path, query):
        with self.lock:
            self.handshakes.append((path, query))
            mode = self.handshake
        if isinstance(mode, float):
            time.sleep(mode)
        if mode == "wrong":
            return 200, "not-the-token"
        if isinstance(mode, int):
            return mode, query["validationToken"]
        return 200, query["validationToken"]

    def answer_notification(self, path, body):
        with self.lock:
            self.raw.append(body)
            self.notifications.append(json.loads(body or b"{}"))
            status = self.answers.popleft() if self.answers else self.default_status
        if isinstance(status, float):
            time.sleep(status)
            status = self.default_status
        return status, ""
