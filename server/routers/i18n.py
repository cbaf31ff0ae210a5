"""The message catalogues, as the pages load them (no login needed: the
login page speaks the browser's language before anyone signs in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response

from .. import i18n

router = APIRouter(prefix="/api/i18n", tags=["i18n"])


@router.get("")
def get_catalogue(
    response: Response,
    lang: Annotated[str | None, Query(max_length=16, description="a language code")] = None,
    accept_language: Annotated[str | None, Header(max_length=1000)] = None,
) -> dict:
    """The catalogue of `lang`, or (without it) of the language the browser's
    `Accept-Language` asks for that has one (English if none); with the
    languages there are, each named in itself."""
    if lang is not None and lang not in i18n.languages():
        raise HTTPException(404, f"lang: no catalogue for {lang!r}")
    chosen = lang or i18n.negotiate(accept_language)
    response.headers["Vary"] = "Accept-Language"
    response.headers["Cache-Control"] = "no-cache"
    return {
        **i18n.catalogue(chosen).as_json(),
        "languages": [{"code": c, "name": i18n.catalogue(c).name} for c in i18n.languages()],
    }
