"""Accounts and care links: admins only. Each change is in the audit trail.

An admin manages accounts and care links and reads the audit trail; an admin
sees no clinical records (see README, "What an admin may see")."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, HTTPException, Request
from sqlalchemy import select

from telerehab.errors import ConflictError

from .. import accounts
from ..audit import Touched
from ..deps import Audit, DbSession, IdPath, User, require_role
from ..schemas import CareLinkIn, CareLinkOut, UserIn, UserOut
from ..tables import CareLink
from ..tables import User as UserRow

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
def list_users(s: DbSession, who: User) -> list[UserOut]:
    require_role(who, "admin")
    return [UserOut.model_validate(u) for u in s.scalars(select(UserRow).order_by(UserRow.id))]


@router.post("/users", status_code=201)
def create_user(body: UserIn, s: DbSession, who: User, audit: Audit) -> UserOut:
    require_role(who, "admin")
    user = accounts.create_user(s, body.email, body.name, body.role, body.password)
    audit(
        "account.create",
        user.id if user.role == "patient" else None,
        f"user {user.id}",
        what=Touched("account"),
    )
    return UserOut.model_validate(user)


def _set_active(s, who, audit, user_id: int, active: bool) -> UserOut:
    require_role(who, "admin")
    if user_id == who.id and not active:
        raise ConflictError("user_id: an admin cannot deactivate their own account")
    try:
        user = accounts.set_active(s, user_id, active)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    action = "account.activate" if active else "account.deactivate"
    audit(
        action,
        user.id if user.role == "patient" else None,
        f"user {user.id}",
        what=Touched("account"),
    )
    return UserOut.model_validate(user)


@router.post("/users/{user_id}/deactivate")
def deactivate_user(
    user_id: IdPath("user"),
    request: Request,
    background: BackgroundTasks,
    s: DbSession,
    who: User,
    audit: Audit,
) -> UserOut:
    """The user can no longer log in, and every login they hold ends at once;
    a patient's live session in this process ends too (as interrupted). Their
    records stay."""
    out = _set_active(s, who, audit, user_id, False)
    background.add_task(request.app.state.live.close_patient, user_id)
    return out


@router.post("/users/{user_id}/activate")
def activate_user(user_id: IdPath("user"), s: DbSession, who: User, audit: Audit) -> UserOut:
    """The user may log in again (with their old password)."""
    return _set_active(s, who, audit, user_id, True)


def _care_out(care: CareLink) -> CareLinkOut:
    return CareLinkOut(
        id=care.id,
        therapist_id=care.therapist_id,
        patient_id=care.patient_id,
        created_at=care.created_at,
    )


@router.get("/care-links")
def list_care_links(s: DbSession, who: User) -> list[CareLinkOut]:
    require_role(who, "admin")
    return [_care_out(c) for c in s.scalars(select(CareLink).order_by(CareLink.id))]


@router.post("/care-links", status_code=201)
def create_care_link(body: CareLinkIn, s: DbSession, who: User, audit: Audit) -> CareLinkOut:
    require_role(who, "admin")
    care = accounts.link(s, body.therapist_id, body.patient_id)
    audit(
        "care_link.create",
        care.patient_id,
        f"therapist {care.therapist_id}",
        what=Touched("care_link", therapist_id=care.therapist_id),
    )
    return _care_out(care)


@router.delete("/care-links/{care_link_id}")
def end_care_link(
    care_link_id: IdPath("care link"), s: DbSession, who: User, audit: Audit
) -> CareLinkOut:
    """The therapist loses access to the patient's records at once (live
    sessions included); the audit trail keeps the history."""
    require_role(who, "admin")
    try:
        care = accounts.unlink(s, care_link_id)
    except LookupError as exc:
        raise HTTPException(404, str(exc)) from None
    audit(
        "care_link.end",
        care.patient_id,
        f"therapist {care.therapist_id}",
        what=Touched("care_link", therapist_id=care.therapist_id),
    )
    return _care_out(care)
