"""The models the server translates with: found under `models_dir`, loaded once, each behind its queue.

Every subdirectory holding a `config.json` is a model directory (as `carousel train` exports it, e.g.
models/bible-es-en); its languages come from the model itself, so the directory name is only a label.
Loading runs in a background thread started with the app, so `/health` answers at once and `/ready`
turns 200 when loading is over. A directory that fails to load is logged and skipped; with no model
at all the server still runs and says how to get one. The models loaded here answer questions about
themselves (languages, tokens, defaults); their queues' batches are translated in child processes
(service/worker_processes.py) unless `batch_processes` is off. With child processes, this process loads
each model in full once, so that a broken one is reported at start, and keeps only what it asks of the
model (`TranslatorInfo`), not the weights.
"""

from __future__ import annotations

import ctypes
import functools
import gc
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from carousel.routing.domains import DEFAULT_DOMAIN, FILENAME as ROUTING_FILE, DomainRouting, DomainsError, load_routing, model_domain
from carousel.errors import UserError
from carousel.model.translator import SearchConfig, Translator
from carousel.model.loading import SharedWeights, load_translator
from carousel.routing.shipped import language_pair, model_directories
from carousel.service.queue import BatchingQueue, BatchReport
from carousel.service.settings import ServiceSettings
from carousel.service.worker_processes import STOP_SECONDS, TranslationProcesses

log = logging.getLogger(__name__)

BatchObserver = Callable[[str], Callable[[BatchReport], None] | None]  # model name -> callback
Loader = Callable[[Path, str], Translator]  # (directory, quantization) -> translator


def load_for_serving(directory: Path, quantization: str, shared: SharedWeights | None = None) -> Translator:
    """A translator with its confidence calibration, where the model has one (requests may ask for it);
    with `shared`, weights loaded before in this process are reused (`SharedWeights`)."""
    return load_translator(directory, quantization, confidence=True, shared=shared)


@dataclass
class ServedModel:
    name: str  # the directory name
    directory: Path
    src_lang: str
    tgt_lang: str
    card: dict
    queue: BatchingQueue = field(repr=False)
    domain: str = DEFAULT_DOMAIN  # the card's `domain`: a pair has one model per domain

    @property
    def has_confidence(self) -> bool:
        """Whether its translations come with a confidence (a calibrated model, `carousel calibrate`)."""
        return getattr(self.queue.translator, "has_confidence", False)

    def sentence_tokens(self, sentence: str) -> int:
        """Source subword tokens of a sentence, EOS included (estimated when the translator cannot say)."""
        encode = getattr(self.queue.translator, "encode_source", None)
        return len(encode(sentence)) if encode is not None else len(sentence) // 4 + 2

    def search_for(self, search: SearchConfig) -> SearchConfig:
        """`search` with this model's own settings where it leaves them unset: its beam sets the decoding cost."""
        fill = getattr(self.queue.translator, "with_model_defaults", None)
        return fill(search) if fill is not None else search

    def token_cap(self, cap: int) -> int:
        """`cap`, or less where the model reads fewer tokens of a sentence (it drops the rest)."""
        model_cap = getattr(self.queue.translator, "max_source_tokens", None)
        return min(cap, model_cap - 1) if isinstance(model_cap, int) else cap


