"""Servers that are not Dask schedulers, run in a thread, for `--cluster` attacks: one that
accepts connections and never answers, one that answers every request with an HTTP error, and
Python's own HTTP server."""

from __future__ import annotations

import contextlib
import http.server
import socketserver
import threading
from collections.abc import Iterator

#: What an HTTP server answers to bytes it cannot parse as a request.
HTTP_ERROR = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/html\r\n\r\n<html>bad</html>\n"


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False


class _Silent(socketserver.BaseRequestHandler):
    """Reads and drops whatever comes until the client leaves; never answers."""

    def handle(self) -> None:
        while self.request.recv(65536):
            pass


class _HttpError(socketserver.BaseRequestHandler):
    """Answers the first bytes it receives with :data:`HTTP_ERROR`, as an HTTP server answers
    a request line it cannot parse, and closes."""

    def handle(self) -> None:
        if self.request.recv(65536):
            self.request.sendall(HTTP_ERROR)


@contextlib.contextmanager
def _serving(server: socketserver.TCPServer) -> Iterator[str]:
    """Serve in a thread; yield the server's ``tcp://HOST:PORT``."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"tcp://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()


def silent_peer() -> contextlib.AbstractContextManager[str]:
    """The address of a server that accepts connections and says nothing."""
    return _serving(_Server(("127.0.0.1", 0), _Silent))


def http_error_peer() -> contextlib.AbstractContextManager[str]:
    """The address of a server that answers anything with an HTTP 400."""
    return _serving(_Server(("127.0.0.1", 0), _HttpError))


def python_http_server() -> contextlib.AbstractContextManager[str]:
    """The address of Python's ``http.server`` (it answers once a request line ends, which
    Dask's handshake may never do: then it is silent too)."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _QuietHandler)
    server.daemon_threads = True
    return _serving(server)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """``http.server``'s handler, without its access log on stderr."""

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        pass
