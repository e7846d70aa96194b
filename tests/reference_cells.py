"""Recurrent cells written from their equations, laid out like torch's fused modules (test code).

The encoder and decoder run torch's fused `nn.LSTM` / `nn.GRU` for speed. The cells here
are the readable reference: one time step per call, each gate equation beside the line
that computes it. Their parameters have exactly the names, shapes and gate order of
`nn.LSTMCell`, `nn.RNNCell` and `nn.GRUCell`, so weights copy across with
`copy_weights_from_torch` and the tests prove the two compute the same thing.

- `ReferenceLSTMCell`: LSTM with a forget gate (Hochreiter & Schmidhuber 1997; Gers et al.
  2000), optional diagonal peephole connections (Gers & Schmidhuber 2000).
- `ElmanRNNCell`: the plain tanh (or ReLU) recurrent network, h_t = tanh(W x_t + U h_{t-1} + b).
- `ReferenceGRUCell`: the gated recurrent unit (Cho et al. 2014) in torch's formulation.
  The GRU option of the encoder/decoder is torch's `nn.GRU`; this cell only documents it.
- `unroll`: run any of these cells over a time-major sequence.

Notation: x_t input (batch × I), h_t hidden state, c_t cell state (batch × H), σ the
logistic sigmoid, ⊙ elementwise product. W are input weights, U recurrent weights.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from carousel.model.gates import init_forget_gate_bias

__all__ = [
    "ElmanRNNCell",
    "ReferenceGRUCell",
    "ReferenceLSTMCell",
    "copy_weights_from_torch",
    "unroll",
]

LSTMState = tuple[torch.Tensor, torch.Tensor]


class _ReferenceCell(nn.Module):
    """What the reference cells share: torch's parameter layout and weight copying.

    Subclasses set `gates` (how many H-sized blocks the fused weights hold) and
    `torch_types` (the torch modules whose weights they can take).
    """

    gates: int
    torch_types: tuple[type[nn.Module], ...]

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        rows = self.gates * hidden_size
        self.weight_ih = nn.Parameter(torch.empty(rows, input_size))
        self.weight_hh = nn.Parameter(torch.empty(rows, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(rows))
        self.bias_hh = nn.Parameter(torch.empty(rows))

    def reset_parameters(self) -> None:
        """torch's default: every weight and bias uniform in ±1/√H."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(parameter, -bound, bound)

    def load_from_torch(self, module: nn.Module, layer: int = 0, reverse: bool = False) -> None:
        """Copy the weights of a torch cell, or of one layer (and direction) of a torch RNN."""
        copy_weights_from_torch(self, module, layer=layer, reverse=reverse)

    def _zero_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.hidden_size)


