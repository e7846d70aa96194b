"""Reduced-precision inference: int8 weights and activations, or bfloat16, applied to a loaded model.

    none      float32, as trained
    int8      LSTM, GRU and Linear weights stored as int8; activations quantized on the fly with one scale
              per layer input, i.e. per batch (`torch.ao.quantization.quantize_dynamic`). The default.
    int8-row  int8 weights (a scale per output unit) and each row of a layer's input (one sentence or
              beam) quantized with a scale of its own; the int32 products of `torch._int_mm` are scaled
              back to float32, and the recurrent layers are spelt out step by step (`Int8Recurrent`).
    bf16      every weight and activation in bfloat16 (fast on CPUs with AVX-512 BF16 / AMX)

Embeddings, attention arithmetic and the cell state stay float32 in both int8 modes. Each changes the
translations slightly; benchmarks/decode.py measures speed and BLEU.

`int8` shares one activation scale across the batch, so a sentence's activations are rounded on a grid
set by the largest value anywhere in its batch, and a sentence can come out differently alone than
beside others (68 of 150 FLORES dev sentences with the shipped es→en model, shortlist off). `int8-row`
makes every sentence's arithmetic its own, as `none` does: with either, a translation never depends on
what else the batch, or the service's cross-request batching, put beside it (the translator also keeps
each sentence to its own part of the shortlist, model/shortlist.py). Its rounding is finer (a layer's
relative error about half), and its BLEU the same, but it is slower: torch's fused int8 LSTM runs a
whole sequence in one call, while `Int8Recurrent` costs a dozen small operations per step in Python
(FLORES devtest offline about 20% slower; batches of 8 sentences, as the service forms them, about 35%).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor, nn

from carousel.model.precision import QUANTIZE_MODES

INT8_MAX = 127


def quantize(model: nn.Module, mode: str) -> nn.Module:
    """Return `model` prepared for inference in `mode` (modified in place; use the returned object)."""
    model.eval()
    if mode == "none":
        return model
    if mode == "int8":
        if torch.backends.quantized.engine == "none":
            raise ValueError("int8 quantization needs a quantized engine (fbgemm or qnnpack) in this PyTorch build")
        # A tied output projection shares its weight with the target embedding: the Linear gets its own
        # int8 copy, the embedding keeps the float tensor, so both stay correct (in int8-row too).
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, but still ships (and works) here.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            layers = {nn.LSTM, nn.GRU, nn.Linear}
            return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8, inplace=True)
    if mode == "int8-row":
        _replace_with_int8(model)
        return model
    if mode == "bf16":
        return model.to(torch.bfloat16)
    raise ValueError(f"unknown quantization {mode!r} (choose from {', '.join(QUANTIZE_MODES)})")


def _replace_with_int8(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.Linear):
            setattr(module, name, Int8Linear.from_float(child.weight, child.bias))
        elif isinstance(child, (nn.LSTM, nn.GRU)):
            setattr(module, name, Int8Recurrent(child))
        else:
            _replace_with_int8(child)


def quantize_rows(x: Tensor) -> tuple[Tensor, Tensor]:
    """x [N, D] float -> (int8 values [N, D], scale [N, 1]) with x ≈ values × scale, one scale per row."""
    scale = torch.linalg.vector_norm(x, float("inf"), dim=1, keepdim=True).clamp_min_(1e-12).div_(INT8_MAX)
    return torch.div(x, scale).round_().to(torch.int8), scale  # |x / scale| ≤ 127 by the choice of scale


class Int8Linear(nn.Module):
    """y = x Wᵀ + b with W in int8 (a scale per output unit) and each row of x quantized on the fly."""

    def __init__(self, weight_t: Tensor, scale: Tensor, bias: Tensor | None):
        super().__init__()
        self.register_buffer("weight_t", weight_t)  # [in, out] int8: the layout torch._int_mm takes
        self.register_buffer("scale", scale)  # [out] float32
        self.register_buffer("bias", bias)  # [out] float32, or None

    @classmethod
    def from_float(cls, weight: Tensor, bias: Tensor | None) -> "Int8Linear":
        values, scale = quantize_rows(weight.detach().float())
        return cls(values.t().contiguous(), scale.squeeze(1), None if bias is None else bias.detach().float().clone())

    @property
    def out_features(self) -> int:
        return self.weight_t.size(1)

    def rows(self, ids: Tensor) -> "Int8Linear":
        """The layer cut to the output units `ids` (a search's shortlist, model/shortlist.py)."""
        bias = None if self.bias is None else self.bias.index_select(0, ids)
        return Int8Linear(self.weight_t.index_select(1, ids).contiguous(), self.scale.index_select(0, ids), bias)

    def forward(self, x: Tensor) -> Tensor:
        leading = x.shape[:-1]
        values, row_scale = quantize_rows(x.reshape(-1, x.size(-1)).float())
        y = torch._int_mm(values, self.weight_t).float().mul_(row_scale).mul_(self.scale)
        if self.bias is not None:
            y += self.bias
        return y.reshape(*leading, self.out_features)


class Int8Recurrent(nn.Module):
    """A unidirectional, batch-first `nn.LSTM` or `nn.GRU` (any number of layers) with int8 weights,
    called as the module it replaces: (input [N, T, D], state) -> (outputs [N, T, H], final state)."""

    def __init__(self, rnn: nn.LSTM | nn.GRU):
        super().__init__()
        if not rnn.batch_first or rnn.bidirectional or getattr(rnn, "proj_size", 0):
            raise ValueError("int8 recurrent layers are unidirectional and batch-first, without projections")
        self.lstm = isinstance(rnn, nn.LSTM)
        self.hidden_size, self.num_layers = rnn.hidden_size, rnn.num_layers
        inputs, recurrent = [], []
        for layer in range(rnn.num_layers):
            weight_ih, weight_hh = getattr(rnn, f"weight_ih_l{layer}"), getattr(rnn, f"weight_hh_l{layer}")
            bias_ih, bias_hh = getattr(rnn, f"bias_ih_l{layer}", None), getattr(rnn, f"bias_hh_l{layer}", None)
            if self.lstm and bias_ih is not None:  # the LSTM adds both biases: one addition saved per step
                bias_ih, bias_hh = bias_ih + bias_hh, None
            inputs.append(Int8Linear.from_float(weight_ih, bias_ih))
            recurrent.append(Int8Linear.from_float(weight_hh, bias_hh))
        self.inputs, self.recurrent = nn.ModuleList(inputs), nn.ModuleList(recurrent)

    def forward(self, x: Tensor, state=None):
        batch, steps = x.size(0), x.size(1)
        if state is None:
            zeros = x.new_zeros(self.num_layers, batch, self.hidden_size, dtype=torch.float32)
            state = (zeros, zeros) if self.lstm else zeros
        hidden, cell = state if self.lstm else (state, None)
        final_hidden, final_cell = [], []
        for layer in range(self.num_layers):
            projected = self.inputs[layer](x)  # [N, T, gates × H]: every step's input at once
            h = hidden[layer]
            c = cell[layer] if self.lstm else None
            outputs = []
            for t in range(steps):
                if self.lstm:
                    h, c = self._lstm_step(projected[:, t], h, c, self.recurrent[layer])
                else:
                    h = self._gru_step(projected[:, t], h, self.recurrent[layer])
                outputs.append(h)
            x = torch.stack(outputs, dim=1)
            final_hidden.append(h)
            final_cell.append(c)
        if self.lstm:
            return x, (torch.stack(final_hidden), torch.stack(final_cell))
        return x, torch.stack(final_hidden)

    @staticmethod
    def _lstm_step(projected: Tensor, h: Tensor, c: Tensor, recurrent: Int8Linear) -> tuple[Tensor, Tensor]:
        gates, size = recurrent(h).add_(projected), h.size(1)  # gate order i, f, g, o
        input_forget = torch.sigmoid(gates[:, : 2 * size])  # i and f in one call
        c = input_forget[:, size:] * c + input_forget[:, :size] * torch.tanh(gates[:, 2 * size : 3 * size])
        return torch.sigmoid(gates[:, 3 * size :]) * torch.tanh(c), c

    @staticmethod
    def _gru_step(projected: Tensor, h: Tensor, recurrent: Int8Linear) -> Tensor:
        input_r, input_z, input_n = projected.chunk(3, dim=1)
        hidden_r, hidden_z, hidden_n = recurrent(h).chunk(3, dim=1)
        r = torch.sigmoid(input_r + hidden_r)
        z = torch.sigmoid(input_z + hidden_z)
        n = torch.tanh(input_n + r * hidden_n)
        return (1 - z) * n + z * h
