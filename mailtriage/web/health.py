"""`GET /healthz` and `GET /metrics`: for load balancers, Kubernetes probes
and Prometheus; no login (they show no customer text).

/healthz answers from the daemon's board in memory (no database round trip,
so a probe is cheap and still answers while the database is down): 200
`{"status": "ok", "components": {...}}` when every component answered on
its last try, 503 `{"status": "failing", "failing": [names], ...}` when one
did not. A component not tried yet is `unknown` and does not fail the probe.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from mailtriage.health.board import Board


def routes(board: Board, registry: CollectorRegistry) -> list[BaseRoute]:
    async def healthz(_request: Request) -> Response:
        states = board.snapshot()
        failing = [name for name, state in states.items() if state.ok is False]
        body = {"status": "failing" if failing else "ok", "failing": failing,
                "components": {name: state.as_dict() for name, state in states.items()}}
        return JSONResponse(body, status_code=503 if failing else 200, headers={"Cache-Control": "no-store"})

    def metrics(_request: Request) -> Response:
        # A plain function: Starlette runs it in a worker thread, so the outbox
        # count the collector makes does not hold up the event loop.
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return [Route("/healthz", healthz, methods=["GET", "HEAD"]), Route("/metrics", metrics, methods=["GET"])]
