"""The board over HTTP (uvicorn on a real socket, `requests` as the client):
the login it needs when `http.users_file` is set, the open board without it,
the SLA board's content, and `mailtriage users` / `config check` on the file.
The browser's view of the same pages: test_board_browser.py."""

from __future__ import annotations

import logging
import re
import stat
from pathlib import Path
from typing import Iterator

import pytest
import requests
from argon2 import PasswordHasher
from starlette.applications import Starlette

from boards import HOSTILE_SUBJECT, LEAD, NOW, PASSWORD, Bench, board_app, board_site, login_site, serve
from helpers import site_app
from mailtriage.app import load_config
from mailtriage.web import board as web_board
from mailtriage.web import users
from mailtriage.web.throttle import Guard

QUICK = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)      # as boards.login_site hashes

PAGES = ("/", "/tickets?severity=S1", "/tickets/MT-1", "/report")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory) -> Bench:
    return board_site(tmp_path_factory.mktemp("board") / "site")


@pytest.fixture(scope="module")
def board(bench: Bench) -> Iterator[str]:
    asgi, app = board_app(bench.site)
    with serve(asgi) as url:
        yield url
    app.store.close()


def csrf(page: requests.Response) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert match, page.text
    return match.group(1)


def log_in(url: str, name: str = LEAD, password: str = PASSWORD, next_: str = "/",
           address: str | None = None) -> tuple[requests.Session, requests.Response]:
    """`address`: the client's, as a proxy on 127.0.0.1 tells it (X-Forwarded-For; uvicorn trusts it)."""
    client = requests.Session()
    if address:
        client.headers["X-Forwarded-For"] = address
    form = client.get(f"{url}/login", params={"next": next_})
    answer = client.post(f"{url}/login", params={"next": next_}, allow_redirects=False,
                         data={"name": name, "password": password, "csrf": csrf(form)})
    return client, answer


def section(html: str, start: str, end: str) -> str:
    return html.split(f'id="{start}"', 1)[1].split(f'id="{end}"', 1)[0]


@pytest.mark.parametrize("page", PAGES)
def test_every_board_page_needs_a_login_when_users_file_is_set(board: str, page: str) -> None:
    answer = requests.get(board + page, allow_redirects=False)
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/login?next=/")
    assert "MT-1" not in answer.text and "Production down" not in answer.text


def test_login_opens_the_board_and_the_page_asked_for(board: str) -> None:
    client, answer = log_in(board, next_="/tickets/MT-1")
    assert answer.status_code == 303 and answer.headers["location"] == "/tickets/MT-1"
    cookie = answer.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    for page in PAGES:
        shown = client.get(board + page, allow_redirects=False)
        assert shown.status_code == 200, page
        assert f">{LEAD}<" in shown.text                  # who is logged in, beside the logout button


def test_the_sla_board_shows_the_breached_s1_and_what_is_due_within_the_hour(board: str, bench: Bench) -> None:
    client, _ = log_in(board)
    page = client.get(board + "/").text
    breached, soon = section(page, "breached", "soon"), section(page, "soon", "open")
    assert f'href="/tickets/{bench.refs["outage"]}"' in breached and "overdue 1h45m" in breached
    assert '<time datetime="2026-03-02T09:15:00Z">Mon 02 Mar 09:15 UTC</time>' in breached   # S1: the 24x7 calendar
    assert bench.refs["soon"] not in breached
    assert f'href="/tickets/{bench.refs["soon"]}"' in soon and "in 10m" in soon
    # The S3 counts in the office calendar: its deadline is shown in Amsterdam time.
    assert '<time datetime="2026-03-02T11:55:00Z">Mon 02 Mar 12:55 CET</time>' in soon
    assert '<meta http-equiv="refresh" content="60">' in page
    activity = page.split('id="activity"', 1)[1]
    assert "breached" in activity and "escalated" in activity


def test_each_count_links_to_the_tickets_it_counts(board: str, bench: Bench) -> None:
    client, _ = log_in(board)
    page = client.get(board + "/").text
    counts = section(page, "open", "activity")
    links = re.findall(r'<a href="(/tickets\?[^"]+)">(\d+)</a>', counts)
    assert ("/tickets?queue=support&amp;severity=S2&amp;tier=L1", "1") in links
    listed = client.get(board + "/tickets", params={"queue": "support", "severity": "S2", "tier": "L1"}).text
    assert f'href="/tickets/{bench.refs["soon"]}"' in listed and bench.refs["outage"] not in listed


