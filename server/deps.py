"""FastAPI dependencies: the database session, the caller, and access checks.

A caller is identified by the `telerehab_session` cookie (browsers) or an
`Authorization: Bearer` token (scripts). A cookie login must send its CSRF
token in `X-CSRF-Token` on every request that changes something; a bearer
token cannot be sent by a browser on its own, so it needs none.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session

from . import accounts
from .accounts import Principal

COOKIE = "telerehab_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def get_session(request: Request) -> Iterator[Session]:
    """One transaction per request: committed when the handler returns."""
    with request.app.state.db.session() as s:
        yield s


# scope="function": the transaction commits before the response leaves, so a
# client never acts on a write that is not yet (or never) stored.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _secret(request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip() or None
    return request.cookies.get(COOKIE)


def current_user(request: Request, s: DbSession) -> Principal:
    """The logged-in caller, or 401."""
    secret = _secret(request)
    who = accounts.principal_for(s, secret) if secret else None
    if who is None:
        raise HTTPException(401, "not logged in", headers={"WWW-Authenticate": "Bearer"})
    if who.token_kind == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, who.csrf_token):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (CSRF protection)")
    return who


User = Annotated[Principal, Depends(current_user)]


def require_role(who: Principal, *roles: str) -> None:
    if who.role not in roles:
        raise HTTPException(403, f"only {' or '.join(roles)} accounts may do this")


def require_reader(s: Session, who: Principal, patient_id: int) -> None:
    """403 unless the caller is the patient or one of their therapists."""
    if not accounts.can_read_patient(s, who, patient_id):
        raise HTTPException(403, "not your record: only the patient and their therapists")


def require_therapist_of(s: Session, who: Principal, patient_id: int) -> None:
    """403 unless the caller is one of the patient's therapists."""
    if not accounts.can_treat(s, who, patient_id):
        raise HTTPException(403, "only the patient's therapists may do this")
