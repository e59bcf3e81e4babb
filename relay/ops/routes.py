"""The operator's endpoints: `/healthz`, `/readyz` and `/metrics`, beside the intake."""

from __future__ import annotations

import anyio.to_thread
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from relay.ops.health import Readiness


def ops_routes(readiness: Readiness, metrics: CollectorRegistry) -> list[Route]:
    async def healthz(_request: Request) -> Response:
        """The process serves HTTP (liveness: restart it if this fails)."""
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        problems = await anyio.to_thread.run_sync(readiness.problems)
        answer: dict[str, object] = {"ready": not problems}
        if problems:
            answer["problems"] = problems
        platform = await anyio.to_thread.run_sync(readiness.platform)
        if platform is not None:
            answer["platform"] = platform
        return JSONResponse(answer, status_code=503 if problems else 200)

    async def metrics_page(_request: Request) -> Response:
        body = await anyio.to_thread.run_sync(generate_latest, metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_page, methods=["GET"]),
    ]