def test_customer_markup_is_text_on_every_page(board: str, bench: Bench) -> None:
    client, _ = log_in(board)
    for page in ("/", f"/tickets/{bench.refs['hostile']}", "/tickets"):
        html = client.get(board + page).text
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt; printer jams" in html
    ticket = client.get(f"{board}/tickets/{bench.refs['hostile']}")
    assert "The tray &lt;img src=x onerror=alert(2)&gt; is stuck." in ticket.text
    nonce = re.search(r"script-src 'nonce-([^']+)'", ticket.headers["content-security-policy"]).group(1)
    assert re.findall(r"<script[^>]*>", ticket.text) == [f'<script nonce="{nonce}">']   # ours, and only ours


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(board: str,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mailtriage.web"):
        wrong_client, wrong = log_in(board, password="not the password")
        unknown_client, unknown = log_in(board, name="mallory", password="not the password")
    for client, answer in ((wrong_client, wrong), (unknown_client, unknown)):
        assert answer.status_code == 401
        assert "Wrong name or password." in answer.text
        assert client.get(board + "/", allow_redirects=False).status_code == 303     # still not logged in
    tokens = r'(nonce|value)="[^"]+"'                         # per response: the script's nonce, the form's token
    assert re.sub(tokens, "", wrong.text) == re.sub(tokens, "", unknown.text)   # nothing tells the two apart
    assert "not the password" not in caplog.text               # never logged
    assert "board login refused for 'lead'" in caplog.text


def test_a_login_without_the_forms_token_is_refused(board: str) -> None:
    answer = requests.post(f"{board}/login", data={"name": LEAD, "password": PASSWORD}, allow_redirects=False)
    assert answer.status_code == 401 and "The form expired" in answer.text


def test_logout_ends_the_session(board: str) -> None:
    client, _ = log_in(board)
    page = client.get(board + "/")
    answer = client.post(board + "/logout", data={"csrf": csrf(page)}, allow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    assert client.get(board + "/", allow_redirects=False).status_code == 303


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[tuple[str, Guard]]:
    """A board of its own (its own login limits) with cheap hashes, short busy waits."""
    guard = Guard(wait=0.3)
    asgi, app = board_app(login_site(tmp_path / "site", LEAD, "second"), guard=guard)
    with serve(asgi) as url:
        yield url, guard
    app.store.close()


def test_failed_logins_lock_out_the_name_and_the_address_without_hashing(guarded: tuple[str, Guard]) -> None:
    url, guard = guarded
    for attempt in range(5):                                  # 5 addresses guess lead's password
        assert log_in(url, password="guess", address=f"192.0.2.{attempt}")[1].status_code == 401
    for attempt in range(5):                                  # 1 address guesses at 5 names
        assert log_in(url, name=f"user{attempt}", password="guess", address="198.51.100.7")[1].status_code == 401
    guard.free.acquire()                                      # every verification slot taken: a login that
    guard.free.acquire()                                      # hashed would wait, then answer 503
    try:
        for name, address in ((LEAD, "203.0.113.1"), ("second", "198.51.100.7")):
            _, refused = log_in(url, name=name, address=address)        # the right password, even
            assert refused.status_code == 429 and "Too many failed logins" in refused.text, (name, address)
            assert refused.headers["retry-after"] == "60"
    finally:
        guard.free.release()
        guard.free.release()
    assert log_in(url, name="second", address="203.0.113.1")[1].status_code == 303   # others are not locked out


def test_at_most_two_logins_hash_at_once_the_next_is_told_to_retry(guarded: tuple[str, Guard]) -> None:
    url, guard = guarded
    guard.free.acquire()
    guard.free.acquire()
    try:
        _, busy = log_in(url)
        assert busy.status_code == 503 and "busy: try again" in busy.text and busy.headers["retry-after"] == "5"
        guard.free.release()                                  # one slot free: logins go on
        assert log_in(url)[1].status_code == 303
    finally:
        guard.free.release()
    _, wrong = log_in(url, password="guess")                  # a busy answer was no failure; this is the first
    assert wrong.status_code == 401


def test_a_copied_cookie_dies_with_a_password_change_and_with_the_logout(guarded: tuple[str, Guard],
                                                                         tmp_path: Path) -> None:
    url, _ = guarded
    client, _ = log_in(url)
    copy = requests.Session()
    copy.cookies.update(client.cookies)
    assert copy.get(url + "/", allow_redirects=False).status_code == 200
    users.add(tmp_path / "site" / "users", LEAD, "a new password", force=True, hasher=QUICK)
    for stale in (client, copy):                                   # the session before the new password
        assert stale.get(url + "/", allow_redirects=False).headers["location"].startswith("/login")
    client, answer = log_in(url, password="a new password")
    assert answer.status_code == 303
    copy.cookies.update(client.cookies)
    page = client.get(url + "/")
    assert client.post(url + "/logout", data={"csrf": csrf(page)}, allow_redirects=False).status_code == 303
    assert copy.get(url + "/", allow_redirects=False).headers["location"].startswith("/login")   # replayed
    assert log_in(url, password="a new password")[0].get(url + "/", allow_redirects=False).status_code == 200


def test_secure_cookies_mark_the_session_cookie_secure(tmp_path: Path) -> None:
    site = login_site(tmp_path / "site", LEAD)
    assert load_config(site.config).settings.http.secure_cookies is False       # the default: plain HTTP
    app = site_app(site, NOW)
    for secure in (False, True):
        asgi = Starlette(routes=web_board.routes(lambda: app), middleware=web_board.middleware("s", secure=secure))
        with serve(asgi) as url:
            cookie = requests.get(url + "/login").headers["set-cookie"].lower()     # the form's session
            assert cookie.startswith("mailtriage_board=") and ("; secure" in cookie) is secure
            assert (log_in(url)[1].status_code == 303) is not secure    # plain HTTP: the browser keeps it to itself
    app.store.close()


def test_login_never_redirects_off_the_site(board: str) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        _, answer = log_in(board, next_=target)
        assert answer.status_code == 303 and answer.headers["location"] == "/"


def test_the_board_takes_no_post_but_login_and_logout(board: str) -> None:
    client, _ = log_in(board)
    for page in ("/", "/tickets/MT-1", "/report", "/tickets"):
        assert client.post(board + page, data={"status": "closed"}).status_code == 405


def test_an_unknown_ticket_is_a_404_page(board: str) -> None:
    client, _ = log_in(board)
    answer = client.get(board + "/tickets/MT-999")
    assert answer.status_code == 404 and "No ticket MT-999" in answer.text


@pytest.mark.parametrize("ref", ["MT-%C2%B2", "MT-99999999999999999999999", "MT-%D9%A4", "MT-1%00"])
def test_an_odd_ref_is_a_404_page_too(board: str, bench: Bench, ref: str) -> None:
    client, _ = log_in(board)
    answer = client.get(f"{board}/tickets/{ref}")              # ², 23 digits, an Arabic-Indic 4, a NUL
    assert answer.status_code == 404 and "No ticket MT-" in answer.text
    code, _, err = bench.site.cli("tickets", "show", requests.utils.unquote(ref))
    assert code != 0 and "no ticket" in err and "Traceback" not in err


def test_a_user_removed_from_the_file_is_logged_out(tmp_path: Path) -> None:
    bench = board_site(tmp_path / "site")
    asgi, app = board_app(bench.site)
    with serve(asgi) as url:
        client, _ = log_in(url)
        assert client.get(url + "/", allow_redirects=False).status_code == 200
        code, out, err = bench.site.cli("users", "remove", LEAD)
        assert (code, out.strip()) == (0, f"removed {LEAD} from {bench.site.dir / 'users'}"), err
        assert client.get(url + "/", allow_redirects=False).status_code == 303
        (bench.site.dir / "users").chmod(0o640)          # and a file others can read stops the board
        broken = client.get(url + "/")
        assert broken.status_code == 503 and "mode 0640" in broken.text
    app.store.close()


def test_without_users_file_the_board_is_open(tmp_path: Path) -> None:
    bench = board_site(tmp_path / "site", users=False)
    asgi, app = board_app(bench.site)
    with serve(asgi) as url:
        page = requests.get(url + "/", allow_redirects=False)
        assert page.status_code == 200
        assert HOSTILE_SUBJECT.replace("<", "&lt;").replace(">", "&gt;") in page.text
        assert "This board needs no login" in page.text
    app.store.close()


def test_users_cli_and_config_check(tmp_path: Path) -> None:
    bench = board_site(tmp_path / "site", users=False)
    site = bench.site
    code, _, err = site.cli("users", "add", LEAD, stdin=f"{PASSWORD}\n".encode())
    assert code == 2 and "no http.users_file" in err
    with site.config.open("a") as config:
        config.write("http: {listen: 127.0.0.1:9464, users_file: users}\n")
    assert site.cli("users", "add", LEAD, stdin=f"{PASSWORD}\n".encode())[0] == 0
    path = site.dir / "users"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and PASSWORD not in path.read_text()
    code, _, err = site.cli("users", "add", LEAD, stdin=b"another password\n")
    assert code == 2 and "exists" in err and "--force" in err
    assert site.ok("users", "list").split() == [LEAD]
    assert site.cli("config", "check")[0] == 0
    path.write_text(path.read_text() + "lead2:plain-text-password\n")
    code, _, err = site.cli("config", "check")
    assert code == 2 and f"{path}:2: user lead2: not an Argon2 hash (a plain password?)" in err


def test_the_board_reads_postgresql_too(tmp_path: Path, pg_url: str) -> None:
    bench = board_site(tmp_path / "site", users=False, database=pg_url)
    asgi, app = board_app(bench.site, NOW)
    with serve(asgi) as url:
        page = requests.get(url + "/").text
        assert f'href="/tickets/{bench.refs["outage"]}"' in section(page, "breached", "soon")
        assert "Open tickets (3)" in page
        assert requests.get(url + "/report").status_code == 200
    app.store.close()
