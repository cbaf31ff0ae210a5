"""FastAPI dependencies: the database session, the caller, and access checks.

A caller is identified by the `telerehab_session` cookie (browsers) or an
`Authorization: Bearer` token (scripts). A cookie login must send its CSRF
token in `X-CSRF-Token` on every request that changes something; a bearer
token cannot be sent by a browser on its own, so it needs none.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request
from fastapi.security import APIKeyCookie, HTTPBearer
from sqlalchemy.orm import Session

from . import accounts, audit
from .accounts import Principal
from .schemas import MAX_ID

COOKIE = "telerehab_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

# Declared so the OpenAPI schema names both ways to log in; the checks are ours.
_bearer = HTTPBearer(
    auto_error=False, description="a token from POST /api/auth/login with kind=bearer"
)
_cookie = APIKeyCookie(
    name=COOKIE,
    auto_error=False,
    description=f"the browser login cookie (changes also need the {CSRF_HEADER} header)",
)


def IdPath(what: str):  # reads as a type in signatures
    """A path id of `what`, 1..2^31-1 (anything else is a 422 naming the field)."""
    return Annotated[int, Path(ge=1, le=MAX_ID, description=f"the {what}'s id")]


def client_address(request: Request) -> str:
    """The client's network address as the server saw it (a proxy's, unless
    uvicorn is told to trust its forwarding headers)."""
    return request.client.host if request.client else ""


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


def current_user(
    request: Request,
    s: DbSession,
    _b: Annotated[object, Depends(_bearer)] = None,
    _c: Annotated[object, Depends(_cookie)] = None,
) -> Principal:
    """The logged-in caller, or 401."""
    secret = _secret(request)
    who = accounts.principal_for(s, secret) if secret else None
    if who is None:
        raise HTTPException(401, "not logged in", headers={"WWW-Authenticate": "Bearer"})
    request.state.who = who  # for the audit entry of a refusal (app.py)
    if who.token_kind == "cookie" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent, who.csrf_token):
            raise HTTPException(403, f"missing or wrong {CSRF_HEADER} header (CSRF protection)")
    return who


User = Annotated[Principal, Depends(current_user)]


@dataclass(frozen=True, slots=True)
class Auditor:
    """Adds entries to the audit trail in the request's transaction."""

    s: Session
    actor: audit.Actor

    def __call__(
        self,
        action: str,
        patient_id: int | None = None,
        target: str = "",
        *,
        what: audit.Touched,
    ) -> None:
        audit.record(self.s, self.actor, action, patient_id, target, what=what)


def auditor(request: Request, s: DbSession, who: User) -> Auditor:
    return Auditor(s, audit.Actor.of(who, client_address(request)))


Audit = Annotated[Auditor, Depends(auditor)]


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
