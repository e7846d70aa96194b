"""The lexical shortlist: what it counts, that a search over it is the full search cut to its ids,
and that a model directory's shortlist is loaded, checked and used."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest
import torch

from carousel.model.config import BOS_ID, EOS_ID, PAD_ID, UNK_ID
from carousel.model.loading import ModelLoadError, load_translator
from carousel.model.search import SearchConfig, beam_search
from carousel.model.shortlist import Shortlist, build_shortlist, load_shortlist, save_shortlist
from tests.test_search import batch_of, small_model

SPECIALS = [PAD_ID, UNK_ID, BOS_ID]


def test_each_source_piece_brings_the_target_pieces_it_occurs_with():
    # source piece 10 always comes with target piece 20, 11 with 21; 5 and 6 are in every target
    sources = [[10, 4], [10, 7], [11, 4], [11, 8], [10, 11]] * 3
    targets = [[20, 5, 6], [20, 5, 6], [21, 5, 6], [21, 5, 6], [20, 21, 5, 6]] * 3
    shortlist = build_shortlist(sources, targets, source_vocab=12, target_vocab=25, per_source=1, frequent=2)
    assert shortlist.translations[10].tolist() == [20]
    assert shortlist.translations[11].tolist() == [21]
    assert shortlist.frequent.tolist() == [5, 6]


def test_the_vocabulary_holds_eos_the_frequent_pieces_translations_and_copies_but_no_specials():
    translations = torch.tensor([[PAD_ID, 9]] * 12)
    translations[7] = torch.tensor([15, 16])
    shortlist = Shortlist(frequent=torch.tensor([5, UNK_ID]), translations=translations, copy_source=True)
    src = torch.tensor([[7, 8, EOS_ID, PAD_ID]])
    ids = shortlist.vocabulary(src).tolist()
    assert ids == sorted(ids)
    assert {EOS_ID, 5, 15, 16, 9, 7, 8} <= set(ids)
    assert not set(SPECIALS) & set(ids)
    without_copies = Shortlist(shortlist.frequent, translations, copy_source=False).vocabulary(src).tolist()
    assert 8 not in without_copies


@pytest.mark.parametrize("ngram_ban", [0, 2])
def test_a_shortlist_of_the_whole_vocabulary_searches_exactly_as_the_full_output_layer(ngram_ban):
    model = small_model(seed=3)
    with torch.no_grad():  # the full search normalises over PAD, UNK and BOS too: give them no mass
        model.decoder.output_projection.bias[SPECIALS] = -50.0
    src, lengths = batch_of([7, 3, 9, 5])
    config = SearchConfig(beam_size=4, nbest=2, no_repeat_ngram=ngram_ban)
    everything = torch.tensor([i for i in range(model.config.tgt_vocab_size) if i not in SPECIALS])
    full = beam_search(model, src, lengths, config)
    cut = beam_search(model, src, lengths, config, shortlist=everything)
    assert [[h.tokens for h in n] for n in full] == [[h.tokens for h in n] for n in cut]
    for full_nbest, cut_nbest in zip(full, cut):
        assert [h.log_prob for h in cut_nbest] == pytest.approx([h.log_prob for h in full_nbest], abs=1e-4)


def test_a_search_over_a_shortlist_outputs_only_its_ids_and_still_ends():
    model = small_model(seed=4)
    src, lengths = batch_of([6, 8])
    allowed = torch.tensor([EOS_ID, 7, 11, 12, 20])
    results = beam_search(model, src, lengths, SearchConfig(beam_size=3, nbest=3, no_repeat_ngram=2), shortlist=allowed)
    for nbest in results:
        assert nbest, "every sentence gets hypotheses"
        for hypothesis in nbest:
            assert set(hypothesis.tokens) <= {7, 11, 12, 20}
            pairs = list(zip(hypothesis.tokens, hypothesis.tokens[1:]))
            assert len(pairs) == len(set(pairs)), "the n-gram ban holds in shortlist columns"


@pytest.mark.parametrize("ngram_ban", [0, 2])
def test_each_sentence_of_a_batch_is_searched_over_its_own_shortlist_as_if_alone(ngram_ban):
    model = small_model(seed=6)
    translations = torch.randint(4, 30, (40, 3), generator=torch.Generator().manual_seed(2))
    shortlist = Shortlist(frequent=torch.tensor([4, 5]), translations=translations, copy_source=False)
    src, lengths = batch_of([7, 3, 9, 5])
    config = SearchConfig(beam_size=3, nbest=3, no_repeat_ngram=ngram_ban)
    ids = shortlist.vocabulary(src)
    together = beam_search(model, src, lengths, config, shortlist=ids, allowed=shortlist.allowed(src, ids))
    for row, length in enumerate(lengths.tolist()):
        one = src[row : row + 1, :length]
        own = shortlist.vocabulary(one)
        alone = beam_search(model, one, lengths[row : row + 1], config, shortlist=own)[0]
        assert [h.tokens for h in together[row]] == [h.tokens for h in alone]
        assert [h.log_prob for h in together[row]] == pytest.approx([h.log_prob for h in alone], abs=1e-4)
        assert all(set(h.tokens) <= set(own.tolist()) for h in together[row])


def test_a_batch_with_a_short_sentence_gets_the_whole_vocabulary_and_a_long_one_alone_keeps_its_list():
    translations = torch.full((12, 1), 9)
    shortlist = Shortlist(frequent=torch.tensor([5]), translations=translations, copy_source=False, whole_below=3)
    short, long = torch.tensor([[7, EOS_ID, PAD_ID, PAD_ID]]), torch.tensor([[7, 8, 10, EOS_ID]])
    assert shortlist.vocabulary(short) is None, "the output layer as it is"
    assert shortlist.vocabulary(long).tolist() == [EOS_ID, 5, 9]
    assert shortlist.vocabulary(torch.cat([short, long])) is None, "a batch's one list: the whole vocabulary"
    assert shortlist.short(torch.cat([short, long])).tolist() == [True, False]


def test_the_shortlist_file_round_trips(tmp_path):
    shortlist = Shortlist(torch.tensor([4, 5]), torch.tensor([[6, 7], [8, 9]]), copy_source=True)
    save_shortlist(tmp_path / "s.safetensors", shortlist)
    loaded = load_shortlist(tmp_path / "s.safetensors")
    assert loaded.frequent.tolist() == [4, 5] and loaded.translations.tolist() == [[6, 7], [8, 9]]
    assert loaded.copy_source is True


def test_carousel_shortlist_gives_a_model_directory_a_checked_shortlist_that_translation_uses(tmp_path, tiny_model_dir):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    done = subprocess.run([sys.executable, "-m", "carousel", "shortlist", "--model", str(model), "--per-source", "5",
                           "--frequent", "20"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    card = json.loads((model / "card.json").read_text())
    assert card["shortlist"]["file"] == "shortlist.safetensors" and card["shortlist"]["per_source"] == 5
    assert card["shortlist"]["whole_vocabulary_below"] == 16, "the default, recorded"

    translator = load_translator(model)
    assert translator.shortlist is not None and translator.shortlist.whole_below == 16
    sentences = ["En el principio creó Dios los cielos y la tierra.", "Y dijo Dios: Sea la luz."]
    with_list = translator.translate(sentences, SearchConfig(beam_size=3))
    without = translator.translate(sentences, SearchConfig(beam_size=3, shortlist=False))
    assert all(t[0].text for t in with_list) and all(t[0].text for t in without)

    del card["shortlist"]["whole_vocabulary_below"]  # a card from before: every sentence keeps the list
    (model / "card.json").write_text(json.dumps(card), encoding="utf-8")
    assert load_translator(model).shortlist.whole_below == 0
    refused = subprocess.run([sys.executable, "-m", "carousel", "shortlist", "--model", str(model), "--whole-below", "-1"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "--whole-below" in refused.stderr and "Traceback" not in refused.stderr

    (model / "shortlist.safetensors").write_bytes(b"not the file the card names")
    with pytest.raises(ModelLoadError, match="checksum"):
        load_translator(model)


def test_carousel_shortlist_explains_a_missing_model(tmp_path):
    done = subprocess.run([sys.executable, "-m", "carousel", "shortlist", "--model", str(tmp_path / "none")],
                          capture_output=True, text=True)
    assert done.returncode == 2
    assert "does not exist" in done.stderr and "Traceback" not in done.stderr


def test_an_int8_model_searches_a_whole_vocabulary_shortlist_as_its_full_int8_output_layer():
    from carousel.model.quantization import quantize

    model = small_model(seed=5)
    with torch.no_grad():
        model.decoder.output_projection.bias[SPECIALS] = -50.0
    model = quantize(model, "int8")
    src, lengths = batch_of([7, 4, 9])
    config = SearchConfig(beam_size=3)
    everything = torch.tensor([i for i in range(model.config.tgt_vocab_size) if i not in SPECIALS])
    full = beam_search(model, src, lengths, config)
    cut = beam_search(model, src, lengths, config, shortlist=everything)
    assert [n[0].tokens for n in full] == [n[0].tokens for n in cut]


def test_short_and_long_sentences_are_searched_apart_so_the_long_keep_their_list(tmp_path, tiny_model_dir, monkeypatch):
    import carousel.model.translator as translator_module

    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    sentences = ["Amén.", "Jesús lloró.", "Y dijo Dios: Sea la luz.",
                 "En el principio creó Dios los cielos y la tierra, y la tierra estaba desordenada y vacía."]
    translator = load_translator(model)  # int8: one list per batch
    lengths = sorted(len(translator.encode_source(s)) for s in sentences)
    below = lengths[2]  # two short sentences, two long
    done = subprocess.run([sys.executable, "-m", "carousel", "shortlist", "--model", str(model), "--per-source", "3",
                           "--frequent", "10", "--whole-below", str(below)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    translator = load_translator(model)
    searched = []
    real_search = translator_module.beam_search

    def recording(model, src, lengths, config, shortlist=None, allowed=None):
        searched.append((lengths.tolist(), shortlist is None))
        return real_search(model, src, lengths, config, shortlist=shortlist, allowed=allowed)

    monkeypatch.setattr(translator_module, "beam_search", recording)
    results = translator.translate(sentences, SearchConfig(beam_size=2))
    assert all(nbest[0].text for nbest in results)
    assert sorted(length for batch, _ in searched for length in batch) == lengths
    for batch, uncut in searched:
        assert all(length < below for length in batch) == uncut, "short ones uncut, long ones on their list"
        assert all(length < below for length in batch) or all(length >= below for length in batch)
