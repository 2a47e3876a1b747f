"""How long the outbox waits: retries after a 4xx, and the lease a sending daemon holds."""

from __future__ import annotations

from datetime import timedelta

from mailtriage.notify.outbox import Retry
from mailtriage.config.values import SmtpOut


def test_retries_double_up_to_the_cap():
    retry = Retry.from_settings(SmtpOut(retry_first=timedelta(minutes=1), retry_max=timedelta(minutes=5)))
    assert [retry.backoff.after(n) for n in (1, 2, 3, 4)] == [timedelta(minutes=m) for m in (1, 2, 4, 5)]


def test_retry_times_carry_no_jitter_so_outbox_list_shows_when_a_mail_goes():
    retry = Retry.from_settings(SmtpOut(retry_first=timedelta(seconds=0.2), retry_max=timedelta(seconds=1)))
    for rng in (lambda: 0.0, lambda: 0.999):
        assert [retry.backoff.after(n, rng) for n in (1, 2, 3, 4)] == [
            timedelta(milliseconds=ms) for ms in (200, 400, 800, 1000)]


def test_the_lease_outlasts_a_send_unless_the_operator_sets_it():
    assert Retry.from_settings(SmtpOut()).lease == timedelta(minutes=2)                    # 4 × 30 s
    assert Retry.from_settings(SmtpOut(timeout=timedelta(minutes=1))).lease == timedelta(minutes=4)
    assert Retry.from_settings(SmtpOut(lease=timedelta(seconds=15))).lease == timedelta(seconds=15)
