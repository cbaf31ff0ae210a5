"""Login, logout, who am I, password change."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request, Response

from .. import accounts
from ..deps import COOKIE, DbSession, User
from ..schemas import Login, PasswordChange, UserOut

router = APIRouter(prefix="/api/auth", tags=["auth"])


@router.post("/login")
def login(body: Login, request: Request, response: Response, s: DbSession) -> dict:
    """Cookie login (browsers: also returns the CSRF token) or a bearer token."""
    user = accounts.authenticate(s, body.email, body.password)
    if user is None:
        raise HTTPException(401, "wrong e-mail or password")
    settings = request.app.state.settings
    if body.kind == "bearer":
        secret, _ = accounts.issue_token(s, user, "bearer", hours=settings.session_hours)
        return {"user": UserOut.model_validate(user).model_dump(), "token": secret}
    secret, token = accounts.issue_token(s, user, "cookie", hours=settings.session_hours)
    response.set_cookie(
        COOKIE, secret, max_age=int(settings.session_hours * 3600), httponly=True,
        samesite="strict", secure=settings.secure_cookies, path="/",
    )  # fmt: skip
    return {"user": UserOut.model_validate(user).model_dump(), "csrf_token": token.csrf_token}


@router.post("/logout")
def logout(request: Request, response: Response, s: DbSession, who: User) -> dict:
    auth = request.headers.get("authorization", "")
    secret = auth[7:].strip() if auth.lower().startswith("bearer ") else request.cookies.get(COOKIE)
    if secret:
        accounts.revoke(s, secret)
    response.delete_cookie(COOKIE, path="/")
    return {"logged_out": who.email}


@router.get("/me")
def me(who: User) -> dict:
    return {"id": who.id, "email": who.email, "name": who.name, "role": who.role,
            "csrf_token": who.csrf_token or None}  # fmt: skip


@router.post("/password")
def change_password(body: PasswordChange, s: DbSession, who: User) -> dict:
    """Every login of this user ends, this one included."""
    accounts.change_password(s, who.id, body.current, body.new)
    return {"changed": True}
