"""Cross-request batching: merged calls, each request its own results, dropped work, draining on close."""

from __future__ import annotations

import asyncio
import shutil

import httpx
import pytest

from carousel.model.search import SearchConfig
from carousel.service.app import create_app
from carousel.service.queue import BatchingQueue, QueueClosed, QueueFull
from carousel.service.settings import ServiceSettings
from tests.helpers import StandInTranslator, run_with_queue, until, with_beam


def test_concurrent_jobs_are_merged_and_each_gets_its_own_results():
    translator, reports = StandInTranslator(render=with_beam), []

    async def scenario(queue):
        futures = [queue.submit([f"a{i}", f"b{i}"], SearchConfig(beam_size=2)) for i in range(10)]
        return await asyncio.gather(*futures)

    results = run_with_queue(translator, scenario, max_wait_ms=200, on_batch=reports.append)
    for i, nbests in enumerate(results):
        assert [n[0].text for n in nbests] == [f"a{i}@2", f"b{i}@2"]
    assert len(translator.calls) == 1 and len(translator.calls[0][0]) == 20
    assert reports[0].requests == 10 and reports[0].sentences == 20 and reports[0].target_tokens == 40


def test_two_workers_translate_two_batches_side_by_side():
    translator = StandInTranslator(blocked=True, render=with_beam)

    async def scenario(queue):
        first = queue.submit(["a"], SearchConfig(beam_size=2))
        second = queue.submit(["b"], SearchConfig(beam_size=3))  # other settings: a batch of its own
        await until(lambda: len(translator.calls) == 2)  # both calls run while neither has returned
        translator.gate.set()
        return await asyncio.gather(first, second)

    first, second = run_with_queue(translator, scenario, max_wait_ms=0, workers=2)
    assert (first[0][0].text, second[0][0].text) == ("a@2", "b@3")


def test_jobs_with_different_search_settings_are_never_mixed():
    translator = StandInTranslator(render=with_beam)
    configs = [SearchConfig(beam_size=2), SearchConfig(beam_size=3), SearchConfig(beam_size=2, return_alignment=True)]
    wanted = {f"s{i}": configs[i % 3] for i in range(9)}

    async def scenario(queue):
        return await asyncio.gather(*[queue.submit([sentence], search) for sentence, search in wanted.items()])

    results = run_with_queue(translator, scenario, max_wait_ms=200)
    assert [r[0][0].text for r in results] == [f"{s}@{search.beam_size}" for s, search in wanted.items()]
    assert len(translator.calls) == 3
    for sentences, search in translator.calls:
        assert len(sentences) == 3 and all(wanted[s] == search for s in sentences)


def test_a_batch_stops_at_max_batch_tokens():
    translator = StandInTranslator(render=with_beam)

    async def scenario(queue):
        sentence = "x" * 36  # 36 / 4 + 2 = 11 estimated tokens, × beam 1
        return await asyncio.gather(*[queue.submit([sentence], SearchConfig(beam_size=1)) for _ in range(6)])

    run_with_queue(translator, scenario, max_wait_ms=200, max_batch_tokens=25)
    assert [len(sentences) for sentences, _ in translator.calls] == [2, 2, 2]


def test_cancelled_work_leaves_the_queue_and_is_never_translated():
    translator = StandInTranslator(blocked=True, render=with_beam)

    async def scenario(queue):
        first = queue.submit(["first"], SearchConfig(beam_size=1))
        await until(lambda: translator.calls)  # the worker is busy
        gone = queue.submit(["client went away"], SearchConfig(beam_size=1))
        kept = queue.submit(["kept"], SearchConfig(beam_size=1))
        assert queue.depth == 2
        gone.cancel()
        await until(lambda: queue.depth == 1)
        translator.gate.set()
        return await first, await kept

    first, kept = run_with_queue(translator, scenario, max_wait_ms=0)
    assert first[0][0].text == "first@1" and kept[0][0].text == "kept@1"
    assert [sentences for sentences, _ in translator.calls] == [["first"], ["kept"]]


