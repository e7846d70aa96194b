"""Bidirectional recurrent encoder: embeddings -> N-layer bi-LSTM (or bi-GRU) over packed sequences."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.cells import init_forget_gate_bias
from model.config import PAD_ID, ModelConfig


@dataclass
class EncoderOutput:
    """What the decoder needs from the source sentence."""

    states: Tensor  # [B, S, 2H] forward and backward hidden states, concatenated
    mask: Tensor  # [B, S] True on real tokens
    final_hidden: Tensor  # [B, 2H] top layer: last forward state and first backward state
    final_cell: Tensor | None  # [B, 2H] the same for the LSTM memory cells (None for a GRU)

    def select(self, index: Tensor) -> "EncoderOutput":
        """Rows `index` of every tensor (beam search expands and shrinks the batch with this)."""
        return EncoderOutput(
            states=self.states.index_select(0, index),
            mask=self.mask.index_select(0, index),
            final_hidden=self.final_hidden.index_select(0, index),
            final_cell=None if self.final_cell is None else self.final_cell.index_select(0, index),
        )


class RecurrentEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.src_vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        rnn_class = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        self.rnn = rnn_class(
            config.embedding_dim,
            config.encoder_hidden,
            num_layers=config.encoder_layers,
            dropout=config.hidden_dropout if config.encoder_layers > 1 else 0.0,
            bidirectional=True,
            batch_first=True,
        )
        if config.rnn_type == "lstm":
            init_forget_gate_bias(self.rnn, config.forget_bias)
        self.output_size = 2 * config.encoder_hidden

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src [B, S] token ids padded with PAD_ID; src_lengths [B] on the CPU."""
        embedded = self.embedding_dropout(self.embedding(src))
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_states, final = self.rnn(packed)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=src.size(1))
        final_hidden, final_cell = final if isinstance(final, tuple) else (final, None)
        return EncoderOutput(
            states=states,
            mask=src != PAD_ID,
            final_hidden=_top_layer_both_directions(final_hidden),
            final_cell=None if final_cell is None else _top_layer_both_directions(final_cell),
        )


def _top_layer_both_directions(final: Tensor) -> Tensor:
    """[layers * 2, B, H] -> [B, 2H] for the top layer (forward state, backward state)."""
    return torch.cat([final[-2], final[-1]], dim=-1)
