"""The model's typed configuration: everything needed to rebuild the network from a checkpoint."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Special token ids shared with the SentencePiece models (data/subwords.py trains them this way).
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3


class ModelConfig(BaseModel):
    """Sizes and switches of the encoder-decoder. Stored as `config.json` in every model directory."""

    model_config = ConfigDict(extra="forbid")

    src_vocab_size: int = Field(8000, ge=8)
    tgt_vocab_size: int = Field(8000, ge=8)
    embedding_dim: int = Field(256, ge=1)

    rnn_type: Literal["lstm", "gru"] = "lstm"
    encoder_hidden: int = Field(256, ge=1, description="per direction; the encoder is bidirectional")
    encoder_layers: int = Field(2, ge=1)
    decoder_hidden: int = Field(512, ge=1)
    decoder_layers: int = Field(2, ge=1)

    attention: Literal["bahdanau", "luong_dot", "luong_general"] = "luong_general"
    input_feeding: bool = Field(
        False,
        description="feed the previous attentional vector into the decoder LSTM (Luong 2015); "
        "off lets training run the decoder over the whole target at once",
    )
    attentional_dim: int = Field(256, ge=1, description="size of tanh(W_c[h; context]) before the output layer")
    tie_output: bool = Field(True, description="share target embeddings with the output projection (Press & Wolf 2017)")

    forget_bias: float = 1.0
    embedding_dropout: float = Field(0.2, ge=0, lt=1)
    hidden_dropout: float = Field(0.2, ge=0, lt=1, description="between stacked RNN layers")
    output_dropout: float = Field(0.2, ge=0, lt=1, description="on the attentional vector")

    def architecture(self) -> dict:
        """The fields that shape the weights; dropout rates and the forget-gate bias's initial
        value do not, so a run may start from an exported model with different ones."""
        return self.model_dump(exclude={"embedding_dropout", "hidden_dropout", "output_dropout", "forget_bias"})

    @model_validator(mode="after")
    def _check_compatible_sizes(self) -> "ModelConfig":
        if self.tie_output and self.attentional_dim != self.embedding_dim:
            raise ValueError("tie_output needs attentional_dim == embedding_dim")
        if self.attention == "luong_dot" and self.decoder_hidden != 2 * self.encoder_hidden:
            raise ValueError("luong_dot attention needs decoder_hidden == 2 * encoder_hidden")
        return self
