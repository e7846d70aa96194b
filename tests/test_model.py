"""The encoder-decoder's parts: the encoder equals a packed bi-LSTM, attention masks padding, tying, averaging."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_model
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from carousel.model.attention import BahdanauAttention, LuongDotAttention, LuongGeneralAttention
from carousel.model.config import ModelConfig
from carousel.model.seq2seq import Seq2Seq
from carousel.training.export import average_weights

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


def feeding_model_and_batch(feeding: bool):
    torch.manual_seed(2)
    model = Seq2Seq(ModelConfig(**CONFIG, input_feeding=feeding)).eval()
    src, lengths, tgt = torch.randint(4, 50, (3, 6)), torch.tensor([6, 4, 6]), torch.randint(4, 40, (3, 5))
    src[1, 4:] = 0
    return model, src, lengths, tgt


@torch.no_grad()
def logits_with_attentional_shifted_at(model, src, lengths, tgt, step: int | None) -> torch.Tensor:
    """Teacher-forced logits, with the attentional vector a_step of every row shifted (none: unchanged)."""
    position = 0

    def shift(module, inputs, output):  # the attentional layer's output, whole sequence or one step
        nonlocal position
        if step is not None and position <= step < position + output.size(1):
            output = output.clone()
            output[:, step - position] += 0.5
        position += output.size(1)
        return output

    handle = model.decoder.attentional_layer.register_forward_hook(shift)
    try:
        return model(src, lengths, tgt)
    finally:
        handle.remove()


@pytest.mark.parametrize("feeding", [False, True])
def test_input_feeding_carries_each_attentional_vector_into_the_next_steps(feeding):
    model, src, lengths, tgt = feeding_model_and_batch(feeding)
    clean = logits_with_attentional_shifted_at(model, src, lengths, tgt, None)
    shifted = logits_with_attentional_shifted_at(model, src, lengths, tgt, 2)
    assert torch.equal(clean[:, :2], shifted[:, :2])  # earlier steps never see a_2
    assert ((clean[:, 2] - shifted[:, 2]).abs().amax(dim=-1) > 1e-4).all()  # a_2 gives step 2's output
    later = (clean[:, 3:] - shifted[:, 3:]).abs().amax(dim=-1)  # [rows, later steps]
    if feeding:
        assert (later > 1e-4).all()  # fed into the LSTM at step 3, and from there to every later step
    else:
        assert torch.equal(clean[:, 3:], shifted[:, 3:])  # the LSTM never sees a_t


@pytest.mark.parametrize("feeding", [False, True])
def test_decoding_step_by_step_equals_teacher_forcing(feeding):
    """The state the decoder hands back (with input feeding: the last attentional vector) is all the
    next step needs: search decodes one token at a time, training the whole target at once."""
    model, src, lengths, tgt = feeding_model_and_batch(feeding)
    with torch.no_grad():
        _, memory, state = model.encode(src, lengths)
        whole = model(src, lengths, tgt)
        steps = []
        for t in range(tgt.size(1)):
            logits, state, _ = model.decoder(tgt[:, t : t + 1], state, memory)
            steps.append(logits)
    torch.testing.assert_close(torch.cat(steps, dim=1), whole, rtol=1e-5, atol=1e-5)
    assert (state.attentional is not None) == feeding


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
