"""What the wrapper in `mailtriage/daemon/scheduler.py` adds to `schedule`:
`python bench/cadence.py`.

Each case runs the daemon's loop (a pass every TICK = 0.5 s) on simulated
time, once on a bare `schedule.Scheduler` and once on mailtriage's
Scheduler, which drives a `schedule.Scheduler` inside. The loop sleeps what
the wrapper's `run_pending()` returns, at most TICK. `schedule`
reads `datetime.datetime.now()` and takes no clock, so here its module's
`datetime` name is replaced by the simulation's (a measurement harness; the
daemon never does this). Prints a table and a JSON line.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Callable
from zoneinfo import ZoneInfo

import schedule

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mailtriage.backoff import Backoff  # noqa: E402
from mailtriage.clock import FixedClock  # noqa: E402
from mailtriage.daemon.scheduler import Scheduler  # noqa: E402

TICK = 0.5
START = datetime(2026, 10, 25, 0, 30, tzinfo=timezone.utc)     # 02:30 CEST; summer time ends at 01:00 UTC
AMSTERDAM = ZoneInfo("Europe/Amsterdam")


class Sim:
    """Simulated monotonic seconds, and the naive local wall clock `schedule` reads."""

    def __init__(self, zone: ZoneInfo | timezone = timezone.utc) -> None:
        self.mono, self.step, self.zone = 0.0, 0.0, zone

    def monotonic(self) -> float:
        return self.mono

    def wall(self) -> datetime:
        instant = START + timedelta(seconds=self.mono + self.step)
        return instant.astimezone(self.zone).replace(tzinfo=None)


def install(sim: Sim) -> None:
    class Reading(datetime):
        @classmethod
        def now(cls, tz: object = None) -> datetime:  # type: ignore[override]
            return sim.wall()

    schedule.datetime = SimpleNamespace(datetime=Reading, timedelta=timedelta)  # type: ignore[attr-defined]


def loop(sim: Sim, run_pending: Callable[[], object], seconds: float,
         at: Callable[[float], None] = lambda _t: None) -> None:
    while sim.mono < seconds:
        at(sim.mono)
        try:
            delay = run_pending()             # the wrapper says how long to sleep; schedule: None
        except Exception:  # noqa: BLE001 - a bare schedule lets a job's exception out
            delay = None
        sim.mono += TICK if not isinstance(delay, float) else min(delay, TICK)


def bare_and_wrapped(sim_for: Callable[[], Sim], interval: float, job: Callable[..., object],
                     seconds: float, at: Callable[[Sim, float], None] = lambda _s, _t: None) -> dict:
    """Run `job` every `interval` s for `seconds` on both; returns the run times of each."""
    out = {}
    for kind in ("schedule", "wrapped"):
        sim, runs = sim_for(), []
        install(sim)
        if kind == "schedule":
            bare = schedule.Scheduler()
            bare.every(interval).seconds.do(lambda: job(runs, sim, None))
            run_pending: Callable[[], object] = bare.run_pending
        else:
            wrapped = Scheduler(FixedClock(START), monotonic=sim.monotonic, wall=sim.wall,
                                restart=Backoff(first=1, cap=60, jitter=0))
            wrapped.add("job", interval, lambda _now: job(runs, sim, wrapped), delay=interval)
            run_pending = wrapped.run_pending
        loop(sim, run_pending, seconds, lambda t: at(sim, t))
        out[kind] = runs
    return out


def longest_gap(runs: list[float]) -> float:
    return max(b - a for a, b in zip(runs, runs[1:]))


def ticking(runs: list[float], sim: Sim, _wrapped: object) -> None:
    runs.append(sim.mono)


def crashing(runs: list[float], sim: Sim, _wrapped: object) -> None:
    runs.append(sim.mono)
    raise RuntimeError("broken")


def step_back(sim: Sim, t: float) -> None:
    if t == 600:
        sim.step = -3600


def interval_zero_returns() -> bool:
    code = "import schedule; schedule.Scheduler().every(0).seconds.do(print)"
    try:
        subprocess.run([sys.executable, "-c", code], timeout=3, check=True)
        return True
    except subprocess.TimeoutExpired:
        return False


def main() -> None:
    logging.disable(logging.CRITICAL)         # the wrapper logs each crash; the figures are the point
    figures: dict[str, object] = {}
    two_hours = 7200.0
    back = bare_and_wrapped(Sim, 5, ticking, two_hours, step_back)
    figures["step_back_1h_longest_gap_s"] = {k: longest_gap(v) for k, v in back.items()}
    dst = bare_and_wrapped(lambda: Sim(AMSTERDAM), 5, ticking, two_hours)
    figures["dst_end_amsterdam_longest_gap_s"] = {k: longest_gap(v) for k, v in dst.items()}
    crash = bare_and_wrapped(Sim, 30, crashing, 600.0)
    figures["crashing_job_calls_in_10_min"] = {k: len(v) for k, v in crash.items()}
    figures["interval_0_do_returns_within_3_s"] = interval_zero_returns()
    figures["trigger_during_run_second_run_after_s"] = trigger_during_run()
    for name, value in figures.items():
        print(f"{name:42} {value}")
    print(json.dumps(figures))


def trigger_during_run() -> dict[str, float]:
    """A job asks to run again at once from inside its run (the outbox's full batch)."""
    out = {}
    for kind in ("schedule", "wrapped"):
        sim, runs = Sim(), []
        install(sim)
        if kind == "schedule":
            bare = schedule.Scheduler()

            def job() -> None:
                runs.append(sim.mono)
                if len(runs) == 1:
                    entry.next_run = sim.wall()      # "now": what a trigger can do with schedule
            entry = bare.every(60).seconds.do(job)
            entry.next_run = sim.wall()
            loop(sim, bare.run_pending, 300)
        else:
            wrapped = Scheduler(FixedClock(START), monotonic=sim.monotonic, wall=sim.wall)
            wrapped.add("job", 60, lambda _now: (runs.append(sim.mono),
                                                 len(runs) == 1 and wrapped.trigger("job")))
            loop(sim, wrapped.run_pending, 300)
        out[kind] = runs[1] - runs[0]
    return out


if __name__ == "__main__":
    main()
