"""The OpenAPI document says what errors really look like: every refusal is a problem body
(``{"error", "detail", "errors"?}``, see api/errors.py), not FastAPI's default validation shape."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

PROBLEM = "Problem"
PROBLEM_SCHEMA: dict[str, Any] = {
    "title": PROBLEM,
    "type": "object",
    "description": "Why a request was refused, in words, and what to fix.",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "A stable code, e.g. validation_failed, not_found."},
        "detail": {"type": "string", "description": "What went wrong and what to do about it."},
        "errors": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Each invalid field or row, when there are several.",
        },
    },
}
UNUSED = ("HTTPValidationError", "ValidationError")


def _problem(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{PROBLEM}"}}},
    }


def describe_problems(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = generate()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        for name in UNUSED:
            schemas.pop(name, None)
        schemas[PROBLEM] = PROBLEM_SCHEMA
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                responses = operation.setdefault("responses", {})
                responses["422"] = _problem("The request is invalid: the detail says what to fix.")
                responses.setdefault("4XX", _problem("Refused: unauthorised, forbidden, not found, conflict ..."))
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
