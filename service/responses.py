"""The answers of the HTTP API (docs/API.md) as types, so the OpenAPI schema says what each route returns.

The routes build their answers as plain dicts; these models only document them (`responses=` in the route
decorators), and tests/test_service_fuzz.py checks every answer the fuzzer gets against them. Objects
forbid unknown keys, so a key added to an answer without being declared here fails that test.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorAnswer(_Answer):
    error: str = Field(min_length=1, description="what is wrong, in one line")
    detail: Any = Field(None, description="the validation errors, when the request did not validate; for a text in a "
                        "language no model translates (source auto), the facts a page words for people: reason "
                        "`unserved_language`, language, confidence, sure, sources, target, served")


class DetectedLanguage(_Answer):
    language: str
    confidence: float = Field(ge=0, le=100)


class AlignmentEntry(_Answer):
    """One sentence: its tokens and the target × source attention weights."""

    source: str
    translation: str
    source_tokens: list[str]
    target_tokens: list[str]
    weights: list[list[float]]


class SentenceConfidence(_Answer):
    """One sentence of a string: where it is in translatedText and how far to trust it."""

    source: str
    translation: str = Field(description="the sentence's translation, as it appears in translatedText")
    confidence: float | None = Field(
        ge=0, le=1, description="predicted quality in [0, 1]; 1: not translated (no words); null: no calibration")


class SentenceMemory(_Answer):
    """One sentence of a string: its translation and whether the translation memory gave it."""

    source: str
    translation: str = Field(description="the sentence's translation, as it appears in translatedText")
    memory: bool = Field(description="true: taken from the translation memory as stored; false: translated")


class TranslateAnswer(_Answer):
    """For a string `q`, each field holds one value; for a list `q`, a list of them in the same order."""

    translatedText: str | list[str]
    alternatives: list[str] | list[list[str]] = Field(None, description="with alternatives > 0")
    detectedLanguage: DetectedLanguage | list[DetectedLanguage] = Field(None, description='with source "auto"')
    scores: float | list[float] = Field(None, description="with return_scores")
    alignment: list[AlignmentEntry] | list[list[AlignmentEntry]] = Field(None, description="with return_alignment")
    confidence: float | None | list[float | None] = Field(
        None, description="with return_confidence: predicted quality in [0, 1] (null: the model has no calibration)")
    sentenceConfidence: list[SentenceConfidence] | list[list[SentenceConfidence]] = Field(
        None, description="with return_confidence: each sentence's translation and confidence, in order")
    domain: str | None | list[str | None] = Field(
        None, description="with domain: the domain whose model translated the string (null: not translated)")
    sentenceMemory: list[SentenceMemory] | list[list[SentenceMemory]] = Field(
        None, description="with the server's translation memory on: each sentence, in order, and whether the "
        "memory gave its translation (a whole string the memory holds is one sentence)")
    confidenceWarning: str | None | list[str | None] = Field(
        None, description="with the server's confidence_action=warn: why a string's translation may be wrong")


class Language(_Answer):
    code: str
    name: str
    targets: list[str]


class Health(_Answer):
    status: str


class Ready(_Answer):
    status: str
    models: list[str]
    failed: dict[str, str] = Field(None, description="model directories that could not be loaded, and why")


class ModelEntry(_Answer):
    name: str
    source: str
    target: str
    domain: str  # which texts it is for; the `domain` request field chooses it (default: routed)
    card: dict[str, Any]


# When each error status is answered (the contract's table).
ERROR_STATUSES = {
    400: "missing or malformed field, unsupported language or pair, malformed body",
    403: "API key missing or invalid when keys are configured",
    413: "text or batch over the configured limits",
    422: "value out of range (beam_size, alternatives)",
    429: "rate limit exceeded (Retry-After header)",
    503: "queue full, models not ready, key database or rate-limit counters unavailable or server shutting down "
         "(Retry-After header while it makes sense)",
    504: "translation exceeded the request timeout",
    507: "the store of translated files is full (Retry-After header when expiring files will make room)",
}


def answers(ok: Any, *errors: int) -> dict[int | str, dict]:
    """The `responses=` of a route: its 200 answer type and the error statuses it can answer with."""
    declared: dict[int | str, dict] = {200: {"model": ok, "description": "Successful Response"}}
    for status in errors:
        declared[status] = {"model": ErrorAnswer, "description": ERROR_STATUSES[status]}
    return declared
