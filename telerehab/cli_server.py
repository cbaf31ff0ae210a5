"""The server-side subcommands: `serve`, `users`, `db`, and `analyze --save`.
Thin calls into `telerehab.server`; imported only when one of them runs."""

from __future__ import annotations

import argparse
import getpass
import sys
from contextlib import contextmanager
from pathlib import Path

from telerehab.errors import ConfigError


def add_parsers(sub: argparse._SubParsersAction) -> None:
    """Register serve, users and db on the main parser."""
    sv = sub.add_parser("serve", help="start the web app (therapist and patient pages, API)")
    sv.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, help="port (default 8000; 0 picks a free one)")
    sv.add_argument(
        "--demo", action="store_true",
        help="seed a demo therapist, patient, program and sessions from the shared clips",
    )  # fmt: skip
    sv.add_argument("--demo-data", type=Path, default=Path("..") / "shared" / "data",
                    help="folder with clips/ for --demo (default ../shared/data)")  # fmt: skip
    sv.add_argument(
        "--workers", type=int, metavar="N",
        help="server processes on the port (default 1, or TELEREHAB_WORKERS); more than one "
        "needs TELEREHAB_REDIS_URL, and the migrations run once, before they start",
    )  # fmt: skip
    sv.set_defaults(func=_serve)

    us = sub.add_parser("users", help="accounts")
    ussub = us.add_subparsers(title="users commands", metavar="ACTION")
    cr = ussub.add_parser("create", help="create an account (password from the terminal or stdin)")
    cr.add_argument("--email", required=True)
    cr.add_argument("--name", required=True)
    cr.add_argument("--role", required=True, choices=["patient", "therapist", "admin"])
    cr.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    cr.add_argument("--language", default="en",
                    help="of their pages and spoken cues: a catalogue's code (en, es)")  # fmt: skip
    cr.set_defaults(func=_users_create)
    ln = ussub.add_parser("link", help="make a therapist the therapist of a patient")
    ln.add_argument("--therapist", required=True, help="therapist e-mail")
    ln.add_argument("--patient", required=True, help="patient e-mail")
    ln.set_defaults(func=_users_link)
    ul = ussub.add_parser("unlink", help="end a care link: the therapist loses access at once")
    ul.add_argument("--therapist", required=True, help="therapist e-mail")
    ul.add_argument("--patient", required=True, help="patient e-mail")
    ul.set_defaults(func=_users_unlink)
    for action, helptext in (
        ("deactivate", "end every login of a user and refuse new ones"),
        ("activate", "let a deactivated user log in again"),
    ):
        act = ussub.add_parser(action, help=helptext)
        act.add_argument("user", help="e-mail or id")
        act.set_defaults(func=_users_set_active, active=action == "activate")
    ussub.add_parser("list", help="every account").set_defaults(func=_users_list)
    us.set_defaults(func=lambda a: (us.print_help(), 2)[1])

    db = sub.add_parser("db", help="the database")
    dbsub = db.add_subparsers(title="db commands", metavar="ACTION")
    dbsub.add_parser("upgrade", help="create or migrate the database to the newest schema"
                     ).set_defaults(func=_db_upgrade)  # fmt: skip
    db.set_defaults(func=lambda a: (db.print_help(), 2)[1])


def add_save_options(parser: argparse.ArgumentParser) -> None:
    """`analyze --save --patient ...`."""
    parser.add_argument("--save", action="store_true",
                        help="store the analysis as a session of --patient")  # fmt: skip
    parser.add_argument("--patient", help="patient e-mail or id (with --save)")
    parser.add_argument("--pain-before", type=int, help="0-10, with --save")
    parser.add_argument("--pain-after", type=int, help="0-10, with --save")
    parser.add_argument("--no-movement", dest="movement", action="store_false",
                        help="with --save: keep no skeleton for the therapist's replay "
                             "(kept by default: landmarks only, never the video)")  # fmt: skip


def _database():
    from telerehab.server.db import open_configured
    from telerehab.settings import get_settings

    return open_configured(get_settings())


@contextmanager
def _transaction():
    """(database, session) for one command, committed on success, always closed."""
    db = _database()
    try:
        with db.session() as s:
            yield db, s
    finally:
        db.close()


def _user_by(s, key: str, role: str | None = None):
    from sqlalchemy import select

    from telerehab.server.tables import User

    user = s.get(User, int(key)) if key.isdigit() else s.scalar(
        select(User).where(User.email == key.strip().lower())
    )  # fmt: skip
    if user is None or (role and user.role != role):
        raise ConfigError(f"no {role or 'user'} {key!r}")
    return user


def _db_upgrade(args: argparse.Namespace) -> int:
    from telerehab.server.db import current_revision

    db = _database()
    print(f"database {db.url} at revision {current_revision(db.engine)}")
    db.close()
    return 0


def _users_create(args: argparse.Namespace) -> int:
    from telerehab.server import accounts

    if args.password_stdin or not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            raise ConfigError("the two passwords differ")
    with _transaction() as (_db, s):
        user = accounts.create_user(s, args.email, args.name, args.role, password)
        accounts.set_language(s, user.id, args.language)  # a code without a catalogue is refused
        print(f"created {user.role} {user.email} (id {user.id}, language {args.language})")
    return 0


