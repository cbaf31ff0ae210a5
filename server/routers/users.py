"""Accounts and care links: admins only."""

from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import select

from .. import accounts
from ..deps import DbSession, User, require_role
from ..schemas import CareLinkIn, UserIn, UserOut
from ..tables import User as UserRow

router = APIRouter(prefix="/api", tags=["users"])


@router.get("/users")
def list_users(s: DbSession, who: User) -> list[UserOut]:
    require_role(who, "admin")
    return [UserOut.model_validate(u) for u in s.scalars(select(UserRow).order_by(UserRow.id))]


@router.post("/users", status_code=201)
def create_user(body: UserIn, s: DbSession, who: User) -> UserOut:
    require_role(who, "admin")
    user = accounts.create_user(s, body.email, body.name, body.role, body.password)
    return UserOut.model_validate(user)


@router.post("/care-links", status_code=201)
def create_care_link(body: CareLinkIn, s: DbSession, who: User) -> dict:
    require_role(who, "admin")
    care = accounts.link(s, body.therapist_id, body.patient_id)
    return {"id": care.id, "therapist_id": care.therapist_id, "patient_id": care.patient_id}
