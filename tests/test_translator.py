"""The text-in, text-out translator on a tiny trained model: long input, any Unicode, int8 by default."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from torch import nn

from carousel.model.search import SearchConfig
from carousel.model.translator import Translator
from carousel.model.loading import load_translator

SEARCH = SearchConfig(beam_size=2)


@pytest.fixture(scope="module")
def translator(tiny_model_dir) -> Translator:
    return load_translator(tiny_model_dir)  # int8, the default


@pytest.fixture(scope="module")
def float32(tiny_model_dir) -> Translator:
    """For exact comparisons across batches: int8 output can depend on the batch (model/quantization.py)."""
    return load_translator(tiny_model_dir, quantization="none")


def best(translator: Translator, text: str) -> str:
    return translator.translate_texts([text], SEARCH)[0][0][0]


def test_int8_is_the_default_precision(translator):
    modules = {type(m) for m in translator.model.modules()}
    assert nn.LSTM not in modules and nn.Linear not in modules  # replaced by their dynamic-int8 versions
    assert any("quantized" in t.__module__ for t in modules)


@pytest.mark.slow
def test_a_paragraph_is_translated_sentence_by_sentence_and_keeps_its_layout(float32, tiny_test_pairs):
    first, second, third = (es for es, _ in tiny_test_pairs[:3])
    text = f"{first} {second}\n\n{third}"
    alone = [best(float32, sentence) for sentence in (first, second, third)]
    assert best(float32, text) == f"{alone[0]} {alone[1]}\n\n{alone[2]}"
    # All sentences of all texts go through one search: the same result as one text at a time.
    together = float32.translate_texts([text, first, ""], SEARCH)
    assert [nbest[0][0] for nbest in together] == [best(float32, text), alone[0], ""]


@pytest.mark.slow
def test_nbest_of_a_paragraph_is_distinct_and_starts_with_the_best(float32, tiny_test_pairs):
    text = " ".join(es for es, _ in tiny_test_pairs[:2])
    nbest = float32.translate_texts([text], SearchConfig(beam_size=4, nbest=3))[0]
    texts = [t for t, _ in nbest]
    assert 1 <= len(nbest) <= 3 and len(set(texts)) == len(texts)
    assert nbest[0] == float32.translate_texts([text], SearchConfig(beam_size=4))[0][0]


@pytest.mark.slow
def test_input_far_beyond_training_lengths_returns_in_bounded_time(translator, tiny_test_pairs):
    verse = tiny_test_pairs[0][0]
    one_line = " ".join([verse] * 60)  # ~1,800 words on one line, no line break
    no_punctuation = "palabra " * 5000  # 40,000 characters, no sentence end at all
    start = time.perf_counter()
    results = translator.translate_texts([one_line, no_punctuation], SearchConfig(beam_size=1))
    assert all(nbest[0][0].strip() for nbest in results)
    assert time.perf_counter() - start < 120  # minutes if the search ran unbounded


# Hypothesis: any string in, a string out, the same one twice, no exception.
ANY_TEXT = st.text(st.characters(codec="utf-8"), max_size=60)


@pytest.mark.slow
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=ANY_TEXT)
@example(text="")
@example(text="   \n\t ")
@example(text="😀👍🏽 ¿qué? 🇪🇸")
@example(text="\x00\x01\x1b[31m\x7f\u200b\u2028\ufeff")
@example(text="שלום עולם مرحبا بالعالم \u202e Y dijo Dios")
@example(text="\ud7ff\ue000\U0010ffff ﷽")
@example(text="a" * 20_000)
@example(text="Y dijo Dios. " * 1_500)
def test_any_unicode_string_gives_a_string_deterministically(translator, text):
    first = translator.translate_texts([text], SearchConfig(beam_size=1))[0]
    again = translator.translate_texts([text], SearchConfig(beam_size=1))[0]
    assert isinstance(first[0][0], str) and first == again
    if not text.strip():
        assert not first[0][0].strip()
