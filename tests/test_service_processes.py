"""`batch_processes`: the batching workers' batches translated in child processes (service/worker_processes.py)."""

from __future__ import annotations

import gc
import os
import signal
import time
import warnings
import weakref

from carousel.model.loading import SharedWeights
from carousel.model.search import SearchConfig
from carousel.model.translator import Translator, TranslatorInfo
from carousel.service.app import create_app
from carousel.service.registry import ModelRegistry, load_for_serving
from carousel.service.settings import ServiceSettings
from carousel.service.worker_processes import TranslationProcessDied, TranslationProcesses

with warnings.catch_warnings():  # Starlette's TestClient warns about its httpx dependency at import
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def _best(results) -> list[str]:
    return [nbest[0].text for nbest in results]


def test_a_child_translates_as_the_model_does_in_process_and_reports_errors_without_dying(tiny_model_dir, tiny_test_pairs):
    sources = [es for es, _ in tiny_test_pairs[:6]]
    search = SearchConfig(beam_size=2)
    here = _best(load_for_serving(tiny_model_dir, "none").translate(sources, search, 6000))
    processes = TranslationProcesses(1, load_for_serving, "none")
    try:
        there = _best(processes.translate(tiny_model_dir, sources, search, 6000))
        assert there == here  # float32: the translation does not depend on where it runs
        try:
            processes.translate(tiny_model_dir / "missing", sources, search, 6000)
            raise AssertionError("a model directory that does not exist must fail the batch")
        except RuntimeError as error:
            assert "missing" in str(error) and not isinstance(error, TranslationProcessDied)
        assert _best(processes.translate(tiny_model_dir, sources, search, 6000)) == here
    finally:
        processes.close()


def test_a_child_that_dies_fails_its_batch_and_is_replaced(tiny_model_dir, tiny_test_pairs):
    sources = [es for es, _ in tiny_test_pairs[:3]]
    search = SearchConfig(beam_size=2)
    processes = TranslationProcesses(1, load_for_serving, "none")
    try:
        processes.translate(tiny_model_dir, sources, search, 6000)
        (child,) = processes._children
        os.kill(child.process.pid, signal.SIGKILL)
        child.process.join(10)
        try:
            processes.translate(tiny_model_dir, sources, search, 6000)
            raise AssertionError("the batch of a dead child must fail")
        except TranslationProcessDied:
            pass
        assert len(processes.translate(tiny_model_dir, sources, search, 6000)) == 3  # a new child took over
        assert processes._children[0] is not child and not child.process.is_alive()
    finally:
        processes.close()
    assert not any(c.process.is_alive() for c in processes._children)


