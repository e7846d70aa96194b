"""`carousel prepare`: build the Bible corpus or import a user's corpus, optionally with subword models.

carousel prepare bible [--out data/corpora/bible]
carousel prepare tsv FILE --src-col N|NAME --tgt-col N|NAME [--header] --src-lang es --tgt-lang en
carousel prepare text SRC_FILE TGT_FILE --src-lang es --tgt-lang en
carousel prepare tmx FILE --src-lang es --tgt-lang en
carousel prepare po PATH --tgt-lang es [--licence TEXT] --out DIR   (a tree or archive of .po catalogs)
carousel prepare dictionary freedict-spa-eng.index --headword-lang es --translation-lang en --out DIR
carousel prepare back-translation --model models/bible-en-es (--bible-english-only | --text FILE) --out DIR
carousel prepare distillation --model TEACHER --corpus DIR [--max-pairs N] --out DIR
carousel prepare domains --spec data/mixes/general-es-en.yaml --domain bible=bible --out models/domains.json
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from pydantic import ValidationError

from carousel.commands import prepare_debian as debian_command
from carousel.commands import prepare_po as po_command
from carousel.routing.domains import CONTEXT, CONTEXT_WEIGHT, MARGIN, PRIOR, valid_context
from carousel.errors import UserError

DEFAULT_CORPORA = Path("data/corpora")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the `prepare` sub-subcommands (bible, tsv, text, tmx, po, ...) and their flags to `parser`."""
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="SOURCE")

    bible = kinds.add_parser("bible", help="verse-aligned RV1909 / WEB / KJV from the Debian SWORD modules")
    bible.add_argument(
        "--out", type=Path, default=DEFAULT_CORPORA / "bible", help="corpus directory (default: %(default)s)"
    )
    bible.add_argument(
        "--max-length-ratio",
        type=float,
        help="drop verses whose longest/shortest column length ratio exceeds this (default: 2.5)",
    )
    _add_common(bible)
    bible.add_argument(
        "--subword-columns",
        nargs=2,
        default=["es", "en"],
        metavar=("SRC", "TGT"),
        help="columns for --subword-vocab (default: es en)",
    )

    tsv = kinds.add_parser("tsv", help="two columns of a tab-separated file")
    tsv.add_argument("file", type=Path)
    tsv.add_argument("--src-col", required=True, help="source column: number (from 1) or header name")
    tsv.add_argument("--tgt-col", required=True, help="target column: number (from 1) or header name")
    tsv.add_argument("--header", action="store_true", help="the first line names the columns")
    _add_import(tsv, "FILE")

    text = kinds.add_parser("text", help="two line-aligned text files")
    text.add_argument("src_file", type=Path)
    text.add_argument("tgt_file", type=Path)
    _add_import(text, "SRC_FILE TGT_FILE")

    tmx = kinds.add_parser("tmx", help="a TMX 1.4 translation memory")
    tmx.add_argument("file", type=Path)
    _add_import(tmx, "FILE")

    debian = kinds.add_parser(
        "debian", help="Spanish–English pairs from Debian's translated software and manuals (data/debian/packages.txt)"
    )
    debian_command.add_arguments(debian)

    po = kinds.add_parser(
        "po", help="a translation memory: a tree or archive of gettext catalogs (.po), markup and code removed"
    )
    po_command.add_arguments(po)
    _add_common(po)

    dictionary = kinds.add_parser(
        "dictionary", help="word and phrase pairs of a dictd bilingual dictionary (FreeDict's Debian packages)"
    )
    dictionary.add_argument("index", type=Path, help="NAME.index, with NAME.dict.dz beside it")
    dictionary.add_argument("--headword-lang", required=True, help="language code of the headwords, e.g. es")
    dictionary.add_argument("--translation-lang", required=True, help="language code of the translations, e.g. en")
    dictionary.add_argument("--licence", default="see the package's copyright file", help="recorded in the manifest")
    dictionary.add_argument("--max-translations", type=int, default=3, help="pairs per headword (default: %(default)s)")
    dictionary.add_argument("--out", type=Path, required=True, help="corpus directory to write")

    mix = kinds.add_parser("mix", help="combine corpora and text files into one training mix (data/mixes/*.yaml)")
    mix.add_argument("--spec", type=Path, required=True, help="the mix spec (YAML), e.g. data/mixes/general-es-en.yaml")
    mix.add_argument("--out", type=Path, required=True, help="corpus directory to write")

    domains = kinds.add_parser(
        "domains", help="fit the router that sends each text to its domain's model (models/domains.json)"
    )
    domains.add_argument("--spec", type=Path, required=True, help="the mix spec whose train parts are the domains' text")
    domains.add_argument(
        "--domain", action="append", default=[], metavar="PART=DOMAIN",
        help="a train part of the spec and its domain (repeatable); other parts are 'general'",
    )
    domains.add_argument("--margin", type=float, default=MARGIN,
                         help="mean log-likelihood ratio per word a text needs to leave the general domain "
                              "(default: %(default)s)")
    domains.add_argument("--context", type=int, default=CONTEXT,
                         help="neighbouring texts either side (lines of a file, strings of a request) whose "
                              "evidence each text is read with (default: %(default)s; 0: each text alone)")
    domains.add_argument("--context-weight", type=float, default=CONTEXT_WEIGHT,
                         help="the neighbours' share of each text's score (default: %(default)s)")
    domains.add_argument("--prior", type=float, default=PRIOR,
                         help="pseudo-count of no-evidence features: short texts need more evidence to leave "
                         "the default domain (default: %(default)s)")
    domains.add_argument("--out", type=Path, default=Path("models/domains.json"), help="default: %(default)s")

    back = kinds.add_parser(
        "back-translation",
        help="synthetic pairs: a reverse-direction model translates target-language text (add with data.extra_train)",
    )
    back.add_argument("--model", type=Path, required=True, help="model from the target to the source language")
    text = back.add_mutually_exclusive_group(required=True)
    text.add_argument("--text", type=Path, help="one target-language sentence per line")
    text.add_argument(
        "--bible-english-only", action="store_true", help="the WEB books RV1909 lacks (the deuterocanon, less Greek Esther)"
    )
    back.add_argument("--out", type=Path, required=True, help="corpus directory to write")
    back.add_argument("--tag", help="a word put before every synthetic source, so that training can tell "
                      "machine-made input from real input (tagged back-translation; default: none)")
    from carousel.commands.options import add_search_arguments  # torch-free: only flags

    add_search_arguments(back)
    back.add_argument("--quiet", action="store_true", help="no progress output")

    distil = kinds.add_parser(
        "distillation",
        help="a teacher's translations of a corpus's sources as targets for a student (sequence-level "
             "knowledge distillation; train on it, or add it with data.extra_train)",
    )
    distil.add_argument("--model", type=Path, required=True, help="the teacher: a model or ensemble directory")
    distil.add_argument("--corpus", type=Path, required=True, help="corpus whose train split's sources are translated")
    distil.add_argument("--src", help="source column (default: the teacher's source language)")
    distil.add_argument("--max-pairs", type=int, default=0,
                        help="translate at most this many distinct sources, spread over the split (default: all)")
    distil.add_argument("--out", type=Path, required=True, help="corpus directory to write")
    add_search_arguments(distil)
    distil.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    """Build or import the corpus described by `args`, print its summary, and train subwords if asked."""
    from carousel.data.summary import format_summary  # imported here so `carousel --help` stays fast

    if args.kind == "back-translation":
        return _run_back_translation(args)
    if args.kind == "distillation":
        return _run_distillation(args)
    if args.kind == "debian":
        debian_command.run(args)
        return 0
    if args.kind == "domains":
        return _run_domains(args)
    if args.kind == "dictionary":
        from carousel.data.dictionary import build_dictionary_corpus

        if args.max_translations < 1:
            raise UserError(f"--max-translations must be at least 1, got {args.max_translations}")
        manifest = build_dictionary_corpus(args.index, args.out, args.headword_lang, args.translation_lang,
                                           args.licence, args.max_translations)
        dropped = ", ".join(f"{reason} {n:,}" for reason, n in manifest.source["dropped_by_reason"].items() if n)
        print(f"{manifest.source['entries']:,} entries: {manifest.splits['train'].rows:,} pairs; left out: {dropped or 'none'}")
        print(f"wrote {args.out}")
        return 0
    if args.kind == "mix":
        from carousel.data.mixing import build_mix, load_spec

        manifest = build_mix(load_spec(args.spec), args.out)
        for part in manifest.source["parts"]:
            rows = part.get("rows_in_train", part["pairs"])
            print(f"{part['split']:5} {part['name']:18} {part['pairs']:>8,} pairs  {rows:>8,} rows  {part['licence']}")
        print(f"wrote {args.out}: " + ", ".join(f"{name} {info.rows:,}" for name, info in manifest.splits.items()))
        return 0
    try:
        if args.kind == "bible":
            from carousel.data.bible import BibleConfig, build_bible_corpus

            out = args.out
            overrides = {"max_length_ratio": args.max_length_ratio} if args.max_length_ratio is not None else {}
            manifest, splits = build_bible_corpus(out, BibleConfig(**overrides), progress=not args.quiet)
            columns = args.subword_columns
        elif args.kind == "po":
            manifest, splits, out, columns = po_command.run(args, DEFAULT_CORPORA)
        else:
            from carousel.data.user_corpus import import_corpus

            config = _import_config(args)
            out = args.out or DEFAULT_CORPORA / config.name
            manifest, splits = import_corpus(config, out)
            columns = [config.source_language, config.target_language]
        print(format_summary(manifest, splits, shown_dropped=None if args.list_dropped else 30))
        print(f"wrote {out}")
        if args.subword_vocab:
            from carousel.data.subwords import SubwordConfig, ensure_subword_models

            subwords = SubwordConfig(
                vocab_size=args.subword_vocab,
                model_type=args.subword_type,
                joint=not args.subword_separate,
                seed=args.seed,
            )
            models = ensure_subword_models(out, columns[0], columns[1], subwords)
            print(f"subword models: {models.src_model}" + ("" if subwords.joint else f", {models.tgt_model}"))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise UserError(f"invalid setting {where}: {first['msg']}") from None
    return 0


