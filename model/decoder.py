"""Attentional LSTM decoder (Luong et al. 2015), with optional input feeding.

Per target step t:
    h_t      = LSTM([y_{t-1}; a_{t-1} if input feeding], h_{t-1})   top hidden state
    c_t, α_t = attention(h_t, encoder states)                       context and weights
    a_t      = tanh(W_c [h_t; c_t])                                  attentional vector
    p(y_t)   = softmax(W_o a_t + b_o)                                W_o may be the target embeddings

Without input feeding h_t does not depend on a_{t-1}, so training runs the LSTM over the whole target
sequence in one call, which is several times faster on a CPU than stepping it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from carousel.model.attention import build_attention
from carousel.model.gates import init_forget_gate_bias
from carousel.model.config import PAD_ID, ModelConfig
from carousel.model.encoder import EncoderOutput
from carousel.model.shortlist import OutputVocabulary


@dataclass
class DecoderState:
    """Recurrent state carried between decoding steps (rows = sentences or beams)."""

    hidden: Tensor  # [L, N, H]
    cell: Tensor | None  # [L, N, H] for an LSTM
    attentional: Tensor | None  # [N, D] previous a_t, only with input feeding

    def select(self, index: Tensor) -> "DecoderState":
        return DecoderState(
            hidden=self.hidden.index_select(1, index),
            cell=None if self.cell is None else self.cell.index_select(1, index),
            attentional=None if self.attentional is None else self.attentional.index_select(0, index),
        )


@dataclass
class Memory:
    """The encoder output prepared for attention: keys projected once per source."""

    values: Tensor  # [N, S, 2H_enc]
    projected_keys: Tensor
    mask: Tensor  # [N, S]

    def select(self, index: Tensor) -> "Memory":
        return Memory(
            self.values.index_select(0, index),
            self.projected_keys.index_select(0, index),
            self.mask.index_select(0, index),
        )


class AttentionalDecoder(nn.Module):
    def __init__(self, config: ModelConfig, encoder_output_size: int):
        super().__init__()
        self.config = config
        self.embedding = nn.Embedding(config.tgt_vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_input = config.embedding_dim + (config.attentional_dim if config.input_feeding else 0)
        rnn_class = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_class(
            rnn_input,
            config.decoder_hidden,
            num_layers=config.decoder_layers,
            dropout=config.hidden_dropout if config.decoder_layers > 1 else 0.0,
            batch_first=True,
        )
        if config.rnn_type == "lstm":
            init_forget_gate_bias(self.rnn, config.forget_bias)
        # Bridge: every decoder layer starts from a projection of the encoder's final hidden states.
        self.bridge_hidden = nn.Linear(encoder_output_size, config.decoder_hidden)
        self.bridge_cell = nn.Linear(encoder_output_size, config.decoder_hidden) if config.rnn_type == "lstm" else None
        self.attention = build_attention(config.attention, config.decoder_hidden, encoder_output_size)
        self.attentional_layer = nn.Linear(config.decoder_hidden + encoder_output_size, config.attentional_dim)
        self.output_dropout = nn.Dropout(config.output_dropout)
        self.output_projection = nn.Linear(config.attentional_dim, config.tgt_vocab_size)
        if config.tie_output:
            self.output_projection.weight = self.embedding.weight

    def prepare_memory(self, encoded: EncoderOutput) -> Memory:
        return Memory(encoded.states, self.attention.project_keys(encoded.states), encoded.mask)

    def initial_state(self, encoded: EncoderOutput) -> DecoderState:
        layers = self.config.decoder_layers
        hidden = torch.tanh(self.bridge_hidden(encoded.final_hidden))
        cell = None
        if self.bridge_cell is not None:
            cell = self.bridge_cell(encoded.final_hidden).unsqueeze(0).repeat(layers, 1, 1).contiguous()
        attentional = None
        if self.config.input_feeding:
            attentional = hidden.new_zeros(hidden.size(0), self.config.attentional_dim)
        return DecoderState(hidden.unsqueeze(0).repeat(layers, 1, 1).contiguous(), cell, attentional)

    def forward(
        self, tgt_in: Tensor, state: DecoderState, memory: Memory, vocabulary: OutputVocabulary | None = None
    ) -> tuple[Tensor, DecoderState, Tensor]:
        """tgt_in [N, T] previous tokens -> logits [N, T, V], the new state, attention weights [N, T, S].
        With a `vocabulary` (a search's shortlist), logits [N, T, V'] for its ids only."""
        embedded = self.embedding_dropout(self.embedding(tgt_in))
        if self.config.input_feeding:
            attentional, state, weights = self._run_step_by_step(embedded, state, memory)
        else:
            attentional, state, weights = self._run_whole_sequence(embedded, state, memory)
        attentional = self.output_dropout(attentional)
        if vocabulary is not None:
            return vocabulary.logits(attentional), state, weights
        return self.output_projection(attentional), state, weights

    def _run_whole_sequence(self, embedded: Tensor, state: DecoderState, memory: Memory):
        outputs, recurrent = self.rnn(embedded, _rnn_state(state))
        attentional, weights = self._attend(outputs, memory)
        return attentional, _with_recurrent(state, recurrent, None), weights

    def _run_step_by_step(self, embedded: Tensor, state: DecoderState, memory: Memory):
        steps, step_weights = [], []
        for t in range(embedded.size(1)):
            rnn_input = torch.cat([embedded[:, t : t + 1], state.attentional.unsqueeze(1)], dim=-1)
            output, recurrent = self.rnn(rnn_input, _rnn_state(state))
            attentional, weights = self._attend(output, memory)
            state = _with_recurrent(state, recurrent, attentional[:, 0])
            steps.append(attentional)
            step_weights.append(weights)
        return torch.cat(steps, dim=1), state, torch.cat(step_weights, dim=1)

    def _attend(self, queries: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """queries [N, T, H]; memory has N rows, or N / K rows shared by K consecutive query rows (beams)."""
        rows, steps = queries.size(0), queries.size(1)
        sources = memory.values.size(0)
        grouped = queries.reshape(sources, rows // sources * steps, -1)
        context, weights = self.attention(grouped, memory.projected_keys, memory.values, memory.mask)
        context = context.reshape(rows, steps, -1)
        weights = weights.reshape(rows, steps, -1)
        attentional = torch.tanh(self.attentional_layer(torch.cat([queries, context], dim=-1)))
        return attentional, weights


def _rnn_state(state: DecoderState):
    return state.hidden if state.cell is None else (state.hidden, state.cell)


def _with_recurrent(state: DecoderState, recurrent, attentional: Tensor | None) -> DecoderState:
    hidden, cell = recurrent if isinstance(recurrent, tuple) else (recurrent, None)
    return DecoderState(hidden, cell, attentional)
