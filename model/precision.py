"""Names of the numeric precisions and devices, kept free of torch so `carousel --help` stays fast.

Inference precision (`quantize`): `none` float32 as trained, `int8` dynamic quantization (the
default: faster at the same BLEU, CPU only), `int8-row` int8 with a scale per sentence (slower, but a
sentence's translation does not depend on its batch; model/quantization.py), `bf16` bfloat16 weights. Training precision: `fp32` or
`bf16` autocast. Device: `auto` takes a CUDA GPU where one is visible, else the CPU.
"""

from __future__ import annotations

from typing import Literal

QuantizeMode = Literal["none", "int8", "int8-row", "bf16"]
QUANTIZE_MODES: tuple[str, ...] = ("none", "int8", "int8-row", "bf16")
DEFAULT_QUANTIZATION: QuantizeMode = "int8"
# Precisions in which a sentence's translation does not depend on the sentences batched with it.
BATCH_INDEPENDENT: tuple[str, ...] = ("none", "int8-row")

TrainingPrecision = Literal["fp32", "bf16"]
TRAINING_PRECISIONS: tuple[str, ...] = ("fp32", "bf16")

DeviceName = Literal["auto", "cpu", "cuda"]
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def resolve_device(name: str):
    """The `torch.device` a device name means; `cuda` without a visible GPU is a ValueError."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is visible to PyTorch (torch.cuda.is_available() is False)")
    if name not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    return torch.device(name)


def inference_mode_for(device, quantization: str) -> str:
    """int8 runs on the CPU only: on a GPU it becomes bf16 (same intent: fast, close)."""
    return "bf16" if device.type == "cuda" and quantization in ("int8", "int8-row") else quantization


def bf16_supported(device=None) -> bool:
    """bf16 on a GPU that has it, or native bf16 matrix units on the CPU (AVX512-BF16 / AMX; elsewhere
    oneDNN refuses bf16 LSTMs)."""
    import torch

    if device is not None and device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def share_cpu_threads(parts: int) -> None:
    """Give each of `parts` translation threads an equal share of torch's CPU threads (torch's count is per
    process, so it is set once for all of them)."""
    if parts > 1:
        import torch

        torch.set_num_threads(max(1, torch.get_num_threads() // parts))
