"""What the operator sees of a running mailtriage: each component's health
(`mailbox:NAME`, `relay`, `database`, `oauth2:NAME`, `smtp_in`), alerts when
one has failed for `alerts.after`, Prometheus metrics, `mailtriage status`.

    sources, relay, probes ─► board (memory) ─► monitor: heartbeats rows, alerts ─► outbox
                                  └─► /healthz, /metrics (web/)      heartbeats ─► `mailtriage status`

`state.py` is pure (a component's transitions and the alert decision);
`board.py` holds the daemon's states in memory; `monitor.py` is the daemon's
health job; `facts.py` reads what `status` and the metrics show from the
database; `metrics.py` is the daemon's Prometheus registry.
"""
