"""The daemon's HTTP listener (`http.listen`): Starlette on uvicorn, in a
thread of its own with its own event loop, beside the daemon's scheduler and
the SMTP listener's loop. A shell: it reads the store and renders; it decides
nothing about tickets.

    app.py      build_app(): /healthz and /metrics (health.py), the board mounted at /
    health.py   the two operator endpoints; no login
    server.py   uvicorn on a socket bound up front (a busy port is a clear error), stopped cleanly
    board.py    the team lead's read-only pages (reads.py what they show, auth.py the login, users.py the users file)
"""
