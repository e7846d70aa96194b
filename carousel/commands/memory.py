"""`carousel memory import|list|stats|remove`: the service's translation memory, in its database.

    carousel memory import glossary.tmx --source es --target en --database carousel.db
    carousel memory import messages.po --source en --target es --name gimp-2.10 --database carousel.db
    carousel memory stats --database carousel.db
    carousel memory list --source es --target en --limit 5 --database carousel.db
    carousel memory remove --name glossary.tmx --database carousel.db
    CAROUSEL_DATABASE=carousel.db carousel serve --memory      # the server looks the memory up

An import reads a .tmx, .po or .tsv file (data/memory_files.py says what each gives) as one transaction:
a file that turns out malformed halfway leaves the memory as it was. It is stored under a name (default:
the file's name); importing under the same name again replaces that import's entries. An entry whose
source text another already has (ignoring case, spacing and final punctuation) replaces it, whatever
its origin: the last write wins. Suggestions accepted at /suggest are stored under the name "suggestion".
"""

from __future__ import annotations

import argparse
import re
import time

from carousel.commands.keys import add_database_argument

_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    imports = actions.add_parser("import", help="add a .tmx, .po or .tsv file's translations to the memory")
    add_database_argument(imports)
    imports.add_argument("file", help="the memory file: .tmx, .po (msgid → msgstr) or .tsv (source<TAB>target)")
    imports.add_argument("--source", required=True, help="source language code (es; es-ES counts as es)")
    imports.add_argument("--target", required=True, help="target language code")
    imports.add_argument("--name", help="the import's name, to list or remove it by (default: the file's name)")
    listing = actions.add_parser("list", help="print the newest entries (tab-separated)")
    add_database_argument(listing)
    listing.add_argument("--source", help="only this source language")
    listing.add_argument("--target", help="only this target language")
    listing.add_argument("--name", help="only this import (or suggestion)")
    listing.add_argument("--limit", type=int, default=20, help="at most this many entries (default 20)")
    stats = actions.add_parser("stats", help="print the entries per language pair and origin")
    add_database_argument(stats)
    remove = actions.add_parser("remove", help="remove an import's entries (or the suggestions')")
    add_database_argument(remove)
    remove.add_argument("--name", required=True, help="the import's name (suggestion: the accepted suggestions)")
    remove.add_argument("--source", help="only this source language")
    remove.add_argument("--target", help="only this target language")


def run(args: argparse.Namespace) -> int:
    from carousel.commands.keys import open_database
    from carousel.errors import UserError
    from carousel.service.database import DatabaseError
    from carousel.service.memory import TranslationMemory

    for code in (getattr(args, "source", None), getattr(args, "target", None)):
        if code is not None and not _LANGUAGE_TAG.fullmatch(code):
            raise UserError(f"{code!r} is not a language code (es, en, en-US)")
    database = open_database(args, create=args.action == "import")
    memory = TranslationMemory(database)
    try:
        if args.action == "import":
            _import(memory, args)
        elif args.action == "list":
            _list(memory, args)
        elif args.action == "stats":
            _stats(memory)
        else:
            _remove(memory, args)
    except DatabaseError as error:
        raise UserError(f"the database {database.name} cannot be used: {error}") from None
    return 0


def _import(memory, args: argparse.Namespace) -> None:
    from pathlib import Path

    from tqdm import tqdm

    from carousel.data.memory_files import MemoryReading, read_memory_pairs
    from carousel.data.readers import primary_language
    from carousel.errors import UserError
    from carousel.service.memory import SUGGESTION

    path = Path(args.file)
    name = args.name if args.name is not None else path.name
    if not name.strip() or name == SUGGESTION:
        raise UserError(f"--name {name!r} is taken: give the import another name")
    source, target = primary_language(args.source), primary_language(args.target)  # es-ES: es, matching es-MX too
    if source == target:
        raise UserError(f"--source and --target are both {source}")
    reading = MemoryReading()
    started = time.perf_counter()
    with tqdm(unit=" entries", disable=None, desc=path.name) as bar:  # shown on a terminal only
        written = memory.add(source, target, read_memory_pairs(path, source, target, reading),
                             name, replace=True, progress=lambda count: bar.update(count - bar.n))
    if not written:
        raise UserError(f"{path}: no entries to import{_skipped(reading)}")
    print(f"{written} entries imported from {path} as {name!r} ({source}→{target}) "
          f"in {time.perf_counter() - started:.1f} s{_skipped(reading)}")


def _skipped(reading) -> str:
    if not reading.skipped:
        return ""
    return "; left out: " + ", ".join(f"{count} {reason}" for reason, count in sorted(reading.skipped.items()))


def _list(memory, args: argparse.Namespace) -> None:
    from carousel.errors import UserError

    if args.limit < 1:
        raise UserError("--limit must be 1 or more")
    print("source\ttarget\torigin\tcreated\tsource_text\ttarget_text")
    for entry in memory.entries(args.source, args.target, args.name, args.limit):
        texts = [" ".join(text.split()) for text in (entry.source_text, entry.target_text)]
        print(f"{entry.source}\t{entry.target}\t{entry.origin}\t{_time(entry.created)}\t{texts[0]}\t{texts[1]}")


def _stats(memory) -> None:
    counts = memory.counts()
    print("source\ttarget\torigin\tentries")
    for count in counts:
        print(f"{count.source}\t{count.target}\t{count.origin}\t{count.entries}")
    print(f"total\t\t\t{sum(count.entries for count in counts)}")


def _remove(memory, args: argparse.Namespace) -> None:
    from carousel.errors import UserError

    removed = memory.remove(args.name, args.source, args.target)
    if not removed:
        raise UserError(f"no memory entries named {args.name!r}" + (" for that pair" if args.source or args.target else ""))
    print(f"{removed} entries removed")


def _time(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
