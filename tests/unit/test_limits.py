"""limits: the cheap scan before the parse — size, headers, parts, depth — and
the attachment size after it."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from pydantic import ValidationError

from mailtriage.mail.limits import check_parsed, check_raw
from mailtriage.mail.parse import parse
from mailtriage.config.values import Limits

DEFAULT = Limits()


def multipart(parts: int, boundary: str = "sep", newline: str = "\n") -> bytes:
    body = "".join(f"--{boundary}\nContent-Type: text/plain\n\npart {i}\n" for i in range(parts))
    text = (f'Subject: many\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="{boundary}"\n\n'
            + body + f"--{boundary}--\n")
    return text.replace("\n", newline).encode()


def nested(depth: int) -> bytes:
    opening = "".join(f'Content-Type: multipart/mixed; boundary="b{i}"\n\n--b{i}\n' for i in range(depth))
    closing = "".join(f"--b{i}--\n" for i in reversed(range(depth)))
    return ("Subject: deep\nMIME-Version: 1.0\n" + opening + "Content-Type: text/plain\n\ninnermost\n"
            + closing).encode()


def enclosed(depth: int) -> bytes:
    """message/rfc822 inside message/rfc822 …, no multipart at all."""
    return ("Subject: outer\n" + "Content-Type: message/rfc822\n\nSubject: inner\n" * depth
            + "\nhello\n").encode()


def test_plain_mail_is_within_every_limit() -> None:
    assert check_raw(b"Subject: hi\nFrom: a@b.example\n\nhello\n", DEFAULT) is None
    assert check_raw(b"", DEFAULT) is None
    assert check_raw(b"no headers, no blank line", DEFAULT) is None


def test_size_is_checked_first_and_names_the_setting() -> None:
    breach = check_raw(b"Subject: x\n\n" + b"x" * 2000, Limits(max_message_size=1024))
    assert breach is not None and breach.reason == "limit:size"
    assert "max_message_size" in breach.detail and "1024" in breach.detail


def test_header_count_ignores_folded_lines() -> None:
    folded = b"Subject: a\n  folded\n\tmore\nFrom: x@y.example\n\nbody\n"
    assert check_raw(folded, Limits(max_headers=2)) is None
    many = b"".join(b"X-H%d: v\n" % i for i in range(50)) + b"\nbody\n"
    breach = check_raw(many, Limits(max_headers=49))
    assert breach is not None and breach.reason == "limit:headers" and "50 header fields" in breach.detail


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_parts_are_counted_whatever_the_line_ends(newline: str) -> None:
    raw = multipart(20, newline=newline)
    assert check_raw(raw, Limits(max_parts=21)) is None                   # 20 parts + the message
    breach = check_raw(raw, Limits(max_parts=20))
    assert breach is not None and breach.reason == "limit:parts"


def test_nesting_depth() -> None:
    assert check_raw(nested(10), Limits(max_depth=11)) is None
    breach = check_raw(nested(10), Limits(max_depth=10))
    assert breach is not None and breach.reason == "limit:depth"


def test_enclosed_messages_count_as_parts_and_depth() -> None:
    assert check_raw(enclosed(5), Limits(max_depth=6, max_parts=6)) is None
    assert check_raw(enclosed(5), Limits(max_depth=5)).reason == "limit:depth"           # type: ignore[union-attr]
    assert check_raw(enclosed(5), Limits(max_parts=5)).reason == "limit:parts"           # type: ignore[union-attr]


def test_a_boundary_that_is_never_used_or_closed_is_harmless() -> None:
    raw = b'Content-Type: multipart/mixed; boundary="x"\n\nno parts at all\n'
    assert check_raw(raw, Limits(max_parts=1, max_depth=1)) is None
    unclosed = b'Content-Type: multipart/mixed; boundary=x\n\n--x\nContent-Type: text/plain\n\nhi\n'
    assert check_raw(unclosed, Limits(max_parts=2, max_depth=2)) is None


def test_outer_boundary_closes_inner_parts() -> None:
    raw = (b'Content-Type: multipart/mixed; boundary="o"\n\n--o\n'
           b'Content-Type: multipart/alternative; boundary="i"\n\n--i\n\na\n'
           b'--o\n\nb\n--o\n\nc\n--o--\n')              # the inner multipart is never closed
    # the message, its three parts, and the one part of the inner multipart
    assert check_raw(raw, Limits(max_parts=5, max_depth=3)) is None
    assert check_raw(raw, Limits(max_parts=4)).reason == "limit:parts"                  # type: ignore[union-attr]


def test_digest_parts_default_to_enclosed_messages() -> None:
    raw = (b'Content-Type: multipart/digest; boundary="d"\n\n--d\n\nSubject: one\n'
           b'Content-Type: multipart/mixed; boundary="e"\n\n--e\n\nx\n--e--\n--d--\n')
    # message → digest part (message/rfc822 by default) → enclosed message (multipart) → its part
    assert check_raw(raw, Limits(max_depth=4)) is None
    assert check_raw(raw, Limits(max_depth=3)).reason == "limit:depth"                  # type: ignore[union-attr]


def test_scan_is_bounded_on_hostile_structure() -> None:
    assert check_raw(multipart(5000), DEFAULT).reason == "limit:parts"                   # type: ignore[union-attr]
    assert check_raw(nested(200), DEFAULT).reason == "limit:depth"                       # type: ignore[union-attr]
    assert check_raw(enclosed(5000), DEFAULT).reason == "limit:depth"                    # type: ignore[union-attr]
    assert check_raw(b"Subject: x\n\n" + b"--x\n" * 100_000, DEFAULT) is None   # no multipart: no scan


def test_headers_end_where_the_parser_says() -> None:
    # The first line that is not a header field starts the body, blank line or not.
    assert check_raw(b"Subject: x\nnot a header\n" + b"a: b\n" * 5000, DEFAULT) is None
    assert check_raw(b"From someone@example Mon Jan 1\nSubject: x\n\nbody\n", Limits(max_headers=2)) is None


def test_attachment_size_is_checked_on_decoded_bytes() -> None:
    raw = (b'Subject: a\nContent-Type: multipart/mixed; boundary="s"\n\n--s\n\nhi\n--s\n'
           b'Content-Type: application/octet-stream\nContent-Disposition: attachment; filename="../x.bin"\n'
           b'Content-Transfer-Encoding: base64\n\n' + b"QUFBQUFBQUFBQQ==\n" + b"--s--\n")    # 10 bytes decoded
    mail = parse(raw)
    assert check_parsed(mail, Limits(max_attachment_size=10)) is None
    breach = check_parsed(mail, Limits(max_attachment_size=9))
    assert breach is not None and breach.reason == "limit:attachment-size" and "x.bin: 10 bytes" in breach.detail


def test_every_corpus_message_is_within_the_default_limits(corpus_dir: Path) -> None:
    with (corpus_dir / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    over = {path: breach for path in paths
            if (breach := check_raw((corpus_dir / path).read_bytes(), DEFAULT)) is not None}
    assert over == {}


def test_limits_are_validated_in_the_config() -> None:
    assert Limits.model_validate({"max_message_size": "1MB"}).max_message_size == 1024**2
    with pytest.raises(ValueError):
        Limits.model_validate({"max_parts": 0})
    with pytest.raises(ValueError):
        Limits.model_validate({"max_size": "1MB"})           # unknown key


# -- limits.max_hops: read by guards.py (a loop, not a quarantine) -----------

def test_max_hops_defaults_to_postfix_hopcount_limit_everywhere() -> None:
    from mailtriage.config.builtin import builtin
    from mailtriage.config.load import load_settings
    from mailtriage.mail.guards import MAX_HOPS

    assert Limits().max_hops == 50 == MAX_HOPS         # the config's default and the guard's agree
    assert load_settings(None).limits.max_hops == 50    # the example config `init` writes
    assert "max_hops: 50" in (builtin("config") / "mailtriage.yaml").read_text()
    assert Limits(max_hops=100).max_hops == 100         # RFC 5321 section 6.3's "at least 100"


@pytest.mark.parametrize("value", [0, -1, "fifty", 2.5, None])
def test_max_hops_must_be_a_positive_whole_number(value: object) -> None:
    with pytest.raises(ValidationError):
        Limits(max_hops=value)  # type: ignore[arg-type]


def test_a_bad_max_hops_is_reported_at_its_line(tmp_path: Path) -> None:
    from mailtriage.config.builtin import builtin
    from mailtriage.config.load import load_settings
    from mailtriage.errors import ConfigError

    text = (builtin("config") / "mailtriage.yaml").read_text().replace("max_hops: 50", "max_hops: 0")
    config = tmp_path / "mailtriage.yaml"
    config.write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "max_hops: 0" in row)

    with pytest.raises(ConfigError) as raised:
        load_settings(config)

    # (The example config also names a templates/ folder that is not beside this copy.)
    (problem,) = [p for p in raised.value.problems if p.message.startswith("limits.max_hops")]
    assert (problem.file, problem.line) == (str(config), line)
    assert problem.message.startswith("limits.max_hops: ") and "greater than 0" in problem.message
