"""The LSTM theory behind the model, shown on tiny seeded models (run with -s to see the numbers).

1. The reference cells in tests/reference_cells.py compute what torch's fused modules compute,
   which pins down the parameter layout and the gate order i, f, g, o.
2. Long time lags (Hochreiter & Schmidhuber 1997): an LSTM learns to carry the first
   symbol of a sequence across 50 noisy steps; a tanh RNN of the same size, trained the
   same way, does not. The LSTM needs its carousel open from the start for this: forget
   gate open and input gate nearly closed.
3. Vanishing gradients measured: ‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ over 100 steps for a tanh RNN and
   for LSTMs whose forget gates start at different openings.
4. Exploding gradients (Pascanu et al. 2013): one SGD step on an exploding recurrence
   wrecks the model; clipping the gradient norm bounds the step and keeps it useful.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from carousel.model.gates import init_forget_gate_bias
from tests.reference_cells import (
    ElmanRNNCell,
    ReferenceGRUCell,
    ReferenceLSTMCell,
    copy_weights_from_torch,
    unroll,
)


@pytest.fixture(autouse=True)
def one_thread():
    """The machine's cores are shared; these tiny models do not gain from more threads."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- 1. The reference cells equal torch's fused modules -------------------------------


def reference_lstm(lstm: nn.LSTM, inputs: torch.Tensor, state=None):
    """Recompute a (multi-layer, bidirectional) time-major nn.LSTM with ReferenceLSTMCells."""
    directions = 2 if lstm.bidirectional else 1
    final_h, final_c = [], []
    layer_input = inputs
    for layer in range(lstm.num_layers):
        outputs = []
        for direction in range(directions):
            reverse = direction == 1
            cell = ReferenceLSTMCell(layer_input.shape[-1], lstm.hidden_size)
            cell.load_from_torch(lstm, layer=layer, reverse=reverse)
            index = layer * directions + direction  # torch's order in h_n and c_n
            initial = None if state is None else (state[0][index], state[1][index])
            sequence = layer_input.flip(0) if reverse else layer_input
            output, (h, c) = unroll(cell, sequence, initial)
            outputs.append(output.flip(0) if reverse else output)
            final_h.append(h)
            final_c.append(c)
        layer_input = torch.cat(outputs, dim=-1)
    return layer_input, (torch.stack(final_h), torch.stack(final_c))


def test_reference_lstm_equals_fused_lstm_over_a_sequence():
    torch.manual_seed(0)
    lstm = nn.LSTM(input_size=5, hidden_size=7, num_layers=2, bidirectional=True)
    inputs = torch.randn(12, 3, 5, requires_grad=True)
    state = (torch.randn(4, 3, 7), torch.randn(4, 3, 7))

    expected, (expected_h, expected_c) = lstm(inputs, state)
    actual, (actual_h, actual_c) = reference_lstm(lstm, inputs, state)

    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(actual_h, expected_h, atol=1e-5, rtol=0)
    torch.testing.assert_close(actual_c, expected_c, atol=1e-5, rtol=0)
    # The same function, so the same gradient with respect to the inputs.
    (expected_grad,) = torch.autograd.grad(expected.sum(), inputs)
    (actual_grad,) = torch.autograd.grad(actual.sum(), inputs)
    torch.testing.assert_close(actual_grad, expected_grad, atol=1e-5, rtol=0)


def test_reference_lstm_equals_lstm_cell_step_by_step():
    torch.manual_seed(1)
    torch_cell = nn.LSTMCell(4, 6)
    cell = ReferenceLSTMCell(4, 6)
    cell.load_from_torch(torch_cell)
    expected = actual = (torch.randn(2, 6), torch.randn(2, 6))
    for x in torch.randn(20, 2, 4):
        expected = torch_cell(x, expected)
        actual = cell(x, actual)
        torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)


@settings(max_examples=25, deadline=None)
@given(
    input_size=st.integers(1, 9),
    hidden_size=st.integers(1, 9),
    batch=st.integers(1, 4),
    steps=st.integers(1, 8),
    seed=st.integers(0, 2**16),
)
def test_reference_lstm_equals_fused_lstm_for_any_size(input_size, hidden_size, batch, steps, seed):
    torch.manual_seed(seed)
    lstm = nn.LSTM(input_size, hidden_size)
    inputs = torch.randn(steps, batch, input_size)
    expected, (expected_h, expected_c) = lstm(inputs)
    actual, (actual_h, actual_c) = reference_lstm(lstm, inputs)
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(actual_h, expected_h, atol=1e-5, rtol=0)
    torch.testing.assert_close(actual_c, expected_c, atol=1e-5, rtol=0)


