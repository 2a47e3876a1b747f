"""The daemon's web side: the board (board.py, its reads and login) and, beside
it, the listener's app with /metrics and /healthz (app.py). A shell: it reads
the store and renders; it decides nothing about tickets."""
