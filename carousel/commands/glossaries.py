"""`carousel glossaries add|list|show|remove`: the service's stored glossaries, in its database, while it runs.

    carousel glossaries add debian --source es --target en terms.tsv --database carousel.db
    carousel glossaries add ui --source en --target es --term "file=archivo" --term "folder=carpeta"
    carousel glossaries list --database carousel.db
    carousel glossaries show debian              # the terms as TSV, ready for `add` or `translate --glossary`
    carousel glossaries remove debian

A glossary file is tab-separated, `source term<TAB>target term` a line (blank lines and `#` comments
skipped; a malformed line is refused with its number). Adding under a name that exists replaces that
glossary whole; a source term given twice (in any case) keeps its last target. The server reads the
change at its next request. Requests use a glossary by id or name (`glossary` field, docs/API.md).
"""

from __future__ import annotations

import argparse

from carousel.commands.keys import add_database_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="store a glossary from a TSV file or --term pairs (replacing one of that name)")
    add_database_argument(add)
    add.add_argument("name", help="the glossary's name (letters, digits, '.', '-', '_')")
    add.add_argument("file", nargs="?", help="TSV file: source term<TAB>target term a line")
    add.add_argument("--source", required=True, help="source language code")
    add.add_argument("--target", required=True, help="target language code")
    add.add_argument("--term", action="append", default=[], metavar="SRC=TGT", help="a term (repeatable)")
    listing = actions.add_parser("list", help="list the glossaries (tab-separated)")
    add_database_argument(listing)
    listing.add_argument("--source", help="only those of this source language")
    listing.add_argument("--target", help="only those of this target language")
    show = actions.add_parser("show", help="print a glossary's terms as TSV")
    add_database_argument(show)
    show.add_argument("name", help="the glossary's name or id")
    remove = actions.add_parser("remove", help="remove a glossary")
    add_database_argument(remove)
    remove.add_argument("name", help="the glossary's name or id")


def run(args: argparse.Namespace) -> int:
    from carousel.commands.keys import open_database
    from carousel.errors import UserError
    from carousel.service.database import DatabaseError
    from carousel.service.glossary_store import GlossaryStore

    store = GlossaryStore(open_database(args, create=args.action == "add"))
    try:
        if args.action == "add":
            stored = store.put(args.name, _glossary(args))
            print(f"{stored.name}\t{stored.id}\t{stored.source}\t{stored.target}\t{stored.terms} terms")
        elif args.action == "list":
            print("name\tid\tsource\ttarget\tterms")
            for stored in store.list(args.source, args.target):
                print(f"{stored.name}\t{stored.id}\t{stored.source}\t{stored.target}\t{stored.terms}")
        elif args.action == "show":
            stored = store.find(args.name)
            if stored is None:
                raise UserError(f"no glossary {args.name!r}")
            print(f"# {stored.name}: {stored.source}\t{stored.target}")
            for source, target in store.terms(stored):
                print(f"{source}\t{target}")
        elif not store.remove(args.name):
            raise UserError(f"no glossary {args.name!r}")
    except DatabaseError as error:
        raise UserError(f"the database {store.database.name} cannot be used: {error}") from None
    return 0


def _glossary(args: argparse.Namespace):
    """The glossary `add` stores: the file's terms, then the --term pairs, checked."""
    import re

    from carousel.errors import UserError
    from carousel.model.glossary import Glossary, GlossaryError

    if not re.fullmatch(r"[\w.-]{1,64}", args.name) or args.name.isdigit():
        raise UserError(f"invalid glossary name {args.name!r}: use letters, digits, '.', '-' and '_' (up to 64), "
                        "not digits alone")
    if args.file is None and not args.term:
        raise UserError("give a TSV file of terms or --term SRC=TGT")
    pairs = read_glossary_file(args.file) if args.file else []
    for term in args.term:
        source, equals, target = term.partition("=")
        if not equals:
            raise UserError(f"--term {term!r}: write SOURCE=TARGET")
        pairs.append((source, target))
    try:
        return Glossary(pairs, args.source.strip().lower(), args.target.strip().lower(), args.name)
    except GlossaryError as error:
        raise UserError(str(error)) from None


def read_glossary_file(path) -> list[tuple[str, str]]:
    """The pairs of a TSV glossary file, or a UserError naming the file and the bad line."""
    from pathlib import Path

    from carousel.errors import UserError
    from carousel.model.glossary import GlossaryError, read_glossary_tsv

    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UnicodeDecodeError as error:
        raise UserError(f"{path}: not UTF-8 text (byte {error.start})") from None
    except OSError as error:
        raise UserError(f"{path}: cannot read ({error.strerror})") from None
    try:
        return read_glossary_tsv(text, str(path))
    except GlossaryError as error:
        raise UserError(str(error)) from None
