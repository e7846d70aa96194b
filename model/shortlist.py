"""A lexical shortlist: the few thousand target pieces a batch of sources can plausibly need.

The output layer and the softmax over all 12,000 target pieces are half of a beam search step on a
CPU. Most of those pieces can never win for a given source: the search only needs the pieces that
translate the source's own pieces, the commonest target pieces (function words, punctuation) and,
with a joint vocabulary, the source's pieces themselves (names, numbers, code). Marian and
CTranslate2 call this vocabulary selection; it keeps BLEU while cutting decoding time.

    translations[s]  the K target pieces most associated with source piece s in the training
                     corpus (Dice coefficient of their sentence co-occurrence)
    frequent         the F commonest target pieces, in every batch's vocabulary

`build_shortlist` counts a corpus (given as piece ids); `Shortlist.vocabulary` picks a batch's target
ids; `OutputVocabulary` is the output layer cut to those ids, which the search uses instead of the
full projection. The log-probabilities are normalised over the shortlist, as in those engines.

A short sentence (fewer than `whole_below` source pieces) is searched over the whole vocabulary. Its
few pieces bring too narrow a list: alone, with the shipped es→en model, "Adiós." came out "You loved."
(its pieces "▁A d ió s" bring no "Goodbye") and 322 typed Tatoeba validation sentences of under 8 pieces
lost 3.4 chrF; and a short sentence has few steps, so the whole output layer costs it little. A wider
fixed list would not do: the words of everyday speech are rare in this software-heavy vocabulary
("▁meet" is the 3,926th piece by the SentencePiece model's own score, "▁cumpleaños" the 10,039th of
12,000). A batch that holds a short sentence gets the whole layer, so callers search short and long
sentences apart (`Translator._short_apart`), and a long sentence keeps its list.

The batch's ids are the union of its sentences' own vocabularies, and `Shortlist.allowed` says which of
them each sentence's own vocabulary holds: the search gives the others no probability, so each sentence
is searched over its own pieces, and its translation is the same alone as in any batch. Normalised over
the union instead, a sentence's probabilities depended on its neighbours' words (with the shipped
general model, 112 of 150 FLORES dev sentences came out differently alone than in a batch, and "Hola."
in a batch of everyday sentences came out as "Hole.", alone as "Hello.").
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from carousel.model.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from carousel.model.quantization import Int8Linear

SHORTLIST_FILE = "shortlist.safetensors"
NEVER_OUTPUT = (PAD_ID, UNK_ID, BOS_ID)


@dataclass(frozen=True)
class Shortlist:
    frequent: Tensor  # [F] target ids every batch may use
    translations: Tensor  # [source vocabulary, K] target ids each source piece brings
    copy_source: bool  # a joint vocabulary: the source's own pieces may be output as they are
    whole_below: int = 0  # sentences of fewer source pieces (EOS included) use the whole vocabulary

    def short(self, src: Tensor) -> Tensor:
        """[N] booleans: which sentences of `src` [N, S] are short enough for the whole vocabulary."""
        return (src != PAD_ID).sum(dim=1).cpu() < self.whole_below

    def vocabulary(self, src: Tensor) -> Tensor | None:
        """Sorted target ids a batch of sources [N, S] may use: EOS, the frequent pieces, each source
        piece's translations and, with a joint vocabulary, the source pieces themselves. None (the output
        layer as it is, not cut) where the batch holds a short sentence."""
        if self.short(src).any():
            return None
        pieces = src.unique().cpu()
        parts = [torch.tensor([EOS_ID]), self.frequent, self.translations[pieces].flatten()]
        if self.copy_source:
            parts.append(pieces)
        ids = torch.cat(parts).unique()
        return ids[~torch.isin(ids, torch.tensor(NEVER_OUTPUT))]

    def allowed(self, src: Tensor, ids: Tensor) -> Tensor:
        """[N, len(ids)] booleans: which of the batch's `ids` (`vocabulary(src)`) the vocabulary of each
        sentence of `src` alone holds (padding brings nothing)."""
        src, ids = src.cpu(), ids.cpu()
        real = src != PAD_ID
        held = torch.zeros(src.size(0), int(ids.max()) + 1, dtype=torch.bool)
        held[:, EOS_ID] = True
        held[:, self.frequent[self.frequent < held.size(1)]] = True  # never-output ids among them are cut below
        translated = self.translations[src].masked_fill(~real.unsqueeze(-1), EOS_ID)  # [N, S, K]
        held.scatter_(1, translated.flatten(1), True)
        if self.copy_source:
            held.scatter_(1, src.masked_fill(~real, EOS_ID), True)
        return held[:, ids]


def save_shortlist(path: Path, shortlist: Shortlist) -> None:
    tensors = {"frequent": shortlist.frequent.to(torch.int32).contiguous(),
               "translations": shortlist.translations.to(torch.int32).contiguous()}
    save_file(tensors, str(path), metadata={"copy_source": str(shortlist.copy_source).lower()})


def load_shortlist(path: Path, whole_below: int = 0) -> Shortlist:
    with safe_open(str(path), framework="pt") as handle:  # one read: the tensors and the metadata
        copy_source = (handle.metadata() or {}).get("copy_source") == "true"
        return Shortlist(handle.get_tensor("frequent").long(), handle.get_tensor("translations").long(), copy_source,
                         whole_below)


def build_shortlist(
    sources: list[list[int]], targets: list[list[int]], source_vocab: int, target_vocab: int,
    per_source: int = 30, frequent: int = 500, copy_source: bool = False,
) -> Shortlist:
    """Count which target pieces occur in the same sentence pairs as each source piece and keep, per
    source piece, the `per_source` with the highest Dice coefficient 2·c(s,t) / (c(s) + c(t))."""
    together = np.zeros((source_vocab, target_vocab), dtype=np.float32)
    source_count = np.zeros(source_vocab, dtype=np.float64)
    target_count = np.zeros(target_vocab, dtype=np.float64)
    for source_ids, target_ids in _in_chunks(sources, targets, size=100_000):
        keys, src_seen, tgt_seen = _pair_keys(source_ids, target_ids, target_vocab)
        together += np.bincount(keys, minlength=source_vocab * target_vocab).reshape(source_vocab, target_vocab)
        source_count += np.bincount(src_seen, minlength=source_vocab)
        target_count += np.bincount(tgt_seen, minlength=target_vocab)
    dice = torch.from_numpy(2 * together / np.maximum(source_count[:, None] + target_count[None, :], 1).astype(np.float32))
    dice[:, list(NEVER_OUTPUT)] = -1.0
    translations = dice.topk(min(per_source, target_vocab), dim=1).indices
    commonest = torch.from_numpy(target_count).topk(min(frequent, target_vocab)).indices
    return Shortlist(commonest.sort().values, translations, copy_source)


def _in_chunks(sources, targets, size: int):
    for start in range(0, len(sources), size):
        yield sources[start : start + size], targets[start : start + size]


def _pair_keys(sources, targets, target_vocab: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each sentence pair's distinct (source piece, target piece) combinations as s·V + t, and the
    distinct pieces of each side (a piece counts once per sentence)."""
    keys, src_seen, tgt_seen = [], [], []
    for source_ids, target_ids in zip(sources, targets):
        s, t = np.unique(np.asarray(source_ids, dtype=np.int64)), np.unique(np.asarray(target_ids, dtype=np.int64))
        keys.append((s[:, None] * target_vocab + t[None, :]).ravel())
        src_seen.append(s)
        tgt_seen.append(t)
    empty = np.zeros(0, dtype=np.int64)
    return (np.concatenate(keys) if keys else empty, np.concatenate(src_seen) if src_seen else empty,
            np.concatenate(tgt_seen) if tgt_seen else empty)


