"""Login, logout, who am I, password change.

Logins are throttled per account and per client address (`throttle.py`) and
password hashes are bounded in number at once; both refusals are a 429 with
`Retry-After`. Every login, failed login and logout is in the audit trail.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response

from telerehab.errors import ConfigError

from .. import accounts, audit
from ..audit import NO_RECORD, Touched
from ..deps import COOKIE, Audit, DbSession, User, client_address
from ..schemas import InvitationIn, LanguageIn, Login, PasswordChange, UserOut, WelcomeIn
from ..throttle import GateBusy

logger = logging.getLogger(__name__)
router = APIRouter(prefix="/api/auth", tags=["auth"])


def _too_many(seconds: int, why: str) -> HTTPException:
    return HTTPException(429, why, headers={"Retry-After": str(max(1, seconds))})


@router.post("/login")
def login(body: Login, request: Request, response: Response, s: DbSession) -> dict:
    """Cookie login (browsers: also returns the CSRF token) or a bearer token."""
    state = request.app.state
    settings, throttle = state.settings, state.login_throttle
    address = client_address(request)
    wait = throttle.retry_after(body.email, address)
    if wait:
        logger.warning("login throttled for %s s (address %s)", wait, address)
        raise _too_many(wait, f"too many failed logins: try again in {wait} s")
    try:
        with state.hash_gate:
            user = accounts.authenticate(s, body.email, body.password)
    except GateBusy:
        raise _too_many(1, "the server is busy checking other logins: try again") from None
    if user is None:
        throttle.failed(body.email, address)
        actor = audit.Actor.of(None, address, body.email.strip().lower())
        audit.record_apart(state.db, actor, "login.failed", what=NO_RECORD)  # kept: this rolls back
        raise HTTPException(401, "wrong e-mail or password")
    throttle.succeeded(body.email)
    who = accounts.Principal(user.id, user.email, user.name, user.role, body.kind, "",
                             user.language)  # fmt: skip
    audit.record(s, audit.Actor.of(who, address), "login", target=body.kind, what=NO_RECORD)
    keep = settings.max_logins_per_user
    if body.kind == "bearer":
        secret, _ = accounts.issue_token(s, user, "bearer", hours=settings.session_hours, keep=keep)
        return {"user": UserOut.model_validate(user).model_dump(), "token": secret}
    return _browser_login(s, user, response, settings)


def _browser_login(s, user, response: Response, settings) -> dict:
    """A cookie login for `user`: the cookie set on `response`, the user and
    the login's CSRF token answered."""
    secret, token = accounts.issue_token(s, user, "cookie", hours=settings.session_hours,
                                         keep=settings.max_logins_per_user)  # fmt: skip
    response.set_cookie(
        COOKIE, secret, max_age=int(settings.session_hours * 3600), httponly=True,
        samesite="strict", secure=settings.secure_cookies, path="/",
    )  # fmt: skip
    return {"user": UserOut.model_validate(user).model_dump(), "csrf_token": token.csrf_token}


def _invitation_throttled(request: Request) -> None:
    wait = request.app.state.login_throttle.retry_after("invite", client_address(request))
    if wait:
        raise _too_many(wait, f"too many failed attempts: try again in {wait} s")


def _invitation_refused(request: Request, exc: ConfigError) -> HTTPException:
    """A wrong, spent or expired secret: a failed login for the address
    (throttled, audited), answered 401."""
    state, address = request.app.state, client_address(request)
    state.login_throttle.failed("invite", address)
    actor = audit.Actor.of(None, address)
    audit.record_apart(state.db, actor, "login.failed", target="invitation", what=NO_RECORD)
    return HTTPException(401, str(exc))


@router.post("/welcome/check")
def check_invitation(body: InvitationIn, request: Request, s: DbSession) -> dict:
    """Whether an invitation's secret may still set a password (it is not
    spent by this): the welcome page asks as it opens, so that a spent link
    says so before anything is typed. A refusal is `welcome`'s."""
    _invitation_throttled(request)
    try:
        accounts.invited(s, body.token)
    except ConfigError as exc:
        raise _invitation_refused(request, exc) from None
    return {"open": True}


@router.post("/welcome")
def welcome(body: WelcomeIn, request: Request, response: Response, s: DbSession) -> dict:
    """An invited patient chooses their password with the invitation's secret
    (spent by it) and is logged in (a cookie, as `login`). A wrong, spent or
    expired secret counts as a failed login for the address (throttled)."""
    state = request.app.state
    address = client_address(request)
    _invitation_throttled(request)
    try:
        with state.hash_gate:
            user = accounts.accept_invite(s, body.token, body.password)
    except GateBusy:
        raise _too_many(1, "the server is busy checking other logins: try again") from None
    except ConfigError as exc:
        if str(exc).startswith("invitation"):
            raise _invitation_refused(request, exc) from None
        raise HTTPException(422, str(exc)) from None  # the password policy
    who = accounts.Principal(user.id, user.email, user.name, user.role, "cookie", "",
                             user.language)  # fmt: skip
    actor = audit.Actor.of(who, address)
    audit.record(s, actor, "password.change", target="invitation", what=NO_RECORD)
    return _browser_login(s, user, response, state.settings)


@router.post("/logout")
def logout(request: Request, response: Response, s: DbSession, who: User, audit: Audit) -> dict:
    auth = request.headers.get("authorization", "")
    secret = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if secret:
        accounts.revoke(s, secret)
    audit("logout", what=NO_RECORD)
    response.delete_cookie(COOKIE, path="/")
    return {"logged_out": who.email}


@router.get("/me")
def me(who: User) -> dict:
    return {"id": who.id, "email": who.email, "name": who.name, "role": who.role,
            "language": who.language, "csrf_token": who.csrf_token or None}  # fmt: skip


@router.put("/language")
def set_my_language(body: LanguageIn, s: DbSession, who: User, audit: Audit) -> dict:
    """The language of my pages and spoken cues (one of GET /api/i18n's)."""
    language = accounts.set_language(s, who.id, body.language)
    audit(
        "account.language",
        who.id if who.role == "patient" else None,
        language,
        what=Touched("language", language=language),
    )
    return {"language": language}


@router.post("/password")
def change_password(
    body: PasswordChange, request: Request, s: DbSession, who: User, audit: Audit
) -> dict:
    """Every login of this user ends, this one included."""
    try:
        with request.app.state.hash_gate:
            accounts.change_password(s, who.id, body.current, body.new)
    except GateBusy:
        raise _too_many(1, "the server is busy checking other logins: try again") from None
    audit("password.change", what=NO_RECORD)
    return {"changed": True}
