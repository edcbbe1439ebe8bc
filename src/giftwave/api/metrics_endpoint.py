"""``GET /metrics`` on the main port, for the bearer of GIFTWAVE_METRICS_TOKEN only.

The figures say how busy the service is and where it fails: not for the public. Without a
token this route answers 404 as if absent (metrics are then served only on
GIFTWAVE_METRICS_PORT, a listener of its own, or not at all).
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response
from starlette.exceptions import HTTPException

from giftwave import metrics
from giftwave.api.state import services
from giftwave.errors import Code, Unauthorized

router = APIRouter(tags=["ops"])


@router.get("/metrics", include_in_schema=False)
async def metrics_text(request: Request) -> Response:
    """Every metric in Prometheus' text format (all processes of this server)."""
    token = services(request).settings.metrics_token
    if token is None:
        raise HTTPException(404)  # the very answer of a path that does not exist
    scheme, _, offered = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    # Constant time: the answer must not tell how many characters were right.
    if scheme.lower() != "bearer" or not hmac.compare_digest(offered.strip().encode(), expected):
        raise Unauthorized(Code.METRICS_TOKEN, "Send the metrics token as 'Authorization: Bearer'.")
    observer = getattr(request.app, "observer", None)
    if observer is not None:
        observer.flush()  # this process's HTTP counts, to the request before this one
    return Response(metrics.exposition(), media_type=metrics.CONTENT_TYPE)