@dataclass
class OutputVocabulary:
    """The output layer cut to a batch's shortlist: logits for `ids` only. An int8 projection stays
    int8 (its rows repacked, or its columns selected, once per batch): float rows would cost more than
    the whole int8 layer.

    With `allow_per_sentence`, the logits of each sentence's rows (its K beams, consecutive) get -inf at
    the columns outside that sentence's own vocabulary."""

    ids: Tensor  # [V'] target ids, sorted
    position: Tensor  # [V] index of each target id in `ids`, -1 where absent
    weight: Tensor | None = None  # [V', D] float rows
    bias: Tensor | None = None  # [V']
    packed: object | None = None  # torch's dynamic int8 rows, packed for torch.ops.quantized.linear_dynamic
    int8: Int8Linear | None = None  # int8-row rows (model/quantization.py)
    sentence_mask: Tensor | None = None  # [sentences, V'] 0 where a sentence may use a column, -inf where not

    @property
    def eos(self) -> int:
        return int(self.position[EOS_ID])

    def allow_per_sentence(self, allowed: Tensor) -> None:
        """allowed [sentences, V'] booleans: the columns each sentence's rows may use from now on."""
        self.sentence_mask = torch.zeros(allowed.shape, device=allowed.device).masked_fill_(~allowed, -math.inf)

    def keep_sentences(self, still: Tensor) -> None:
        """Follow the search as it drops finished sentences: `still` indexes those it keeps."""
        self.sentence_mask = self.sentence_mask.index_select(0, still)

    def logits(self, attentional: Tensor) -> Tensor:
        if self.int8 is not None:
            logits = self.int8(attentional)
        elif self.packed is not None:  # as torch.ao's dynamic Linear calls it
            logits = torch.ops.quantized.linear_dynamic(attentional, self.packed, reduce_range=True)
        else:
            logits = nn.functional.linear(attentional, self.weight.to(attentional.dtype),
                                          None if self.bias is None else self.bias.to(attentional.dtype))
        if self.sentence_mask is not None:  # logits [sentences × K, T, V']: each sentence's rows in turn
            mask = self.sentence_mask.to(logits.dtype)
            logits = (logits.view(mask.size(0), -1, *logits.shape[1:]) + mask[:, None, None]).view(logits.shape)
        return logits


