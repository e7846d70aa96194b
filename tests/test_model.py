"""The encoder-decoder's parts: the encoder equals a packed bi-LSTM, attention masks padding, tying, averaging."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_model
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.attention import BahdanauAttention, LuongDotAttention, LuongGeneralAttention
from model.config import ModelConfig
from model.seq2seq import Seq2Seq
from training.trainer import average_weights

CONFIG = dict(src_vocab_size=50, tgt_vocab_size=40, embedding_dim=12, encoder_hidden=10, decoder_hidden=20,
              attentional_dim=12, encoder_layers=2, decoder_layers=2, embedding_dropout=0, hidden_dropout=0,
              output_dropout=0)


def copy_into_bidirectional(encoder, packed_lstm: nn.LSTM) -> None:
    """Give a 2-layer bidirectional nn.LSTM the weights of our per-direction LSTMs."""
    with torch.no_grad():
        for layer, (fwd, bwd) in enumerate(zip(encoder.forward_rnns, encoder.backward_rnns)):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(packed_lstm, f"{name}_l{layer}").copy_(getattr(fwd, f"{name}_l0"))
                getattr(packed_lstm, f"{name}_l{layer}_reverse").copy_(getattr(bwd, f"{name}_l0"))


def test_encoder_equals_a_packed_bidirectional_lstm_with_the_same_weights():
    torch.manual_seed(0)
    model = Seq2Seq(ModelConfig(**CONFIG)).eval()
    encoder = model.encoder
    packed_lstm = nn.LSTM(12, 10, num_layers=2, bidirectional=True, batch_first=True)
    copy_into_bidirectional(encoder, packed_lstm)
    lengths = torch.tensor([7, 3, 5, 1])
    src = torch.randint(4, 50, (4, 7))
    for row, length in enumerate(lengths):
        src[row, length:] = 0
    ours = encoder(src, lengths)
    packed = pack_padded_sequence(encoder.embedding(src), lengths, batch_first=True, enforce_sorted=False)
    states, (h_n, _) = packed_lstm(packed)
    states, _ = pad_packed_sequence(states, batch_first=True, total_length=7)
    mask = ours.mask.unsqueeze(-1)
    assert torch.allclose(ours.states * mask, states * mask, atol=1e-6)
    assert torch.allclose(ours.final_hidden, torch.cat([h_n[-2], h_n[-1]], dim=-1), atol=1e-6)


@pytest.mark.parametrize("attention", [
    LuongDotAttention(), LuongGeneralAttention(8, 8), BahdanauAttention(8, 8, 6),
])
def test_attention_gives_padding_no_weight_and_sums_to_one(attention):
    torch.manual_seed(1)
    keys = torch.randn(2, 5, 8)
    mask = torch.tensor([[True] * 5, [True, True, False, False, False]])
    context, weights = attention(torch.randn(2, 3, 8), attention.project_keys(keys), keys, mask)
    assert context.shape == (2, 3, 8)
    assert torch.all(weights[1, :, 2:] == 0)
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3))


def test_tied_output_shares_the_target_embedding_and_forget_bias_is_one():
    model = Seq2Seq(ModelConfig(**CONFIG))
    assert model.decoder.output_projection.weight is model.decoder.embedding.weight
    hidden = 20
    bias = model.decoder.rnn.bias_ih_l0 + model.decoder.rnn.bias_hh_l0
    assert torch.allclose(bias[hidden : 2 * hidden], torch.ones(hidden))
    with pytest.raises(ValueError, match="tie_output"):
        ModelConfig(**{**CONFIG, "attentional_dim": 13})


def test_input_feeding_changes_the_decoder_but_keeps_shapes():
    torch.manual_seed(2)
    src, lengths, tgt = torch.randint(4, 50, (3, 6)), torch.tensor([6, 6, 6]), torch.randint(4, 40, (3, 5))
    for feeding in (False, True):
        model = Seq2Seq(ModelConfig(**CONFIG, input_feeding=feeding)).eval()
        assert model(src, lengths, tgt).shape == (3, 5, 40)


def test_averaged_weights_are_the_mean_of_the_snapshots(tmp_path):
    config = ModelConfig(**CONFIG)
    snapshots = []
    for seed in (1, 2, 3):
        torch.manual_seed(seed)
        snapshot = Seq2Seq(config)
        save_model(snapshot, str(tmp_path / f"{seed}.safetensors"))
        snapshots.append(snapshot.state_dict())
    averaged = Seq2Seq(config)
    average_weights(averaged, [tmp_path / f"{s}.safetensors" for s in (1, 2, 3)])
    for name, tensor in averaged.state_dict().items():
        expected = sum(s[name] for s in snapshots) / 3
        assert torch.allclose(tensor, expected, atol=1e-6), name
