"""`carousel keys add|list|revoke`: manage the service's API keys in its database, while it runs.

    carousel keys add --database carousel.db --name alice --requests-per-minute 60 --chars-per-request 5000
    carousel keys list --database carousel.db
    carousel keys revoke --database carousel.db KEY
    carousel keys list --database postgresql://carousel:PASSWORD@db/carousel     # the replicas' database

The server (`CAROUSEL_DATABASE=carousel.db carousel serve`) reads keys on every request:
a key added or revoked here applies at once. A server with a key database requires a key whatever the
database holds (unless CAROUSEL_KEYS_REQUIRED=false): revoking every key, or deleting the database, never
opens it. Only `add` creates a SQLite file or migrates a PostgreSQL database; the other actions refuse a
file that is not there. A key
given with `--key` must have at least 22 characters (128 bits if random); by default one of 256 random
bits is made.
"""

from __future__ import annotations

import argparse
import os
import time


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", default=os.environ.get("CAROUSEL_DATABASE"),
                        help="the service's SQLite file or postgresql:// URL (default: $CAROUSEL_DATABASE)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a key and print it")
    add_database_argument(add)
    add.add_argument("--name", default="", help="who the key is for")
    add.add_argument("--key", help="the key itself, at least 22 characters (default: 43 random characters, 256 bits)")
    add.add_argument("--requests-per-minute", type=int, default=0, help="this key's rate limit (0: the server's)")
    add.add_argument("--chars-per-request", type=int, default=0, help="this key's text limit (0: the server's)")
    listing = actions.add_parser("list", help="list the keys (tab-separated)")
    add_database_argument(listing)
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    revoke = actions.add_parser("revoke", help="revoke a key (it stops working at once)")
    add_database_argument(revoke)
    revoke.add_argument("key")


def open_database(args: argparse.Namespace, create: bool = False):
    """The database named by --database; only `create` makes one that is not there."""
    from carousel.errors import UserError
    from carousel.service.database import Database, DatabaseError

    if args.database is None:
        raise UserError("give --database FILE or postgresql://URL (or set CAROUSEL_DATABASE)")
    try:
        database = Database(args.database, create=False)
        if not create and not database.exists():
            raise UserError(f"no database at {args.database} (`carousel keys add` creates one)")
        if create:
            database.create()
        return database
    except DatabaseError as error:
        raise UserError(f"cannot open the database {database.name}: {error}") from None


def run(args: argparse.Namespace) -> int:
    from carousel.errors import UserError
    from carousel.service.database import DatabaseError, DuplicateRow

    database = open_database(args, create=args.action == "add")
    try:
        if args.action == "add":
            try:
                key = database.add_key(args.name, args.requests_per_minute, args.chars_per_request, args.key)
            except (ValueError, DuplicateRow) as error:
                raise UserError(f"cannot add the key: {error}") from None
            print(key.key)
        elif args.action == "list":
            print("key\tname\trequests_per_minute\tchars_per_request\tcreated\trevoked")
            for key in database.keys(include_revoked=args.all):
                revoked = _time(key.revoked) if key.revoked else ""
                print(f"{key.key}\t{key.name}\t{key.requests_per_minute}\t{key.chars_per_request}\t{_time(key.created)}\t{revoked}")
        elif not database.revoke_key(args.key):
            raise UserError("no such active key")
    except DatabaseError as error:
        raise UserError(f"the database {database.name} cannot be used: {error}") from None
    return 0


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
