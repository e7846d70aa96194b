"""The encoder-decoder: a bidirectional recurrent encoder, an attentional decoder, and their glue."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from carousel.model.config import ModelConfig
from carousel.model.decoder import AttentionalDecoder, DecoderState, Memory
from carousel.model.encoder import EncoderOutput, RecurrentEncoder


class Seq2Seq(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        self.encoder = RecurrentEncoder(config)
        self.decoder = AttentionalDecoder(config, self.encoder.output_size)
        _init_embeddings(self)

    def encode(self, src: Tensor, src_lengths: Tensor) -> tuple[EncoderOutput, Memory, DecoderState]:
        encoded = self.encoder(src, src_lengths)
        return encoded, self.decoder.prepare_memory(encoded), self.decoder.initial_state(encoded)

    def forward(self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor) -> Tensor:
        """Teacher forcing: logits [B, T, V] for every position of `tgt_in` (BOS y_1 ... y_{T-1})."""
        _, memory, state = self.encode(src, src_lengths)
        logits, _, _ = self.decoder(tgt_in, state, memory)
        return logits

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _init_embeddings(model: Seq2Seq) -> None:
    # Tied embeddings feed a tanh-bounded attentional vector into the softmax: keep them small.
    for embedding in (model.encoder.embedding, model.decoder.embedding):
        nn.init.normal_(embedding.weight, std=embedding.embedding_dim**-0.5)
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()
