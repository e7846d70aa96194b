"""Gate initialisation of the recurrent layers: the LSTM forget-gate bias (Gers et al. 2000).

The reference cells that spell out every gate equation, and the tests that show the theory
(the constant error carousel, peepholes, GRU, the long-lag tasks), are in tests/reference_cells.py
and tests/test_lstm_theory.py.
"""

from __future__ import annotations

import torch
from torch import nn


def init_forget_gate_bias(module: nn.Module, value: float = 1.0) -> None:
    """Set the LSTM forget-gate bias so that bias_ih + bias_hh equals `value` in the f slice.

    Works on `nn.LSTM` (every layer and direction), `nn.LSTMCell` and `ReferenceLSTMCell`,
    whose biases are 4H vectors in gate order i, f, g, o. torch adds the two biases, so
    the input bias takes `value` and the recurrent bias takes 0. A forget bias of 1 makes
    f ≈ σ(1) ≈ 0.73 at the start, so the cell state and its gradient survive many steps
    before the network has learnt when to forget (Gers et al. 2000; Jozefowicz et al. 2015).
    That memory time, 1/(1 − σ(b_f)) ≈ 3.7 steps, suits sentences read with attention; to
    learn a dependency over T steps from scratch the gate must start nearer 1, b_f ≈ ln T
    (tests/test_lstm_theory.py). The other gates' biases are left as they are.
    """
    hidden = module.hidden_size
    forget = slice(hidden, 2 * hidden)
    found = False
    with torch.no_grad():
        for name, parameter in module.named_parameters(recurse=False):
            if name.startswith("bias_") and parameter.shape[0] != 4 * hidden:
                raise ValueError(f"{name} has {parameter.shape[0]} entries, not the 4 × {hidden} of an LSTM")
            if name.startswith("bias_ih"):
                parameter[forget].fill_(value)
                found = True
            elif name.startswith("bias_hh"):
                parameter[forget].zero_()
    if not found:
        raise ValueError(f"{type(module).__name__} has no bias_ih parameters (built with bias=False?)")
