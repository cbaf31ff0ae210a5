"""Reading YAML documents and turning validation failures into precise errors.

Every error names the file, the path inside the document (`exercises[2].reps`),
the bad value and what was expected; a YAML syntax error gives its line; an
unknown key or name suggests the closest known one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from telerehab.errors import ProgramError

M = TypeVar("M", bound=BaseModel)


def load_yaml(path: str | Path) -> Any:
    """Parse a YAML file; errors name the file (and the line for syntax errors)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProgramError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProgramError(f"{path}: cannot be read ({exc})") from exc
    return parse_yaml(text, str(path))


def parse_yaml(text: str, origin: str) -> Any:
    """Parse YAML text; `origin` names it in errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProgramError(f"{origin}: YAML syntax error at {where}{problem}") from exc
    if data is None:
        raise ProgramError(f"{origin}: the document is empty")
    return data


def closest(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest known name, or ''."""
    match = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    return f" (did you mean {match[0]!r}?)" if match else ""


MAX_PROBLEMS = 5  # listed in one message; the rest are counted
SHOWN_CHARS = 40


def validate(model: type[M], data: Any, origin: str) -> M:
    """`model` from `data`, or a ProgramError listing every problem with its path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [_describe(err, model) for err in errors[:MAX_PROBLEMS]]
        if len(errors) > MAX_PROBLEMS:
            problems.append(f"and {len(errors) - MAX_PROBLEMS} more problems")
        raise ProgramError(f"{origin}: " + "; ".join(problems)) from None


def _path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if not isinstance(part, int):
            part = shown(part)[1:-1] if len(str(part)) > SHOWN_CHARS else part
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(document)"


def _describe(err: dict[str, Any], model: type[BaseModel]) -> str:
    loc = tuple(err["loc"])
    path = _path(loc)
    if err["type"] == "extra_forbidden":
        known = _fields_at(model, loc[:-1])
        return f"{path}: unknown key{closest(str(loc[-1]), known)}"
    if err["type"] == "missing":
        return f"{path}: required, missing"
    expected = err["msg"][0].lower() + err["msg"][1:]
    bounds = _bounds(model, loc)
    if bounds and err["type"].startswith(("float", "int", "greater", "less")):
        expected = f"a number in {bounds[0]}..{bounds[1]}"
    elif err["type"].startswith(("float", "int")):
        expected = "a number"
    return f"{path}: expected {expected}, got {shown(err.get('input'))}"


def shown(value: Any) -> str:
    """A bad value as a message quotes it: its repr, cut to SHOWN_CHARS (a
    document may hold a megabyte where a title belongs)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _bounds(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[float, float] | None:
    """(ge, le) of the field at `loc`, when it declares both."""
    names = [p for p in loc if not isinstance(p, int)]
    if not names:
        return None
    current: Any = model
    for part in names[:-1]:
        field = getattr(current, "model_fields", {}).get(part)
        current = _inner_model(field.annotation) if field else None
    field = getattr(current, "model_fields", {}).get(names[-1])
    if field is None:
        return None
    ge = next((m.ge for m in field.metadata if hasattr(m, "ge")), None)
    le = next((m.le for m in field.metadata if hasattr(m, "le")), None)
    return (ge, le) if ge is not None and le is not None else None


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model found by following `loc`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _inner_model(field.annotation)
    return list(getattr(current, "model_fields", {}))


def _inner_model(annotation: Any) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None