def test_peepholes_at_zero_change_nothing_and_nonzero_peepholes_do():
    torch.manual_seed(2)
    lstm = nn.LSTM(3, 5)
    inputs = torch.randn(10, 2, 3)
    plain = ReferenceLSTMCell(3, 5)
    peephole = ReferenceLSTMCell(3, 5, peephole=True)
    plain.load_from_torch(lstm)
    peephole.load_from_torch(lstm)

    plain_out, _ = unroll(plain, inputs)
    zero_peephole_out, _ = unroll(peephole, inputs)
    assert torch.equal(zero_peephole_out, plain_out)  # fresh peepholes are exactly zero

    with torch.no_grad():
        for weight in (peephole.weight_ci, peephole.weight_cf, peephole.weight_co):
            weight.uniform_(-1, 1)
    peephole_out, _ = unroll(peephole, inputs)
    difference = (peephole_out - plain_out).abs().max().item()
    print(f"\nlargest output change from random peepholes: {difference:.3f}")
    assert difference > 1e-2

    peephole_out.sum().backward()  # the peepholes are trained like any weight
    for weight in (peephole.weight_ci, peephole.weight_cf, peephole.weight_co):
        assert weight.grad is not None and weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "peephole, changes_first_step", [("weight_ci", False), ("weight_cf", False), ("weight_co", True)]
)
def test_input_and_forget_peepholes_see_the_old_cell_state_and_the_output_peephole_the_new(
    peephole, changes_first_step
):
    """From a zero state c_0 = 0, so p_i ⊙ c_0 and p_f ⊙ c_0 vanish at the first step, while
    p_o ⊙ c_1 does not; from the second step on every peephole matters."""
    torch.manual_seed(6)
    plain = ReferenceLSTMCell(3, 5, peephole=True)
    with_peephole = ReferenceLSTMCell(3, 5, peephole=True)
    with_peephole.load_state_dict(plain.state_dict())
    with torch.no_grad():
        getattr(with_peephole, peephole).fill_(2.0)
    first, second = torch.randn(2, 4, 3)

    plain_state, peephole_state = plain(first), with_peephole(first)
    assert torch.equal(plain_state[0], peephole_state[0]) is not changes_first_step
    plain_state, peephole_state = plain(second, plain_state), with_peephole(second, peephole_state)
    assert not torch.equal(plain_state[0], peephole_state[0])


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_elman_cell_equals_nn_rnn(nonlinearity):
    torch.manual_seed(3)
    rnn = nn.RNN(4, 6, nonlinearity=nonlinearity)
    cell = ElmanRNNCell(4, 6, nonlinearity=nonlinearity)
    cell.load_from_torch(rnn)
    inputs, h0 = torch.randn(15, 3, 4), torch.randn(1, 3, 6)
    expected, expected_h = rnn(inputs, h0)
    actual, actual_h = unroll(cell, inputs, h0[0])
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(actual_h, expected_h[0], atol=1e-5, rtol=0)


def test_gru_cell_equals_nn_gru_and_nn_gru_cell():
    torch.manual_seed(4)
    gru = nn.GRU(4, 6)
    cell = ReferenceGRUCell(4, 6)
    cell.load_from_torch(gru)
    inputs, h0 = torch.randn(15, 3, 4), torch.randn(1, 3, 6)
    expected, _ = gru(inputs, h0)
    actual, _ = unroll(cell, inputs, h0[0])
    torch.testing.assert_close(actual, expected, atol=1e-5, rtol=0)

    torch_cell = nn.GRUCell(4, 6)
    cell.load_from_torch(torch_cell)
    torch.testing.assert_close(cell(inputs[0], h0[0]), torch_cell(inputs[0], h0[0]), atol=1e-6, rtol=0)


