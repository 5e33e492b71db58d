"""RFC 9457 problem details: every error answer of every govsync HTTP endpoint has this shape."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

PROBLEM_CONTENT_TYPE = "application/problem+json"
_TYPE_BASE = "https://govsync.gov.vn/problems/"


class FieldProblem(BaseModel):
    index: int | None = Field(default=None, description="Position of the event in a batch.")
    field: str
    problem: str


class Problem(BaseModel):
    """The body of an error response (RFC 9457)."""

    type: str = Field(description="A URI naming the kind of problem.")
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldProblem] = Field(default_factory=list)


def problem_response(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    errors: list[FieldProblem] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    problem = Problem(
        type=_TYPE_BASE + (slug or title.lower().replace(" ", "-")),
        title=title,
        status=status,
        detail=detail,
        errors=errors or [],
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_CONTENT_TYPE,
        headers=headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the listed error statuses."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_CONTENT_TYPE: {"schema": Problem.model_json_schema()}},
        }
        for status in statuses
    }


def install_problem_handlers(app: FastAPI) -> None:
    """Framework errors (404, 405, request validation) answer as problems too."""

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
        return problem_response(
            exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None)
        )

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)  # noqa: S101
        errors = [
            FieldProblem(field=".".join(str(p) for p in e["loc"]), problem=e["msg"])
            for e in exc.errors()
        ]
        return problem_response(422, "Invalid request", errors=errors, slug="invalid")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