def _users_link(args: argparse.Namespace) -> int:
    from telerehab.server import accounts

    with _transaction() as (_db, s):
        t = _user_by(s, args.therapist, "therapist")
        p = _user_by(s, args.patient, "patient")
        accounts.link(s, t.id, p.id)
        print(f"{t.email} now treats {p.email}")
    return 0


def _operator():
    """The audit trail's actor for a change made from this command line."""
    from telerehab.server import audit

    return audit.Actor(None, f"cli:{getpass.getuser()}", "operator", "local")


def _users_unlink(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from telerehab.server import accounts, audit
    from telerehab.server.tables import CareLink

    with _transaction() as (_db, s):
        t = _user_by(s, args.therapist, "therapist")
        p = _user_by(s, args.patient, "patient")
        care = s.scalar(
            select(CareLink).where(CareLink.therapist_id == t.id, CareLink.patient_id == p.id)
        )
        if care is None:
            raise ConfigError(f"{t.email} does not treat {p.email}")
        accounts.unlink(s, care.id)
        audit.record(
            s,
            _operator(),
            "care_link.end",
            p.id,
            f"therapist {t.id}",
            what=audit.Touched("care_link", therapist_id=t.id),
        )
        print(f"{t.email} no longer treats {p.email}")
    return 0


def _users_set_active(args: argparse.Namespace) -> int:
    from telerehab.server import accounts, audit

    with _transaction() as (_db, s):
        user = accounts.set_active(s, _user_by(s, args.user).id, args.active)
        action = "account.activate" if args.active else "account.deactivate"
        audit.record(
            s,
            _operator(),
            action,
            user.id if user.role == "patient" else None,
            f"user {user.id}",
            what=audit.Touched("account"),
        )
        print(f"{user.email} {'activated' if args.active else 'deactivated: every login ended'}")
    return 0


def _users_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from telerehab.server.tables import User

    with _transaction() as (_db, s):
        for u in s.scalars(select(User).order_by(User.id)):
            state = "" if u.active else "  (deactivated)"
            print(f"{u.id:5d}  {u.role:9s}  {u.email:32s}  {u.name}{state}")
    return 0


def save_analysis(args: argparse.Namespace, result, seq) -> None:
    """Store an analysis (one exercise or a program) of `seq` for `--patient`,
    with its movement for the replay unless `--no-movement`."""
    from telerehab.server import records

    if not args.patient:
        raise ConfigError("--save needs --patient (an e-mail or id)")
    with _transaction() as (db, s):
        patient = _user_by(s, args.patient, "patient")
        session = records.save_analysis(
            s, patient.id, result, device=f"video file {Path(args.video).name}",
            pain_before=args.pain_before, pain_after=args.pain_after, recording=seq,
            movement_consent=args.movement,
        )  # fmt: skip
        kept = "with its movement for the replay" if args.movement else "without its movement"
        print(f"saved      session {session.id} of {patient.email} in {db.url}, {kept}")


def check_save(args: argparse.Namespace) -> None:
    """Fail before any video work if --save cannot succeed."""
    if getattr(args, "save", False):
        if not args.patient:
            raise ConfigError("--save needs --patient (an e-mail or id)")
        with _transaction() as (_db, s):
            _user_by(s, args.patient, "patient")


def _serve(args: argparse.Namespace) -> int:
    from telerehab.server.app import create_app
    from telerehab.server.db import current_revision
    from telerehab.server.process import serve, serve_workers
    from telerehab.settings import get_settings

    settings = get_settings()
    workers = settings.workers if args.workers is None else args.workers
    if workers < 1:
        raise ConfigError(f"--workers: expected 1 or more, got {workers}")
    if workers > 1 and not settings.redis_url:
        raise ConfigError(
            f"--workers {workers} needs TELEREHAB_REDIS_URL (e.g. redis://127.0.0.1:6379/0): "
            "without Redis a live session's requests could not reach the process holding it"
        )
    db = _database()  # migrated here, once, before any worker starts
    print(f"database   {db.url} at revision {current_revision(db.engine)}")
    if args.demo:
        from telerehab.server.demo import seed_demo

        print(f"demo       analysing the shared clips in {args.demo_data} (first start only)")
        logins = seed_demo(db, args.demo_data.resolve(),
                           progress=lambda m: print(f"demo       {m}", flush=True))  # fmt: skip
        print(f"demo       therapist {logins.therapist[0]} / {logins.therapist[1]}")
        print(f"demo       patient   {logins.patient[0]} / {logins.patient[1]}")
    host = args.host or settings.host
    port = settings.port if args.port is None else args.port
    if workers > 1:
        db.close()

        def listening(url: str, pids: list[int]) -> None:
            print(f"workers    {workers} processes: {' '.join(map(str, pids))}")
            print(f"serving    {url}  (Ctrl+C to stop)", flush=True)

        return serve_workers(settings, host, port, workers, listening)
    app = create_app(settings, db)
    serve(app, settings, host, port,
          lambda url: print(f"serving    {url}  (Ctrl+C to stop)", flush=True))  # fmt: skip
    db.close()
    return 0
