"""Validation: teacher-forced loss and sacreBLEU of the decoded valid split."""

from __future__ import annotations

from dataclasses import dataclass

import sacrebleu
import torch
import torch.nn.functional as F

from carousel.model.padding import model_device
from carousel.model.config import PAD_ID
from carousel.model.search import SearchConfig
from carousel.model.seq2seq import Seq2Seq
from carousel.model.translator import Translator
from carousel.training.batching import collate
from carousel.training.examples import TrainingData


@dataclass
class ValidationResult:
    loss: float  # nats per target token, no label smoothing
    bleu: float
    chrf: float
    hypotheses: list[str]


@torch.inference_mode()
def validate(model: Seq2Seq, data: TrainingData, beam_size: int, batch_tokens: int) -> ValidationResult:
    was_training = model.training
    model.eval()
    try:
        loss = _teacher_forced_loss(model, data)
        translator = Translator(model, data.source_spm, data.target_spm, data.normalizer, device=model_device(model))
        # As `carousel evaluate` translates: verses cut into sentences and joined back.
        nbests = translator.translate_texts(data.valid_sources, SearchConfig(beam_size=beam_size))
        hypotheses = [nbest[0][0] for nbest in nbests]
    finally:
        model.train(was_training)
    refs = [data.valid_references]
    return ValidationResult(
        loss=loss,
        bleu=sacrebleu.corpus_bleu(hypotheses, refs).score,
        chrf=sacrebleu.corpus_chrf(hypotheses, refs).score,
        hypotheses=hypotheses,
    )


def _teacher_forced_loss(model: Seq2Seq, data: TrainingData, sentences_per_batch: int = 64) -> float:
    total, tokens = 0.0, 0
    for start in range(0, len(data.valid), sentences_per_batch):
        batch = collate(data.valid[start : start + sentences_per_batch]).to(model_device(model))
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        total += F.cross_entropy(
            logits.float().flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD_ID, reduction="sum"
        ).item()
        tokens += batch.target_tokens
    return total / max(tokens, 1)
