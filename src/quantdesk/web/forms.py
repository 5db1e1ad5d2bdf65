"""Form fields to request bodies: blanks mean "not given", and problems read as sentences."""

import re
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from quantdesk.core.errors import ValidationFailed

Body = TypeVar("Body", bound=BaseModel)
PAIR = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\S+)\s*$")


def given(fields: dict[str, str], *names: str) -> dict[str, str]:
    """The named fields that were filled in, stripped."""
    return {name: fields[name].strip() for name in names if fields.get(name, "").strip()}


def pairs(text: str, what: str) -> dict[str, str]:
    """``fast=20 slow=50`` (spaces, commas or new lines between) as a dict of strings."""
    found: dict[str, str] = {}
    for part in re.split(r"[\s,;]+(?=[A-Za-z_][A-Za-z0-9_]*\s*=)", text.strip()) if text.strip() else []:
        match = PAIR.match(part)
        if match is None:
            raise ValidationFailed(f"{what}: '{part.strip()}' is not name=value (for example fast=20 slow=50)")
        found[match.group(1)] = match.group(2).rstrip(",;")
    return found


def numbers(text: str, what: str) -> dict[str, float]:
    values = {}
    for name, raw in pairs(text, what).items():
        try:
            values[name] = float(raw)
        except ValueError:
            raise ValidationFailed(f"{what}: {name}={raw} is not a number") from None
    return values


def grid(text: str) -> dict[str, str | list[str]]:
    """A sweep grid: ``fast=5:50:5 slow=20,50,100`` (a range, or a list with commas)."""
    return {name: value.split(",") if "," in value else value for name, value in pairs(text, "grid").items()}


def build(model: type[Body], data: dict[str, Any]) -> Body:
    """The body, or a ValidationFailed naming the first field that is wrong, in words."""
    try:
        return model.model_validate(data)
    except ValidationError as invalid:
        problems = [f"{'.'.join(str(p) for p in e['loc']) or 'form'}: {e['msg']}" for e in invalid.errors()]
        raise ValidationFailed("; ".join(problems[:3])) from None
