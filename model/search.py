"""Greedy and batched beam search.

`beam_search` keeps every sentence of a batch and all of its beams in one tensor of N = alive × K rows,
takes the top 2K over beam × vocabulary per sentence (`best_candidates`), moves hypotheses that produce
EOS to a finished list, and removes sentences from the tensors as soon as they are done, so the work
shrinks as the batch finishes. Scores are GNMT length-normalised: log p(y|x) / ((5 + |y|) / 6) ** alpha (Wu et al. 2016).
A model directory may carry its own alpha, chosen on validation data (`carousel tune`); the
`Translator` fills it in wherever a config leaves `length_penalty` unset.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from carousel.model.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from carousel.model.seq2seq import Seq2Seq
from carousel.model.shortlist import output_vocabulary


DEFAULT_BEAM_SIZE = 5
MAX_BEAM_SIZE = 64  # bounds what cards may record; the service has its own, lower, max_beam
DEFAULT_LENGTH_PENALTY = 1.0
MAX_LENGTH_PENALTY = 10.0  # far past any useful alpha; bounds what flags, cards and requests may ask for


MAX_CHANNEL_WEIGHT = 10.0  # the reverse model's score would drown the forward model's long before this


MAX_NGRAM_BAN = 10  # subwords; longer repeats are phrases a source may well have
MAX_PATIENCE = 8.0  # finished hypotheses per beam slot; past this the search only runs to its length cap


def is_valid_ngram_ban(value: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (value == 0 or 2 <= value <= MAX_NGRAM_BAN)


def is_valid_length_penalty(value: float) -> bool:
    return 0 <= value <= MAX_LENGTH_PENALTY


def is_valid_channel_weight(value: float) -> bool:
    return 0 <= value <= MAX_CHANNEL_WEIGHT


def is_valid_patience(value: float) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 1 <= value <= MAX_PATIENCE


def is_valid_beam_size(value: int) -> bool:
    return not isinstance(value, bool) and isinstance(value, int) and 1 <= value <= MAX_BEAM_SIZE


def search_settings_problem(
    beam_size: int | None, nbest: int = 1, length_penalty: float | None = None, channel_weight: float | None = None,
    max_length_ratio: float = 1.5, no_repeat_ngram: int | None = None, patience: float | None = None,
) -> tuple[str, str] | None:
    """The first out-of-range decoding setting as (field, what is wrong), or None: the one check that
    `SearchConfig`, the command-line flags and the service's request validation share."""
    if beam_size is not None and not 1 <= beam_size <= MAX_BEAM_SIZE:
        return "beam_size", f"must be between 1 and {MAX_BEAM_SIZE}, got {beam_size}"
    if nbest < 1 or (beam_size is not None and nbest > beam_size):
        return "nbest", f"must be between 1 and the beam size {beam_size}, got {nbest}"
    if length_penalty is not None and not is_valid_length_penalty(length_penalty):
        return "length_penalty", f"must be between 0 and {MAX_LENGTH_PENALTY:g}, got {length_penalty}"
    if channel_weight is not None and not is_valid_channel_weight(channel_weight):
        return "channel_weight", f"must be between 0 and {MAX_CHANNEL_WEIGHT:g}, got {channel_weight}"
    if not max_length_ratio > 0:
        return "max_length_ratio", f"must be positive, got {max_length_ratio}"
    if no_repeat_ngram is not None and not is_valid_ngram_ban(no_repeat_ngram):
        return "no_repeat_ngram", f"must be 0 (off) or from 2 to {MAX_NGRAM_BAN}, got {no_repeat_ngram}"
    if patience is not None and not is_valid_patience(patience):
        return "patience", f"must be between 1 and {MAX_PATIENCE:g}, got {patience}"
    return None


