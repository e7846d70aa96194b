"""Padded batches of token ids, shared by training and inference: padding, and cutting a length-sorted
order into batches whose padded size (longest sequence × sentences) stays within a token budget."""

from __future__ import annotations

import torch
from torch import Tensor

from carousel.model.config import PAD_ID


def cut_into_batches(order: list[int], lengths: list[int], batch_tokens: int) -> list[list[int]]:
    """Consecutive runs of `order` (indices sorted by length) of at most `batch_tokens` padded tokens."""
    batches, current, longest = [], [], 0
    for index in order:
        length = lengths[index]
        if current and max(longest, length) * (len(current) + 1) > batch_tokens:
            batches.append(current)
            current, longest = [], 0
        current.append(index)
        longest = max(longest, length)
    if current:
        batches.append(current)
    return batches


def pad(sequences: list[list[int]]) -> Tensor:
    out = torch.full((len(sequences), max(len(s) for s in sequences)), PAD_ID, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def model_device(model) -> torch.device:
    """The device a model's (float) parameters live on; int8-quantized models keep float embeddings."""
    return next(model.parameters()).device


def batches_by_tokens(encoded: list[list[int]], batch_tokens: int) -> list[list[int]]:
    """Sort by length and cut into batches of at most `batch_tokens` source tokens (padding included)."""
    lengths = [len(seq) for seq in encoded]
    return cut_into_batches(sorted(range(len(encoded)), key=lengths.__getitem__), lengths, batch_tokens)
