"""Hostile HTTP git servers on 127.0.0.1 for the integration suite.

- `ForwardingFront`: an HTTP front in front of a real smart-HTTP server
  (harness.SmartHttp: lighttpd + git http-backend). It records the
  Authorization header of every request it receives, answers requests that
  match a redirect rule with a 302 (to another port, or to another path of
  itself), and forwards the rest to the backend (optionally replacing the
  client's Authorization with its own, as a public mirror would serve
  anonymous clients). Two fronts on two ports make a redirect to another
  origin whose receiving side records every credential it is sent.
- `HostileGitServer`: a protocol v2 smart-HTTP server that answers with
  hostile shapes (ls-refs lines without a space, empty packets, an endless
  acknowledgments section, endless response headers, an endless v0
  advertisement) until the client hangs up or `budget` bytes are sent.

Both run in daemon threads and are context managers; stop() shuts them down.
"""

from __future__ import annotations

import http.client
import http.server
import re
import threading

import harness

OID = "1" * 40


def pkt(payload: bytes) -> bytes:
    """One pkt-line holding `payload`."""
    return b"%04x" % (len(payload) + 4) + payload


FLUSH = b"0000"
DELIM = b"0001"


class _ThreadedServer:
    def __init__(self, handler_class) -> None:
        self.port = harness.free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler_class)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class ForwardingFront(_ThreadedServer):
    """See the module docstring. `redirects` is a list of (regex, location
    template, methods): a request whose path matches (re.search) and whose
    method is in `methods` gets a 302 to the template formatted with `path`
    (the request's path) and `front` (this front's base URL). `inject_auth`
    (a header value) replaces the client's Authorization when forwarding."""

    def __init__(self, backend_port: int, inject_auth: str | None = None) -> None:
        self.backend_port = backend_port
        self.inject_auth = inject_auth
        self.redirects: list[tuple[str, str, tuple[str, ...]]] = []
        self.lock = threading.Lock()
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, Authorization)
        super().__init__(self._handler_class())

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url_for(self, repo_name: str) -> str:
        return f"{self.base}/git/{repo_name}"

    def authorizations(self) -> list[str]:
        """Every Authorization header received, in order."""
        with self.lock:
            return [a for _, _, a in self.requests if a is not None]

    def _handler_class(self):
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, fmt, *args):
                pass

            def _handle(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with front.lock:
                    front.requests.append((self.command, self.path, self.headers.get("Authorization")))
                for pattern, location, methods in front.redirects:
                    if self.command in methods and re.search(pattern, self.path):
                        target = location.format(path=self.path, front=front.base)
                        self.send_response(302)
                        self.send_header("Location", target)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                headers = {k: v for k, v in self.headers.items()
                           if k.lower() not in ("connection", "keep-alive", "transfer-encoding", "host")}
                if front.inject_auth is not None:
                    headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
                    headers["Authorization"] = front.inject_auth
                conn = http.client.HTTPConnection("127.0.0.1", front.backend_port, timeout=120)
                try:
                    conn.request(self.command, self.path, body=body if body else None, headers=headers)
                    response = conn.getresponse()
                    data = response.read()
                    status, reason, response_headers = response.status, response.reason, response.getheaders()
                finally:
                    conn.close()
                self.send_response(status, reason)
                for name, value in response_headers:
                    if name.lower() not in ("connection", "keep-alive", "transfer-encoding", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

        return Handler


class HostileGitServer(_ThreadedServer):
    """A protocol v2 smart-HTTP server; the first path segment picks the shape:

    - `ls-refs-nospace`: ls-refs answers with maximal packets holding no space;
    - `ls-refs-empty`: ls-refs answers with empty data packets ("0004");
    - `acks`: ls-refs lists one branch, fetch answers with an endless
      acknowledgments section;
    - `header`: every request (info/refs and the POSTs) answers with endless
      response headers;
    - `v0`: every request answers with an endless protocol v0 ref advertisement
      (a client that POSTs ls-refs without asking for the capabilities first,
      git/protocol.hpp CapabilityMemo, meets it there too).

    Each endless answer stops after `budget` bytes or when the client hangs
    up; `sent[shape]` counts the bytes written."""

    SHAPES = ("ls-refs-nospace", "ls-refs-empty", "acks", "header", "v0")

    def __init__(self, budget: int = 256 << 20) -> None:
        self.budget = budget
        self.lock = threading.Lock()
        self.sent: dict[str, int] = {}
        super().__init__(self._handler_class())

    def url_for(self, shape: str) -> str:
        return f"http://127.0.0.1:{self.port}/{shape}/repo.git"

    def _count(self, shape: str, n: int) -> None:
        with self.lock:
            self.sent[shape] = self.sent.get(shape, 0) + n

    def _stream(self, wfile, shape: str, head: bytes, unit: bytes) -> None:
        """Write `head`, then `unit` repeated (in 1 MiB chunks) up to the budget."""
        chunk = unit * max(1, (1 << 20) // len(unit))
        try:
            wfile.write(head)
            self._count(shape, len(head))
            written = 0
            while written < self.budget:
                wfile.write(chunk)
                written += len(chunk)
                self._count(shape, len(chunk))
            wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def _handler_class(self):
        server = self
        advertisement = (pkt(b"version 2\n") + pkt(b"agent=git/2.39.5\n") + pkt(b"ls-refs=unborn\n")
                         + pkt(b"fetch=shallow\n") + pkt(b"server-option\n") + pkt(b"object-format=sha1\n")
                         + FLUSH)

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt, *args):
                pass

            def _start(self, content_type: str) -> None:
                self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: " + content_type.encode()
                                 + b"\r\nConnection: close\r\nCache-Control: no-cache\r\n\r\n")

            def do_GET(self):
                shape = self.path.split("/")[1]
                if shape == "header":
                    server._stream(self.wfile, shape, b"HTTP/1.0 200 OK\r\n", b"X-Junk: " + b"j" * 1014 + b"\r\n")
                    return
                if shape == "v0":
                    self._start("application/x-git-upload-pack-advertisement")
                    first = pkt(b"# service=git-upload-pack\n") + FLUSH + pkt(
                        OID.encode() + b" HEAD\0multi_ack side-band-64k ofs-delta\n")
                    line = pkt(OID.encode() + b" refs/heads/" + b"b" * 65000 + b"\n")
                    server._stream(self.wfile, shape, first, line)
                    return
                self._start("application/x-git-upload-pack-advertisement")
                self.wfile.write(advertisement)

            def do_POST(self):
                shape = self.path.split("/")[1]
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if shape in ("header", "v0"):
                    self.do_GET()
                    return
                self._start("application/x-git-upload-pack-result")
                if b"command=ls-refs" in body:
                    if shape == "ls-refs-nospace":
                        server._stream(self.wfile, shape, b"", pkt(b"x" * 65516))
                    elif shape == "ls-refs-empty":
                        server._stream(self.wfile, shape, b"", b"0004")
                    else:
                        self.wfile.write(pkt(OID.encode() + b" HEAD symref-target:refs/heads/main\n")
                                         + pkt(OID.encode() + b" refs/heads/main\n") + FLUSH)
                    return
                if shape == "acks":
                    ack = pkt(b"ACK " + OID.encode() + b" " + b"a" * 65000 + b"\n")
                    server._stream(self.wfile, shape, pkt(b"acknowledgments\n"), ack)
                    return
                self.wfile.write(pkt(b"ERR nothing here\n"))

        return Handler
