"""`/metrics`: Prometheus exposition of this process, or of every worker in multiprocess mode."""

from __future__ import annotations

from fastapi import APIRouter, Response

from src.core.metrics import render_latest

router = APIRouter(tags=["observability"])


# A plain `def`: in multiprocess mode it reads every worker's files, off the event loop.
@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    body, content_type = render_latest()
    return Response(content=body, media_type=content_type)
