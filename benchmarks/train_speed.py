"""Training throughput (target tokens/second) of the model on this machine, fp32 vs bf16.

    python benchmarks/train_speed.py [--config training/configs/bible-es-en.yaml] [--steps 20]

Batches are drawn from length-bucketed random token sequences whose lengths follow the Bible corpus
(source ≈ 1.1 × target, targets 10-80 subwords), so the figure does not need the corpus on disk.
Each variant warms up for 3 steps, then times `--steps` full training steps (forward, backward, Adam).
"""

from __future__ import annotations

import argparse
import random
import time

import torch
import torch.nn.functional as F

from carousel.model.config import PAD_ID, ModelConfig
from carousel.model.seq2seq import Seq2Seq
from carousel.training.batching import Example, TokenBucketBatcher
from carousel.training.config import load_config
from carousel.model.precision import bf16_supported


def synthetic_examples(count: int, vocab: int, seed: int = 0) -> list[Example]:
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        tgt_len = max(3, min(120, int(rng.lognormvariate(3.4, 0.45))))
        src_len = max(2, int(tgt_len * rng.uniform(0.9, 1.3)))
        examples.append(Example([rng.randrange(4, vocab) for _ in range(src_len)] + [3],
                                [rng.randrange(4, vocab) for _ in range(tgt_len)]))
    return examples


def measure(model_config: ModelConfig, batch_tokens: int, precision: str, steps: int) -> float:
    torch.manual_seed(0)
    model = Seq2Seq(model_config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    batcher = TokenBucketBatcher(synthetic_examples(4000, model_config.tgt_vocab_size), batch_tokens, seed=1)
    batches = batcher.epoch_batches(0)
    tokens, started = 0, None
    for i, indices in enumerate(batches[: steps + 3]):
        if i == 3:
            tokens, started = 0, time.perf_counter()
        batch = batcher.collate(indices)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        loss = F.cross_entropy(logits.float().flatten(0, 1), batch.tgt_out.flatten(),
                               ignore_index=PAD_ID, label_smoothing=0.1, reduction="sum") / batch.target_tokens
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        tokens += batch.target_tokens
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="training/configs/bible-es-en.yaml")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--variants", default="config", help="config, or 'all' to also try input feeding / attentions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads or torch.get_num_threads())
    config = load_config(args.config)
    base = config.model.model_copy(update={"src_vocab_size": config.subwords.vocab_size,
                                           "tgt_vocab_size": config.subwords.vocab_size})
    variants = {"config": base}
    if args.variants == "all":
        variants["input_feeding"] = base.model_copy(update={"input_feeding": True})
        variants["bahdanau"] = base.model_copy(update={"attention": "bahdanau"})
    print(f"threads={torch.get_num_threads()} batch_tokens={config.training.batch_tokens} "
          f"params={Seq2Seq(base).parameter_count():,}")
    print(f"{'variant':16} {'precision':9} {'tgt tok/s':>10}")
    results = {}
    for name, model_config in variants.items():
        for precision in args.precisions.split(","):
            if precision == "bf16" and not bf16_supported():
                print(f"{name:16} {precision:9} {'n/a':>10}  (this CPU has no native bf16; oneDNN refuses bf16 LSTMs)")
                continue
            rate = measure(model_config, config.training.batch_tokens, precision, args.steps)
            results[(name, precision)] = rate
            print(f"{name:16} {precision:9} {rate:10,.0f}", flush=True)
    if ("config", "fp32") in results and ("config", "bf16") in results:
        print(f"bf16 / fp32 speed ratio: {results[('config', 'bf16')] / results[('config', 'fp32')]:.2f}")


if __name__ == "__main__":
    main()
