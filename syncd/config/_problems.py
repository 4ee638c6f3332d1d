"""One configuration problem, ``FILE:LINE: key.path: message``, and pydantic errors as problems."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple, TypeVar, get_args

from pydantic import BaseModel, ValidationError

from syncd.config._models import CONSISTENCY_ERROR
from syncd.config._yaml import Document, Loc

M = TypeVar("M", bound=BaseModel)
Where = Callable[[Loc], tuple[str, int]]  # key path -> (file, line)
_SCRUBBED = "***"


class Problem(NamedTuple):
    """Where (file, line, key path) and what is wrong."""

    file: str
    line: int
    loc: Loc
    message: str

    def __str__(self) -> str:
        key_path = ".".join(str(part) for part in self.loc) or "(file)"
        return f"{self.file}:{self.line}: {key_path}: {self.message}"


def problem(
    where: Where, loc: Loc, message: str, secrets: Iterable[str] = (), line: int | None = None
) -> Problem:
    """A problem at ``loc`` (or at ``line``) scrubbed of every value in ``secrets``."""
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= 4:  # shorter values would blank out ordinary words
            message = message.replace(secret, _SCRUBBED)
    file, found = where(loc)
    return Problem(file, found if line is None else line, loc, message)


def validate(
    model: type[M], data: Any, doc: Document, where: Where
) -> tuple[M | None, list[Problem]]:
    """``model`` validated from ``data``, or None; and the problems of ``doc`` and of validation."""
    problems = [problem(where, loc, what, doc.secrets, line) for loc, what, line in doc.problems]
    try:
        return model.model_validate(data), problems
    except ValidationError as exc:
        for error in exc.errors(include_url=False, include_input=False):
            loc = tuple(error["loc"])
            if error["type"] == CONSISTENCY_ERROR or loc in doc.unresolved:
                continue  # reported from the raw data, or as the missing variable
            message = _message(model, loc, error["type"], error["msg"])
            problems.append(problem(where, loc, message, doc.secrets))
        return None, problems


def _message(model: type[BaseModel], loc: Loc, kind: str, text: str) -> str:
    if kind == "extra_forbidden":
        allowed = _fields_at(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "allowed: " + ", ".join(allowed)
        return f"unknown key ({hint})"
    if kind == "missing":
        return "required key is missing"
    return text.removeprefix("Value error, ")


def _fields_at(model: type[BaseModel], loc: Loc) -> list[str]:
    """The keys accepted by the model nested at ``loc`` (list indexes skipped)."""
    current: type[BaseModel] | None = model
    for part in loc:
        if isinstance(part, int) or current is None:
            continue
        field_info = current.model_fields.get(part)
        current = _model_in(field_info.annotation) if field_info else None
    return list(current.model_fields) if current is not None else []


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The model class inside ``X | None``, ``tuple[X, ...]`` and the like."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        if (found := _model_in(arg)) is not None:
            return found
    return None
