"""The translator interface: text in, text out. The CLI, the evaluation and the service use only this.

It owns the steps around the network: cutting texts into sentences, source normalisation,
SentencePiece encoding, sorting and batching sentences by token count (so a batch carries little
padding), beam search, reranking with a reverse-direction model where the model directory names one
(model/reranking.py), decoding, and joining sentence translations back into texts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import sentencepiece as spm
import torch

from carousel.model.padding import batches_by_tokens, cut_into_batches, pad
from carousel.model.normalize import Normalizer
from carousel.model.card import (
    ModelLoadError, channel_settings, tuned_beam_size, tuned_close_open, tuned_length_penalty, tuned_ngram_ban, tuned_patience,
)
from carousel.model.checkpoint import LoadedModel
from carousel.model.closing import closed, has_stop_of_its_own, is_open, without_added_stop
from carousel.model.confidence import (
    Calibration,
    sentence_features,
    text_confidence,
    untranslated_share,
)
from carousel.model.config import BOS_ID, EOS_ID
from carousel.model.ensemble import Ensemble
from carousel.model.glossary import MAX_TERMS as MAX_GLOSSARY_TERMS, Glossary, GlossaryError, read_glossary_tsv
from carousel.model.reranking import forced_log_probs, forced_log_probs_and_states, mean_encoder_states, rerank
from carousel.model.search import (
    Hypothesis,
    SearchConfig,
    beam_search,
)
from carousel.model.sentences import SplitText, has_words, join_nbest, split_sentences
from carousel.model.spans import protected_spans, repair_spans
from carousel.model.tags import TaggedSentence, put_back_tags, take_tags
from carousel.model.seq2seq import Seq2Seq
from carousel.model.shortlist import Shortlist

__all__ = [  # the interface the service, the commands and the evaluation use
    "Translator", "TranslatorInfo", "Translation", "SearchConfig", "ModelLoadError",
    "SplitText", "split_sentences", "join_nbest", "has_words", "is_open", "text_confidence",
    "Glossary", "GlossaryError", "read_glossary_tsv", "MAX_GLOSSARY_TERMS",
]


@dataclass
class Translation:
    text: str
    score: float  # length-normalised log-probability, plus the weighted channel score where reranked
    source_tokens: list[str]
    target_tokens: list[str]
    alignment: list[list[float]] | None = None  # [target tokens + EOS][source tokens + EOS]
    confidence: float | None = None  # predicted sentence chrF / 100 (model/confidence.py), best translation only
    signals: dict[str, float] | None = None  # what the confidence is computed from
    log_prob: float | None = None  # the search's total log-probability of the output, EOS included
    # mean encoder states (source, output) while a confidence is being fitted (no calibration yet)
    states: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class TranslatorInfo:
    """What a server asks of a model without translating with it: its languages and card, whether its
    translations come with a confidence, its decoding defaults and its source tokens. A server whose
    batches are translated in other processes keeps this instead of the weights (service/registry.py)."""

    src_lang: str
    tgt_lang: str
    card: dict
    has_confidence: bool
    max_source_tokens: int
    beam_size: int  # the model's own decoding settings, as `Translator` reads them from the card
    length_penalty: float
    channel_weight: float
    no_repeat_ngram: int
    patience: float
    close_open: bool
    source_sp: spm.SentencePieceProcessor = field(repr=False)
    normalizer: Normalizer = field(repr=False)

    def with_model_defaults(self, search: SearchConfig) -> SearchConfig:
        return _with_defaults(search, self)

    def encode_source(self, sentence: str) -> list[int]:
        return _encode_source(self.source_sp, self.normalizer, self.max_source_tokens, sentence)


# The settings a model's card supplies wherever a SearchConfig leaves them unset (None); the beam is
# handled apart, since it is widened to the nbest asked for.
_MODEL_SETTINGS = ("length_penalty", "channel_weight", "no_repeat_ngram", "patience", "close_open")


def _with_defaults(search: SearchConfig, model: "Translator | TranslatorInfo") -> SearchConfig:
    """`search` with `model`'s own settings wherever it leaves them unset (the beam widened to its nbest)."""
    if search.beam_size is None:
        search = replace(search, beam_size=max(model.beam_size, search.nbest))
    unset = {name: getattr(model, name) for name in _MODEL_SETTINGS if getattr(search, name) is None}
    return replace(search, **unset) if unset else search


