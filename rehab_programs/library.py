"""The exercise library: every YAML file in `library/`, keyed by id."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from importlib import resources
from pathlib import Path

from telerehab.errors import ProgramError

from .documents import closest
from .exercise import Exercise, load_exercise


class Library:
    """Exercises by id; an unknown id names the closest known one."""

    def __init__(self, exercises: dict[str, Exercise]) -> None:
        self._by_id = dict(sorted(exercises.items()))

    @classmethod
    def from_folder(cls, folder: str | Path) -> Library:
        """Every `*.yaml` in `folder`; each file's stem must equal its id."""
        found: dict[str, Exercise] = {}
        for path in sorted(Path(folder).glob("*.yaml")):
            ex = load_exercise(path)
            if ex.id != path.stem:
                raise ProgramError(
                    f"{path}: id: expected {path.stem!r} (the file name), got {ex.id!r}"
                )
            found[ex.id] = ex
        if not found:
            raise ProgramError(f"{folder}: no exercise files (*.yaml)")
        return cls(found)

    def with_folder(self, folder: str | Path) -> Library:
        """This library and every exercise file in `folder` (a clinic's own, or
        learned from a demonstration); an id the library has already is refused."""
        extra = Library.from_folder(folder)
        return self.with_exercises({str(Path(folder) / f"{ex.id}.yaml"): ex for ex in extra})

    def with_exercises(self, extra: dict[str, Exercise]) -> Library:
        """This library and `extra` (exercises by where they come from); an id
        the library has already is refused, naming where."""
        for origin, ex in extra.items():
            if ex.id in self._by_id:
                raise ProgramError(
                    f"{origin}: id: {ex.id!r} is a library exercise; choose another id"
                )
        return Library(self._by_id | {ex.id: ex for ex in extra.values()})

    def get(self, exercise_id: str) -> Exercise:
        """The exercise `exercise_id`."""
        try:
            return self._by_id[exercise_id]
        except KeyError:
            raise ProgramError(
                f"unknown exercise {exercise_id!r}{closest(exercise_id, self._by_id)}"
            ) from None

    def __contains__(self, exercise_id: object) -> bool:
        return exercise_id in self._by_id

    def __iter__(self) -> Iterator[Exercise]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def match(self, text: str | None) -> Exercise | None:
        """The exercise a plain description names ("supine dumbbell floor press" ->
        floor_press): the longest id or name contained in it, else None."""
        if not text:
            return None
        words = " " + text.lower().replace("_", " ").replace("-", " ") + " "
        best: tuple[int, Exercise] | None = None
        for ex in self:
            for label in (ex.id.replace("_", " "), ex.name.lower().split(" (")[0]):
                named = f" {label} " in words or f" {label} (" in words or f"{label}," in words
                if named and (best is None or len(label) > best[0]):
                    best = (len(label), ex)
        return best[1] if best else None

    @property
    def ids(self) -> tuple[str, ...]:
        """Known ids, sorted."""
        return tuple(self._by_id)


@lru_cache(maxsize=1)
def default_library() -> Library:
    """The library shipped with telerehab."""
    folder = resources.files("telerehab.rehab_programs").joinpath("library")
    return Library.from_folder(Path(str(folder)))