def _run_domains(args: argparse.Namespace) -> int:
    from carousel.routing.fitting import fit_routing
    from carousel.data.mixing import load_spec

    domain_of_part = {}
    for item in args.domain:
        part, _, domain = item.partition("=")
        if not part or not domain:
            raise UserError(f"--domain {item!r}: write PART=DOMAIN, e.g. --domain bible=bible")
        domain_of_part[part] = domain
    if not 0 <= args.margin <= 5:
        raise UserError(f"--margin must be between 0 and 5, got {args.margin}")
    if not valid_context(args.context, args.context_weight):
        raise UserError(f"--context must be 0 or more and --context-weight between 0 and 1, "
                        f"got {args.context} and {args.context_weight}")
    if not 0 <= args.prior <= 100:
        raise UserError(f"--prior must be between 0 and 100, got {args.prior}")
    routing, accuracy = fit_routing(load_spec(args.spec), domain_of_part, margin=args.margin,
                                    context=args.context, context_weight=args.context_weight, prior=args.prior)
    for lang, by_part in accuracy.items():
        print(f"{lang}: held-back accuracy " + ", ".join(f"{p} {a:.2%}" for p, a in sorted(by_part.items())))
    routing.save(args.out)
    print(f"wrote {args.out}")
    return 0


def _run_back_translation(args: argparse.Namespace) -> int:
    from carousel.commands.options import search_config
    from carousel.model.loading import load_translator
    from carousel.data.backtranslation import back_translate, read_text_rows
    from carousel.data.summary import format_summary

    if args.bible_english_only:
        from carousel.data.bible import english_only_verses

        rows, text = english_only_verses(progress=not args.quiet), "WEB books that RV1909 lacks"
    else:
        rows, text = read_text_rows(args.text), str(args.text)
    search = search_config(args)
    translator = load_translator(args.model, args.quantize, search, device=args.device)
    search = translator.with_model_defaults(search)
    source = {
        "description": "Back-translation: the original text and its machine translation by a reverse model.",
        "text": text,
        "model": str(args.model),
        "model_checksums": translator.card.get("checksums", {}),
        "search": dataclasses.asdict(search),
        "quantize": args.quantize,
        "tag": args.tag,
    }
    manifest, splits = back_translate(
        rows, translator, search, args.out, name=args.out.name, source=source,
        batch_tokens=args.batch_tokens, progress=not args.quiet, tag=args.tag,
    )
    print(format_summary(manifest, splits, shown_dropped=30))
    print(f"wrote {args.out}")
    return 0