@dataclass(frozen=True)
class SearchConfig:
    beam_size: int | None = None  # None: the model's own (card.json decoding.beam), at least nbest; else 5
    length_penalty: float | None = None  # GNMT alpha; 0 ranks by raw log-probability; None: the model's own
    max_length_ratio: float = 1.5  # output length cap: ratio × source length + offset ...
    max_length_offset: int = 10
    max_length_cap: int = 400  # ... and never more than this, whatever the source
    # Tokens before EOS is allowed. At least one: an empty output never translates a source with words in it,
    # yet for some single words ("analfabeto", "asfalto") the model's likeliest output was EOS alone (13 of
    # 1,000 FLORES dev words es→en came out empty). The translator never searches an empty source.
    min_length: int = 1
    nbest: int = 1
    # Forbid a hypothesis to repeat any n-gram of this many subwords (0 = off), unless its source repeats
    # one of its own: a stutter ("of the University of the University of ...") is a search failure,
    # a repetition the source has is a translation.
    no_repeat_ngram: int | None = None  # None: the model's own (card.json decoding), else 0
    return_alignment: bool = False
    # Not used by the search itself: the Translator computes each best translation's confidence
    # (model/confidence.py), which needs the reverse-direction model its calibration names.
    return_confidence: bool = False
    # Not used by the search itself: the Translator reranks the beam with a reverse-direction model
    # (model/reranking.py) at this weight; 0 is off, None the model's own.
    channel_weight: float | None = None
    # Not used by the search itself: the Translator puts back numbers, URLs, placeholders and tags of
    # the source that the output lost, changed or repeated (model/spans.py).
    repair_spans: bool = True
    # Not used by the search itself: the Translator hands it the batch's lexical shortlist
    # (model/shortlist.py) where the model directory has one.
    shortlist: bool = True
    # A sentence's search ends once it holds patience × K finished hypotheses (Kasai et al. 2022, "A Call
    # for Clarity in Beam Search"): 1 is the usual rule; more lets longer hypotheses finish too, where the
    # usual rule stops before the length penalty can prefer them. None: the model's own, else 1.
    patience: float | None = None
    # Not used by the search itself: the Translator also translates a sentence that lacks closing
    # punctuation closed with a full stop, and keeps the likelier reading (model/closing.py).
    # None: the model's own, else off.
    close_open: bool | None = None

    def __post_init__(self):
        problem = search_settings_problem(
            self.beam_size, self.nbest, self.length_penalty, self.channel_weight, self.max_length_ratio,
            self.no_repeat_ngram, self.patience,
        )
        if problem is not None:
            raise ValueError(f"{problem[0]} {problem[1]}")

    @property
    def beam(self) -> int:
        return DEFAULT_BEAM_SIZE if self.beam_size is None else self.beam_size

    @property
    def ngram_ban(self) -> int:
        return self.no_repeat_ngram or 0

    @property
    def patience_factor(self) -> float:
        return 1.0 if self.patience is None else self.patience

    @property
    def alpha(self) -> float:
        return DEFAULT_LENGTH_PENALTY if self.length_penalty is None else self.length_penalty


@dataclass
class Hypothesis:
    tokens: list[int]  # target ids, without BOS and EOS
    score: float  # length-normalised log-probability
    log_prob: float  # total log-probability, EOS included
    alignment: Tensor | None = None  # [len(tokens) + 1, source length] attention weights (last row: EOS)


def length_normalised(log_prob: float, length: int, alpha: float) -> float:
    return log_prob / (((5.0 + length) / 6.0) ** alpha) if alpha else log_prob


def max_output_lengths(src_lengths: Tensor, config: SearchConfig) -> Tensor:
    lengths = (src_lengths.float() * config.max_length_ratio).ceil().long() + config.max_length_offset
    return lengths.clamp(min=1, max=config.max_length_cap)


@torch.inference_mode()
def greedy_search(model: Seq2Seq, src: Tensor, src_lengths: Tensor, config: SearchConfig) -> list[Hypothesis]:
    """Pick the most probable token at every step; the reference that beam search with K=1 must match."""
    _, memory, state = model.encode(src, src_lengths)
    batch = src.size(0)
    max_lengths = max_output_lengths(src_lengths, config)
    prev = torch.full((batch,), BOS_ID, dtype=torch.long, device=src.device)
    tokens: list[list[int]] = [[] for _ in range(batch)]
    log_probs = [0.0] * batch
    done = [False] * batch
    for t in range(int(max_lengths.max())):
        logits, state, _ = model.decoder(prev.unsqueeze(1), state, memory)
        logp = _restrict(torch.log_softmax(logits[:, 0].float(), dim=-1), t, max_lengths, config)
        best_logp, prev = logp.max(dim=-1)
        for i, (token, lp) in enumerate(zip(prev.tolist(), best_logp.tolist())):
            if done[i]:
                continue
            log_probs[i] += lp
            if token == EOS_ID:
                done[i] = True
            else:
                tokens[i].append(token)
        if all(done):
            break
    return [
        Hypothesis(toks, length_normalised(lp, len(toks) + 1, config.alpha), lp)
        for toks, lp in zip(tokens, log_probs)
    ]


