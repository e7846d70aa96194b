"""`carousel translate`: offline translation of text, TSV or JSONL files, or of stdin.

    carousel translate --model models/bible-es-en < in.txt > out.txt
    carousel translate --model DIR verses.tsv --format tsv --column es --header -o verses.en.tsv
    carousel translate --model DIR requests.jsonl --format jsonl --nbest 3 --scores
    carousel translate --model DIR verses.tsv --format tsv --column 2 --confidence   # a calibrated model
    carousel translate --source es --target en messages.pot -o messages.en.po   # also .html .srt .docx .odt .pptx .epub
    carousel translate --model DIR big.txt --shard 3/8 -o big.3.txt   # the 3rd of 8 contiguous shares of the lines
    carousel translate --source es --target en --glossary terms.tsv < in.txt   # source term<TAB>target term a line

Text, TSV and JSONL: one output line per input line, in input order, streamed in chunks
(carousel.formats.batch does the work; carousel.formats.lines the formats). Documents (the format from the
extension, or --format) are read whole and written with their structure kept (carousel.formats.documents).
"""

from __future__ import annotations

import argparse
import functools
import itertools
import sys
from pathlib import Path

from carousel.commands.options import add_search_arguments, positive_int, search_config
from carousel.errors import UserError
from carousel.fileio import count_lines, open_for_reading
from carousel.formats.lines import FORMATS, record_format

DOCUMENT_FORMATS = ("html", "srt", "po", "docx", "odt", "pptx", "epub")  # carousel.formats.documents: whole files
BINARY_FORMATS = ("docx", "odt", "pptx", "epub")
MAX_DEFAULT_THREADS = 4  # translation threads by default: one per core up to this (see _threads)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="*", type=Path, metavar="FILE", help="input files (default: stdin)")
    parser.add_argument("--model", type=Path, help="model directory (default: the shipped model for --source/--target)")
    parser.add_argument("--source", help="source language of the default model (with --target, instead of --model)")
    parser.add_argument("--target", help="target language of the default model")
    parser.add_argument(
        "--domain", default="auto",
        help="with --source/--target: the shipped model of this domain (e.g. general, bible), or 'auto' to send "
        "each line to the model of its domain (models/domains.json; default: %(default)s)",
    )
    parser.add_argument("-o", "--output", type=Path, help="output file (default: stdout)")
    parser.add_argument(
        "--format", choices=[*FORMATS, *DOCUMENT_FORMATS],
        help="input format (default: from the file's extension — .html .srt .po .pot .docx .odt .pptx .epub are "
        "translated as documents, formatting kept — else text)",
    )
    parser.add_argument(
        "--retranslate", action="store_true",
        help="gettext catalogs: also translate entries that already have a translation (default: fill only empty ones)",
    )
    parser.add_argument("--column", help="TSV: the column to translate, a number (from 1) or a header name")
    parser.add_argument("--header", action="store_true", help="TSV: the first line of each file names the columns")
    parser.add_argument(
        "--glossary", type=Path, metavar="TERMS.tsv",
        help="a glossary of the model's language pair, 'source term<TAB>target term' a line: each term found in "
        "the input (case-insensitively, whole words) comes out as its target term (model/glossary.py)",
    )
    parser.add_argument("--scores", action="store_true", help="add each translation's length-normalised log-probability")
    parser.add_argument(
        "--confidence", action="store_true",
        help="TSV and JSONL: add each translation's confidence in [0, 1] (a model calibrated by `carousel calibrate`; "
        "slower: the reverse model scores every translation)",
    )
    add_search_arguments(parser)
    parser.add_argument("--nbest", type=positive_int, default=1, help="JSONL: also return N-1 alternatives (≤ --beam)")
    parser.add_argument(
        "--threads", type=positive_int,
        help="threads in this process that translate slices of the input side by side, each on its share of "
        f"the cores (default: one per CPU core, at most {MAX_DEFAULT_THREADS}; 1 on a GPU). The output is the same",
    )
    parser.add_argument(
        "--workers", type=positive_int, default=1,
        help="processes that each load the model and translate slices of the input side by side (default: 1, "
        "in-process; the output is the same)",
    )
    parser.add_argument(
        "--shard", type=_shard, metavar="I/N",
        help="translate only the I-th (from 1) of N contiguous shares of the input records: N processes or "
        "machines each take one, and their outputs concatenated in order are the whole file's "
        "(byte for byte with --quantize none or int8-row, whose output does not depend on batching)",
    )
    parser.add_argument("--progress", action="store_true", help="show the progress bar even when stderr is not a terminal")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from carousel.formats import batch as files
    from carousel.formats.lines import render_chunk
    from carousel.routing.translator import load_model_or_default

    if args.threads is not None and args.workers > 1:
        raise UserError("--threads is for one process; with --workers each worker process uses its share of the cores")
    document = _document_format(args)
    if document:
        return _translate_documents(args, document)
    output_format = record_format(args.format or "text", args.scores, args.nbest, args.column, args.header,
                                  args.confidence)
    search = search_config(args, args.nbest, confidence=args.confidence)
    inputs: list[Path | None] = list(args.inputs) or [None]  # None: stdin
    for path in inputs:
        if path is not None:
            open_for_reading(path).close()
    if args.shard and None in inputs:
        raise UserError("--shard needs input files (stdin cannot be counted and then read again)")
    load = functools.partial(load_model_or_default, args.model, args.source, args.target, args.domain,
                             args.quantize, search, args.device)
    translator = load()  # a bad directory fails here, before any work
    glossary = _glossary(args, translator)
    show_progress = not args.quiet and (args.progress or sys.stderr.isatty())
    records, total = files.read_records(inputs, output_format), None
    if args.shard:
        count = sum(1 for _ in files.read_records(inputs, output_format))
        start, end = files.shard_bounds(count, *args.shard)
        records, total = itertools.islice(records, start, end), end - start
    elif show_progress and None not in inputs:
        total = sum(count_lines(path) for path in inputs)
    try:
        with files.AtomicOutput(args.output) as out, tqdm(
            total=total, unit=" sentences", file=sys.stderr, disable=not show_progress, mininterval=0.5
        ) as bar:
            chunks = files.chunked(records, files.CHUNK_LINES)
            if args.workers > 1:
                del translator  # each worker process loads its own
                results = files.translate_in_workers(chunks, args.workers, load, search, args.batch_tokens, glossary,
                                                     bar.update)
            else:
                results = files.translate_in_process(chunks, translator, search, args.batch_tokens, bar.update,
                                                     glossary, threads=_threads(args))
            for chunk, translations in results:
                out.write("".join(line + "\n" for line in render_chunk(chunk, translations, output_format)))
                out.flush()
                bar.update(len(chunk) - len(translations))  # records not translated (a TSV header); the rest moved it
    except BrokenPipeError:
        return files.stop_after_broken_pipe()
    return 0


