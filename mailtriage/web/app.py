"""The daemon's web application: the operator endpoints first, then the board.

`build_app(board, registry, board_routes=…, board_middleware=…)`: /healthz
and /metrics match before anything else and never pass through the board's
middleware (its login); the board's routes are mounted at `/` in a sub-app
of their own, with that middleware. With no board routes, `/` is one line
saying where the operator endpoints are.
"""

from __future__ import annotations

from typing import Sequence

from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from mailtriage.health.board import Board
from mailtriage.web import health


def build_app(board: Board, registry: CollectorRegistry, *, board_routes: Sequence[BaseRoute] = (),
              board_middleware: Sequence[Middleware] = ()) -> Starlette:
    routes = health.routes(board, registry)
    if board_routes:
        routes.append(Mount("/", app=Starlette(routes=list(board_routes), middleware=list(board_middleware))))
    else:
        routes.append(Route("/", _index))
    return Starlette(routes=routes)


async def _index(_request: Request) -> Response:
    return PlainTextResponse("mailtriage: GET /healthz, GET /metrics\n")
