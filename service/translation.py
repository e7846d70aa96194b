"""What `/translate` does between a validated request and its JSON answer.

1. check limits and languages (resolving `source: "auto"` per string with the language identifier);
2. cut every string into sentences (model/sentences.py; formats/html.py for HTML), cut sentences of
   more than `max_sentence_tokens` tokens into pieces (service/costs.py), and check the request's
   sentences, source tokens and decoding cost against their limits (413) -- in a thread of a small
   pool, so that parsing (HTML parsing can take seconds) never holds the event loop;
3. put each model's sentences on its batching queue with their costs, all at once, and wait for them
   with the request timeout, giving up early if the client goes away (the queues then drop the work
   not yet started); no translation is decoded past `max_output_tokens`;
4. put the translations back into each string, with n-best alternatives, scores, alignments and
   confidences (per string, and per sentence for pages that mark the doubtful ones).

With the translation memory on (service/memory.py), a string or sentence the memory holds is taken from
it before step 3, never queued, and marked in `sentenceMemory`.

A string detected to be in the target language already is returned as it is.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import TypeVar

from fastapi import Request

from carousel.model.translator import Glossary, SearchConfig, Translation, has_words, join_nbest, text_confidence
from carousel.service.access import retry_after_header
from carousel.service.costs import cut_long_sentences, read_twice, sentence_cost
from carousel.service.database import DatabaseError
from carousel.service.memory import TranslationMemory
from carousel.service.queue import QueueClosed, QueueFull
from carousel.service.errors import ApiError
from carousel.service.languages import Detection, choose_source, is_sure, language_name, shared_identifier
from carousel.service.registry import ModelRegistry, ServedModel
from carousel.service.requests import TranslateRequest
from carousel.service.settings import ServiceSettings
from carousel.formats.html import HtmlText, HtmlTooComplex, SplitText, split_for_translation

log = logging.getLogger(__name__)
RETRY_AFTER_BUSY = 2  # seconds a client waits when the queue is full
RETRY_AFTER_LOADING = 5


# Splitting, language identification and token counts run here, off the event loop; two threads at
# most, so a burst of expensive requests (HTML) takes no more than two cores' share from the loop.
_PREPARE = ThreadPoolExecutor(2, thread_name_prefix="prepare")

Disconnection = Callable[[], Awaitable[None]]  # finishes when the client goes away
T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its translation was ready."""


def disconnection(request: Request) -> Disconnection:
    """An awaitable that finishes when the client disconnects (the body has been read by then)."""

    async def disconnected() -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass

    return disconnected


async def never() -> None:
    """A disconnection that never comes (the caller watches the client itself)."""
    await asyncio.Event().wait()


async def unless_gone(work: Awaitable[T], client_gone: Disconnection) -> T:
    """`work`'s result, or ClientGone, with `work` cancelled, when the client leaves first."""
    task, watcher = asyncio.ensure_future(work), asyncio.ensure_future(client_gone())
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ClientGone()
    finally:
        for future in (task, watcher):
            future.cancel()
        await asyncio.gather(task, watcher, return_exceptions=True)


@dataclass
class _Item:
    """One string of `q` on its way through."""

    text: str
    document: SplitText | HtmlText
    model: ServedModel | None  # None: already in the target language, returned as it is
    detection: Detection | None = None
    nbest: list[list[Translation]] | None = None  # per sentence
    tokens: list[int] = field(default_factory=list)  # source tokens per sentence (EOS included)
    recalled: list[str | None] | None = None  # per sentence: its translation from the memory, or None

    def remembered(self, index: int) -> str | None:
        """Sentence `index`'s translation from the memory, or None (not there, or no memory)."""
        return self.recalled[index] if self.recalled else None


def search_config(request: TranslateRequest, settings: ServiceSettings) -> SearchConfig:
    """Decoding settings for a request, or 422 for values out of range."""
    if not 0 <= request.alternatives <= settings.max_alternatives:
        raise ApiError(422, f"alternatives must be between 0 and {settings.max_alternatives}, got {request.alternatives}")
    nbest = request.alternatives + 1
    if request.beam_size is None:  # the service's default, else the model's own (widened to nbest by the translator)
        beam = None if settings.default_beam is None else max(settings.default_beam, nbest)
    else:
        beam = request.beam_size
        if not 1 <= beam <= settings.max_beam:
            raise ApiError(422, f"beam_size must be between 1 and {settings.max_beam}, got {beam}")
        if beam < nbest:
            raise ApiError(422, f"{request.alternatives} alternatives need beam_size of at least {nbest}, got {beam}")
    confidence = request.return_confidence or settings.confidence_action != "off"
    return SearchConfig(beam_size=beam, nbest=nbest, return_alignment=request.return_alignment,
                        return_confidence=confidence, max_length_cap=settings.max_output_tokens)


