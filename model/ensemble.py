"""Ensemble decoding: several independently trained models of one architecture and vocabulary
translate as one.

At every target step each member m gives p_m(y_t | y_<t, x); the ensemble predicts their average,
log(Σ_m w_m p_m), the way recurrent NMT systems have combined models since Sutskever et al. (2014)
averaged five LSTMs. The weights w_m are equal unless `carousel tune --member-weights` chose others on
validation data (a weaker member deserves less say). Members that start from different random weights
make different errors, so the average is usually better than any one of them; copies of one run
(snapshots of the same training) agree too closely to gain much (checkpoint averaging covers that case).

The search code (model/search.py) sees one model: `encode` gives per-member memories and decoder
states wrapped so that reordering beams (`select`) applies to every member, and `decoder` returns
normalised log-probabilities, which `log_softmax` in the search leaves unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from carousel.model.seq2seq import Seq2Seq


@dataclass
class PerMember:
    """One decoder state (or encoder memory) per member, reordered together."""

    parts: list

    def select(self, index: Tensor) -> "PerMember":
        return PerMember([part.select(index) for part in self.parts])


class Ensemble(nn.Module):
    def __init__(self, members: list[Seq2Seq], weights: list[float] | None = None):
        super().__init__()
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        architectures = {member.config.architecture() == members[0].config.architecture() for member in members}
        if architectures != {True}:
            raise ValueError("ensemble members must share one architecture and vocabulary")
        self.members = nn.ModuleList(members)
        self.config = members[0].config
        self.decoder = _EnsembleDecoder(self.members)
        self.set_weights(weights)

    def set_weights(self, weights: list[float] | None) -> None:
        """Each member's share of the average (equal if None); positive, normalised to sum to 1."""
        weights = [1.0] * len(self.members) if weights is None else list(weights)
        if not valid_member_weights(weights, len(self.members)):
            raise ValueError(f"member weights must be {len(self.members)} positive numbers, got {weights}")
        scaled = [w / max(weights) for w in weights]  # scaled first, so that huge weights cannot sum to infinity
        self.weights = [w / sum(scaled) for w in scaled]
        self.decoder.shares = self.weights

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
        self.shares = [1.0 / len(members)] * len(members)  # each member's weight, summing to 1

    def __call__(self, prev: Tensor, state: PerMember, memory: PerMember) -> tuple[Tensor, PerMember, Tensor]:
        average, states, weights = None, [], []
        for member, share, member_state, member_memory in zip(self.members, self.shares, state.parts, memory.parts):
            logits, new_state, attention = member.decoder(prev, member_state, member_memory)
            # Probabilities mixed in place: one exp pass per member and one log at the end, which on a
            # 8,000-word vocabulary costs as much as the int8 output layer (a logsumexp over stacked
            # log-probabilities took three times as many passes).
            probs = torch.softmax(logits.float(), dim=-1).mul_(share)
            average = probs if average is None else average.add_(probs)
            states.append(new_state)
            weights.append(attention.float())
        log_average = average.clamp_min_(torch.finfo(average.dtype).tiny).log_()  # a word no member allows stays finite
        return log_average, PerMember(states), torch.stack(weights).mean(dim=0)


def valid_member_weights(weights: list[float], members: int) -> bool:
    return len(weights) == members and all(
        isinstance(w, (int, float)) and not isinstance(w, bool) and _finite(w) and w > 0 for w in weights
    )


def _finite(number: int | float) -> bool:
    try:
        return math.isfinite(number)
    except OverflowError:  # an integer too large for a float (JSON allows any number of digits)
        return False
