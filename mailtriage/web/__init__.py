"""The daemon's HTTP listener (`http.listen`): Starlette on uvicorn, in a
thread of its own with its own event loop, beside the daemon's scheduler and
the SMTP listener's loop.

    app.py      build_app(): /healthz and /metrics (health.py), the board mounted at /
    health.py   the two operator endpoints; no login
    server.py   uvicorn on a socket bound up front (a busy port is a clear error), stopped cleanly
"""
