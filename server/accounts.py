"""Accounts: users, passwords (argon2id), logins and care relationships.

Who may see what (checked by `can_read_patient` / `can_treat`):
- a patient: their own records only;
- a therapist: the records of their patients (a care link), and may prescribe;
- an admin: manages accounts and care links, and sees no clinical records.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from telerehab.errors import ConfigError, ConflictError

from . import i18n
from .tables import ROLES, AuthToken, CareLink, User, as_utc, utcnow

_hasher = PasswordHasher()  # argon2id with the library's maintained defaults
MIN_PASSWORD = 10
MAX_PASSWORD = 1000  # hashing cost grows with length; nobody types more
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True, slots=True)
class Principal:
    """The user behind a request."""

    id: int
    email: str
    name: str
    role: str
    token_kind: str  # cookie | bearer
    csrf_token: str
    language: str = "en"  # of the pages and spoken cues (server/i18n.py)


def check_password_policy(password: str) -> None:
    """MIN_PASSWORD..MAX_PASSWORD characters, not only spaces (the message
    never repeats the password)."""
    if len(password) < MIN_PASSWORD:
        raise ConfigError(f"password: at least {MIN_PASSWORD} characters, got {len(password)}")
    if len(password) > MAX_PASSWORD:
        raise ConfigError(f"password: at most {MAX_PASSWORD} characters, got {len(password)}")
    if not password.strip():
        raise ConfigError("password: must not be blank (only spaces)")
    if len(set(password)) < 3:
        raise ConfigError("password: must use at least 3 different characters")


def hash_password(password: str) -> str:
    """argon2id hash of a password that meets the policy."""
    check_password_policy(password)
    return _hasher.hash(password)


def create_user(
    s: Session, email: str, name: str, role: str, password: str, *, is_demo: bool = False
) -> User:
    """A new user; a duplicate e-mail raises ConflictError and writes nothing."""
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise ConfigError(f"email: {email[:254]!r} is not an e-mail address")
    if role not in ROLES:
        raise ConfigError(f"role: expected one of {', '.join(ROLES)}, got {role[:20]!r}")
    if not name.strip():
        raise ConfigError("name: must not be empty")
    if len(name.strip()) > 200:
        raise ConfigError("name: at most 200 characters")
    if s.scalar(select(User.id).where(User.email == email)) is not None:
        raise ConflictError(f"a user with e-mail {email!r} already exists")
    user = User(
        email=email, name=name.strip(), role=role, password_hash=hash_password(password),
        is_demo=is_demo,
    )  # fmt: skip
    s.add(user)
    try:
        s.flush()
    except IntegrityError:  # a concurrent insert of the same e-mail
        raise ConflictError(f"a user with e-mail {email!r} already exists") from None
    return user


def authenticate(s: Session, email: str, password: str) -> User | None:
    """The active user with these credentials, else None (same answer, and
    about the same time, whether the e-mail or the password is wrong)."""
    user = s.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None or not user.active:
        _hasher.hash(password)  # spend the same time as a real check
        return None
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    return user


def change_password(s: Session, user_id: int, old: str, new: str) -> None:
    """Change a password after checking the old one; every other login ends."""
    user = s.get(User, user_id)
    if user is None or authenticate(s, user.email, old) is None:
        raise ConfigError("current password: wrong")
    user.password_hash = hash_password(new)
    s.execute(delete(AuthToken).where(AuthToken.user_id == user_id))


INVITE = "invite"  # an AuthToken kind: an invitation to choose a password, not a login
INVITE_DAYS = 7


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_token(
    s: Session,
    user: User,
    kind: str,
    *,
    hours: float | None = None,
    label: str = "",
    keep: int | None = None,
) -> tuple[str, AuthToken]:
    """A new login secret (returned once, stored only as its SHA-256).

    Expired logins of every user are purged first; with `keep`, the user's
    oldest logins end so that at most `keep` remain, this one included."""
    purge_expired(s)
    if keep is not None:
        held = s.scalars(
            select(AuthToken.id)
            .where(AuthToken.user_id == user.id)
            .order_by(AuthToken.id.desc())
            .offset(keep - 1)
        )
        old = list(held)
        if old:
            s.execute(delete(AuthToken).where(AuthToken.id.in_(old)))
    secret = secrets.token_urlsafe(32)
    token = AuthToken(
        user_id=user.id, token_hash=_digest(secret), kind=kind, label=label,
        csrf_token=secrets.token_urlsafe(24) if kind == "cookie" else "",
        expires_at=utcnow() + timedelta(hours=hours) if hours else None,
    )  # fmt: skip
    s.add(token)
    s.flush()
    return secret, token


def principal_for(s: Session, secret: str) -> Principal | None:
    """The user a login secret belongs to, if it is valid and not expired."""
    token = s.scalar(select(AuthToken).where(AuthToken.token_hash == _digest(secret)))
    if token is None:
        return None
    if token.expires_at is not None and as_utc(token.expires_at) < utcnow():
        s.delete(token)
        return None
    if token.kind == INVITE:  # an invitation sets a password once; it is no login
        return None
    user = s.get(User, token.user_id)
    if user is None or not user.active:
        return None
    return Principal(user.id, user.email, user.name, user.role, token.kind, token.csrf_token,
                     user.language)  # fmt: skip


def invite_patient(
    s: Session, therapist_id: int, email: str, name: str, language: str | None = None
) -> tuple[User, str]:
    """A new patient account in the therapist's care, and the secret of an
    invitation (valid INVITE_DAYS, once) with which the patient chooses their
    own password. Until then the account has a password nobody knows."""
    user = create_user(s, email, name, "patient", secrets.token_urlsafe(32))
    if language:
        set_language(s, user.id, language)
    link(s, therapist_id, user.id)
    secret, _ = issue_token(s, user, INVITE, hours=INVITE_DAYS * 24, label="invitation")
    return user, secret


def invited(s: Session, secret: str) -> User:
    """The patient an invitation's secret may still set a password for (it is
    not spent by this). ConfigError for a secret that is wrong, spent or
    expired: the same answer, so that it tells a guesser nothing."""
    token = s.scalar(select(AuthToken).where(AuthToken.token_hash == _digest(secret),
                                             AuthToken.kind == INVITE))  # fmt: skip
    user = s.get(User, token.user_id) if token is not None else None
    expired = token is not None and token.expires_at is not None and (
        as_utc(token.expires_at) < utcnow())  # fmt: skip
    if token is None or user is None or not user.active or expired:
        raise ConfigError("invitation: unknown, already used or expired: ask your therapist "
                          "for a new one")  # fmt: skip
    return user


def accept_invite(s: Session, secret: str, password: str) -> User:
    """The invited patient's own password set with the invitation's secret,
    which is then spent. ConfigError for a secret that is wrong, spent or
    expired (`invited`), or a password the policy refuses."""
    user = invited(s, secret)
    user.password_hash = hash_password(password)
    s.execute(delete(AuthToken).where(AuthToken.user_id == user.id, AuthToken.kind == INVITE))
    return user


def revoke(s: Session, secret: str) -> None:
    """End one login."""
    s.execute(delete(AuthToken).where(AuthToken.token_hash == _digest(secret)))


def purge_expired(s: Session) -> int:
    """Delete every expired login; the number deleted."""
    result = s.execute(
        delete(AuthToken).where(AuthToken.expires_at.is_not(None), AuthToken.expires_at < utcnow())
    )
    return result.rowcount or 0


def set_active(s: Session, user_id: int, active: bool) -> User:
    """Deactivate (every login ends at once; the records stay) or reactivate a user."""
    user = s.get(User, user_id)
    if user is None:
        raise LookupError(f"user_id: no user with id {user_id}")
    user.active = active
    if not active:
        s.execute(delete(AuthToken).where(AuthToken.user_id == user_id))
    return user


def set_language(s: Session, user_id: int, language: str) -> str:
    """The language of a user's pages and spoken cues: one with a catalogue."""
    if language not in i18n.languages():
        raise ConfigError(
            f"language: expected one of {', '.join(i18n.languages())}, got {language!r}"
        )
    user = s.get(User, user_id)
    if user is None:
        raise LookupError(f"user_id: no user with id {user_id}")
    user.language = language
    return language