def _encode_source(source_sp: spm.SentencePieceProcessor, normalizer: Normalizer, max_tokens: int, sentence: str) -> list[int]:
    """The source's piece ids as the model reads them: normalised, cut to `max_tokens` - 1, then EOS."""
    return source_sp.encode(normalizer(sentence))[: max_tokens - 1] + [EOS_ID]


class Translator:
    def __init__(
        self,
        model: Seq2Seq | Ensemble,
        source_spm: Path,
        target_spm: Path,
        normalizer: Normalizer,
        src_lang: str = "src",
        tgt_lang: str = "tgt",
        max_source_tokens: int = 250,
        card: dict | None = None,
        channel: "Translator | None" = None,
        device: torch.device | None = None,
        shortlist: Shortlist | None = None,
        shortlist_per_sentence: bool = False,
    ):
        self.device = device or torch.device("cpu")
        self.model = model.eval()
        self.source_sp = spm.SentencePieceProcessor(model_file=str(source_spm))
        self.target_sp = spm.SentencePieceProcessor(model_file=str(target_spm))
        self.normalizer = normalizer
        self.src_lang, self.tgt_lang = src_lang, tgt_lang
        self.max_source_tokens = max_source_tokens
        # The target pieces each batch's search may use (model/shortlist.py); single models only.
        self.shortlist = shortlist if isinstance(model, Seq2Seq) else None
        # Each sentence searched over its own part of the batch's shortlist, so that its translation does
        # not depend on its batch (with a precision that keeps sentences apart: model/precision.py).
        self.shortlist_per_sentence = shortlist_per_sentence
        self.card = card or {}  # the model directory's card.json
        self.beam_size = tuned_beam_size(self.card)
        self.length_penalty = tuned_length_penalty(self.card)
        self.no_repeat_ngram = tuned_ngram_ban(self.card)
        self.patience = tuned_patience(self.card)
        self.close_open = tuned_close_open(self.card)
        # The reverse-direction model that reranks the beam, and its weight (0 without one).
        self.channel = channel
        settings = channel_settings(self.card)
        self.channel_weight = settings[1] if channel is not None and settings else 0.0
        # The confidence: a reverse-direction model for the round trip, and the fitted calibration.
        self.reverse: Translator | None = None
        self.calibration: Calibration | None = None

    @classmethod
    def from_loaded(cls, loaded: LoadedModel, **kwargs) -> "Translator":
        return cls(
            loaded.model, loaded.source_spm, loaded.target_spm, loaded.normalizer,
            loaded.src_lang, loaded.tgt_lang, card=loaded.card, **kwargs,
        )

    # -- what tuning changes -----------------------------------------------------------------------

    def use_channel(self, channel: "Translator | None") -> None:
        """Rerank with `channel` (a reverse-direction translator) from now on; None switches it off."""
        if channel is not None:
            check_channel_direction(self.src_lang, self.tgt_lang, channel)
        self.channel = channel

    def use_confidence(self, reverse: "Translator | None", calibration: Calibration | None = None) -> None:
        """Compute confidences with `reverse` (a reverse-direction translator) and `calibration`.

        Without a calibration, `return_confidence` still fills each best translation's `signals`
        (what `carousel calibrate` fits on), with `confidence` None."""
        if reverse is not None:
            check_channel_direction(self.src_lang, self.tgt_lang, reverse)
        self.reverse, self.calibration = reverse, calibration

    @property
    def has_confidence(self) -> bool:
        return self.reverse is not None and self.calibration is not None

    @property
    def is_ensemble(self) -> bool:
        return isinstance(self.model, Ensemble)

    @property
    def member_weights(self) -> list[float] | None:
        return list(self.model.weights) if self.is_ensemble else None

    def set_member_weights(self, weights: list[float]) -> None:
        """Each ensemble member's share of the mixed probabilities (normalised to sum to 1)."""
        if not self.is_ensemble:
            raise ValueError("member weights apply to ensembles; this model has one member")
        self.model.set_weights(weights)

    def with_model_defaults(self, search: SearchConfig) -> SearchConfig:
        """`search` with the model's own beam (widened to its nbest), length penalty, channel weight, n-gram
        ban, patience and reading of unpunctuated sentences wherever it leaves them unset."""
        return _with_defaults(search, self)

    def encode_source(self, sentence: str) -> list[int]:
        return _encode_source(self.source_sp, self.normalizer, self.max_source_tokens, sentence)

    def info(self) -> "TranslatorInfo":
        """What a server asks of this model without translating with it (the weights are not kept)."""
        return TranslatorInfo(
            src_lang=self.src_lang, tgt_lang=self.tgt_lang, card=self.card, has_confidence=self.has_confidence,
            max_source_tokens=self.max_source_tokens, beam_size=self.beam_size, length_penalty=self.length_penalty,
            channel_weight=self.channel_weight, no_repeat_ngram=self.no_repeat_ngram, patience=self.patience,
            close_open=self.close_open, source_sp=self.source_sp, normalizer=self.normalizer,
        )

    def encode_target(self, sentence: str) -> list[int]:
        return self.target_sp.encode(sentence)[: self.max_source_tokens - 1] + [EOS_ID]

    def channel_scores(self, sources: list[str], translations: list[str], batch_tokens: int = 12000) -> list[float]:
        """Average log p(source token | translation) per pair under the channel model (forced decoding).

        The source is scored as this model sees it, normalised, so spellings that normalise alike
        (model/normalize.py) are reranked alike."""
        if self.channel is None:
            raise ValueError("this model has no channel model (card.json decoding.channel)")
        return forced_log_probs(
            self.channel.model,
            [self.channel.encode_source(text) for text in translations],
            [self.channel.encode_target(self.normalizer(text)) for text in sources],
            batch_tokens,
        )

    def translate(
        self, sentences: list[str], search: SearchConfig = SearchConfig(), batch_tokens: int = 12000,
        glossaries: list[Glossary | None] | None = None,
    ) -> list[list[Translation]]:
        """n-best translations for each sentence, in input order. Empty input gives an empty string.

        `batch_tokens` bounds source tokens × beam size per batch, i.e. the rows the search carries.
        A sentence's inline tags (`<b>`, `<a href=..>`, `<br>`) are carried across by the attention
        (model/tags.py): every other step sees its plain text.
        `glossaries`, one (or None) per sentence, are enforced on each sentence's translations after the
        search (model/glossary.py), so sentences with different glossaries share a batch; the attention of
        a translation that lacks a term comes from one forced decoding of it (no alignment is carried
        through the search for them).
        With `search.close_open` (the model's own by default), a sentence that ends without closing
        punctuation is also read closed with a full stop, and the likelier reading kept (model/closing.py).
        """
        tagged = [take_tags(sentence) for sentence in sentences]
        if any(t.elements for t in tagged):
            return self._translate_tagged(sentences, tagged, search, batch_tokens, glossaries)
        search = self.with_model_defaults(search)
        results = self._translate_plain(sentences, search, batch_tokens, glossaries)
        if search.close_open:
            self._read_open_sentences_closed(sentences, results, search, batch_tokens, glossaries)
        return results

    def _read_open_sentences_closed(self, sentences: list[str], results: list[list[Translation]], search: SearchConfig,
                                    batch_tokens: int, glossaries: list[Glossary | None] | None) -> None:
        """Each sentence without closing punctuation translated again with a full stop; where the model
        finds that reading's output likelier, it replaces the one as typed, its added stop taken off
        (model/closing.py)."""
        open_ = [index for index, sentence in enumerate(sentences) if is_open(sentence)]
        if not open_:
            return
        closed_glossaries = [glossaries[i] for i in open_] if glossaries is not None else None
        readings = self._translate_plain([closed(sentences[i]) for i in open_], search, batch_tokens, closed_glossaries)
        for index, nbest in zip(open_, readings):
            if nbest and has_stop_of_its_own(nbest[0]) and _per_token(nbest[0]) >= _per_token(results[index][0]):
                results[index] = [without_added_stop(t) for t in nbest]

    def _translate_plain(self, sentences: list[str], search: SearchConfig, batch_tokens: int,
                         glossaries: list[Glossary | None] | None) -> list[list[Translation]]:
        """`translate` for sentences without inline tags, each read as it stands, `search` complete."""
        if search.channel_weight and self.channel is None:
            raise ValueError("channel_weight needs a channel model: choose one with `carousel tune --channel-model`")
        if search.return_confidence and self.reverse is None:
            raise ValueError("confidence needs a calibration: run `carousel calibrate` on this model")
        # Reranking and the confidence's beam agreement need the whole beam; the search then keeps all of it.
        whole_beam = bool(search.channel_weight or search.return_confidence)
        beam = replace(search, nbest=search.beam_size) if whole_beam else search
        # Span repair places a missing number or placeholder by attention; coverage is a confidence signal.
        repair = search.repair_spans and any(protected_spans(s) for s in sentences)
        glossed = _with_terms_found(sentences, glossaries)
        if search.return_confidence or repair:
            beam = replace(beam, return_alignment=True)
        encoded = [self.encode_source(s) for s in sentences]
        results: list[list[Translation]] = [[] for _ in sentences]
        to_search = [i for i, s in enumerate(sentences) if s.strip()]
        batches = batches_by_tokens([encoded[i] for i in to_search], max(1, batch_tokens // search.beam_size))
        for batch in self._short_apart(batches, [len(encoded[i]) for i in to_search], search):
            indices = [to_search[i] for i in batch]
            sequences = [encoded[i] for i in indices]
            src = pad(sequences).to(self.device)
            lengths = torch.tensor([len(seq) for seq in sequences], device=self.device)
            shortlist = allowed = None
            if self.shortlist is not None and search.shortlist:
                shortlist = self.shortlist.vocabulary(src)
                if shortlist is not None and self.shortlist_per_sentence:
                    allowed = self.shortlist.allowed(src, shortlist)
            with torch.inference_mode():
                hypotheses = beam_search(self.model, src, lengths, beam, shortlist=shortlist, allowed=allowed)
            for index, hyps in zip(indices, hypotheses):
                results[index] = [self._to_translation(encoded[index], h) for h in hyps]
        if search.channel_weight:
            self._rerank(sentences, results, to_search, search, batch_tokens)
        if search.return_confidence:  # on the model's own output: a lost number is evidence of a poor one
            self._add_confidence(sentences, encoded, results, to_search, batch_tokens)
        if whole_beam:
            for index in to_search:
                results[index] = results[index][:search.nbest]
        if glossed:  # before span repair, which keeps what the terms hold of numbers and tags
            self._enforce_terms(sentences, encoded, results, glossed, glossaries, batch_tokens)
        if repair:
            for index in to_search:
                results[index] = [_with_spans_repaired(sentences[index], t) for t in results[index]]
        if beam.return_alignment and not search.return_alignment:
            for index in to_search:
                results[index] = [replace(t, alignment=None) for t in results[index]]
        for index, sentence in enumerate(sentences):
            if not sentence.strip():  # nothing to translate: no search, no hallucinated output
                results[index] = [Translation("", 0.0, [], [], [] if search.return_alignment else None)]
        return results

    def _short_apart(self, batches: list[list[int]], lengths: list[int], search: SearchConfig) -> list[list[int]]:
        """Each batch cut in two where it holds sentences short enough for the whole vocabulary and longer
        ones (model/shortlist.py): searched together, the long ones would lose their shortlist too, and so
        come out as they would not alone (service-sized batches of FLORES devtest, es→en, short below 24
        pieces: 16 sentences/s mixed, 19 apart, 22 with the list for every sentence; docs/general-models.md)."""
        below = self.shortlist.whole_below if self.shortlist is not None and search.shortlist else 0
        if not below:
            return batches
        apart = []
        for batch in batches:
            short, long = [i for i in batch if lengths[i] < below], [i for i in batch if lengths[i] >= below]
            apart += [part for part in (short, long) if part]
        return apart

    def translate_texts(
        self, texts: list[str], search: SearchConfig = SearchConfig(), batch_tokens: int = 12000,
        glossary: Glossary | None = None,
    ) -> list[list[tuple[str, float]]]:
        """n-best (translation, score) for texts of any length, in input order.

        Each text is cut into sentences (model/sentences.py); the sentences of all texts go through
        one batched search, and each text is joined back with its own whitespace and line breaks.
        """
        return [nbest for nbest, _ in self.translate_texts_with_confidence(texts, search, batch_tokens, glossary)]

    def translate_texts_with_confidence(
        self, texts: list[str], search: SearchConfig = SearchConfig(), batch_tokens: int = 12000,
        glossary: Glossary | None = None,
    ) -> list[tuple[list[tuple[str, float]], float | None]]:
        """`translate_texts`, each text with its confidence where `search.return_confidence` asks for it
        (the mean of its translated sentences', `text_confidence`; else None)."""
        documents = [split_sentences(text) for text in texts]
        sentences = [sentence for document in documents for sentence in document.sentences]
        wordy = [has_words(sentence) for sentence in sentences]  # "." or "—" alone comes back as it is
        wordy_sentences = [s for s, w in zip(sentences, wordy) if w]
        glossaries = [glossary] * len(wordy_sentences) if glossary is not None else None
        translated = iter(self.translate(wordy_sentences, search, batch_tokens, glossaries))
        found = [next(translated) if w else None for w in wordy]
        nbests = [
            [(t.text, t.score) for t in nbest] if nbest is not None else [(sentence, 0.0)]
            for sentence, nbest in zip(sentences, found)
        ]
        results, start = [], 0
        for document in documents:
            end = start + len(document.sentences)
            confidence = None
            if search.return_confidence:
                confidence = text_confidence([nbest[0].confidence for nbest in found[start:end] if nbest])
            results.append((join_nbest(document, nbests[start:end], search.nbest), confidence))
            start = end
        return results

    def _translate_tagged(self, sentences: list[str], tagged: list[TaggedSentence], search: SearchConfig,
                          batch_tokens: int, glossaries: list[Glossary | None] | None = None) -> list[list[Translation]]:
        """`translate` for sentences with inline tags: their plain texts are translated (with the
        attention and the glossaries), and the tags put back around the aligned words. A sentence with no letters outside
        its tags comes back as it is (model/sentences.py `has_words`)."""
        wordy = [has_words(t.plain) for t in tagged]
        plain = self.translate([t.plain if w else "" for t, w in zip(tagged, wordy)],
                               replace(search, return_alignment=True), batch_tokens, glossaries)
        results = []
        for sentence, sentence_tags, nbest, is_wordy in zip(sentences, tagged, plain, wordy):
            if not is_wordy:
                nbest = [Translation(sentence, 0.0, [], [], [] if search.return_alignment else None)]
            else:
                nbest = [_with_tags_put_back(sentence_tags, t, search.return_alignment) for t in nbest]
            results.append(nbest)
        return results

    def _rerank(self, sentences, results, searched: list[int], search: SearchConfig, batch_tokens: int) -> None:
        """Rerank each searched sentence's beam in place by forward + channel score (all of it kept)."""
        pairs = [(index, translation.text) for index in searched for translation in results[index]]
        scores = iter(self.channel_scores([sentences[i] for i, _ in pairs], [text for _, text in pairs], batch_tokens))
        for index in searched:
            channel = [next(scores) for _ in results[index]]
            results[index] = rerank(results[index], channel, search.channel_weight, len(results[index]))

    def _enforce_terms(self, sentences, encoded, results, glossed: list[int], glossaries, batch_tokens: int) -> None:
        """Each glossed sentence's translations with its glossary's target terms, in place. Those that lack
        a term get their attention from one teacher-forced pass over their own tokens (the attention the
        search saw), all in one batch: most translations hold their terms already and cost nothing."""
        lacking = [(index, n) for index in glossed for n, t in enumerate(results[index])
                   if t.alignment is None and glossaries[index].lacks_terms(sentences[index], t.text)]
        forced = self._forced_alignments([encoded[i] for i, _ in lacking],
                                         [results[i][n].target_tokens[:-1] for i, n in lacking], batch_tokens)
        alignments = dict(zip(lacking, forced))
        for index in glossed:
            results[index] = [
                _with_terms_enforced(sentences[index], t, glossaries[index], alignments.get((index, n), t.alignment))
                for n, t in enumerate(results[index])
            ]

    def _forced_alignments(self, sources: list[list[int]], target_pieces: list[list[str]],
                           batch_tokens: int) -> list[list[list[float]]]:
        """The attention weights [target + EOS][source + EOS] of each (source ids, target pieces) pair."""
        targets = [[self.target_sp.piece_to_id(piece) for piece in pieces] + [EOS_ID] for pieces in target_pieces]
        lengths = [max(len(s), len(t)) for s, t in zip(sources, targets)]
        found: list = [None] * len(sources)
        order = sorted(range(len(sources)), key=lengths.__getitem__)
        with torch.inference_mode():
            for batch in cut_into_batches(order, lengths, batch_tokens):
                src = pad([sources[i] for i in batch]).to(self.device)
                tgt_in = pad([[BOS_ID] + targets[i][:-1] for i in batch]).to(self.device)
                _, memory, state = self.model.encode(src, torch.tensor([len(sources[i]) for i in batch], device=self.device))
                _, _, weights = self.model.decoder(tgt_in, state, memory)
                for row, index in enumerate(batch):
                    found[index] = weights[row, : len(targets[index]), : len(sources[index])].float().tolist()
        return found

    def _add_confidence(self, sentences, encoded, results, searched: list[int], batch_tokens: int) -> None:
        """Signals and confidence of each searched sentence's best translation, in place."""
        searched = [index for index in searched if results[index]]
        reverse = self.reverse
        # What kind of sentence each was (for a representation, or to fit one): the source's mean encoder
        # state under this model, the output's under the reverse one (from its forced decoding).
        needs_states = self.calibration is None or self.calibration.representation is not None
        scores, output_states = forced_log_probs_and_states(
            reverse.model,
            [reverse.encode_source(results[index][0].text) for index in searched],
            [reverse.encode_target(self.normalizer(sentences[index])) for index in searched],
            batch_tokens, keep_states=needs_states,
        )
        states = zip(mean_encoder_states(self.model, [encoded[index] for index in searched], batch_tokens),
                     output_states) if needs_states else [None] * len(searched)
        unknown = self.source_sp.unk_id()
        for index, reverse_score, state in zip(searched, scores, states):
            best = results[index][0]
            signals = sentence_features(
                sentences[index], best.text, best.score, reverse_score, best.alignment,
                best.source_tokens[:-1], sum(i == unknown for i in encoded[index]),
                [(other.text, other.score) for other in results[index][1:]], token_mean(best),
            )
            signals["untranslated"] = untranslated_share(sentences[index], best.text, self.src_lang, self.tgt_lang)
            confidence = None if self.calibration is None else round(self.calibration(signals, state), 4)
            # The states are kept only for `carousel calibrate` to fit on (8 kB a sentence).
            results[index][0] = replace(best, confidence=confidence, signals=signals,
                                        states=state if self.calibration is None else None)

    def _to_translation(self, source_ids: list[int], hyp: Hypothesis) -> Translation:
        return Translation(
            text=self.target_sp.decode(hyp.tokens),
            score=hyp.score,
            source_tokens=[self.source_sp.id_to_piece(i) for i in source_ids[:-1]] + ["</s>"],
            target_tokens=[self.target_sp.id_to_piece(i) for i in hyp.tokens] + ["</s>"],
            alignment=None if hyp.alignment is None else hyp.alignment.tolist(),
            log_prob=hyp.log_prob,
        )


def token_mean(translation: Translation) -> float | None:
    """The mean log-probability of a translation's tokens, EOS included (None where no search made it)."""
    if translation.log_prob is None or not translation.target_tokens:
        return None
    return translation.log_prob / len(translation.target_tokens)  # target_tokens end with </s>


def _per_token(translation: Translation) -> float:
    """`token_mean`, with a translation no search made (an empty source's) ranked last."""
    mean = token_mean(translation)
    return float("-inf") if mean is None else mean


def _with_spans_repaired(source: str, translation: Translation) -> Translation:
    """The translation with every number, URL, address, placeholder and tag of the source exactly
    once (model/spans.py); the tokens and score stay those of the search's output."""
    text = repair_spans(source, translation.text, translation.source_tokens[:-1],
                        translation.target_tokens[:-1], translation.alignment)
    return translation if text == translation.text else replace(translation, text=text)


def _with_tags_put_back(tagged: TaggedSentence, translation: Translation, keep_alignment: bool) -> Translation:
    """The translation of a sentence's plain text with the sentence's inline tags put back
    (model/tags.py); tokens and alignment stay those of the plain text."""
    text = put_back_tags(tagged, translation.text, translation.source_tokens[:-1],
                         translation.target_tokens[:-1], translation.alignment)
    return replace(translation, text=text, alignment=translation.alignment if keep_alignment else None)


def _with_terms_found(sentences: list[str], glossaries: list[Glossary | None] | None) -> list[int]:
    """The sentences (by index) in which their glossary finds a term."""
    if glossaries is None:
        return []
    if len(glossaries) != len(sentences):
        raise ValueError(f"{len(glossaries)} glossaries for {len(sentences)} sentences: give one (or None) per sentence")
    return [i for i, (s, g) in enumerate(zip(sentences, glossaries)) if g is not None and s.strip() and g.matches(s)]


def _with_terms_enforced(source: str, translation: Translation, glossary: Glossary, alignment) -> Translation:
    """The translation with the target term of each glossary term of the source (model/glossary.py)."""
    text = glossary.enforce(source, translation.text, translation.source_tokens[:-1],
                            translation.target_tokens[:-1], alignment)
    return translation if text == translation.text else replace(translation, text=text)


def check_channel_direction(src_lang: str, tgt_lang: str, channel: "Translator", error=ValueError) -> None:
    """A channel model translates the other way: target language → source language."""
    if (channel.src_lang, channel.tgt_lang) != (tgt_lang, src_lang):
        raise error(f"the channel model translates {channel.src_lang}→{channel.tgt_lang}; "
                    f"a {src_lang}→{tgt_lang} model needs one for {tgt_lang}→{src_lang}")