def check_limits(texts: list[str], settings: ServiceSettings) -> None:
    if len(texts) > settings.max_batch_items:
        raise ApiError(413, f"q holds {len(texts)} strings; the limit is {settings.max_batch_items} per request")
    chars = sum(len(text) for text in texts)
    if chars > settings.max_chars:
        raise ApiError(413, f"q holds {chars} characters; the limit is {settings.max_chars} per request")


def require_ready(registry: ModelRegistry) -> None:
    if not registry.ready:
        headers = retry_after_header(RETRY_AFTER_LOADING) if registry.loading else None
        raise ApiError(503, registry.not_ready_reason(), headers=headers)


async def translate(
    request: TranslateRequest, settings: ServiceSettings, registry: ModelRegistry, client_gone: Disconnection,
    timeout: float | None, memory: TranslationMemory | None = None, glossary: Glossary | None = None,
) -> dict:
    """The `/translate` answer as a dict (JSON-ready); 504 after `timeout` seconds (None: the caller's own
    budget bounds it). With a `memory`, what it holds is taken from it instead of the model. `glossary`
    (service/glossaries.py resolves the request's) applies to the strings translated from its source
    language into its target language."""
    texts = [request.q] if isinstance(request.q, str) else request.q
    search = search_config(request, settings)
    check_limits(texts, settings)
    require_ready(registry)
    loop = asyncio.get_running_loop()
    items = await loop.run_in_executor(_PREPARE, _prepare, texts, request, registry, settings, search)
    if memory is not None:
        await loop.run_in_executor(_PREPARE, _recall, items, memory, request.format == "text")
    await _translate_items(items, search, timeout, client_gone, glossary)
    answer = _answer(items, request)
    _add_confidence(answer, items, request, settings)
    if memory is not None:
        sentences = [_sentence_memory(item) for item in items]
        answer["sentenceMemory"] = sentences[0] if isinstance(request.q, str) else sentences
    return answer


def _prepare(texts: list[str], request: TranslateRequest, registry: ModelRegistry, settings: ServiceSettings,
             search: SearchConfig):
    """The request's strings split and matched with their models, within the per-request limits."""
    items = _resolve_languages(texts, request, registry, settings.html_parse_seconds)
    translated = [item for item in items if item.model is not None]
    # Checked before sentences are cut as well as after: a model reads at most a few hundred tokens of a
    # sentence, so the counts before are lower bounds, and most refusals cost no cutting.
    _check_budget(translated, settings, search)
    for item in translated:
        cap = item.model.token_cap(settings.max_sentence_tokens)
        item.document = cut_long_sentences(item.document, item.model.sentence_tokens, cap)
    _check_budget(translated, settings, search)
    return items


def _check_budget(items: list[_Item], settings: ServiceSettings, search: SearchConfig) -> None:
    """413 over the request's sentences, source tokens or decoding cost; fills each item's tokens."""
    sentences = sum(len(item.document.sentences) for item in items)
    if sentences > settings.max_sentences:
        raise ApiError(413, f"q holds {sentences} sentences; the limit is {settings.max_sentences} per request")
    tokens = cost = 0
    for item in items:
        item.tokens = [item.model.sentence_tokens(s) for s in item.document.sentences]
        tokens += sum(item.tokens)
        if tokens > settings.max_source_tokens:
            raise ApiError(413, f"q holds more than {settings.max_source_tokens} source tokens, the limit per request")
        model_search = item.model.search_for(search)
        cost += sum(sentence_cost(s, t, model_search) for s, t in zip(item.document.sentences, item.tokens))
    if cost > settings.max_decoding_cost:
        twice = any(read_twice(s, item.model.search_for(search)) for item in items for s in item.document.sentences)
        unit = ("source tokens × beam size" + (" × 2 for the confidence" if search.return_confidence else "")
                + (", twice for a sentence without closing punctuation (read as typed and closed)" if twice else ""))
        raise ApiError(413, f"q would cost {cost} to decode ({unit}); the limit is {settings.max_decoding_cost} "
                            "per request: send less text or a smaller beam_size")


