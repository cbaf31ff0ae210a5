"""The message catalogues: every word a user reads or hears, one gettext `.po`
file per language under `locales/<lang>/LC_MESSAGES/messages.po`, read with
Babel.

Messages are keyed (`live.inView`, `error.409`), the English catalogue holds
the English text, and placeholders are named, `{name}`. A message with plural
forms has them in the catalogue's own gettext plural rules; the pages pick a
form through `Intl.PluralRules` and the `plural_index` this module derives from
the same catalogue (CLDR category -> gettext form). The exercise library's YAML
stays the English source of its names, instructions and cues: a catalogue
translates them under `exercise.<id>.name`, `exercise.<id>.instructions` and
`exercise.<id>.feedback.<key>`; an exercise a catalogue does not name (one a
therapist taught) keeps the words it was given. Adding a language is adding a
catalogue folder.
"""

from __future__ import annotations

import dataclasses
import gettext
import logging
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.pofile import read_po

from telerehab.errors import ConfigError
from telerehab.rehab_programs.exercise import Exercise
from telerehab.rehab_programs.library import Library

logger = logging.getLogger(__name__)
LOCALES = Path(__file__).resolve().parent / "locales"
DEFAULT = "en"
# numbers enough to meet every CLDR plural category of the languages in use
_PLURAL_SAMPLES = [*range(0, 200), 1000, 1000000, 1000001]


def languages() -> tuple[str, ...]:
    """The languages with a catalogue (folder names, e.g. "en", "es"), English first."""
    found = sorted(p.parent.parent.name for p in LOCALES.glob("*/LC_MESSAGES/messages.po"))
    return tuple(sorted(found, key=lambda lang: lang != DEFAULT))


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's messages: text by key (a tuple of forms for a plural)."""

    language: str
    messages: dict[str, str | tuple[str, ...]]
    plural_expr: str  # gettext's, e.g. "(n != 1)"
    name: str  # the language's name in itself, e.g. "Español"

    def __contains__(self, key: object) -> bool:
        return key in self.messages

    def text(self, key: str, **values: object) -> str:
        """The message `key` with its `{placeholders}` filled; a key the
        catalogue lacks comes from English, then is the key itself (logged)."""
        found = self.messages.get(key)
        if found is None and self.language != DEFAULT:
            return catalogue(DEFAULT).text(key, **values)
        if found is None:
            logger.warning("message %r is in no catalogue", key)
            return key
        form = found if isinstance(found, str) else found[-1]
        return form.format(**values) if values else form

    def plural(self, key: str, n: int, **values: object) -> str:
        """The form of `key` for the number `n` (passed on as `{n}`)."""
        found = self.messages.get(key)
        if not isinstance(found, tuple):
            return self.text(key, n=n, **values)
        index = min(int(gettext.c2py(self.plural_expr)(n)), len(found) - 1)
        return found[index].format(n=n, **values)

    def plural_index(self) -> dict[str, int]:
        """CLDR plural category -> the gettext form this catalogue uses for it
        (what the pages need to pick a form with `Intl.PluralRules`)."""
        rule, form = Locale.parse(self.language).plural_form, gettext.c2py(self.plural_expr)
        out: dict[str, int] = {}
        for n in _PLURAL_SAMPLES:
            out.setdefault(rule(n), int(form(n)))
        return out

    def as_json(self) -> dict:
        """What the pages load: the language, its plural mapping and every message."""
        return {
            "language": self.language,
            "name": self.name,
            "plural_index": self.plural_index(),
            "messages": {k: v if isinstance(v, str) else list(v) for k, v in self.messages.items()},
        }


@lru_cache(maxsize=16)
def catalogue(language: str) -> Catalogue:
    """The catalogue of `language` (one of `languages()`), read once."""
    if language not in languages():
        raise ConfigError(f"language: expected one of {', '.join(languages())}, got {language!r}")
    path = LOCALES / language / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        po = read_po(f, locale=language)
    messages: dict[str, str | tuple[str, ...]] = {}
    for m in po:
        if not m.id:
            continue
        key = m.id[0] if isinstance(m.id, tuple) else m.id
        if isinstance(m.string, tuple):
            if any(m.string):
                messages[key] = tuple(m.string)
        elif m.string and not m.fuzzy:
            messages[key] = m.string
    name = Locale.parse(language).get_display_name(language) or language
    return Catalogue(language, messages, po.plural_expr, name[:1].upper() + name[1:])


def negotiate(accept_language: str | None) -> str:
    """The best language of `languages()` for an `Accept-Language` header
    (its q-values honoured), else English."""
    wanted: list[tuple[float, int, str]] = []
    for k, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag and q > 0:
            wanted.append((-q, k, tag.replace("_", "-")))
    preferred = [tag for *_, tag in sorted(wanted)]
    try:
        found = Locale.negotiate(preferred, list(languages()), sep="-")
    except (UnknownLocaleError, ValueError):
        found = None
    if found is None:  # "es-MX" for a catalogue "es": the language alone
        bases = [tag.split("-")[0].lower() for tag in preferred]
        found = next((b for b in bases if b in languages()), None)
    return str(found) if found else DEFAULT


def exercise_in(exercise: Exercise, language: str) -> Exercise:
    """`exercise` with its name, instructions and cues in `language` where
    the catalogue has them (else as the library gives them)."""
    if language == DEFAULT:
        return exercise
    c = catalogue(language)
    key = f"exercise.{exercise.id}"
    feedback = {
        k: c.messages.get(f"{key}.feedback.{k}", text)  # type: ignore[misc]
        for k, text in exercise.feedback.items()
    }
    return dataclasses.replace(
        exercise,
        name=c.messages.get(f"{key}.name", exercise.name),
        instructions=c.messages.get(f"{key}.instructions", exercise.instructions),
        feedback=feedback,
    )


def library_in(library: Library, language: str) -> Library:
    """Every exercise of `library` in `language` (see `exercise_in`)."""
    if language == DEFAULT:
        return library
    return Library({e.id: exercise_in(e, language) for e in library})