def _threads(args: argparse.Namespace) -> int:
    """--threads, else one thread per core on the CPU (on 2 cores about 1.2 times one thread over both: README,
    **One translation thread per core**; the cap, untested beyond 2 cores, because the Python part of each
    search holds the GIL) and one on a GPU, whose kernels queue one after another anyway."""
    if args.threads is not None:
        return args.threads
    import torch

    from carousel.model.precision import resolve_device

    if resolve_device(args.device).type != "cpu":
        return 1
    return max(1, min(torch.get_num_threads(), MAX_DEFAULT_THREADS))


def _glossary(args: argparse.Namespace, translator):
    """The --glossary file's terms as a glossary of the translator's language pair, or None."""
    from carousel.commands.glossaries import read_glossary_file
    from carousel.model.glossary import Glossary, GlossaryError

    if args.glossary is None:
        return None
    try:
        return Glossary(read_glossary_file(args.glossary), translator.src_lang, translator.tgt_lang, str(args.glossary))
    except GlossaryError as error:
        raise UserError(f"{args.glossary}: {error}") from None


def _shard(text: str) -> tuple[int, int]:
    """`I/N` with 1 <= I <= N."""
    shard, _, shards = text.partition("/")
    try:
        pair = int(shard), int(shards)
    except ValueError:
        raise argparse.ArgumentTypeError(f"write I/N, e.g. 3/8, got {text!r}") from None
    if not 1 <= pair[0] <= pair[1]:
        raise argparse.ArgumentTypeError(f"I/N needs 1 <= I <= N, got {text!r}")
    return pair


def _document_format(args: argparse.Namespace) -> str | None:
    """The document format to translate the inputs as, or None for line records (text, TSV, JSONL)."""
    if args.format in FORMATS or (args.format is None and not args.inputs):
        return None  # stdin without --format: lines (and the document readers, 70 ms of imports, stay unloaded)
    from carousel.formats.documents import EXTENSIONS

    fmt = args.format
    if fmt is None:
        kinds = {EXTENSIONS.get(path.suffix.lower(), "text") for path in args.inputs}
        if kinds <= {"text"}:
            return None  # stdin, .txt and unknown extensions: one line a record, streamed
        if len(kinds) > 1:
            raise UserError("translate documents of one format at a time (or give --format)")
        fmt = kinds.pop()
    if len(args.inputs) != 1:
        raise UserError(f"--format {fmt}: give one input file (documents are translated one at a time)")
    if (args.scores or args.nbest > 1 or args.column or args.header or args.workers > 1 or args.threads
            or args.confidence or args.shard):
        raise UserError(f"--scores, --nbest, --column, --header, --workers, --threads, --confidence and --shard do not "
                        f"apply to {fmt} documents")
    if fmt in BINARY_FORMATS and args.output is None:
        raise UserError(f"{fmt} output is binary: give -o FILE")
    return fmt


def _translate_documents(args: argparse.Namespace, fmt: str) -> int:
    from carousel.formats.documents import read_document, translate_document
    from carousel.fileio import write_atomically
    from carousel.routing.translator import load_model_or_default

    path = args.inputs[0]
    open_for_reading(path).close()
    search = search_config(args, 1)
    translator = load_model_or_default(args.model, args.source, args.target, args.domain, args.quantize, search,
                                       args.device)
    glossary = _glossary(args, translator)
    document = read_document(fmt, path.read_bytes(), translator.src_lang, translator.tgt_lang, args.retranslate)

    def translate(texts: list[str]) -> list[str]:
        # As the service's file route does: a text's line breaks (a subtitle cue's lines) are kept, not
        # made one line as line records are.
        return [nbest[0][0] for nbest in translator.translate_texts(texts, search, args.batch_tokens, glossary)]

    output = translate_document(document, translate)
    if args.output is None:
        sys.stdout.buffer.write(output)
        sys.stdout.flush()
    else:
        write_atomically(args.output, output)
    return 0