def test_the_service_with_batch_processes_answers_as_without_and_stops_its_children(models_dir, tiny_test_pairs):
    texts = [es for es, _ in tiny_test_pairs[:4]]
    answers = {}
    for processes in (False, True):
        settings = ServiceSettings(models_dir=models_dir, quantize="none", batch_processes=processes, batch_workers=2)
        registry = ModelRegistry(settings)
        with TestClient(create_app(settings, registry)) as client:
            assert registry.wait_until_loaded(60)
            reply = client.post("/translate", json={"q": texts, "source": "es", "target": "en", "beam_size": 2})
            assert reply.status_code == 200, reply.text
            answers[processes] = reply.json()["translatedText"]
            children = [] if registry._processes is None else list(registry._processes._children)
        assert len(children) == (2 if processes else 0)
        deadline = time.monotonic() + 10
        while any(c.process.is_alive() for c in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(c.process.is_alive() for c in children)  # the app's shutdown stopped them
    assert answers[True] == answers[False]


def test_models_of_one_process_share_the_weights_of_a_reverse_model_they_also_serve(calibrated_models_dir):
    shared = SharedWeights()
    forward = load_for_serving(calibrated_models_dir / "tiny-es-en", "none", shared)
    backward = load_for_serving(calibrated_models_dir / "tiny-en-es", "none", shared)
    assert forward.has_confidence and forward.reverse.model is backward.model  # one copy of the en→es weights
    assert len(shared) == 2
    load_for_serving(calibrated_models_dir / "tiny-es-en", "int8", shared)
    assert len(shared) == 4  # another precision is another model (and so is its reverse model)
    alone = load_for_serving(calibrated_models_dir / "tiny-es-en", "none")
    assert alone.reverse.model is not backward.model  # without `shared`, each load is its own
    search = SearchConfig(beam_size=2, return_confidence=True)
    with_shared, without = (_flat(t.translate(["hola", "el perro"], search)) for t in (forward, alone))
    # the signals hold the reverse model's forced score of each source: the shared copy scores as its own
    assert [(t.text, t.confidence, t.signals) for t in with_shared] == [(t.text, t.confidence, t.signals) for t in without]


def _flat(results):
    return [nbest[0] for nbest in results]


class _WeightsReporter:
    """A stand-in translator that answers every batch with the id of the `SharedWeights` it was loaded with."""

    def __init__(self, shared):
        self.shared = shared  # kept alive, so that no later object takes its id

    def translate(self, sentences, search, batch_tokens):
        return [id(self.shared)] * len(sentences)


def _load_reporting_weights(directory, quantization, shared):
    return _WeightsReporter(shared)


def test_a_child_loads_every_model_with_one_shared_weights(tmp_path):
    processes = TranslationProcesses(1, _load_reporting_weights, "none")
    try:
        first = processes.translate(tmp_path / "a", ["x"], SearchConfig(), 100)
        second = processes.translate(tmp_path / "b", ["y"], SearchConfig(), 100)
    finally:
        processes.close()
    assert first == second and isinstance(first[0], int)


def test_with_batch_processes_the_server_keeps_what_requests_ask_of_a_model_not_its_weights(calibrated_models_dir,
                                                                                           monkeypatch):
    from carousel.service import registry as registry_module

    weights = []  # weak references to every model the server process loads, reverse models included

    def recording(*args, **kwargs):
        translator = load_translator(*args, **kwargs)
        weights.extend(weakref.ref(t.model) for t in (translator, translator.reverse) if t is not None)
        return translator

    load_translator = registry_module.load_translator
    monkeypatch.setattr(registry_module, "load_translator", recording)
    settings = ServiceSettings(models_dir=calibrated_models_dir, quantize="none", batch_processes=True, batch_workers=1)
    registry = ModelRegistry(settings)
    registry.start()
    try:
        assert registry.wait_until_loaded(60)
        gc.collect()
        assert len(weights) == 3 and all(ref() is None for ref in weights)  # no weights kept in this process
        served = {m.name: m for m in registry._models}
        kept = served["tiny-es-en"].queue.translator
        assert isinstance(kept, TranslatorInfo)
        full = load_for_serving(calibrated_models_dir / "tiny-es-en", "none")
        assert served["tiny-es-en"].has_confidence and not served["tiny-en-es"].has_confidence
        assert served["tiny-es-en"].sentence_tokens("el perro come") == len(full.encode_source("el perro come"))
        search = SearchConfig(nbest=3)
        assert served["tiny-es-en"].search_for(search) == full.with_model_defaults(search)
        assert served["tiny-es-en"].token_cap(10_000) == full.max_source_tokens - 1
    finally:
        registry.close(30)
    without = ModelRegistry(ServiceSettings(models_dir=calibrated_models_dir, quantize="none", batch_processes=False))
    without.start()
    try:
        assert without.wait_until_loaded(60)
        translators = {m.name: m.queue.translator for m in without._models}
        assert all(isinstance(t, Translator) for t in translators.values())  # it translates itself
        assert translators["tiny-es-en"].reverse.model is translators["tiny-en-es"].model  # one copy of the weights
    finally:
        without.close(30)
