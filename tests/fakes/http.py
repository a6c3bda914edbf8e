"""A tiny threaded HTTPS server that the fake Microsoft's parts plug into.

Each part (Entra, Business Central) is an object with `handle(request)` returning a
`Response`, or None when the path is not its own. HTTP/1.1 keep-alive is on, and the
server counts the TCP connections it accepts, so benchmarks can check pooling.
"""

import json
import ssl
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class DropConnection(Exception):
    """Raised by a part to close the socket without answering (a network fault)."""


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes = b""

    @property
    def form(self):
        return {key: values[-1] for key, values in parse_qs(self.body.decode()).items()}

    def json(self):
        return json.loads(self.body or b"null")

    def header(self, name, default=""):
        return self.headers.get(name.lower(), default)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict = field(default_factory=dict)


def json_response(payload, status=200, headers=None):
    body = json.dumps(payload).encode()
    return Response(
        status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    )


def html_response(html, status=200):
    return Response(status, html.encode(), {"Content-Type": "text/html; charset=utf-8"})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeMicrosoft/1.0"
    # Headers and body go out as separate writes: with Nagle on, the body waits for the
    # client's delayed ACK (~40 ms per response), which no real Microsoft endpoint adds.
    disable_nagle_algorithm = True

    def log_message(self, format, *args):
        pass

    def _dispatch(self):
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path,
            query={key: values[-1] for key, values in parse_qs(parts.query).items()},
            headers={key.lower(): value for key, value in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        request.raw_query = parts.query
        try:
            response = self.server.fake.dispatch(request)
        except DropConnection:
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = do_HEAD = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that gave up (a timeout test) is expected; anything else is printed.
        if isinstance(sys.exc_info()[1], (ConnectionError, ssl.SSLError, TimeoutError)):
            return
        super().handle_error(request, client_address)

    def get_request(self):
        sock, address = super().get_request()
        with self.fake.lock:
            self.fake.connections_opened += 1
        return sock, address


class FakeServer:
    """Serves `parts` over HTTPS on 127.0.0.1 in a background thread."""

    def __init__(self, parts, *, cert_path, key_path, host="127.0.0.1", port=0):
        self.parts = parts
        self.lock = threading.Lock()
        self.connections_opened = 0
        self._server = _Server((host, port), _Handler)
        self._server.fake = self
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_path, key_path)
        # The handshake happens in the handler thread, so a slow client never blocks accept().
        self._server.socket = context.wrap_socket(
            self._server.socket, server_side=True, do_handshake_on_connect=False
        )
        self._thread = None

    @property
    def url(self):
        host, port = self._server.server_address[:2]
        return f"https://{host}:{port}"

    def dispatch(self, request):
        for part in self.parts:
            response = part.handle(request)
            if response is not None:
                return response
        return json_response({"error": "not_found", "path": request.path}, status=404)

    def start(self):
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self):
        self._server.serve_forever()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
