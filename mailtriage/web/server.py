"""uvicorn in a thread of its own, on a socket bound before the thread starts.

Binding first makes a busy port a clear error at once (`cannot listen on
HOST:PORT: [Errno 98] Address already in use`), as the SMTP listener says
it, instead of uvicorn logging it in its thread and exiting. uvicorn runs
its own event loop in that thread (`Server.run`), installs no signal
handlers outside the main thread, and stops when `should_exit` is set: the
daemon sets it at SIGTERM and waits for the thread. `log_config=None`: the
daemon's logging stays as it is; access lines are off.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from mailtriage.errors import MailtriageError

log = logging.getLogger(__name__)

READY_WITHIN = 10.0             # seconds for uvicorn to start serving
STOP_WITHIN = 5.0


class HttpServer:
    def __init__(self, app: ASGIApp, listen: str):
        self.listen = listen
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", loop="asyncio",
                                http="h11", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        sock = _bound(self.listen)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, name="http",
                                       daemon=True)
        self.thread.start()
        deadline = time.monotonic() + READY_WITHIN
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise MailtriageError(f"cannot serve HTTP on {self.listen}: uvicorn did not start")
        log.warning("listening for HTTP on %s (/healthz, /metrics)", self.listen)

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(STOP_WITHIN)
            self.thread = None


def _bound(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, int(port), type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.set_inheritable(True)
        except OSError:
            sock.close()
            raise
    except OSError as exc:
        raise MailtriageError(f"cannot listen on {listen} for HTTP: {exc}") from exc
    return sock
