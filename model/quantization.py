"""Reduced-precision inference: int8 dynamic quantization or bfloat16 weights, applied to a loaded model.

    none   float32, as trained
    int8   LSTM, GRU and Linear weights stored as int8; activations quantized on the fly per batch
           (`torch.ao.quantization.quantize_dynamic`). Embeddings and attention arithmetic stay float32.
    bf16   every weight and activation in bfloat16 (fast on CPUs with AVX-512 BF16 / AMX)

Both change the translations slightly; the measured speed and BLEU change on the Bible test split
is in benchmarks/decode.py. int8 is the default (faster at the same BLEU). Its activations are quantized
with one scale per tensor, i.e. per batch, so a sentence's translation can differ slightly with the
sentences it shares a batch with (as in other int8 MT engines); the same input in the same batches
always gives the same output. `none` (float32) is exactly independent of batching.
"""

from __future__ import annotations

import warnings

import torch
from torch import nn

from carousel.model.precision import QUANTIZE_MODES
from carousel.model.seq2seq import Seq2Seq


def quantize(model: Seq2Seq, mode: str) -> Seq2Seq:
    """Return `model` prepared for inference in `mode` (modified in place; use the returned object)."""
    model.eval()
    if mode == "none":
        return model
    if mode == "int8":
        if torch.backends.quantized.engine == "none":
            raise ValueError("int8 quantization needs a quantized engine (fbgemm or qnnpack) in this PyTorch build")
        # A tied output projection shares its weight with the target embedding: the Linear gets its own
        # int8 copy, the embedding keeps the float tensor, so both stay correct.
        with warnings.catch_warnings():
            # torch.ao.quantization is deprecated in favour of torchao, but still ships (and works) here.
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", UserWarning)
            layers = {nn.LSTM, nn.GRU, nn.Linear}
            return torch.ao.quantization.quantize_dynamic(model, layers, dtype=torch.qint8, inplace=True)
    if mode == "bf16":
        return model.to(torch.bfloat16)
    raise ValueError(f"unknown quantization {mode!r} (choose from {', '.join(QUANTIZE_MODES)})")
