"""Decoding speed on the test split: sentences/s and target tokens/s at beam 1 and 5, per precision.

    python benchmarks/decode.py [--model models/bible-es-en] [--beams 1,5] [--modes none,int8,bf16]
    python benchmarks/decode.py --model models/general-es-en --files ../shared/evalsets/flores101/devtest.es \
        ../shared/evalsets/flores101/devtest.en --beams 5 --modes int8      # FLORES devtest

Translation goes through `Translator.translate_texts`, as in `carousel translate` and `evaluate`: verses
are cut into sentences, batched by length and joined back. Sentences/s counts verses (input lines);
target tokens are the hypotheses re-encoded with the target SentencePiece model, plus one EOS per
sentence. Also prints the model's FLOPs per target token per beam (counted from its shapes), this
machine's matrix-multiply peak (measured here), and the fraction of that peak the search reaches. BLEU
is printed beside each speed so a faster mode's quality cost is visible. `--parallel 2` times the path of
`carousel translate` instead: slices of 128 lines translated side by side on two threads.
"""

from __future__ import annotations

import argparse
import time

import sacrebleu
import torch

from carousel.data.corpus import read_split
from carousel.formats.batch import CHUNK_LINES, chunked, translate_in_process
from carousel.formats.lines import record_format
from carousel.model.checkpoint import load_model_dir
from carousel.model.config import ModelConfig
from carousel.model.precision import BATCH_INDEPENDENT
from carousel.model.quantization import quantize
from carousel.model.search import SearchConfig
from carousel.model.sentences import split_sentences
from carousel.model.translator import Translator
from carousel.model.loading import card_shortlist, load_channel


def matmul_peak_gflops(dtype: torch.dtype = torch.float32, size: int = 1024, seconds: float = 2.0) -> float:
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - started) / 1e9


def flops_per_target_token(config: ModelConfig, src_len: float, tgt_len: float, beam: int) -> float:
    """Multiply-adds × 2 of one decoder step for one beam, plus the encoder's share per target token."""
    e, he, hd, d, v = config.embedding_dim, config.encoder_hidden, config.decoder_hidden, config.attentional_dim, config.tgt_vocab_size
    gates = 4 if config.rnn_type == "lstm" else 3
    step = 0.0
    rnn_input = e + (d if config.input_feeding else 0)
    for _ in range(config.decoder_layers):
        step += 2 * gates * hd * (rnn_input + hd)
        rnn_input = hd
    keys = 2 * he
    if config.attention == "bahdanau":
        step += 2 * hd * hd + 3 * src_len * hd
    else:
        step += 2 * src_len * hd
    step += 2 * src_len * keys  # context vector
    step += 2 * (hd + keys) * d + 2 * d * v  # attentional layer and output projection
    encoder = 0.0
    layer_input = e
    for _ in range(config.encoder_layers):
        encoder += 2 * 2 * gates * he * (layer_input + he)
        layer_input = 2 * he
    if config.attention != "luong_dot":
        encoder += 2 * keys * hd
    return step + encoder * src_len / (tgt_len * beam)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="models/bible-es-en")
    parser.add_argument("--corpus", default="data/corpora/bible")
    parser.add_argument("--split", default="test")
    parser.add_argument("--src", default="es")
    parser.add_argument("--ref", default="en")
    parser.add_argument("--files", nargs=2, metavar=("SOURCE", "REFERENCE"),
                        help="line-aligned source and reference files instead of a corpus split")
    parser.add_argument("--beams", default="1,5")
    parser.add_argument("--modes", default="none,int8,bf16")
    parser.add_argument("--batch-tokens", type=int, default=12000)
    parser.add_argument("--limit", type=int, default=0, help="first N sentences only")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--parallel", type=int, default=0, metavar="THREADS",
                        help="translate as `carousel translate` does: slices of 128 lines on THREADS threads, each "
                        "on its share of the cores (default: the whole set in one call on all the cores)")
    parser.add_argument("--compare-shortlist", action="store_true",
                        help="with a model that has a lexical shortlist, also time it without (mode shown as `full`)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.files:
        sources_file, references_file = (open(path, encoding="utf-8").read().splitlines() for path in args.files)
        pairs = list(zip(sources_file, references_file))
        args.corpus, args.split = args.files[0], "lines"
    else:
        pairs = read_split(args.corpus, args.split, [args.src, args.ref])
    if args.limit:
        pairs = pairs[: args.limit]
    sources, references = [s for s, _ in pairs], [r for _, r in pairs]
    peak = matmul_peak_gflops()
    split = [sentence for verse in sources for sentence in split_sentences(verse).sentences]
    sentences = len(split)
    print(f"{len(sources)} verses ({sentences} sentences) from {args.corpus} {args.split}; "
          f"{torch.get_num_threads()} threads")
    print(f"measured matmul peak: {peak:.0f} GFLOP/s fp32, {matmul_peak_gflops(torch.bfloat16, 512, 1.0):.1f} GFLOP/s bf16")
    print(f"{'mode':6} {'beam':>4} {'sent/s':>8} {'tgt tok/s':>10} {'BLEU':>6} {'GFLOP/tok':>10} {'GFLOP/s':>8} {'% peak':>7}")
    for mode in args.modes.split(","):
        loaded = load_model_dir(args.model)
        loaded.model = quantize(loaded.model, mode)
        translator = Translator.from_loaded(loaded, channel=load_channel(loaded, mode), shortlist=card_shortlist(loaded),
                                            shortlist_per_sentence=mode in BATCH_INDEPENDENT)
        src_len = sum(len(translator.encode_source(sentence)) for sentence in split) / sentences
        settings = [(int(b), shortlist) for b in args.beams.split(",") for shortlist in _shortlist_settings(args, translator)]
        for beam, shortlist in settings:
            search = SearchConfig(beam_size=beam, shortlist=shortlist)
            translator.translate_texts(sources[:8], search, args.batch_tokens)  # warm-up
            started = time.perf_counter()
            results = _translate(translator, sources, search, args)
            seconds = time.perf_counter() - started
            hypotheses = [nbest[0][0] for nbest in results]
            target_tokens = sum(len(translator.target_sp.encode(h)) for h in hypotheses) + sentences
            tgt_len = target_tokens / sentences
            # Every ensemble member runs; a channel model's reranking pass is not counted.
            flops = flops_per_target_token(loaded.config, src_len, tgt_len, beam) * len(loaded.weight_files)
            achieved = flops * target_tokens * beam / seconds / 1e9
            bleu = sacrebleu.corpus_bleu(hypotheses, [references]).score
            print(f"{mode + ('' if shortlist or translator.shortlist is None else ' full'):6} {beam:4d} {len(sources) / seconds:8.1f} {target_tokens / seconds:10,.0f} {bleu:6.2f} "
                  f"{flops / 1e9:10.4f} {achieved:8.1f} {100 * achieved / peak:6.1f}%", flush=True)


def _translate(translator: Translator, sources: list[str], search: SearchConfig, args) -> list:
    if not args.parallel:
        return translator.translate_texts(sources, search, args.batch_tokens)
    records = list(record_format("text").parse(enumerate(sources, 1), "benchmark", first_file=True))
    done = translate_in_process(chunked(records, CHUNK_LINES), translator, search, args.batch_tokens,
                                threads=args.parallel)
    return [nbest for _, translations in done for nbest, _ in translations]


def _shortlist_settings(args, translator: Translator) -> list[bool]:
    """With the model's shortlist (if any), and also without it (`full`) under --compare-shortlist."""
    return [True, False] if args.compare_shortlist and translator.shortlist is not None else [True]


if __name__ == "__main__":
    main()