class ModelRegistry:
    def __init__(self, settings: ServiceSettings, load: Loader = load_for_serving):
        self.settings = settings
        self.models_dir = Path(settings.models_dir)
        self._load = load
        self._models: list[ServedModel] = []
        self.routing = DomainRouting(DEFAULT_DOMAIN, {}, {})  # models/domains.json, read when loading
        self.failures: dict[str, str] = {}  # directory name -> why it could not be loaded
        self._state = "idle"  # idle -> loading -> loaded | closed
        self._lock = threading.Lock()
        self._loaded = threading.Event()
        self._loader: threading.Thread | None = None
        self._processes: TranslationProcesses | None = None  # settings.batch_processes: the batches' processes
        # Without child processes the models translate here: each model's weights once, a reverse model's too
        # (with them, nothing is shared: the weights are dropped after loading, see `_load_one`).
        self._shared_weights = SharedWeights()

    # -- lifecycle ---------------------------------------------------------------------------------

    def start(self, observer: BatchObserver | None = None) -> None:
        """Begin loading in a background thread (once; later calls do nothing)."""
        with self._lock:
            if self._state != "idle":
                return
            self._state = "loading"
        if self.settings.batch_processes and self._load is load_for_serving:
            # A child loads the models by directory with this same function; a registry given another
            # loader (an application's own, the tests' stand-ins) translates in its worker threads.
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            self._processes = TranslationProcesses(self.settings.batch_workers, self._load, self.settings.quantize,
                                                   threads=max(1, cores // self.settings.batch_workers))
        self._loader = threading.Thread(target=self._load_all, args=(observer,), name="model-loading", daemon=True)
        self._loader.start()

    def wait_until_loaded(self, timeout: float | None = None) -> bool:
        return self._loaded.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop every queue: what is still queued is dropped (its requests have been answered or cancelled
        by now), the batches in progress finish, and loading stops after the model it is loading (a process
        that exits while torch loads one in another thread aborts). Waits up to `timeout` in all; returns
        whether every worker and the loading have stopped."""
        with self._lock:
            self._state = "closed"
            models = list(self._models)
        deadline = None if timeout is None else time.monotonic() + timeout
        for served in models:
            served.queue.cancel_waiting()
        for served in models:
            served.queue.close(None if deadline is None else max(0.0, deadline - time.monotonic()))
        loader = self._loader
        if loader is not None and loader is not threading.current_thread():
            loader.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if self._processes is not None:  # after the workers: no batch is waiting for a child any more
            self._processes.close(STOP_SECONDS if deadline is None else max(0.0, deadline - time.monotonic()))
        return all(served.queue.stopped for served in models) and not (loader is not None and loader.is_alive())

    def _load_all(self, observer: BatchObserver | None) -> None:
        try:
            try:
                self.routing = load_routing(self.models_dir)
            except DomainsError as error:  # every string then goes to the default domain's model
                log.error("%s; routing every string to the %r models", error, self.routing.default)
                self.failures[ROUTING_FILE] = _without_paths(str(error), self.models_dir / ROUTING_FILE)
            for directory in self.discover():
                if self._state == "closed":
                    return
                served = self._load_one(directory, observer)
                if served is None:
                    continue
                with self._lock:
                    if self._state == "closed":
                        served.queue.close()
                        return
                    self._models.append(served)
                log.info("serving %s (%s→%s) from %s", served.name, served.src_lang, served.tgt_lang, directory)
            with self._lock:
                if self._state == "loading":
                    self._state = "loaded"
            if self._processes is not None:
                _give_freed_memory_back()
            if not self._models:
                log.warning("%s", self.not_ready_reason())
        finally:
            self._loaded.set()

    def _load_one(self, directory: Path, observer: BatchObserver | None) -> ServedModel | None:
        name = directory.name
        domain = model_domain(directory)
        if not self._wanted(directory, language_pair(directory)):
            return None
        if self._skip_second_for_pair(directory, language_pair(directory), domain):
            return None  # decided from config.json, before loading weights (an ensemble's can be large)
        try:
            translator = self._load_model(directory)
        except Exception as error:  # ModelLoadError names the file; anything else is logged in full
            log.error("cannot load model %s: %s", directory, error, exc_info=not isinstance(error, UserError))
            self.failures[name] = _without_paths(str(error), directory)
            return None
        pair = (translator.src_lang, translator.tgt_lang)
        if not self._wanted(directory, pair) or self._skip_second_for_pair(directory, pair, domain):
            return None
        if self._processes is not None:  # the children translate: keep what the requests ask, not the weights
            translator = translator.info()
        settings = self.settings
        queue = BatchingQueue(
            translator,
            max_batch_tokens=settings.max_batch_tokens,
            max_wait_ms=settings.max_wait_ms,
            queue_size=settings.queue_size,
            on_batch=observer(name) if observer else None,
            name=name,
            workers=settings.batch_workers,
            slice_sentences=settings.slice_sentences,
            translate=None if self._processes is None else functools.partial(self._processes.translate, directory),
        )
        queue.start()
        return ServedModel(name, directory, translator.src_lang, translator.tgt_lang, translator.card, queue, domain)

    def _load_model(self, directory: Path) -> Translator:
        if self._load is load_for_serving and self._processes is None:
            return load_for_serving(directory, self.settings.quantize, self._shared_weights)
        return self._load(directory, self.settings.quantize)

    def _wanted(self, directory: Path, pair: tuple[str, str] | None) -> bool:
        """Whether `load_only` (empty: every model) names both languages of the pair; others are left
        out on purpose, logged but not reported as failures."""
        load_only = self.settings.load_only
        if not load_only or pair is None or set(pair) <= set(load_only):
            return True
        log.info("not loading %s (%s→%s): load_only is %s", directory, *pair, ",".join(load_only))
        return False

    def _skip_second_for_pair(self, directory: Path, pair: tuple[str, str] | None, domain: str) -> bool:
        """One model serves a language pair in a domain: the first directory by name. Later ones are reported."""
        taken = next((m for m in self._models if (m.src_lang, m.tgt_lang) == pair and m.domain == domain), None)
        if taken is None:
            return False
        log.warning("ignoring %s: %s already serves %s→%s (%s); keep one model directory per language pair "
                    "and domain in %s", directory, taken.name, *pair, domain, self.models_dir)
        self.failures[directory.name] = f"{taken.name} already serves {pair[0]}→{pair[1]} ({domain})"
        return True

    def discover(self) -> list[Path]:
        """Model directories under models_dir, by name (half-written `.partial`/`.old` ones skipped)."""
        return model_directories(self.models_dir)

    # -- queries -----------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return self._state == "loaded" and bool(self._models)

    def not_ready_reason(self) -> str:
        if self._state in ("idle", "loading"):
            return "models are still loading; try again in a few seconds"
        if self._state == "closed":
            return "the server is shutting down"
        where = f"{self.models_dir.name}/"
        if self.failures:
            problems = "; ".join(f"{name}: {why}" for name, why in sorted(self.failures.items()))
            return f"no model could be loaded from {where} ({problems})"
        return (
            f"no model installed in {where}: train one with `carousel train --config "
            f"training/configs/bible-es-en.yaml` (it exports to models/bible-es-en), or copy a model "
            f"directory into {where} and restart"
        )

    @property
    def loading(self) -> bool:
        return self._state in ("idle", "loading")

    @property
    def models(self) -> list[ServedModel]:
        return list(self._models)

    def find(self, source: str, target: str, domain: str | None = None) -> ServedModel | None:
        """The model of the pair in `domain`; without one, that of `DomainRouting.default_among` its domains."""
        candidates = [m for m in self._models if m.src_lang == source and m.tgt_lang == target]
        if domain is None and candidates:
            domain = self.routing.default_among([m.domain for m in candidates])
        return next((m for m in candidates if m.domain == domain), None)

    def domains(self, source: str, target: str) -> list[str]:
        return sorted(m.domain for m in self._models if m.src_lang == source and m.tgt_lang == target)

    def route(self, source: str, target: str, texts: list[str]) -> list[ServedModel | None]:
        """The model for each of `texts` (that came together, in order): its domain's as the router reads
        it among its neighbours (models/domains.json), else the pair's default."""
        domains = self.domains(source, target)
        if not domains:
            return [None] * len(texts)
        return [self.find(source, target, domain) for domain in self.routing.domains_among(domains, source, texts)]

    def languages(self) -> dict[str, list[str]]:
        """Every language code the loaded models read or write, once, with the targets it translates to
        (once each, however many domains' models serve a pair). A language only written, never read,
        has no targets: it is listed all the same, since LibreTranslate's clients find a target's name here."""
        targets: dict[str, set[str]] = {}
        for served in self._models:
            targets.setdefault(served.src_lang, set()).add(served.tgt_lang)
            targets.setdefault(served.tgt_lang, set())
        return {code: sorted(codes) for code, codes in targets.items()}

    def pairs(self) -> list[tuple[str, str]]:
        """The language pairs the loaded models translate, once each, in the order they were loaded."""
        return list(dict.fromkeys((served.src_lang, served.tgt_lang) for served in self._models))

    def queue_depths(self) -> dict[str, int]:
        return {served.name: served.queue.depth for served in self._models}


def _without_paths(message: str, directory: Path) -> str:
    """A load error for clients (/ready, 503 answers): paths relative to the model directory, no absolute
    path of the server's file system (the log keeps the full message)."""
    for parent in {str(directory.parent.resolve()), str(directory.parent.absolute())}:
        message = message.replace(parent.rstrip("/") + "/", "")  # /srv/models/x/model.pt -> x/model.pt
    return re.sub(r"(?<![\w.])/(?:[^\s/'\"]+/)+([^\s/'\"]+)", r"\1", message)  # any other absolute path: its name


def _give_freed_memory_back() -> None:
    """Hand the memory of the weights this process dropped back to the system. glibc keeps freed heap
    for reuse: without this, a server that kept only the models' `TranslatorInfo` still held most of
    what their weights had taken (about 160 MB of 4 models' 200)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the memory stays with this process for reuse
        pass