class ReferenceLSTMCell(_ReferenceCell):
    """One step of an LSTM with a forget gate and optional diagonal peepholes.

    Parameters match `nn.LSTMCell`: weight_ih (4H × I), weight_hh (4H × H), bias_ih and
    bias_hh (4H), the four blocks in gate order i, f, g, o. With `peephole=True` three
    H-vectors weight_ci, weight_cf, weight_co let the gates look at the cell state; they
    start at zero, so a fresh peephole cell computes what a plain one does.

        i_t = σ(W_i x_t + U_i h_{t-1} + b_i [+ p_i ⊙ c_{t-1}])     input gate
        f_t = σ(W_f x_t + U_f h_{t-1} + b_f [+ p_f ⊙ c_{t-1}])     forget gate
        g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)                   candidate
        c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t                          cell state
        o_t = σ(W_o x_t + U_o h_{t-1} + b_o [+ p_o ⊙ c_t])         output gate
        h_t = o_t ⊙ tanh(c_t)

    The cell state is the "constant error carousel": ∂c_t/∂c_{t-1} = diag(f_t) along the
    direct path, so while the forget gate stays near 1 the error flows back undiminished.
    """

    gates = 4
    torch_types = (nn.LSTM, nn.LSTMCell)

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        peephole: bool = False,
        forget_bias: float = 1.0,
    ) -> None:
        super().__init__(input_size, hidden_size)
        self.peephole = peephole
        self.forget_bias = forget_bias
        if peephole:
            self.weight_ci = nn.Parameter(torch.zeros(hidden_size))
            self.weight_cf = nn.Parameter(torch.zeros(hidden_size))
            self.weight_co = nn.Parameter(torch.zeros(hidden_size))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """torch's uniform ±1/√H, then the forget bias; peepholes at zero."""
        super().reset_parameters()
        init_forget_gate_bias(self, self.forget_bias)
        if self.peephole:
            for parameter in (self.weight_ci, self.weight_cf, self.weight_co):
                nn.init.zeros_(parameter)

    def forward(self, x: torch.Tensor, state: LSTMState | None = None) -> LSTMState:
        """x: (batch, input_size); state: (h, c), each (batch, hidden_size), zeros if None."""
        if state is None:
            state = (self._zero_state(x), self._zero_state(x))
        h_prev, c_prev = state
        # All four pre-activations at once: W x_t + b_ih + U h_{t-1} + b_hh, split i, f, g, o.
        pre = x @ self.weight_ih.T + self.bias_ih + h_prev @ self.weight_hh.T + self.bias_hh
        pre_i, pre_f, pre_g, pre_o = pre.chunk(4, dim=1)
        if self.peephole:
            pre_i = pre_i + self.weight_ci * c_prev
            pre_f = pre_f + self.weight_cf * c_prev
        i = torch.sigmoid(pre_i)  # i_t = σ(W_i x_t + U_i h_{t-1} + b_i [+ p_i ⊙ c_{t-1}])
        f = torch.sigmoid(pre_f)  # f_t = σ(W_f x_t + U_f h_{t-1} + b_f [+ p_f ⊙ c_{t-1}])
        g = torch.tanh(pre_g)  # g_t = tanh(W_g x_t + U_g h_{t-1} + b_g)
        c = f * c_prev + i * g  # c_t = f_t ⊙ c_{t-1} + i_t ⊙ g_t
        if self.peephole:
            pre_o = pre_o + self.weight_co * c  # the output gate peeks at the new c_t
        o = torch.sigmoid(pre_o)  # o_t = σ(W_o x_t + U_o h_{t-1} + b_o [+ p_o ⊙ c_t])
        h = o * torch.tanh(c)  # h_t = o_t ⊙ tanh(c_t)
        return h, c


