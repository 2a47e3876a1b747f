"""The board's test bench: a site whose tickets came in through the real
pipeline (`mailtriage ingest`), with SLA time pinned, and the board served by
uvicorn on a real socket, as the daemon's listener will serve it."""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

from helpers import Site, eml, make_site
from servers import wait_for

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)        # Monday, 10:00 in Amsterdam
NOW = T0 + timedelta(hours=2)                                # the board's clock: the S1 is long breached
LEAD, PASSWORD = "lead", "correct horse battery"
HOSTILE_SUBJECT = "<script>alert(1)</script> printer jams"
HOSTILE_BODY = "The tray <img src=x onerror=alert(2)> is stuck.\n<b>bold?</b> & more"


@dataclass
class Bench:
    site: Site
    refs: dict[str, str]          # "outage", "soon", "hostile" → ticket ref


def board_site(root: Path, *, users: bool = True, database: str | None = None) -> Bench:
    """Three tickets, ingested at their own `--now`: an S1 outage at T0 (breached
    at NOW), an S2 at NOW - 20m (first response due within the hour), and one
    whose subject and body are hostile markup. An SLA sweep at NOW records the breach."""
    site = make_site(root, database=database)
    if users:
        with site.config.open("a") as config:
            config.write("http: {listen: 127.0.0.1:9464, users_file: users}\n")
        code, _, err = site.cli("users", "add", LEAD, stdin=f"{PASSWORD}\n".encode())
        assert code == 0, err
    refs = {}
    for name, subject, body, at in (
            ("outage", "Production down: nobody can work", "The ERP is down for the whole office.", T0),
            ("soon", "Very slow for several users", "Everything takes a minute.", NOW - timedelta(minutes=20)),
            ("hostile", HOSTILE_SUBJECT, HOSTILE_BODY, NOW - timedelta(minutes=5))):
        path = root / f"{name}.eml"
        path.write_bytes(eml(subject, body, message_id=f"<{name}@customer.example>", date=at))
        [line] = site.ingest(path, now=at.isoformat())
        refs[name] = line.split()[0]
    site.ok("sla", "tick", now=NOW.isoformat())
    return Bench(site, refs)


def login_site(root: Path, *names: str) -> Site:
    """A site without tickets whose users file holds `names` (PASSWORD each),
    hashed with cheap Argon2 parameters: for tests that log in many times."""
    from argon2 import PasswordHasher

    from mailtriage.web import users

    site = make_site(root)
    with site.config.open("a") as config:
        config.write("http: {listen: 127.0.0.1:9464, users_file: users}\n")
    quick = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)
    for name in names:
        users.add(site.dir / "users", name, PASSWORD, hasher=quick)
    return site


def board_app(site: Site, now: datetime = NOW, secret: str = "test-secret",  # type: ignore[no-untyped-def]
              guard=None):
    """The board alone, as a Starlette app on the site's App with a pinned clock
    (`guard`: the login limits, web/throttle.py)."""
    from starlette.applications import Starlette

    from helpers import site_app
    from mailtriage.web import board

    app = site_app(site, now)
    return Starlette(routes=board.routes(lambda: app, guard=guard), middleware=board.middleware(secret)), app


@contextlib.contextmanager
def serve(asgi) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """Serve `asgi` with uvicorn in a thread on a socket bound here (no port
    race); yields the base URL, stops the server on the way out."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(asgi, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="board", daemon=True)
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), timeout=15)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
