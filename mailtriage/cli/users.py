"""`mailtriage users add NAME [--force]`, `users remove NAME`, `users list`:
the board's logins in `http.users_file` (mailtriage/web/users.py).

The password is read without echo from the terminal (twice), or as the
first line of standard input when that is not a terminal (scripts,
`ansible`). It is never an argument: arguments show in `ps` and in shell
history.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from mailtriage.config.load import default_config_path, load_settings
from mailtriage.errors import UsageError
from mailtriage.web import users


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("users", help="the board's logins (http.users_file)")
    commands = parser.add_subparsers(dest="sub", required=True)
    add = commands.add_parser("add", help="add a user; the password from a prompt, or stdin when not a terminal")
    add.add_argument("name")
    add.add_argument("--force", action="store_true", help="replace the password of an existing user")
    add.set_defaults(handler=cmd_add)
    remove = commands.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    remove.set_defaults(handler=cmd_remove)
    listing = commands.add_parser("list", help="the users' names")
    listing.set_defaults(handler=cmd_list)


def _path(args: argparse.Namespace) -> Path:
    config = args.config if args.config is not None else default_config_path()
    path = users.users_path(load_settings(config))
    if path is None:
        raise UsageError(f"{config or 'the embedded defaults'}: no http.users_file: set it "
                         f"(e.g. http: {{listen: 127.0.0.1:9464, users_file: users}}) to require a login")
    return path


def read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("password: ")
        if getpass.getpass("again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    return sys.stdin.readline().rstrip("\r\n")


def cmd_add(args: argparse.Namespace) -> int:
    path = _path(args)
    replaced = users.add(path, args.name, read_password(), force=args.force)
    print(f"{'changed the password of' if replaced else 'added'} {args.name} in {path}")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    path = _path(args)
    users.remove(path, args.name)
    print(f"removed {args.name} from {path}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    path = _path(args)
    for name in sorted(users.read(path).hashes) if path.exists() else ():
        print(name)
    return 0