# A dynamic int8 layer's weight and bias, unpacked once per layer: `weight()` and `bias()` unpack the
# packed parameters at every call, which cost 9% of a service batch worker's time (py-spy, batches of
# ~10). Quantized layers are for inference only, so their weights never change under the cache.
_UNPACKED: "weakref.WeakKeyDictionary[nn.Module, tuple[Tensor, Tensor | None]]" = weakref.WeakKeyDictionary()


def _weight_and_bias(projection: nn.Module) -> tuple[Tensor, Tensor | None]:
    if not callable(projection.weight):  # a float nn.Linear: its parameters as they are now
        return projection.weight, projection.bias
    if projection not in _UNPACKED:
        _UNPACKED[projection] = (projection.weight(), projection.bias())
    return _UNPACKED[projection]


def output_vocabulary(projection: nn.Module, ids: Tensor, device: torch.device) -> OutputVocabulary:
    """Cut `projection` (an nn.Linear, torch's dynamic int8 twin, or an `Int8Linear`) to the rows of `ids`."""
    ids = ids.to(device)
    position = torch.full((projection.out_features,), -1, dtype=torch.long, device=device)
    position[ids] = torch.arange(len(ids), device=device)
    if isinstance(projection, Int8Linear):
        return OutputVocabulary(ids, position, int8=projection.rows(ids))
    weight, bias = _weight_and_bias(projection)
    rows_bias = None if bias is None else bias.detach().index_select(0, ids)
    if weight.is_quantized:
        packed = torch.ops.quantized.linear_prepack(weight.index_select(0, ids), rows_bias)
        return OutputVocabulary(ids, position, packed=packed)
    return OutputVocabulary(ids, position, weight=weight.detach().index_select(0, ids), bias=rows_bias)
