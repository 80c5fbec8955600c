"""Errors as RFC 9457 problem details (``application/problem+json``): every error answer of
the web front end has a status, a title and a ``detail`` saying what was wrong, and is
logged with the reason."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("pacsnode.web")

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    """An error answer: raise it anywhere in a request handler."""

    def __init__(self, status: int, detail: str, *, title: str | None = None,
                 headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = headers or {}
        self.extra = extra


def problem_response(status: int, detail: str, title: str | None = None,
                     headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    """A ``problem+json`` response."""
    from http import HTTPStatus

    body: dict[str, Any] = {"type": "about:blank",
                            "title": title or HTTPStatus(status).phrase,
                            "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def install(app: FastAPI) -> None:
    """Answer every error of ``app`` as problem+json."""

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        level = logging.WARNING if exc.status < 500 else logging.ERROR
        log.log(level, "%s %s: %d %s", request.method, request.url.path, exc.status,
                exc.detail)
        return problem_response(exc.status, exc.detail, exc.title, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        log.warning("%s %s: %d %s", request.method, request.url.path, exc.status_code,
                    exc.detail)
        return problem_response(exc.status_code, str(exc.detail),
                                headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        detail = "; ".join(f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg')}"
                           for err in exc.errors())
        log.warning("%s %s: 400 %s", request.method, request.url.path, detail)
        return problem_response(400, detail or "invalid request")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s: 500", request.method, request.url.path)
        return problem_response(500, f"internal error: {type(exc).__name__}: {exc}")
