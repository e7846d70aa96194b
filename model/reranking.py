"""Noisy-channel reranking: rescore the beam's n-best list with a model of the reverse direction.

The forward model's p(y | x) rewards fluent output even where it drops or invents content; a model of
the reverse direction, p(x | y), asks how well a hypothesis explains the source it came from (the
"channel" of Yee et al. 2019, "Simple and Effective Noisy Channel Modeling for Neural Machine
Translation"). Each of the K hypotheses of a beam-K search gets

    score(y) = forward score (length-normalised log p(y | x))  +  λ · log p(x | y) / (|x| + 1)

and the best K by that score are kept in order. λ (the channel weight) is chosen on validation data by
`carousel tune --channel-model DIR`; 0 turns reranking off. The reverse model scores by forced
decoding: one teacher-forced pass over the source given each hypothesis, no search.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

import torch
from torch import Tensor

from carousel.model.padding import cut_into_batches, model_device, pad
from carousel.model.config import BOS_ID, PAD_ID

Scored = TypeVar("Scored")  # anything with a `score` (model.translator.Translation)


def forced_log_probs(model, sources: list[list[int]], targets: list[list[int]], batch_tokens: int) -> list[float]:
    """Average log p(target token | source, previous target tokens) of each pair, EOS included.

    `sources` and `targets` are id sequences ending in EOS; `model` is a Seq2Seq or an Ensemble."""
    return forced_log_probs_and_states(model, sources, targets, batch_tokens, keep_states=False)[0]


@torch.inference_mode()
def forced_log_probs_and_states(model, sources: list[list[int]], targets: list[list[int]], batch_tokens: int,
                                keep_states: bool = True) -> tuple[list[float], list | None]:
    """`forced_log_probs`, and the mean encoder state of each source from the same pass (as
    `mean_encoder_states` computes it; for an ensemble, by that function's own pass)."""
    lengths = [max(len(s), len(t)) for s, t in zip(sources, targets)]
    order = sorted(range(len(sources)), key=lengths.__getitem__)
    scores = [0.0] * len(sources)
    states: list | None = [None] * len(sources) if keep_states else None
    device = model_device(model)
    for batch in cut_into_batches(order, lengths, batch_tokens):
        src = pad([sources[i] for i in batch]).to(device)
        tgt_out = pad([targets[i] for i in batch]).to(device)
        tgt_in = pad([[BOS_ID] + targets[i][:-1] for i in batch]).to(device)
        encoded, memory, state = model.encode(src, torch.tensor([len(sources[i]) for i in batch], device=device))
        logits, _, _ = model.decoder(tgt_in, state, memory)
        for index, value in zip(batch, _mean_token_log_prob(logits, tgt_out).tolist()):
            scores[index] = value
        if keep_states and encoded is not None:  # an ensemble returns no single encoder output
            for index, vector in zip(batch, _mean_states(encoded)):
                states[index] = vector
    if keep_states and any(vector is None for vector in states):
        states = mean_encoder_states(model, sources, batch_tokens)
    return scores, states


@torch.inference_mode()
def mean_encoder_states(model, sequences: list[list[int]], batch_tokens: int) -> list:
    """The mean of the encoder's top-layer states over each sequence's tokens (numpy vectors [2H]).

    What kind of sentence the model was given, for the confidence (model/confidence.Representation);
    an ensemble's first member stands for it."""
    encoder = model.members[0].encoder if hasattr(model, "members") else model.encoder
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    states: list = [None] * len(sequences)
    device = model_device(model)
    for batch in cut_into_batches(order, [len(s) for s in sequences], batch_tokens):
        encoded = encoder(pad([sequences[i] for i in batch]).to(device),
                          torch.tensor([len(sequences[i]) for i in batch], device=device))
        for index, vector in zip(batch, _mean_states(encoded)):
            states[index] = vector
    return states


def _mean_states(encoded) -> list:
    mask = encoded.mask.unsqueeze(-1).float()
    return list(((encoded.states.float() * mask).sum(dim=1) / mask.sum(dim=1)).cpu().numpy())


def _mean_token_log_prob(logits: Tensor, tgt_out: Tensor) -> Tensor:
    log_probs = torch.log_softmax(logits.float(), dim=-1).gather(2, tgt_out.unsqueeze(2)).squeeze(2)
    real = tgt_out != PAD_ID
    return (log_probs * real).sum(dim=1) / real.sum(dim=1)


def rerank(nbest: list[Scored], channel: list[float], weight: float, keep: int) -> list[Scored]:
    """The `keep` best of one sentence's hypotheses by forward score + weight × channel score."""
    combined = [replace(hyp, score=hyp.score + weight * score) for hyp, score in zip(nbest, channel)]
    return sorted(combined, key=lambda hyp: hyp.score, reverse=True)[:keep]
