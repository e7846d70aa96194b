"""Bidirectional recurrent encoder: embeddings -> N layers of forward and backward LSTMs (or GRUs).

Each direction is its own single-layer `nn.LSTM` over the padded batch. The backward direction reads
every sentence reversed within its own length (padding stays at the end), so padding never reaches a
real position in either direction; the outputs are reversed back and concatenated. This avoids packed
sequences, whose CPU backward pass is slow, while computing exactly what a packed bi-LSTM computes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from carousel.model.gates import init_forget_gate_bias
from carousel.model.config import PAD_ID, ModelConfig


@dataclass
class EncoderOutput:
    """What the decoder needs from the source sentence."""

    states: Tensor  # [B, S, 2H] forward and backward hidden states of the top layer, concatenated
    mask: Tensor  # [B, S] True on real tokens
    final_hidden: Tensor  # [B, 2H] top layer: last forward state and first backward state


class RecurrentEncoder(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.embedding = nn.Embedding(config.src_vocab_size, config.embedding_dim, padding_idx=PAD_ID)
        self.embedding_dropout = nn.Dropout(config.embedding_dropout)
        self.between_layers_dropout = nn.Dropout(config.hidden_dropout)
        rnn_class = nn.LSTM if config.rnn_type == "lstm" else nn.GRU
        hidden = config.encoder_hidden
        sizes = [config.embedding_dim] + [2 * hidden] * (config.encoder_layers - 1)
        self.forward_rnns = nn.ModuleList(rnn_class(size, hidden, batch_first=True) for size in sizes)
        self.backward_rnns = nn.ModuleList(rnn_class(size, hidden, batch_first=True) for size in sizes)
        if config.rnn_type == "lstm":
            for rnn in [*self.forward_rnns, *self.backward_rnns]:
                init_forget_gate_bias(rnn, config.forget_bias)
        self.output_size = 2 * hidden

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """src [B, S] token ids padded with PAD_ID at the end; src_lengths [B]."""
        reverse = reversal_index(src_lengths, src.size(1))
        layer_input = self.embedding_dropout(self.embedding(src))
        for depth, (forward_rnn, backward_rnn) in enumerate(zip(self.forward_rnns, self.backward_rnns)):
            if depth:
                layer_input = self.between_layers_dropout(layer_input)
            forward_states, _ = forward_rnn(layer_input)
            backward_states, _ = backward_rnn(_reorder(layer_input, reverse))
            layer_input = torch.cat([forward_states, _reorder(backward_states, reverse)], dim=-1)
        last = (src_lengths - 1).clamp(min=0)
        rows = torch.arange(src.size(0), device=src.device)
        hidden = layer_input.size(-1) // 2
        final_hidden = torch.cat([layer_input[rows, last, :hidden], layer_input[:, 0, hidden:]], dim=-1)
        return EncoderOutput(states=layer_input, mask=src != PAD_ID, final_hidden=final_hidden)


def reversal_index(lengths: Tensor, max_length: int) -> Tensor:
    """[B, S] positions that reverse each row within its length and leave its padding in place."""
    positions = torch.arange(max_length, device=lengths.device).unsqueeze(0)
    lengths = lengths.unsqueeze(1)
    return torch.where(positions < lengths, lengths - 1 - positions, positions)


def _reorder(sequence: Tensor, index: Tensor) -> Tensor:
    return sequence.gather(1, index.unsqueeze(-1).expand_as(sequence))