def test_a_full_queue_refuses_and_a_closed_queue_takes_nothing():
    translator = StandInTranslator(blocked=True, render=with_beam)

    async def scenario(queue):
        first = queue.submit(["a"], SearchConfig(beam_size=1))
        await until(lambda: translator.calls)
        waiting = queue.submit(["b", "c"], SearchConfig(beam_size=1))
        with pytest.raises(QueueFull):
            queue.submit(["d"], SearchConfig(beam_size=1))
        translator.gate.set()
        await asyncio.gather(first, waiting)
        big = await queue.submit(["e", "f", "g"], SearchConfig(beam_size=1))  # larger than the queue, queue empty
        return big

    assert len(run_with_queue(translator, scenario, max_wait_ms=0, queue_size=2)) == 3


def test_close_drains_queued_work_then_stops():
    translator = StandInTranslator(blocked=True, render=with_beam)
    queue = BatchingQueue(translator, max_wait_ms=0)
    queue.start()

    async def scenario():
        first = queue.submit(["one"], SearchConfig(beam_size=1))
        await until(lambda: translator.calls)
        second = queue.submit(["two"], SearchConfig(beam_size=1))
        closing = asyncio.get_running_loop().run_in_executor(None, queue.close, 10)
        await until(lambda: queue._closing)
        with pytest.raises(QueueClosed):
            queue.submit(["late"], SearchConfig(beam_size=1))
        translator.gate.set()
        results = await asyncio.gather(first, second)
        await closing
        return results

    first, second = asyncio.run(scenario())
    assert first[0][0].text == "one@1" and second[0][0].text == "two@1"
    assert not any(thread.is_alive() for thread in queue._threads)


def test_a_failing_translation_fails_its_requests_and_the_worker_goes_on():
    class Flaky(StandInTranslator):
        def translate(self, sentences, search, batch_tokens):
            if "boom" in sentences:
                raise RuntimeError("boom")
            return super().translate(sentences, search, batch_tokens)

    async def scenario(queue):
        with pytest.raises(RuntimeError):
            await queue.submit(["boom"], SearchConfig(beam_size=1))
        return await queue.submit(["fine"], SearchConfig(beam_size=1))

    assert run_with_queue(Flaky(render=with_beam), scenario, max_wait_ms=0)[0][0].text == "fine@1"


def test_twenty_concurrent_http_requests_each_get_what_they_would_alone(tmp_path, tiny_model_dir, tiny_test_pairs):
    """Through the real model and queue: merging never changes or swaps a request's translation."""
    shutil.copytree(tiny_model_dir, tmp_path / "tiny-es-en")
    # int8-row: unlike int8, its output does not depend on batch companions (model/quantization.py);
    # merging itself must not change it either.
    app = create_app(ServiceSettings(models_dir=tmp_path, max_wait_ms=100, quantize="int8-row"))
    texts = [es for es, _ in tiny_test_pairs[:20]]
    body = {"source": "es", "target": "en", "beam_size": 2}

    async def scenario():
        async with app.router.lifespan_context(app):
            assert await asyncio.to_thread(app.state.registry.wait_until_loaded, 120)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service", timeout=300) as client:
                alone = [(await client.post("/translate", json={**body, "q": t})).json() for t in texts]
                together = await asyncio.gather(*[client.post("/translate", json={**body, "q": t}) for t in texts])
                return alone, [r.json() for r in together]

    alone, together = asyncio.run(scenario())
    assert together == alone
    assert len({a["translatedText"] for a in alone}) > 1  # different inputs, different outputs
    metrics = app.state.metrics.registry
    batches = metrics.get_sample_value("carousel_batch_requests_count", {"model": "tiny-es-en"})
    requests = metrics.get_sample_value("carousel_batch_requests_sum", {"model": "tiny-es-en"})
    assert requests == 40 and batches < 40  # the concurrent ones were merged
