"""Greedy and beam search on small random models: the properties any correct search has."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carousel.model.config import EOS_ID, ModelConfig
from carousel.model.search import SearchConfig, beam_search, best_candidates, greedy_search, max_output_lengths
from carousel.model.seq2seq import Seq2Seq

VARIANTS = [
    dict(attention="luong_general", input_feeding=False),
    dict(attention="bahdanau", input_feeding=True),
    dict(attention="luong_dot", input_feeding=False, rnn_type="gru"),
]


def small_model(seed: int = 0, **changes) -> Seq2Seq:
    torch.manual_seed(seed)
    config = ModelConfig(
        src_vocab_size=40, tgt_vocab_size=30, embedding_dim=16, encoder_hidden=16, decoder_hidden=32,
        attentional_dim=16, **changes,
    )
    model = Seq2Seq(config).eval()
    with torch.no_grad():  # make EOS rarer than in a random model so hypotheses get some length
        model.decoder.output_projection.bias[EOS_ID] = -2.0
    return model


def batch_of(lengths: list[int], vocab: int = 40, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    src = torch.randint(4, vocab, (len(lengths), max(lengths)), generator=generator)
    for row, length in enumerate(lengths):
        src[row, length - 1] = EOS_ID
        src[row, length:] = 0
    return src, torch.tensor(lengths)


@pytest.mark.parametrize("variant", VARIANTS)
def test_beam_of_one_equals_greedy(variant):
    model = small_model(**variant)
    src, lengths = batch_of([7, 3, 9, 1, 5])
    config = SearchConfig(beam_size=1)
    greedy = greedy_search(model, src, lengths, config)
    beam = beam_search(model, src, lengths, config)
    assert [h.tokens for h in greedy] == [b[0].tokens for b in beam]
    assert [h.score for h in greedy] == pytest.approx([b[0].score for b in beam], abs=1e-4)


@pytest.mark.parametrize("variant", VARIANTS)
def test_results_do_not_depend_on_batch_size_or_padding(variant):
    model = small_model(**variant)
    lengths = [7, 3, 9, 1, 5, 9]
    src, lens = batch_of(lengths)
    config = SearchConfig(beam_size=4, nbest=2)
    together = beam_search(model, src, lens, config)
    for row, length in enumerate(lengths):
        alone = beam_search(model, src[row : row + 1, :length], lens[row : row + 1], config)[0]
        assert [h.tokens for h in alone] == [h.tokens for h in together[row]]
        assert [h.score for h in alone] == pytest.approx([h.score for h in together[row]], abs=1e-4)


def test_nbest_is_sorted_and_distinct():
    model = small_model()
    src, lengths = batch_of([6, 8, 4])
    for nbest in beam_search(model, src, lengths, SearchConfig(beam_size=6, nbest=6)):
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in nbest}) == len(nbest) == 6


def test_wider_beam_never_finds_a_worse_best_score_here():
    model = small_model(seed=3)
    src, lengths = batch_of([6, 8, 4, 9], seed=5)
    narrow = beam_search(model, src, lengths, SearchConfig(beam_size=1, length_penalty=0))
    wide = beam_search(model, src, lengths, SearchConfig(beam_size=8, length_penalty=0))
    for n, w in zip(narrow, wide):
        assert w[0].score >= n[0].score - 1e-5


def test_output_length_is_bounded_by_the_source():
    model = small_model()
    with torch.no_grad():  # a model that never wants to stop
        model.decoder.output_projection.bias[EOS_ID] = -100.0
    src, lengths = batch_of([4, 9])
    config = SearchConfig(beam_size=3, max_length_ratio=1.5, max_length_offset=2)
    caps = max_output_lengths(lengths, config).tolist()
    for hyps, cap in zip(beam_search(model, src, lengths, config), caps):
        assert hyps and len(hyps[0].tokens) + 1 == cap  # EOS forced at the cap


def test_min_length_and_special_tokens():
    model = small_model()
    with torch.no_grad():
        model.decoder.output_projection.bias[EOS_ID] = 100.0  # a model that wants to stop at once
    src, lengths = batch_of([5, 5])
    for hyps in beam_search(model, src, lengths, SearchConfig(beam_size=3, min_length=4)):
        assert len(hyps[0].tokens) >= 4
        assert not {0, 1, 2, 3} & set(hyps[0].tokens)


def test_a_model_that_would_stop_at_once_still_says_something_by_default():
    model = small_model()
    with torch.no_grad():
        model.decoder.output_projection.bias[EOS_ID] = 100.0
    src, lengths = batch_of([3, 6])
    for search in (beam_search, greedy_search):
        config = SearchConfig(beam_size=3, length_penalty=1.0)
        results = search(model, src, lengths, config)
        firsts = [hyps[0] if isinstance(hyps, list) else hyps for hyps in results]
        assert all(len(hyp.tokens) >= 1 for hyp in firsts)  # never an empty translation of a source with words
    empty = beam_search(model, src, lengths, SearchConfig(beam_size=3, length_penalty=1.0, min_length=0))
    assert all(hyps[0].tokens == [] for hyps in empty)  # what the model alone would say


def test_no_repeat_ngram_blocks_repeats():
    model = small_model(seed=2)
    with torch.no_grad():
        model.decoder.output_projection.bias[EOS_ID] = -100.0
    src, lengths = batch_of([6, 6])
    for hyps in beam_search(model, src, lengths, SearchConfig(beam_size=3, no_repeat_ngram=2, max_length_offset=20)):
        tokens = hyps[0].tokens
        bigrams = list(zip(tokens, tokens[1:]))
        assert len(bigrams) == len(set(bigrams))


def test_no_repeat_ngram_allows_a_repetition_the_source_has():
    """A stutter is banned, a repetition the source has is not: the same model and sentence, once with a
    source that repeats a bigram, repeats target bigrams only then."""
    model = small_model(seed=2)
    with torch.no_grad():
        model.decoder.output_projection.bias[EOS_ID] = -100.0
        model.decoder.output_projection.bias[9] = 50.0  # a model that says token 9 forever
    config = SearchConfig(beam_size=2, no_repeat_ngram=2, max_length_offset=8)
    plain = torch.tensor([[5, 6, 7, 8, 10, EOS_ID]])
    repeating = torch.tensor([[5, 6, 5, 6, 10, EOS_ID]])
    lengths = torch.tensor([6])
    banned = beam_search(model, plain, lengths, config)[0][0].tokens
    allowed = beam_search(model, repeating, lengths, config)[0][0].tokens
    assert len(set(zip(banned, banned[1:]))) == len(banned) - 1
    assert allowed.count(9) == len(allowed) > 3


def test_alignment_has_one_row_per_target_token_and_sums_to_one():
    model = small_model()
    src, lengths = batch_of([6, 3])
    results = beam_search(model, src, lengths, SearchConfig(beam_size=3, return_alignment=True))
    for hyps, length in zip(results, lengths.tolist()):
        alignment = hyps[0].alignment
        assert alignment.shape == (len(hyps[0].tokens) + 1, length)
        assert torch.allclose(alignment.sum(dim=1), torch.ones(alignment.size(0)), atol=1e-5)


def test_scores_are_length_normalised_log_probabilities():
    model = small_model()
    src, lengths = batch_of([6])
    hyp = beam_search(model, src, lengths, SearchConfig(beam_size=2, length_penalty=1.0))[0][0]
    length = len(hyp.tokens) + 1
    assert hyp.score == pytest.approx(hyp.log_prob / ((5 + length) / 6), rel=1e-6)
    assert hyp.log_prob < 0


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lengths=st.lists(st.integers(1, 12), min_size=1, max_size=6), beam=st.integers(1, 5))
def test_any_batch_gives_one_result_per_sentence(lengths, beam):
    model = small_model()
    src, lens = batch_of(lengths)
    results = beam_search(model, src, lens, SearchConfig(beam_size=beam))
    assert len(results) == len(lengths)
    assert all(len(r) == 1 for r in results)


@pytest.mark.parametrize("sentences, beams, vocab, count", [(1, 1, 7, 2), (3, 5, 40, 10), (8, 4, 1000, 8), (2, 3, 5, 6)])
def test_best_candidates_are_those_of_a_top_k_over_beams_and_vocabulary(sentences, beams, vocab, count):
    torch.manual_seed(sentences * vocab)
    candidates = torch.randn(sentences, beams, vocab)
    candidates[0, 1:] = -math.inf  # the first step: one live beam per sentence
    expected = candidates.view(sentences, -1).topk(count, dim=1)
    scores, index = best_candidates(candidates, count)
    assert torch.equal(scores, expected.values)
    finite = torch.isfinite(expected.values)  # among equal -inf scores either index will do
    assert torch.equal(index[finite], expected.indices[finite])


def test_a_config_without_a_beam_leaves_it_to_the_model_and_checks_what_it_can():
    assert SearchConfig().beam_size is None and SearchConfig().beam == 5  # the model's own, else 5
    assert SearchConfig(nbest=3).nbest == 3  # the translator widens the model's beam to it
    with pytest.raises(ValueError, match="nbest"):
        SearchConfig(beam_size=2, nbest=3)
    with pytest.raises(ValueError, match="beam_size must be between 1 and 64"):
        SearchConfig(beam_size=65)


@pytest.mark.parametrize("alpha", [1.0, 3.0])
def test_more_patience_only_adds_finished_hypotheses_so_the_best_score_never_falls(alpha):
    """Kasai et al. 2022: the search runs as with patience 1 until K hypotheses have finished, then goes on,
    so the best of the larger finished set scores at least as well. With a strong length penalty the usual
    rule stops before longer hypotheses can finish and win: here it keeps one-token outputs."""
    model = small_model(seed=1)
    with torch.no_grad():  # EOS likely: short hypotheses finish first
        model.decoder.output_projection.bias[EOS_ID] = 1.0
    src, lengths = batch_of([6, 8, 4, 9, 7], seed=5)
    usual = beam_search(model, src, lengths, SearchConfig(beam_size=3, nbest=3, length_penalty=alpha))
    patient = beam_search(model, src, lengths, SearchConfig(beam_size=3, nbest=3, length_penalty=alpha, patience=3))
    assert SearchConfig().patience is None and SearchConfig().patience_factor == 1.0
    assert usual == beam_search(model, src, lengths, SearchConfig(beam_size=3, nbest=3, length_penalty=alpha,
                                                                   patience=1)), "patience 1 is the usual rule"
    for u, p in zip(usual, patient):
        assert len(p) == 3 and p[0].score >= u[0].score - 1e-6
    if alpha == 3.0:
        assert all(len(p[0].tokens) > len(u[0].tokens) for u, p in zip(usual, patient))


@pytest.mark.parametrize("patience", [0.5, 0, 9, True])
def test_a_patience_out_of_range_is_refused(patience):
    with pytest.raises(ValueError, match="patience must be between 1 and 8"):
        SearchConfig(patience=patience)