def test_init_forget_gate_bias_sets_the_sum_of_both_biases():
    torch.manual_seed(5)
    hidden = 3
    forget = slice(hidden, 2 * hidden)
    lstm = nn.LSTM(2, hidden, num_layers=2, bidirectional=True)
    before = {name: p.detach().clone() for name, p in lstm.named_parameters()}
    init_forget_gate_bias(lstm, 1.5)
    for suffix in ("_l0", "_l0_reverse", "_l1", "_l1_reverse"):
        bias_ih, bias_hh = getattr(lstm, "bias_ih" + suffix), getattr(lstm, "bias_hh" + suffix)
        assert torch.equal((bias_ih + bias_hh)[forget], torch.full((hidden,), 1.5))
        for name in ("bias_ih" + suffix, "bias_hh" + suffix):
            after = getattr(lstm, name)
            for other_gate in (slice(0, hidden), slice(2 * hidden, 4 * hidden)):
                assert torch.equal(after[other_gate], before[name][other_gate])

    lstm_cell = nn.LSTMCell(2, hidden)
    init_forget_gate_bias(lstm_cell)
    assert torch.equal((lstm_cell.bias_ih + lstm_cell.bias_hh)[forget], torch.ones(hidden))

    reference = ReferenceLSTMCell(2, hidden)  # forget_bias=1.0 by default (Gers et al. 2000)
    assert torch.equal((reference.bias_ih + reference.bias_hh)[forget], torch.ones(hidden))

    with pytest.raises(ValueError):
        init_forget_gate_bias(nn.LSTM(2, hidden, bias=False))
    with pytest.raises(ValueError):
        init_forget_gate_bias(nn.GRU(2, hidden))  # no forget gate; 3H biases


def test_copy_weights_refuses_what_it_cannot_copy():
    with pytest.raises(TypeError):
        copy_weights_from_torch(ReferenceLSTMCell(2, 3), nn.GRU(2, 3))
    with pytest.raises(ValueError):
        copy_weights_from_torch(ReferenceLSTMCell(2, 3), nn.LSTM(2, 4))  # sizes differ
    with pytest.raises(ValueError):
        copy_weights_from_torch(ReferenceLSTMCell(2, 3), nn.LSTM(2, 3, proj_size=2))
    with pytest.raises(ValueError):
        copy_weights_from_torch(ReferenceLSTMCell(2, 3), nn.LSTM(2, 3), reverse=True)
    with pytest.raises(ValueError):
        copy_weights_from_torch(ElmanRNNCell(2, 3), nn.RNN(2, 3, nonlinearity="relu"))


# --- 2. The long-lag task (Hochreiter & Schmidhuber 1997, experiment 2) ---------------
#
# A sequence starts with A or B, then LAG symbols drawn at random from four distractors;
# after the last one the network must say which symbol came first. Chance is 50%.
# Both networks get the same training: plain SGD with momentum (the update is
# proportional to the gradient, as in the 1997 paper), the same learning rate, steps,
# batch, hidden size and gradient clipping. With Adam the tanh RNN does learn this task
# at lag 50 and even 100 (measured): Adam rescales a vanishing gradient to a full-size step.

LAG = 50
DISTRACTORS = 4
SYMBOLS = 2 + DISTRACTORS  # A = 0, B = 1, then the distractors
HIDDEN = 16
TRAINING_STEPS = 1000


