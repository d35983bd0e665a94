"""The one mapping from Shoal's exception tree to Docker API error responses."""

from __future__ import annotations

import logging

from aiohttp import web

from shoal.errors import ShoalError

__all__ = ["error_response", "json_error"]

log = logging.getLogger(__name__)


def json_error(status: int, message: str) -> web.Response:
    # The CLI compares Content-Type with == "application/json"; no charset (engine-api.md 1.6).
    return web.Response(
        status=status,
        body=web.json_response({"message": message}).body,
        headers={"Content-Type": "application/json"},
    )


def error_response(exc: BaseException) -> web.Response:
    if isinstance(exc, ShoalError):
        return json_error(exc.status, exc.message)
    if isinstance(exc, web.HTTPClientError):  # aiohttp's refusals (a body past client_max_size: 413)
        return json_error(exc.status, exc.text or exc.reason)
    log.exception("unexpected error in API handler", exc_info=exc)
    return json_error(500, f"internal error: {exc}")