def _run_distillation(args: argparse.Namespace) -> int:
    from carousel.commands.options import search_config
    from carousel.data.corpus import load_corpus_manifest
    from carousel.data.distillation import distill, distinct_sources, held_out_splits
    from carousel.data.summary import format_summary
    from carousel.model.loading import load_translator

    if args.max_pairs < 0:
        raise UserError(f"--max-pairs must be 0 (all) or more, got {args.max_pairs}")
    if not (args.corpus / "corpus.json").is_file():
        raise UserError(f"{args.corpus} is not a corpus directory (no corpus.json): build one with `carousel prepare`")
    search = search_config(args)
    teacher = load_translator(args.model, args.quantize, search, device=args.device)
    search = teacher.with_model_defaults(search)
    source_column = args.src or teacher.src_lang
    corpus = load_corpus_manifest(args.corpus)
    rows = distinct_sources(args.corpus, source_column, args.max_pairs, corpus)
    held_out = held_out_splits(args.corpus, ["id", source_column, teacher.tgt_lang], corpus)
    source = {
        "description": "Sequence-level knowledge distillation: each distinct source of a corpus's train split "
                       "and its translation by a teacher model.",
        "corpus": {"name": corpus.name, "train_sha256": corpus.splits["train"].sha256},
        "sources_translated": len(rows),
        "teacher": str(args.model),
        "teacher_checksums": teacher.card.get("checksums", {}),
        "search": dataclasses.asdict(search),
        "quantize": args.quantize,
        "held_out": {split: f"the corpus's {split} split, its references" for split in held_out},
        # The original corpus's parts, with their licences and splits, so a student's card names them.
        "parts": corpus.source.get("parts", []),
    }
    manifest, splits = distill(rows, teacher, search, args.out, source, args.batch_tokens, progress=not args.quiet,
                               held_out=held_out)
    print(format_summary(manifest, splits, shown_dropped=30))
    print(f"wrote {args.out}")
    return 0


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--subword-vocab",
        type=int,
        metavar="N",
        help="also train SentencePiece models with N pieces on the train split",
    )
    parser.add_argument("--subword-type", choices=["unigram", "bpe"], default="unigram")
    parser.add_argument("--subword-separate", action="store_true", help="one model per language instead of a joint one")
    parser.add_argument(
        "--seed", type=int, default=1, help="seed for the random split and SentencePiece (default: %(default)s)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--list-dropped", action="store_true", help="list every dropped record in the summary")


