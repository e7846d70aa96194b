"""Token-based batching: examples bucketed by length so batches carry little padding.

A batch holds at most `batch_tokens` target tokens counting padding (longest target × sentences).
The order of batches is shuffled with a seed derived from (seed, epoch), so the batch list of any
epoch can be rebuilt exactly after a restart and training resumes at the same batch.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch
from torch import Tensor

from carousel.model.padding import cut_into_batches, pad
from carousel.model.config import BOS_ID, EOS_ID


@dataclass
class Example:
    src: list[int]  # source ids, EOS-terminated
    tgt: list[int]  # target ids, without BOS/EOS


@dataclass
class Batch:
    src: Tensor  # [B, S]
    src_lengths: Tensor  # [B]
    tgt_in: Tensor  # [B, T]  BOS y_1 ... y_n
    tgt_out: Tensor  # [B, T]  y_1 ... y_n EOS
    target_tokens: int  # real (non-pad) target tokens, EOS included

    @property
    def size(self) -> int:
        return self.src.size(0)

    def to(self, device: torch.device) -> "Batch":
        return Batch(self.src.to(device), self.src_lengths.to(device), self.tgt_in.to(device),
                     self.tgt_out.to(device), self.target_tokens)


class TokenBucketBatcher:
    """Groups example indices into length-homogeneous batches of at most `batch_tokens` target tokens."""

    def __init__(self, examples: list[Example], batch_tokens: int, seed: int):
        self.examples = examples
        self.batch_tokens = batch_tokens
        self.seed = seed

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        rng = random.Random(self.seed * 100_003 + epoch)
        # Sort by (target, source) length with a random tie-break so batches differ between epochs.
        order = sorted(
            range(len(self.examples)),
            key=lambda i: (len(self.examples[i].tgt), len(self.examples[i].src), rng.random()),
        )
        target_lengths = [len(example.tgt) + 1 for example in self.examples]  # EOS included
        batches = cut_into_batches(order, target_lengths, self.batch_tokens)
        rng.shuffle(batches)
        return batches

    def collate(self, indices: list[int]) -> Batch:
        return collate([self.examples[i] for i in indices])


def collate(examples: list[Example]) -> Batch:
    src = pad([ex.src for ex in examples])
    tgt_in = pad([[BOS_ID] + ex.tgt for ex in examples])
    tgt_out = pad([ex.tgt + [EOS_ID] for ex in examples])
    return Batch(
        src=src,
        src_lengths=torch.tensor([len(ex.src) for ex in examples]),
        tgt_in=tgt_in,
        tgt_out=tgt_out,
        target_tokens=sum(len(ex.tgt) + 1 for ex in examples),
    )
