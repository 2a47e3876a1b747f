"""The daemon's web application on the real server (uvicorn in its thread):
the operator endpoints need no login even when the board's middleware asks
for one, the board mounts at /, a busy port is a clear error, and stop()
lets the port go."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request
from datetime import datetime, timezone

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from mailtriage.errors import MailtriageError
from mailtriage.health.board import Board
from mailtriage.health.metrics import Metrics
from mailtriage.store.db import connect
from mailtriage.web.app import build_app
from mailtriage.web.server import HttpServer
from servers import free_port

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)


def fetch(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


class LoginRequired(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):  # type: ignore[no-untyped-def]
        return PlainTextResponse("login first", status_code=401)


@pytest.fixture
def served():
    board = Board()
    down = connect(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none?connect_timeout=2")
    metrics = Metrics(board, lambda: down)                # a database that does not answer
    board_page = Route("/", lambda request: PlainTextResponse("the board"))
    app = build_app(board, metrics.registry, board_routes=[board_page],
                    board_middleware=[Middleware(LoginRequired)])
    port = free_port()
    server = HttpServer(app, f"127.0.0.1:{port}")
    server.start()
    yield board, f"http://127.0.0.1:{port}", port
    server.stop()


def test_healthz_and_metrics_need_no_login_the_board_does(served):
    board, base, _ = served
    board.succeeded("database", NOW)
    board.failed("mailbox:sales", "ConnectionRefusedError: <script>alert(1)</script>", NOW)
    status, body = fetch(base + "/healthz")
    assert status == 503 and '"failing":["mailbox:sales"]' in body
    assert fetch(base + "/")[0] == 401                    # the board's middleware guards the board only
    status, text = fetch(base + "/metrics")
    families = {f.name: f for f in text_string_to_metric_families(text)}
    [sample] = families["mailtriage_mailbox_up"].samples
    assert status == 200 and sample.labels == {"mailbox": "sales"} and sample.value == 0
    assert "mailtriage_outbox_pending" not in families     # the database is down: the rest still answers


def test_a_busy_port_is_a_clear_error_and_stop_frees_the_port(served):
    _, _, port = served
    other = HttpServer(build_app(Board(), Metrics(Board(), lambda: connect("sqlite://")).registry),
                       f"127.0.0.1:{port}")
    with pytest.raises(MailtriageError, match=rf"cannot listen on 127.0.0.1:{port} for HTTP: .*in use"):
        other.start()


def test_stop_lets_the_port_go():
    port = free_port()
    server = HttpServer(build_app(Board(), Metrics(Board(), lambda: connect("sqlite://")).registry),
                        f"127.0.0.1:{port}")
    server.start()
    assert fetch(f"http://127.0.0.1:{port}/")[1].startswith("mailtriage:")
    server.stop()
    assert server.thread is None
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))