def _resolve_languages(
    texts: list[str], request: TranslateRequest, registry: ModelRegistry, html_seconds: float = 2.0
) -> list[_Item]:
    source, target = request.source.strip().lower(), request.target.strip().lower()
    languages = registry.languages()
    available = ", ".join(sorted(languages))
    if target not in languages:
        raise ApiError(400, f"target language {target!r} is not supported; available: {available}")
    deadline = time.monotonic() + html_seconds  # for all the strings of the request together
    try:
        documents = [split_for_translation(text, request.format, deadline) for text in texts]
    except HtmlTooComplex:
        raise ApiError(413, f"the HTML could not be parsed within {html_seconds:g} seconds; send less markup") from None
    domain = (request.domain or "auto").strip().lower()
    if source != "auto":
        if source not in languages:
            raise ApiError(400, f"source language {source!r} is not supported; available: {available}")
        if registry.find(source, target) is None:
            raise ApiError(400, f"no model translates {source}→{target}; available: {_pairs(registry)}")
        models = _models_for(registry, source, target, domain, documents)
        return [_Item(text, document, model) for text, document, model in zip(texts, documents, models)]
    sources = [code for code in languages if registry.find(code, target) is not None]
    if not sources:
        raise ApiError(400, f"no model translates into {target!r}; available: {_pairs(registry)}")
    identifier = shared_identifier()  # every language Lingua knows, not only those served
    detections = []
    for document in documents:
        detection, is_served = choose_source(identifier.detect(" ".join(document.sentences)), sources + [target], target)
        if not is_served:  # never passed through as if it were the target language
            raise _unserved_language(detection, sources, target, registry)
        detections.append(detection)
    models: list[ServedModel | None] = [None] * len(texts)  # None: already in the target language
    for language in sorted({d.language for d in detections} - {target}):  # each language's strings among themselves
        indices = [i for i, d in enumerate(detections) if d.language == language]
        chosen = _models_for(registry, language, target, domain, [documents[i] for i in indices])
        for index, model in zip(indices, chosen):
            models[index] = model
    return [_Item(*parts) for parts in zip(texts, documents, models, detections)]


def _unserved_language(detection: Detection, sources: list[str], target: str, registry: ModelRegistry) -> ApiError:
    """The 400 for a string in a language no model translates: its message for API clients, and in
    `detail` the facts a web page puts in plain words (the language, and those the server translates)."""
    named = f"{language_name(detection.language)} ({detection.language}, confidence {detection.confidence:g}%)"
    sure = is_sure(detection)
    found = f"detected {named} in q" if sure else f"q may be {named}, and no language this server translates is likely"
    detail = {
        "reason": "unserved_language", "language": detection.language, "confidence": detection.confidence,
        "sure": sure, "sources": sources, "target": target,
        "served": [code for code, targets in registry.languages().items() if targets],
    }
    message = f"{found}; this server translates {', '.join(sources)} into {target}: send source explicitly if the text is in one of those"
    return ApiError(400, message, detail=detail)


def _models_for(registry: ModelRegistry, source: str, target: str, domain: str, documents) -> list[ServedModel]:
    """The model of the request's domain for each string, or with "auto" those the domain router picks
    for the strings read together (each string's sentences as one text)."""
    if domain == "auto":
        return registry.route(source, target, [" ".join(document.sentences) for document in documents])
    served = registry.find(source, target, domain)
    if served is None:
        known = ", ".join(["auto", *registry.domains(source, target)])
        raise ApiError(400, f"no {source}→{target} model for domain {domain!r}; domains: {known}")
    return [served] * len(documents)


def _pairs(registry: ModelRegistry) -> str:
    return ", ".join(f"{source}→{target}" for source, target in registry.pairs())


def _recall(items: list[_Item], memory: TranslationMemory, whole_strings: bool) -> None:
    """Fill each item's `recalled` from the memory, one query per language pair: a whole string the memory
    holds (with `whole_strings`: plain text) becomes one sentence, its stored translation; otherwise each
    sentence it holds. A memory that cannot be read is passed over (logged): the models translate it all."""
    by_pair: dict[tuple[str, str], list[_Item]] = {}
    for item in items:
        if item.model is not None:
            by_pair.setdefault((item.model.src_lang, item.model.tgt_lang), []).append(item)
    for (source, target), group in by_pair.items():
        texts = [sentence for item in group for sentence in item.document.sentences]
        texts += [item.text for item in group] if whole_strings else []
        try:
            found = memory.lookup(source, target, texts)
        except DatabaseError as error:
            log.warning("translation memory unavailable, translating without it: %s", error)
            return
        for item in group:
            if whole_strings and item.text in found and len(item.document.sentences) > 1:
                stripped = item.text.strip()
                start = item.text.index(stripped)
                item.document = SplitText([stripped], [item.text[:start], item.text[start + len(stripped):]])
            item.recalled = [found.get(sentence) for sentence in item.document.sentences]


