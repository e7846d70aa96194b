"""Attention over the encoder states: Bahdanau (additive) and Luong (dot, general).

Each class projects the encoder states once per source (`project_keys`) and then scores any number of
decoder queries against them, so beam search and teacher forcing pay for the keys only once.
Queries are the decoder's top hidden states h_t (attention after the recurrence, as in Luong 2015).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Attention(nn.Module):
    """Base class: `scores(queries, projected_keys)` is what differs between the variants."""

    def project_keys(self, keys: Tensor) -> Tensor:
        """[B, S, K] encoder states -> whatever `scores` needs, computed once per source."""
        return keys

    def scores(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, queries: Tensor, projected_keys: Tensor, values: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """queries [B, T, Q], values [B, S, K], mask [B, S] (True = real token) -> context [B, T, K], weights [B, T, S]."""
        scores = self.scores(queries, projected_keys)
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, values), weights


class LuongDotAttention(Attention):
    """score(h_t, h_s) = h_t · h_s (needs equal sizes)."""

    def scores(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        return torch.bmm(queries, projected_keys.transpose(1, 2))


class LuongGeneralAttention(LuongDotAttention):
    """score(h_t, h_s) = h_t · W h_s; W h_s is computed once per source."""

    def __init__(self, query_size: int, key_size: int):
        super().__init__()
        self.key_projection = nn.Linear(key_size, query_size, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_projection(keys)


class BahdanauAttention(Attention):
    """score(h_t, h_s) = v · tanh(W_q h_t + W_k h_s); W_k h_s is computed once per source."""

    def __init__(self, query_size: int, key_size: int, hidden_size: int):
        super().__init__()
        self.key_projection = nn.Linear(key_size, hidden_size, bias=False)
        self.query_projection = nn.Linear(query_size, hidden_size, bias=False)
        self.energy = nn.Linear(hidden_size, 1, bias=False)

    def project_keys(self, keys: Tensor) -> Tensor:
        return self.key_projection(keys)

    def scores(self, queries: Tensor, projected_keys: Tensor) -> Tensor:
        # [B, T, 1, A] + [B, 1, S, A] -> [B, T, S]
        hidden = torch.tanh(self.query_projection(queries).unsqueeze(2) + projected_keys.unsqueeze(1))
        return self.energy(hidden).squeeze(-1)


def build_attention(kind: str, query_size: int, key_size: int) -> Attention:
    if kind == "bahdanau":
        return BahdanauAttention(query_size, key_size, hidden_size=query_size)
    if kind == "luong_dot":
        return LuongDotAttention()
    if kind == "luong_general":
        return LuongGeneralAttention(query_size, key_size)
    raise ValueError(f"unknown attention {kind!r}")