def unlink(s: Session, care_link_id: int) -> CareLink:
    """End a care link: the therapist loses access to the patient at once."""
    care = s.get(CareLink, care_link_id)
    if care is None:
        raise LookupError(f"care_link_id: no care link with id {care_link_id}")
    s.delete(care)
    s.flush()
    return care


def link(s: Session, therapist_id: int, patient_id: int) -> CareLink:
    """Make `therapist_id` a therapist of `patient_id` (idempotent)."""
    therapist, patient = s.get(User, therapist_id), s.get(User, patient_id)
    if therapist is None or therapist.role != "therapist":
        raise ConfigError(f"therapist: no therapist with id {therapist_id}")
    if patient is None or patient.role != "patient":
        raise ConfigError(f"patient: no patient with id {patient_id}")
    found = s.scalar(
        select(CareLink).where(
            CareLink.therapist_id == therapist_id, CareLink.patient_id == patient_id
        )
    )
    if found:
        return found
    care = CareLink(therapist_id=therapist_id, patient_id=patient_id)
    s.add(care)
    s.flush()
    return care


def can_read_patient(s: Session, who: Principal, patient_id: int) -> bool:
    """A patient reads their own records; a therapist those of their patients."""
    if who.role == "patient":
        return who.id == patient_id
    if who.role == "therapist":
        return can_treat(s, who, patient_id)
    return False


def can_treat(s: Session, who: Principal, patient_id: int) -> bool:
    """A therapist with a care link to the patient."""
    return who.role == "therapist" and (
        s.scalar(
            select(CareLink.id).where(
                CareLink.therapist_id == who.id, CareLink.patient_id == patient_id
            )
        )
        is not None
    )


def patients_of(s: Session, therapist_id: int) -> list[User]:
    """A therapist's patients, by name."""
    return list(
        s.scalars(
            select(User)
            .join(CareLink, CareLink.patient_id == User.id)
            .where(CareLink.therapist_id == therapist_id)
            .order_by(User.name)
        )
    )