def long_lag_batch(generator: torch.Generator, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot sequences (LAG + 1, size, SYMBOLS), half starting with A, half with B; targets: the first symbol."""
    first = torch.arange(size) % 2
    distractors = torch.randint(2, SYMBOLS, (LAG, size), generator=generator)
    symbols = torch.cat([first[None], distractors])
    return nn.functional.one_hot(symbols, SYMBOLS).float(), first


def train_on_long_lag(rnn: nn.Module, seed: int) -> tuple[float, int, nn.Linear]:
    """Train `rnn` and a linear read-out of its last output; stop at 95% test accuracy.

    Returns the last measured test accuracy, the steps taken and the read-out.
    """
    torch.manual_seed(seed)
    head = nn.Linear(HIDDEN, 2)
    parameters = [*rnn.parameters(), *head.parameters()]
    optimizer = torch.optim.SGD(parameters, lr=0.2, momentum=0.9)
    data = torch.Generator().manual_seed(seed)
    test_inputs, test_targets = long_lag_batch(torch.Generator().manual_seed(12345), 1000)
    accuracy = 0.0
    for step in range(1, TRAINING_STEPS + 1):
        inputs, targets = long_lag_batch(data, 32)
        outputs, _ = rnn(inputs)
        loss = nn.functional.cross_entropy(head(outputs[-1]), targets)
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        if step % 50 == 0:
            with torch.no_grad():
                outputs, _ = rnn(test_inputs)
                accuracy = (head(outputs[-1]).argmax(-1) == test_targets).float().mean().item()
            if accuracy >= 0.95:
                break
    return accuracy, step, head


def open_carousel(lstm: nn.LSTM, lag: int) -> None:
    """Start with memory time 1/(1 − σ(b_f)) ≈ lag and the input gate mostly shut.

    b_f = ln(lag) makes σ(b_f) = lag / (lag + 1); b_i = −ln(lag) keeps the distractors
    out of the cell until the network learns what to store. This is chrono initialisation
    (Tallec & Ollivier 2018) with every unit given the same lag.
    """
    init_forget_gate_bias(lstm, math.log(lag))
    hidden = lstm.hidden_size
    with torch.no_grad():
        lstm.bias_ih_l0[:hidden].fill_(-math.log(lag))
        lstm.bias_hh_l0[:hidden].zero_()


@pytest.mark.slow
def test_lstm_carries_the_first_symbol_across_a_long_lag():
    torch.manual_seed(0)
    lstm = nn.LSTM(SYMBOLS, HIDDEN)
    open_carousel(lstm, LAG)

    accuracy, steps, head = train_on_long_lag(lstm, seed=0)
    print(f"\nLSTM (b_f = ln {LAG}, b_i = -ln {LAG}), lag {LAG}: accuracy {accuracy:.3f} after {steps} steps")
    assert accuracy >= 0.95

    # The trained weights in the reference cell give the same answers.
    cell = ReferenceLSTMCell(SYMBOLS, HIDDEN)
    cell.load_from_torch(lstm)
    test_inputs, test_targets = long_lag_batch(torch.Generator().manual_seed(12345), 1000)
    with torch.no_grad():
        outputs, _ = unroll(cell, test_inputs)
        reference_accuracy = (head(outputs[-1]).argmax(-1) == test_targets).float().mean().item()
    print(f"the same weights in ReferenceLSTMCell: accuracy {reference_accuracy:.3f}")
    assert reference_accuracy == pytest.approx(accuracy, abs=0.002)


@pytest.mark.slow
def test_tanh_rnn_trained_the_same_way_stays_near_chance():
    torch.manual_seed(0)
    rnn = nn.RNN(SYMBOLS, HIDDEN, nonlinearity="tanh")
    accuracy, steps, _ = train_on_long_lag(rnn, seed=0)
    print(f"\ntanh RNN, lag {LAG}: accuracy {accuracy:.3f} after {steps} steps")
    assert accuracy <= 0.65


@pytest.mark.slow
@pytest.mark.parametrize(
    "initialisation",
    ["forget bias 1", "forget gate open, input gate default"],
)
def test_lstm_without_an_open_carousel_stays_near_chance(initialisation):
    """Gates alone are not enough at this lag: with b_f = 1 the memory time is
    1/(1 − σ(1)) ≈ 3.7 steps; with the forget gate open but the input gate at its default
    the distractors flood the cell. Either way the error signal does not get through."""
    torch.manual_seed(0)
    lstm = nn.LSTM(SYMBOLS, HIDDEN)
    init_forget_gate_bias(lstm, 1.0 if initialisation == "forget bias 1" else math.log(LAG))
    accuracy, steps, _ = train_on_long_lag(lstm, seed=0)
    print(f"\nLSTM with {initialisation}, lag {LAG}: accuracy {accuracy:.3f} after {steps} steps")
    assert accuracy <= 0.65


# --- 3. Vanishing gradients, measured ---------------------------------------------------


def gradient_ratio(cell: nn.Module, steps: int = 100, seed: int = 0) -> float:
    """‖∂L/∂h_1‖ / ‖∂L/∂h_T‖ for a loss L that reads only the last output h_T.

    Runs the cell step by step in float64 (the small ratios underflow float32) on
    random inputs, keeping the gradient of every h_t.
    """
    generator = torch.Generator().manual_seed(seed)
    inputs = torch.randn(steps, 8, cell.input_size, generator=generator, dtype=torch.float64)
    readout = torch.randn(cell.hidden_size, generator=generator, dtype=torch.float64)
    state, hidden_states = None, []
    for x in inputs:
        state = cell(x, state)
        h = state[0] if isinstance(state, tuple) else state
        h.retain_grad()
        hidden_states.append(h)
    loss = (hidden_states[-1] @ readout).sum()
    loss.backward()
    return (hidden_states[0].grad.norm() / hidden_states[-1].grad.norm()).item()


def test_error_vanishes_in_a_tanh_rnn_and_flows_through_an_open_carousel():
    steps = 100
    torch.manual_seed(0)
    tanh_ratio = gradient_ratio(ElmanRNNCell(8, 16).double(), steps)
    lstm_ratio = {}
    for forget_bias in (-3.0, 1.0, math.log(steps)):
        torch.manual_seed(0)  # the same weights; only the forget-gate bias differs
        lstm_ratio[forget_bias] = gradient_ratio(ReferenceLSTMCell(8, 16, forget_bias=forget_bias).double(), steps)

    print(f"\n‖∂L/∂h_1‖ / ‖∂L/∂h_{steps}‖:")
    print(f"  tanh RNN                     {tanh_ratio:.1e}")
    for forget_bias, ratio in lstm_ratio.items():
        product_of_forget_gates = (1 / (1 + math.exp(-forget_bias))) ** (steps - 1)
        print(f"  LSTM, forget bias {forget_bias:+.2f}     {ratio:.1e}   (σ(b_f)^99: {product_of_forget_gates:.1e})")

    closed, default, open_ = lstm_ratio[-3.0], lstm_ratio[1.0], lstm_ratio[math.log(steps)]
    assert 0 < tanh_ratio < 1e-6  # multiplied by diag(tanh') Uᵀ a hundred times
    assert default > 1e6 * tanh_ratio  # the cell state's additive path loses far less
    assert 0 < closed < 1e-20 * default  # a nearly shut forget gate cuts that path too
    assert open_ > 1e-3  # forget gate open: the constant error carousel
    assert closed < default < open_


# --- 4. Exploding gradients and clipping ----------------------------------------------


def test_clipping_bounds_a_step_that_an_exploding_gradient_would_wreck():
    """A linear recurrence h_t = W h_{t-1} + U x_t with every singular value of W at 1.2:
    over 100 steps the states grow like 1.2^t and the gradient like T·1.2^T (Pascanu et
    al. 2013 analyse exactly this case). A tanh RNN saturates before it gets this far,
    so the linear regime is where explosion shows cleanly."""
    steps, hidden, lr = 100, 8, 1e-3
    torch.manual_seed(0)
    orthogonal, _ = torch.linalg.qr(torch.randn(hidden, hidden))
    initial = {"W": 1.2 * orthogonal, "U": 0.1 * torch.randn(hidden, 4)}
    inputs, targets = torch.randn(steps, 16, 4), torch.randn(16, hidden)

    def loss_of(parameters: dict[str, torch.Tensor]) -> torch.Tensor:
        h = torch.zeros(16, hidden)
        for x in inputs:
            h = h @ parameters["W"].T + x @ parameters["U"].T
        return nn.functional.mse_loss(h, targets)

    def train(clip: bool) -> tuple[list[float], list[float], list[float], dict[str, torch.Tensor]]:
        parameters = {name: nn.Parameter(value.clone()) for name, value in initial.items()}
        optimizer = torch.optim.SGD(parameters.values(), lr=lr)
        losses, gradient_norms, update_norms = [], [], []
        for _ in range(2):
            before = torch.cat([p.detach().flatten() for p in parameters.values()])
            loss = loss_of(parameters)
            optimizer.zero_grad()
            loss.backward()
            norm = nn.utils.clip_grad_norm_(parameters.values(), 1.0 if clip else math.inf)
            optimizer.step()
            after = torch.cat([p.detach().flatten() for p in parameters.values()])
            losses.append(loss.item())
            gradient_norms.append(norm.item())
            update_norms.append((after - before).norm().item())
        with torch.no_grad():
            losses.append(loss_of(parameters).item())
        return losses, gradient_norms, update_norms, parameters

    losses, gradient_norms, update_norms, parameters = train(clip=False)
    print(f"\nwithout clipping: gradient norm {gradient_norms[0]:.1e}, update norms {update_norms}, losses {losses}")
    assert gradient_norms[0] > 1e10  # the gradient has exploded
    assert not math.isfinite(losses[1])  # one step later the loss overflows
    assert not all(torch.isfinite(p).all() for p in parameters.values())  # and the next step poisons the weights

    losses, gradient_norms, update_norms, parameters = train(clip=True)
    print(f"with clipping:    gradient norm {gradient_norms[0]:.1e}, update norms {update_norms}, losses {losses}")
    assert gradient_norms[0] > 1e10  # the same exploded gradient...
    assert all(norm <= lr * 1.0 * (1 + 1e-4) for norm in update_norms)  # ...but each step is at most lr × max_norm
    assert all(torch.isfinite(p).all() for p in parameters.values())
    assert losses[0] > losses[1] > losses[2]  # and the steps still go downhill