def _restrict(logp: Tensor, t: int, max_lengths: Tensor, config: SearchConfig, eos: int = EOS_ID,
              specials: tuple[int, ...] = (PAD_ID, UNK_ID, BOS_ID)) -> Tensor:
    """Forbid special tokens, EOS before min_length, and anything but EOS at the length cap (`eos` and
    `specials` are columns of `logp`: a shortlist has its own columns and no specials)."""
    if specials:
        logp[:, list(specials)] = -math.inf
    if t < config.min_length:
        logp[:, eos] = -math.inf
    at_cap = (t + 1) >= max_lengths
    if at_cap.any():
        eos_logp = logp[at_cap, eos].clone()
        logp[at_cap] = -math.inf
        logp[at_cap, eos] = torch.where(torch.isfinite(eos_logp), eos_logp, torch.zeros_like(eos_logp))
    return logp


@torch.inference_mode()
def beam_search(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, config: SearchConfig, shortlist: Tensor | None = None,
    allowed: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Return, per source sentence, its `nbest` hypotheses, best first. With a `shortlist` (target ids,
    model/shortlist.py), the output layer and the softmax cover those ids only; `allowed` ([N,
    len(shortlist)] booleans) narrows each sentence to its own part of them."""
    batch, k, device = src.size(0), max(config.beam, config.nbest), src.device
    _, memory, state = model.encode(src, src_lengths)
    output = None if shortlist is None else output_vocabulary(model.decoder.output_projection, shortlist, device)
    vocab = model.config.tgt_vocab_size if output is None else len(output.ids)
    eos, specials = (EOS_ID, (PAD_ID, UNK_ID, BOS_ID)) if output is None else (output.eos, ())
    if output is not None and allowed is not None:  # each sentence's beams to its own columns
        output.allow_per_sentence(allowed.to(device))

    # Every sentence gets K rows of decoder state; only row 0 starts alive so the first step yields K
    # distinct tokens. The encoder memory keeps one row per sentence, shared by its K beams.
    state = state.select(torch.arange(batch, device=device).repeat_interleave(k))
    scores = torch.full((batch, k), -math.inf, device=device)
    scores[:, 0] = 0.0
    scores = scores.view(-1)
    alive = torch.arange(batch, device=device)  # original index of each sentence still searching
    max_lengths = max_output_lengths(src_lengths, config)
    tokens = torch.empty(batch * k, 0, dtype=torch.long, device=device)
    alignment = torch.empty(batch * k, 0, src.size(1), device=device) if config.return_alignment else None
    finished: list[list[Hypothesis]] = [[] for _ in range(batch)]
    enough = max(k, round(config.patience_factor * k))  # finished hypotheses that end a sentence's search
    may_repeat = _repeats_an_ngram(src, src_lengths, config.ngram_ban) if config.ngram_ban else None

    for t in range(int(max_lengths.max())):
        prev = tokens[:, -1] if t else torch.full((tokens.size(0),), BOS_ID, dtype=torch.long, device=device)
        logits, state, weights = (model.decoder(prev.unsqueeze(1), state, memory) if output is None
                                  else model.decoder(prev.unsqueeze(1), state, memory, vocabulary=output))
        logp = torch.log_softmax(logits[:, 0].float(), dim=-1)
        logp = _restrict(logp, t, max_lengths[alive].repeat_interleave(k), config, eos, specials)
        if config.ngram_ban:
            _ban_repeated_ngrams(logp, tokens, config.ngram_ban, may_repeat[alive].repeat_interleave(k),
                                 None if output is None else output.position)
        step_alignment = None
        if alignment is not None:
            step_alignment = torch.cat([alignment, weights.float()], dim=1)

        candidates = (scores.unsqueeze(1) + logp).view(len(alive), k, vocab)
        top_scores, top_index = best_candidates(candidates, 2 * k)
        top_beam, top_token = top_index // vocab, top_index % vocab
        if output is not None:  # shortlist columns back to target ids
            top_token = output.ids[top_token]
        is_eos = top_token == EOS_ID

        _collect_finished(finished, alive, t, k, enough, top_scores, top_beam, is_eos, tokens, step_alignment, config)

        # Continue with the K best candidates that did not end (there are always K among 2K).
        keep_rank = torch.sort(is_eos.to(torch.uint8), dim=1, stable=True).indices[:, :k]
        scores = top_scores.gather(1, keep_rank)
        next_tokens = top_token.gather(1, keep_rank)
        origin = top_beam.gather(1, keep_rank) + (torch.arange(len(alive), device=device) * k).unsqueeze(1)

        done = torch.tensor([len(finished[s]) >= enough for s in alive.tolist()], device=device) | ((t + 1) >= max_lengths[alive])
        if bool(done.all()):
            break
        still = (~done).nonzero().squeeze(1)
        origin, scores, next_tokens = origin[still].view(-1), scores[still].view(-1), next_tokens[still].view(-1)
        alive = alive[still]
        if output is not None and output.sentence_mask is not None:
            output.keep_sentences(still)
        tokens = torch.cat([tokens.index_select(0, origin), next_tokens.unsqueeze(1)], dim=1)
        if step_alignment is not None:
            alignment = step_alignment.index_select(0, origin)
        state = state.select(origin)
        if len(still) < done.numel():
            memory = memory.select(still)

    src_lengths_list = src_lengths.tolist()
    results = []
    for sentence, hyps in enumerate(finished):
        hyps.sort(key=lambda h: h.score, reverse=True)
        best = hyps[: config.nbest]
        for hyp in best:
            if hyp.alignment is not None:
                hyp.alignment = hyp.alignment[:, : src_lengths_list[sentence]]
        results.append(best)
    return results


def best_candidates(candidates: Tensor, count: int) -> tuple[Tensor, Tensor]:
    """candidates [N, K, V] (a sentence's beams × vocabulary) -> the `count` best per sentence and their
    indices into K × V, as `candidates.view(N, -1).topk(count)` gives them, three times faster on a CPU.

    A candidate among the `count` best has a token whose best score over the K beams is among the
    `count` best such scores (otherwise `count` other candidates beat it), so the top-k runs on the
    `count` most promising tokens' K × count candidates instead of all K × V.
    """
    n, k, vocab = candidates.shape
    if count >= vocab:
        return candidates.view(n, -1).topk(count, dim=1)
    tokens = candidates.amax(dim=1).topk(count, dim=1).indices  # [N, count]
    members = candidates.gather(2, tokens.unsqueeze(1).expand(n, k, count)).view(n, k * count)
    scores, where = members.topk(count, dim=1)
    return scores, (where // count) * vocab + tokens.gather(1, where % count)


def _collect_finished(finished, alive, t, k, enough, top_scores, top_beam, is_eos, tokens, step_alignment,
                      config) -> None:
    """Move candidates that end with EOS among the top K into their sentence's finished list (until it
    holds `enough`)."""
    eos_rank = (is_eos[:, :k] & torch.isfinite(top_scores[:, :k])).nonzero().tolist()
    for a, rank in eos_rank:
        sentence = int(alive[a])
        if len(finished[sentence]) >= enough:
            continue
        row = a * k + int(top_beam[a, rank])
        log_prob = float(top_scores[a, rank])
        finished[sentence].append(
            Hypothesis(
                tokens=tokens[row].tolist(),
                score=length_normalised(log_prob, t + 1, config.alpha),
                log_prob=log_prob,
                alignment=None if step_alignment is None else step_alignment[row].clone(),
            )
        )


def _repeats_an_ngram(src: Tensor, src_lengths: Tensor, n: int) -> Tensor:
    """Per sentence: does the source (EOS and padding aside) hold some n-gram twice?"""
    repeats = []
    for row, length in zip(src.tolist(), src_lengths.tolist()):
        words = row[: max(length - 1, 0)]
        grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
        repeats.append(len(grams) != len(set(grams)))
    return torch.tensor(repeats, dtype=torch.bool, device=src.device)


def _ban_repeated_ngrams(logp: Tensor, tokens: Tensor, n: int, may_repeat: Tensor, position: Tensor | None = None) -> None:
    """Set -inf on every token that would complete an n-gram already in the row's history (rows whose
    source repeats an n-gram are left alone). Vectorised: the rows' last n-1 tokens are compared with
    every earlier window at once, so the cost per step is one comparison over the history."""
    steps = tokens.size(1)
    if steps < n or n < 1:
        return
    windows = tokens.unfold(1, n, 1)  # [rows, steps - n + 1, n]
    prefix = tokens[:, steps - n + 1 :].unsqueeze(1)  # [rows, 1, n - 1]
    same = (windows[:, :, : n - 1] == prefix).all(dim=2) & ~may_repeat.unsqueeze(1)
    rows, at = same.nonzero(as_tuple=True)
    if rows.numel():
        banned = windows[rows, at, n - 1]
        logp[rows, banned if position is None else position[banned]] = -math.inf  # position: a shortlist's columns