async def _translate_items(
    items: list[_Item], search: SearchConfig, timeout: float | None, client_gone: Disconnection,
    glossary: Glossary | None = None,
) -> None:
    by_model: dict[str, list[_Item]] = {}
    for item in items:
        if item.model is not None:
            by_model.setdefault(item.model.name, []).append(item)
            alignment = [] if search.return_alignment else None
            item.nbest = [[Translation(item.remembered(i) or s, 0.0, [], [], alignment)]
                          for i, s in enumerate(item.document.sentences)]
    futures: list[tuple[list[tuple[_Item, int]], asyncio.Future]] = []
    try:
        for group in by_model.values():
            slots = [(item, i) for item in group for i, s in enumerate(item.document.sentences)
                     if has_words(s) and item.remembered(i) is None]
            if slots:
                sentences = [item.document.sentences[i] for item, i in slots]
                # a model without a calibration answers no confidence rather than failing
                calibrated = group[0].model.has_confidence
                model = group[0].model
                model_search = model.search_for(
                    search if calibrated or not search.return_confidence else replace(search, return_confidence=False))
                costs = [sentence_cost(s, item.tokens[i], model_search) for s, (item, i) in zip(sentences, slots)]
                terms = glossary if glossary is not None and (glossary.source_lang, glossary.target_lang) == (
                    model.src_lang, model.tgt_lang) else None
                futures.append((slots, model.queue.submit(sentences, model_search, costs, glossary=terms)))
    except (QueueFull, QueueClosed) as error:
        for _, future in futures:
            future.cancel()
        raise ApiError(503, f"the server is busy: {error}; retry later", headers=retry_after_header(RETRY_AFTER_BUSY))
    if not futures:
        return
    results = await _wait([future for _, future in futures], timeout, client_gone)
    empty = Translation("", 0.0, [], [], [] if search.return_alignment else None)
    for (slots, _), nbests in zip(futures, results):
        for (item, index), nbest in zip(slots, nbests):
            item.nbest[index] = nbest or [empty]  # the search found no hypothesis: say nothing rather than fail


