"""Ensemble decoding: several independently trained models of one architecture and vocabulary
translate as one.

At every target step each member m gives p_m(y_t | y_<t, x); the ensemble predicts their average,
log((1/M) Σ_m p_m), the way recurrent NMT systems have combined models since Sutskever et al. (2014)
averaged five LSTMs. Members that start from different random weights make different errors, so the
average is usually better than any one of them; copies of one run (snapshots of the same training)
agree too closely to gain much (checkpoint averaging covers that case).

The search code (model/search.py) sees one model: `encode` gives per-member memories and decoder
states wrapped so that reordering beams (`select`) applies to every member, and `decoder` returns
normalised log-probabilities, which `log_softmax` in the search leaves unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from model.seq2seq import Seq2Seq


@dataclass
class PerMember:
    """One decoder state (or encoder memory) per member, reordered together."""

    parts: list

    def select(self, index: Tensor) -> "PerMember":
        return PerMember([part.select(index) for part in self.parts])


class Ensemble(nn.Module):
    def __init__(self, members: list[Seq2Seq]):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        architectures = {member.config.architecture() == members[0].config.architecture() for member in members}
        if architectures != {True}:
            raise ValueError("ensemble members must share one architecture and vocabulary")
        self.members = nn.ModuleList(members)
        self.config = members[0].config
        self.decoder = _EnsembleDecoder(self.members)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[None, PerMember, PerMember]:
        encoded = [member.encode(src, src_lengths) for member in self.members]
        return None, PerMember([memory for _, memory, _ in encoded]), PerMember([state for _, _, state in encoded])

    def parameter_count(self) -> int:
        return sum(member.parameter_count() for member in self.members)


class _EnsembleDecoder:
    """Called like `AttentionalDecoder`: (previous tokens, state, memory) -> (log-probs, state, attention).

    A plain object rather than a submodule, so the members' decoders are not registered twice."""

    def __init__(self, members: nn.ModuleList):
        self.members = members

    def __call__(self, prev: Tensor, state: PerMember, memory: PerMember) -> tuple[Tensor, PerMember, Tensor]:
        log_probs, states, weights = [], [], []
        for member, member_state, member_memory in zip(self.members, state.parts, memory.parts):
            logits, new_state, attention = member.decoder(prev, member_state, member_memory)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
            states.append(new_state)
            weights.append(attention.float())
        average = torch.logsumexp(torch.stack(log_probs), dim=0) - math.log(len(log_probs))
        return average, PerMember(states), torch.stack(weights).mean(dim=0)
