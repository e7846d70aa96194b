"""int8 with a scale per sentence (`int8-row`, model/quantization.py) and the shortlist's per-sentence
vocabularies (model/shortlist.py): close to float32, and with `int8-row` or `none` a sentence's translation
never depends on the sentences batched with it."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import torch
from torch import nn

from carousel.model.config import EOS_ID, PAD_ID
from carousel.model.loading import load_translator
from carousel.model.quantization import Int8Linear, Int8Recurrent, quantize_rows
from carousel.model.search import SearchConfig
from carousel.model.shortlist import Shortlist


def _relative_error(approximate: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approximate - exact).norm() / exact.norm())


def test_rows_are_quantized_each_on_its_own_scale():
    x = torch.tensor([[0.5, -1.0, 0.25], [200.0, 100.0, -50.0]])
    values, scale = quantize_rows(x)
    assert values.dtype == torch.int8
    assert values[:, :2].abs().max(dim=1).values.tolist() == [127, 127]  # each row uses the whole range
    assert torch.allclose(values.float() * scale, x, rtol=0.01)


def test_an_int8_linear_layer_is_close_to_float_and_each_row_ignores_its_neighbours():
    torch.manual_seed(0)
    layer = nn.Linear(64, 96)
    int8 = Int8Linear.from_float(layer.weight, layer.bias)
    x = torch.randn(5, 64)
    with torch.no_grad():
        assert _relative_error(int8(x), layer(x)) < 0.02
        alone = int8(x[:1])
        beside_large = int8(torch.cat([x[:1], 1000 * torch.randn(7, 64)]))[:1]
    assert torch.equal(alone, beside_large)


def test_int8_rows_of_a_layer_give_the_same_logits_as_the_whole_layer():
    torch.manual_seed(1)
    layer = nn.Linear(16, 40)
    int8 = Int8Linear.from_float(layer.weight, layer.bias)
    ids = torch.tensor([3, 7, 8, 39])
    x = torch.randn(4, 16)
    assert torch.equal(int8.rows(ids)(x), int8(x)[:, ids])


@pytest.mark.parametrize("kind", [nn.LSTM, nn.GRU])
def test_int8_recurrent_layers_follow_the_float_ones_and_rows_ignore_their_neighbours(kind):
    torch.manual_seed(2)
    rnn = kind(12, 20, num_layers=2, batch_first=True).eval()
    int8 = Int8Recurrent(rnn)
    x = torch.randn(3, 9, 12)
    hidden = torch.randn(2, 3, 20) * 0.5
    state = (hidden, torch.randn(2, 3, 20) * 0.5) if kind is nn.LSTM else hidden
    with torch.no_grad():
        exact, exact_final = rnn(x, state)
        approximate, final = int8(x, state)
        assert approximate.shape == exact.shape
        assert _relative_error(approximate, exact) < 0.03
        for got, want in zip(final if kind is nn.LSTM else [final], exact_final if kind is nn.LSTM else [exact_final]):
            assert _relative_error(got, want) < 0.03
        first_alone, _ = int8(x[:1], tuple(s[:, :1] for s in state) if kind is nn.LSTM else state[:, :1])
    # Equal up to float rounding: vectorised sigmoid and tanh may round the last bit differently with
    # the tensor's length. Whole translations, below, come out identical.
    assert torch.allclose(first_alone[0], approximate[0], rtol=0, atol=1e-5)


def test_int8_recurrent_layers_refuse_what_they_do_not_spell_out():
    with pytest.raises(ValueError, match="unidirectional"):
        Int8Recurrent(nn.LSTM(4, 4, bidirectional=True, batch_first=True))


def test_each_sentence_is_allowed_only_its_own_vocabulary_of_the_batch_shortlist():
    translations = torch.tensor([[9, 10]] * 20)
    translations[7] = torch.tensor([15, 16])
    translations[8] = torch.tensor([17, 18])
    shortlist = Shortlist(frequent=torch.tensor([5]), translations=translations, copy_source=True)
    src = torch.tensor([[7, EOS_ID, PAD_ID], [8, 4, EOS_ID]])
    ids = shortlist.vocabulary(src)
    allowed = shortlist.allowed(src, ids)
    own = [set(ids[row].tolist()) for row in allowed]
    alone = [set(shortlist.vocabulary(src[i : i + 1, : 2 if i == 0 else 3]).tolist()) for i in range(2)]
    assert own == alone
    assert 17 not in own[0] and 15 not in own[1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["int8-row", "none"])
def test_a_sentence_translates_the_same_alone_as_in_any_batch(tmp_path, tiny_model_dir, mode):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    done = subprocess.run([sys.executable, "-m", "carousel", "shortlist", "--model", str(model), "--per-source", "3",
                           "--frequent", "10"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    translator = load_translator(model, mode)
    assert translator.shortlist is not None and translator.shortlist_per_sentence
    sentences = ["Y dijo Dios: Sea la luz.", "En el principio creó Dios los cielos y la tierra, y la tierra estaba "
                 "desordenada y vacía, y las tinieblas estaban sobre la haz del abismo.", "Jesús lloró.",
                 "Amén.", "Y vio Dios que la luz era buena; y separó Dios la luz de las tinieblas."]
    search = SearchConfig(beam_size=3)
    together = [nbest[0].text for nbest in translator.translate(sentences, search)]
    alone = [translator.translate([sentence], search)[0][0].text for sentence in sentences]
    reversed_batch = [nbest[0].text for nbest in translator.translate(sentences[::-1], search)][::-1]
    assert together == alone == reversed_batch


def test_only_the_batch_independent_precisions_keep_each_sentence_to_its_own_shortlist(tiny_model_dir):
    assert not load_translator(tiny_model_dir, "int8").shortlist_per_sentence  # the fast default: per batch
    assert load_translator(tiny_model_dir, "int8-row").shortlist_per_sentence
    assert load_translator(tiny_model_dir, "none").shortlist_per_sentence