async def _wait(futures: list[asyncio.Future], timeout: float | None, client_gone: Disconnection) -> list:
    """The futures' results, in order; on timeout (504; None: none), departure (ClientGone) or
    cancellation every future is cancelled, so the queues drop what they have not started.

    No `gather`: a gathering future that fails after nobody awaits it any more is logged as
    "exception was never retrieved"; each future's outcome is read (or it is cancelled) here instead.
    """
    watcher = asyncio.ensure_future(client_gone())
    pending = set(futures)
    deadline = asyncio.get_running_loop().time() + (timeout if timeout is not None else float("inf"))
    try:
        while pending:
            remaining = deadline - asyncio.get_running_loop().time()
            remaining = None if remaining == float("inf") else remaining
            if remaining is not None and remaining <= 0:
                raise ApiError(504, f"translation took longer than the request timeout of {timeout:g} seconds")
            done, _ = await asyncio.wait(pending | {watcher}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
            if watcher in done:
                raise ClientGone()
            pending -= done
            for future in done:
                future.result()  # a failed translation fails the request at once
        return [future.result() for future in futures]
    finally:
        watcher.cancel()
        if watcher.done() and not watcher.cancelled():
            watcher.exception()
        for future in futures:
            if future.done():
                if not future.cancelled():
                    future.exception()  # read: never "exception was never retrieved"
            else:
                future.cancel()


# -- the answer ------------------------------------------------------------------------------------


def _answer(items: list[_Item], request: TranslateRequest) -> dict:
    single = isinstance(request.q, str)

    def shape(values: list):
        return values[0] if single else values

    answer = {"translatedText": shape([_best(item) for item in items])}
    if request.alternatives > 0:
        answer["alternatives"] = shape([_alternatives(item, request.alternatives) for item in items])
    if request.source.strip().lower() == "auto":
        answer["detectedLanguage"] = shape(
            [{"language": item.detection.language, "confidence": item.detection.confidence} for item in items]
        )
    if request.return_scores:
        answer["scores"] = shape([_score(item) for item in items])
    if request.return_alignment:
        answer["alignment"] = shape([_alignments(item) for item in items])
    if request.domain is not None:  # the extension answers only clients that use it
        answer["domain"] = shape([item.model.domain if item.model is not None else None for item in items])
    return answer


def _confidence(item: _Item) -> float | None:
    """Mean confidence of the string's translated sentences; 1 where nothing needed translating; None
    where the model has no calibration."""
    if item.model is None:
        return 1.0
    if not item.model.has_confidence:
        return None
    return text_confidence([nbest[0].confidence for nbest in item.nbest or [] if nbest and nbest[0].signals is not None])


def _sentence_confidences(item: _Item) -> list[dict]:
    """Per sentence, in order: its source, its translation (as it appears in translatedText) and its
    confidence (1 where it needed no translation, None where the model has no calibration)."""
    if item.model is None:
        return [{"source": s, "translation": s, "confidence": 1.0} for s in item.document.sentences]
    entries = []
    for sentence, nbest in zip(item.document.sentences, item.nbest or []):
        best = nbest[0]
        if not item.model.has_confidence:
            confidence = None
        else:
            confidence = best.confidence if best.signals is not None else 1.0
        entries.append({"source": sentence, "translation": best.text, "confidence": confidence})
    return entries


def _sentence_memory(item: _Item) -> list[dict]:
    """Per sentence, in order: its source, its translation (as in translatedText) and whether it came from
    the translation memory."""
    translations = [nbest[0].text for nbest in item.nbest] if item.nbest else item.document.sentences
    return [{"source": sentence, "translation": translation, "memory": item.remembered(i) is not None}
            for i, (sentence, translation) in enumerate(zip(item.document.sentences, translations))]


def _add_confidence(answer: dict, items: list[_Item], request: TranslateRequest, settings: ServiceSettings) -> None:
    if not request.return_confidence and settings.confidence_action == "off":
        return
    single = isinstance(request.q, str)
    values = [_confidence(item) for item in items]
    low = [value is not None and value < settings.confidence_threshold for value in values]
    if settings.confidence_action == "refuse" and any(low):
        index = low.index(True)
        where = "" if single else f"string {index} of q: "
        raise ApiError(422, f"{where}the translation's confidence {values[index]:.2f} is below this server's "
                            f"threshold of {settings.confidence_threshold:g}; it is likely to be wrong")
    if request.return_confidence:
        answer["confidence"] = values[0] if single else values
        sentences = [_sentence_confidences(item) for item in items]
        answer["sentenceConfidence"] = sentences[0] if single else sentences
    if settings.confidence_action == "warn":
        warnings = [
            f"low confidence ({value:.2f}): the translation may be wrong or miss part of the text" if is_low else None
            for value, is_low in zip(values, low)
        ]
        answer["confidenceWarning"] = warnings[0] if single else warnings


def _joined(item: _Item, count: int) -> list[tuple[str, float]]:
    """Up to `count` distinct (text, score) translations of the string, best first."""
    nbests = [[(t.text, t.score) for t in nbest] for nbest in item.nbest or []]
    return join_nbest(item.document, nbests, count)


def _best(item: _Item) -> str:
    return item.text if item.model is None else _joined(item, 1)[0][0]


def _alternatives(item: _Item, count: int) -> list[str]:
    """The i-th alternative takes every sentence's i-th best translation (its best if it has fewer)."""
    if item.model is None:
        return []
    return [text for text, _ in _joined(item, count + 1)[1:]]


def _score(item: _Item) -> float:
    """Mean length-normalised log-probability of the string's sentences (0 when nothing was translated)."""
    return 0.0 if item.model is None else round(_joined(item, 1)[0][1], 4)


def _alignments(item: _Item) -> list[dict]:
    """Per sentence: the tokens and target × source attention weights (EOS rows and columns included)."""
    entries = []
    for sentence, nbest in zip(item.document.sentences, item.nbest or []):
        best = nbest[0]
        entries.append(
            {
                "source": sentence,
                "translation": best.text,
                "source_tokens": best.source_tokens,
                "target_tokens": best.target_tokens,
                "weights": [[round(w, 4) for w in row] for row in best.alignment or []],
            }
        )
    return entries