class ElmanRNNCell(_ReferenceCell):
    """One step of the simple recurrent network (Elman 1990), laid out like `nn.RNNCell`.

        h_t = tanh(W x_t + b_ih + U h_{t-1} + b_hh)

    Backpropagated through time, the error is multiplied by diag(tanh'(·)) Uᵀ at every step,
    so over long lags it vanishes (or explodes) geometrically (Hochreiter 1991; Bengio et
    al. 1994). `nonlinearity="relu"` matches `nn.RNNCell(nonlinearity="relu")`.
    """

    gates = 1
    torch_types = (nn.RNN, nn.RNNCell)

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh") -> None:
        super().__init__(input_size, hidden_size)
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', not {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        self.reset_parameters()

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, input_size); state: h_{t-1} (batch, hidden_size), zeros if None."""
        h_prev = self._zero_state(x) if state is None else state
        pre = x @ self.weight_ih.T + self.bias_ih + h_prev @ self.weight_hh.T + self.bias_hh
        return torch.tanh(pre) if self.nonlinearity == "tanh" else torch.relu(pre)


class ReferenceGRUCell(_ReferenceCell):
    """One step of a gated recurrent unit in torch's formulation (`nn.GRUCell`, gate order r, z, n).

        r_t = σ(W_r x_t + b_ir + U_r h_{t-1} + b_hr)            reset gate
        z_t = σ(W_z x_t + b_iz + U_z h_{t-1} + b_hz)            update gate
        n_t = tanh(W_n x_t + b_in + r_t ⊙ (U_n h_{t-1} + b_hn))   candidate
        h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}

    torch applies the reset gate after the recurrent matrix product (b_hn inside the
    product with r_t); Cho et al. (2014) apply it to h_{t-1} before. The encoder and
    decoder use the fused `nn.GRU`; this cell is here to read and to test against.
    """

    gates = 3
    torch_types = (nn.GRU, nn.GRUCell)

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> torch.Tensor:
        """x: (batch, input_size); state: h_{t-1} (batch, hidden_size), zeros if None."""
        h_prev = self._zero_state(x) if state is None else state
        from_x = (x @ self.weight_ih.T + self.bias_ih).chunk(3, dim=1)
        from_h = (h_prev @ self.weight_hh.T + self.bias_hh).chunk(3, dim=1)
        r = torch.sigmoid(from_x[0] + from_h[0])  # r_t = σ(W_r x_t + b_ir + U_r h_{t-1} + b_hr)
        z = torch.sigmoid(from_x[1] + from_h[1])  # z_t = σ(W_z x_t + b_iz + U_z h_{t-1} + b_hz)
        n = torch.tanh(from_x[2] + r * from_h[2])  # n_t = tanh(W_n x_t + b_in + r_t ⊙ (U_n h + b_hn))
        return (1 - z) * n + z * h_prev  # h_t = (1 − z_t) ⊙ n_t + z_t ⊙ h_{t-1}


def copy_weights_from_torch(cell: _ReferenceCell, module: nn.Module, layer: int = 0, reverse: bool = False) -> None:
    """Copy weights from a torch cell (`nn.LSTMCell`, ...) or one layer of a torch RNN (`nn.LSTM`, ...).

    For a multi-layer or bidirectional RNN, `layer` and `reverse` pick the parameters
    `weight_ih_l{layer}[_reverse]` and friends. A torch module built with bias=False
    copies as zero biases; peepholes, which torch lacks, are set to zero, so the
    reference cell then computes exactly what the torch module computes.
    """
    if not isinstance(module, cell.torch_types):
        expected = " or ".join(t.__name__ for t in cell.torch_types)
        raise TypeError(f"{type(cell).__name__} copies weights from {expected}, not {type(module).__name__}")
    if getattr(module, "proj_size", 0):
        raise ValueError("LSTMs with proj_size > 0 have no reference cell")
    if isinstance(module, nn.RNNBase):
        if not 0 <= layer < module.num_layers:
            raise ValueError(f"layer {layer} out of range for a {module.num_layers}-layer {type(module).__name__}")
        if reverse and not module.bidirectional:
            raise ValueError("reverse=True needs a bidirectional module")
        suffix = f"_l{layer}" + ("_reverse" if reverse else "")
    else:
        suffix = ""
    if getattr(module, "nonlinearity", "tanh") != getattr(cell, "nonlinearity", "tanh"):
        raise ValueError(f"nonlinearity differs: torch {module.nonlinearity}, cell {cell.nonlinearity}")
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            target = getattr(cell, name)
            source = getattr(module, name + suffix, None)
            if source is None:  # bias=False
                target.zero_()
                continue
            if source.shape != target.shape:
                shapes = f"torch {tuple(source.shape)}, cell {tuple(target.shape)}"
                raise ValueError(f"{name}{suffix} has different shapes: {shapes}")
            target.copy_(source)
        if getattr(cell, "peephole", False):
            for name in ("weight_ci", "weight_cf", "weight_co"):
                getattr(cell, name).zero_()


def unroll(cell: nn.Module, inputs: torch.Tensor, state=None):
    """Run a one-step cell over a time-major sequence, like torch's RNNs with batch_first=False.

    inputs: (time, batch, input_size). Returns (outputs, final_state) with outputs
    (time, batch, hidden_size) the h_t of every step and final_state what the cell
    returned at the last step ((h, c) for the LSTM, h for the others).
    """
    outputs = []
    for x in inputs:
        state = cell(x, state)
        outputs.append(state[0] if isinstance(state, tuple) else state)
    return torch.stack(outputs), state
