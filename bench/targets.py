"""The speed issue's targets beside the figures of one run of bench/run.py:
each row is a figure, what this run measured, the target, the floor measured
in the same run (what the machine or the server alone does), and whether the
target is met. A figure the run did not measure (a skipped part) is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

IMPORT_TARGET = 1_500            # msg/s on SQLite, 10,000 messages, the whole process
POSTGRES_SHARE = 0.8             # of the SQLite rate
RSS_GROWTH = 1.25                # "RSS flat": the large import's peak within this of the small one's
BURST_TARGET = 200               # msg/s, the daemon's IMAP burst
SMTP_TARGET = 200                # msg/s, 8 concurrent SMTP clients
SWEEP_TARGET_S = 1.0             # 1,000 due SLA notices
IDLE_MARGIN_MS = 50              # over Dovecot's own IDLE notification delay


@dataclass(frozen=True)
class Row:
    figure: str
    measured: float
    target: str
    floor: str
    met: bool


def rows(results: Mapping[str, object]) -> list[Row]:
    got = _Figures(results)
    found: list[Row] = []
    sqlite = got.number("import_sqlite_msgs_per_s")
    if sqlite is not None:
        found.append(Row("import, SQLite (msg/s)", sqlite, f">= {IMPORT_TARGET}",
                         f"{got.text('floor_stdlib_sqlite_msgs_per_s')} stdlib, "
                         f"{got.text('floor_mailparser_sqlite_msgs_per_s')} mail-parser "
                         "(parse + one transaction a message)", sqlite >= IMPORT_TARGET))
    importer, worker = got.number("import_sqlite_importer_cpu_ms_per_msg"), \
        got.number("import_sqlite_worker_cpu_ms_per_msg")
    cpus = got.number("cpus")
    if importer is not None and worker is not None and cpus:
        # The import is CPU-bound: its processes' CPU a message bounds its rate on this machine's cores,
        # and the importer's own (it stores in one process) bounds it again.
        spent, budget = round(importer + worker, 2), 1000 * cpus / IMPORT_TARGET
        found.append(Row("import CPU a message, both processes (ms)", spent,
                         f"<= {budget:.2f} ({cpus:g} cores at {IMPORT_TARGET} msg/s)",
                         f"{importer} importer + {worker} parsing worker "
                         f"({got.text('import_worker_steady_cpu_ms_per_msg')} of it its steady state): at most "
                         f"{min(1000 * cpus / spent, 1000 / importer):.0f} msg/s here", spent <= budget))
    postgres = got.number("import_postgresql_msgs_per_s")
    if postgres is not None and sqlite is not None:
        found.append(Row("import, PostgreSQL (msg/s)", postgres, f">= {POSTGRES_SHARE * sqlite:.0f} "
                         f"({POSTGRES_SHARE} x SQLite)", f"{sqlite} (SQLite, this run)",
                         postgres >= POSTGRES_SHARE * sqlite))
    big, small = got.number("rss_import_peak_mb"), got.number("import_sqlite_peak_mb")
    if big is not None and small is not None:
        found.append(Row(f"import peak RSS, {got.text('rss_import_messages')} messages (MB)", big,
                         f"<= {RSS_GROWTH * small:.0f} ({RSS_GROWTH} x the small import's)",
                         f"{small} ({got.text('messages')} messages)", big <= RSS_GROWTH * small))
    burst, appended = got.number("daemon_burst_rate_msgs_per_s"), got.number("daemon_burst_append_s")
    if burst is not None:
        messages = got.number("daemon_burst_messages") or 0
        floor = f"{messages / appended:.0f} (Dovecot taking the APPENDs)" if appended else "-"
        found.append(Row("daemon IMAP burst (msg/s)", burst, f">= {BURST_TARGET}", floor, burst >= BURST_TARGET))
    smtp = got.number("smtp_rate_msgs_per_s")
    if smtp is not None:
        found.append(Row("SMTP listener, 8 clients (msg/s)", smtp, f">= {SMTP_TARGET}",
                         f"{got.text('smtp_sink_rate_msgs_per_s')} (the same clients, a bare aiosmtpd sink)",
                         smtp >= SMTP_TARGET))
    sweep = got.number("sla_sweep_due_ms")
    if sweep is not None:
        found.append(Row(f"SLA sweep, {got.text('sla_due_tickets')} due (s)", round(sweep / 1000, 2),
                         f"< {SWEEP_TARGET_S}", f"{got.text('sla_sweep_none_due_ms_median')} ms (a sweep, none due)",
                         sweep / 1000 < SWEEP_TARGET_S))
    latency, idle = got.number("daemon_latency_median_ms"), got.number("daemon_idle_notify_floor_median_ms")
    if latency is not None and idle is not None:
        found.append(Row("IDLE arrival -> acknowledgement, median (ms)", latency, f"<= {idle + IDLE_MARGIN_MS:.0f} "
                         f"(Dovecot's + {IDLE_MARGIN_MS})", f"{idle} (Dovecot's IDLE notification)",
                         latency <= idle + IDLE_MARGIN_MS))
    return found


def print_rows(found: list[Row]) -> None:
    """An aligned table: figure, measured, target, floor, met."""
    table = [("figure", "measured", "target", "floor (same run)", "met")]
    table += [(row.figure, f"{row.measured:g}", row.target, row.floor, "yes" if row.met else "NO") for row in found]
    widths = [max(len(line[column]) for line in table) for column in range(5)]
    print("# targets")
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())


class _Figures:
    def __init__(self, results: Mapping[str, object]) -> None:
        self.results = results

    def number(self, key: str) -> float | None:
        value = self.results.get(key)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def text(self, key: str) -> str:
        return str(self.results.get(key, "-"))