def _add_import(parser: argparse.ArgumentParser, files: str) -> None:
    parser.add_argument("--src-lang", required=True, help="source language code; also the source column's name")
    parser.add_argument("--tgt-lang", required=True, help="target language code; also the target column's name")
    parser.add_argument("--name", help="corpus name (default: the input file's name without extension)")
    parser.add_argument("--out", type=Path, help=f"corpus directory (default: {DEFAULT_CORPORA}/NAME)")
    parser.add_argument(
        "--valid-file", nargs="+", type=Path, metavar="FILE", help=f"validation set, same format as {files}"
    )
    parser.add_argument("--test-file", nargs="+", type=Path, metavar="FILE", help=f"test set, same format as {files}")
    held_out = "5%% of the cleaned pairs, at least 1, at most 1,000"
    parser.add_argument(
        "--valid-size", type=int, help=f"pairs drawn for validation without --valid-file (default: {held_out})"
    )
    parser.add_argument("--test-size", type=int, help=f"pairs drawn for testing without --test-file (default: {held_out})")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=250,
        help="drop pairs with a longer side, in whitespace tokens; 0: no limit (default: %(default)s)",
    )
    parser.add_argument(
        "--max-chars", type=int, default=0, help="drop pairs with a longer side, in characters; 0: no limit (default)"
    )
    parser.add_argument(
        "--max-ratio",
        type=float,
        default=3.0,
        help="drop pairs whose length ratio exceeds this; 0: no limit (default: %(default)s)",
    )
    parser.add_argument("--keep-duplicates", action="store_true", help="keep repeated identical pairs")
    _add_common(parser)


def _import_config(args: argparse.Namespace):
    """The typed import configuration for `prepare tsv|text|tmx`."""
    from carousel.data.cleaning import CleaningConfig
    from carousel.data.user_corpus import ImportConfig, SplitConfig, TextSource, TmxSource, TsvSource

    if args.kind == "tsv":
        source = TsvSource(
            paths=(args.file,), source_column=args.src_col, target_column=args.tgt_col, header=args.header
        )
    elif args.kind == "text":
        source = TextSource(paths=(args.src_file, args.tgt_file))
    else:
        source = TmxSource(paths=(args.file,))
    width = len(source.paths)
    for flag, paths in (("--valid-file", args.valid_file), ("--test-file", args.test_file)):
        if paths is not None and len(paths) != width:
            raise UserError(
                f"{flag} takes {width} file{'s' if width > 1 else ''} for `prepare {args.kind}`, got {len(paths)}"
            )
    return ImportConfig(
        name=args.name or source.paths[0].stem,
        source_language=args.src_lang,
        target_language=args.tgt_lang,
        source=source,
        valid_paths=tuple(args.valid_file) if args.valid_file else None,
        test_paths=tuple(args.test_file) if args.test_file else None,
        cleaning=CleaningConfig(
            max_tokens=args.max_tokens or None,
            max_chars=args.max_chars or None,
            max_ratio=args.max_ratio or None,
            drop_duplicates=not args.keep_duplicates,
        ),
        split=SplitConfig(valid_size=args.valid_size, test_size=args.test_size, seed=args.seed),
    )
