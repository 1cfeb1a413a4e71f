"""The HTTP/1.1 front of one emulated region: keep-alive, chunked uploads, optional TLS.

Standard library only. One acceptor thread per region and one daemon thread per connection;
:meth:`RegionServer.stop` wakes the acceptor, shuts down every open connection and joins the
threads, so nothing outlives the emulator.
"""

from __future__ import annotations

import logging
import selectors
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ._http import (
    TrackingHTTPServer,
    WholeRequestHandler,
    join_all,
)
from ._wire import GATEWAY, Headers, Request, Response, error_response, new_trace_id

# BodyError, ClientGone and read_body live in _http; they stay importable from here.
__all__ = ["RegionServer"]

log = logging.getLogger(__name__)


class _Handler(WholeRequestHandler):
    """Reads one request whole, lets the service answer, writes the answer in one send."""

    server_version = "falcon-emulator"
    server: RegionServer

    def _dispatch(self) -> None:
        body = self._read_whole_body()
        if body is None:
            return
        if "://" in self.path:  # absolute-form request target (RFC 9112 section 3.2.2)
            try:
                parts = urlsplit(self.path)
            except ValueError:  # e.g. an unclosed IPv6 bracket
                self.close_connection = True
                self._refuse(400, "Malformed request target")
                return
            path, query = parts.path or "/", parts.query
        else:
            path, _, query = self.path.partition("#")[0].partition("?")
        request = Request(
            region=self.server.region,
            method=self.command,
            path=path,
            query=query,
            headers=Headers(self.headers.items()),
            body=body,
            client_ip=str(self.client_address[0]),
        )
        response = self.server.service_handle(request)
        if response.drop:
            self.close_connection = True
            return
        self._write(response.status, response.headers, response.body)

    def _refuse(self, status: int, message: str) -> None:
        answer = error_response(
            status, message, trace_id=new_trace_id(), started=0.0, powered_by=GATEWAY
        )
        self._write(answer.status, answer.headers, answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s: " + format, self.server.region, self.client_address[0], *args)


class RegionServer(TrackingHTTPServer):
    """One region's HTTP(S) server on an ephemeral port.

    Args:
        host: the address to listen on.
        port: the port, 0 for an ephemeral one.
        region: the region this server answers for.
        handle: the service's request handler.
        ssl_context: a server-side TLS context, or None for plain HTTP.
    """

    # socketserver's default backlog of 5 drops a burst of connecting threads (the kernel
    # makes them retry a second later); Falcon's gateway takes them all.
    request_queue_size = 128

    def __init__(
        self,
        host: str,
        port: int,
        region: str,
        handle: Callable[[Request], Response],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.region = region
        self.service_handle = handle
        self._ssl_context = ssl_context
        self._acceptor: threading.Thread | None = None
        super().__init__((host, port), _Handler)
        self._wake_r, self._wake_w = socket.socketpair()
        scheme = "https" if ssl_context is not None else "http"
        url_host = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{url_host}:{self.server_port}"

    def start(self) -> None:
        """Starts accepting connections in a daemon thread."""
        self._acceptor = threading.Thread(
            target=self._accept_loop, name=f"falcon-emulator-{self.region}", daemon=True
        )
        self._acceptor.start()

    def stop(self) -> None:
        """Stops accepting, closes every open connection and joins the server's threads."""
        threads = self._shut_connections()
        self._wake_w.send(b"\0")
        if self._acceptor is not None:
            self._acceptor.join()
        join_all(threads)
        self.server_close()
        self._wake_r.close()
        self._wake_w.close()

    def _accept_loop(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                ready = [key.fileobj for key, _ in selector.select()]
                with self._lock:
                    if self._closing:
                        return
                if self.socket in ready:
                    self._accept()

    def _accept(self) -> None:
        try:
            conn, address = self.socket.accept()
        except OSError as exc:  # the client gave up before we accepted
            log.debug("%s: accept failed: %s", self.region, exc)
            return
        conn.setblocking(True)
        thread = threading.Thread(
            target=self._serve, args=(conn, address), name=f"falcon-emulator-{self.region}-conn"
        )
        thread.daemon = True
        if not self._track(conn, thread):
            conn.close()
            return
        thread.start()

    def _serve(self, conn: socket.socket, address: Any) -> None:
        current = conn
        try:
            if self._ssl_context is not None:
                tls = self._ssl_context.wrap_socket(
                    conn, server_side=True, do_handshake_on_connect=False
                )
                with self._lock:
                    self._connections.discard(conn)
                    self._connections.add(tls)
                    current = tls
                    closing = self._closing
                if closing:
                    return
                tls.do_handshake()
            self.finish_request(current, address)
        except OSError as exc:  # resets, TLS failures: the client's problem, not the server's
            log.debug("%s: connection from %s ended: %s", self.region, address[0], exc)
        finally:
            self._untrack(current)
            self.shutdown_request(current)
