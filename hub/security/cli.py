"""``dcor-hub users ...`` and ``dcor-hub tokens ...``: accounts from the hub's shell (the
first admin, and recovery when nobody can log in). Passwords are read from a prompt or
stdin, never from the command line; a new token is printed once."""

from __future__ import annotations

import argparse
import getpass
import sys
from datetime import timedelta

from dcor_wire.units import parse_duration
from hub.security.store import SecurityStore
from hub.settings import HubSettings


def _store(settings: HubSettings) -> SecurityStore:
    from hub.registry.db import open_registry

    if not settings.database_url:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SecurityStore(open_registry(settings.resolved_database_url()))


def _audit(settings: HubSettings, action: str, target: str, **detail: object) -> None:
    from hub.registry.db import open_registry
    from hub.security.audit import AuditLog

    reg = open_registry(settings.resolved_database_url())
    try:
        AuditLog(reg).record(actor="shell", role="admin", action=action, target=target,
                             source="localhost", result="ok", detail=detail)
    finally:
        reg.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def cmd_users(args: argparse.Namespace, settings: HubSettings) -> int:
    store = _store(settings)
    try:
        if args.users_command == "add":
            store.create_user(args.username, _password(args.password_stdin), args.role,
                              desk=args.desk or "", display_name=args.name or "")
            _audit(settings, "user_create", args.username, role=args.role)
            print(f"user {args.username} ({args.role}) created")
        elif args.users_command == "password":
            store.set_password(args.username, _password(args.password_stdin))
            _audit(settings, "user_password", args.username)
            print(f"password of {args.username} changed; their sessions ended")
        elif args.users_command == "unlock":
            store.unlock(args.username)
            _audit(settings, "user_unlock", args.username)
            print(f"{args.username} unlocked")
        else:
            for u in store.list_users():
                state = "active" if u.active else "disabled"
                print(f"{u.username}\t{u.role}\t{u.desk or '-'}\t{state}")
    finally:
        store.registry.close()
    return 0


def cmd_tokens(args: argparse.Namespace, settings: HubSettings) -> int:
    store = _store(settings)
    try:
        ttl = timedelta(seconds=parse_duration(args.ttl))
        token, expires = store.issue_token(args.username, ttl, uses=args.uses,
                                           label=args.label or "")
        _audit(settings, "token_issue", args.username, token_id=token.id, uses=args.uses)
    finally:
        store.registry.close()
    print(token.text)
    print(f"(token {token.id} of {args.username}, valid until {expires:%Y-%m-%d %H:%M} UTC; "
          "shown only now)", file=sys.stderr)
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    users = sub.add_parser("users", help="web users: add, password, unlock, list")
    us = users.add_subparsers(dest="users_command", required=True)
    add = us.add_parser("add")
    add.add_argument("username")
    add.add_argument("--role", required=True, choices=("operator", "technician", "admin"))
    add.add_argument("--desk", default="", help="operators: kominfo, dishub, damkar, ...")
    add.add_argument("--name", default="")
    add.add_argument("--password-stdin", action="store_true")
    pw = us.add_parser("password")
    pw.add_argument("username")
    pw.add_argument("--password-stdin", action="store_true")
    un = us.add_parser("unlock")
    un.add_argument("username")
    us.add_parser("list")
    users.set_defaults(security_func=cmd_users)

    tokens = sub.add_parser("tokens", help="issue a personal API token (printed once)")
    ts = tokens.add_subparsers(dest="tokens_command", required=True)
    issue = ts.add_parser("issue")
    issue.add_argument("username")
    issue.add_argument("--ttl", default="8h", help="e.g. 8h, 2d (at most 30 days)")
    issue.add_argument("--uses", type=int, default=None, help="enrollments allowed")
    issue.add_argument("--label", default="")
    tokens.set_defaults(security_func=cmd_tokens)
