"""`carousel suggestions export`: the corrections sent to /suggest as a parallel corpus.

    carousel suggestions export --database carousel.db --source es --target en --out suggestions.tsv
    carousel prepare tsv suggestions.tsv ...        # then import it like any other corpus

The TSV has a header (the two language codes) and one pair a line: the text, the suggested translation
(tabs and line breaks inside a text become spaces). The database keeps each suggestion's model and time.
"""

from __future__ import annotations

import argparse

from carousel.commands.keys import add_database_argument


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write the suggestions for one direction as a TSV corpus")
    add_database_argument(export)
    export.add_argument("--source", required=True, help="source language code")
    export.add_argument("--target", required=True, help="target language code")
    export.add_argument("--out", required=True, help="the TSV file to write")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from carousel.commands.keys import open_database
    from carousel.errors import UserError
    from carousel.fileio import write_atomically
    from carousel.service.database import DatabaseError

    database = open_database(args)
    try:
        rows = database.suggestions(args.source, args.target)
    except DatabaseError as error:
        raise UserError(f"the database {database.name} cannot be used: {error}") from None
    clean = lambda text: " ".join(text.split())  # noqa: E731
    lines = [f"{args.source}\t{args.target}"] + [f"{clean(r.q)}\t{clean(r.s)}" for r in rows]
    write_atomically(Path(args.out), "".join(line + "\n" for line in lines))
    print(f"{len(rows)} suggestions written to {args.out}")
    return 0
