"""Service settings: one typed object, read from `CAROUSEL_*` environment variables and `carousel serve` flags.

    CAROUSEL_MODELS_DIR=models CAROUSEL_PORT=5000 CAROUSEL_API_KEYS=key1,key2 carousel serve

Lists (`api_keys`, `cors_origins`) are comma-separated in the environment (a JSON list also works).
The object is built once at the edge (carousel/commands/serve.py) and passed to everything that needs it.
Numbers must be finite: `inf` or `nan` is refused like any other value out of range.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal


from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from carousel.model.loading import DEFAULT_QUANTIZATION, QuantizeMode
from carousel.routing.shipped import models_dir as shipped_models_dir

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAROUSEL_", extra="ignore", frozen=True, allow_inf_nan=False)

    # Where model directories are found (each one a translation direction, e.g. models/bible-es-en).
    models_dir: Path = Field(default_factory=shipped_models_dir)  # CAROUSEL_MODELS_DIR, else the shipped models/
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=0, le=65535)  # LibreTranslate's default port

    # Inference precision: int8 dynamic quantization (default: faster, same BLEU), none (float32) or bf16.
    quantize: QuantizeMode = DEFAULT_QUANTIZATION

    # Decoding: requests choose a beam between 1 and max_beam; alternatives need beam > alternatives.
    default_beam: int = Field(5, ge=1)
    max_beam: int = Field(10, ge=1)
    max_alternatives: int = Field(3, ge=0)

    # Request limits (413 above them).
    max_chars: int = Field(20_000, ge=1)  # characters per request, summed over `q`
    max_batch_items: int = Field(128, ge=1)  # strings in a list `q`
    # What a request costs is mostly its sentences and source tokens (10,000 one-word lines fit in
    # max_chars but took ~95 CPU-seconds): both are bounded per request, counted after splitting.
    max_sentences: int = Field(1_000, ge=1)  # sentences per request, over every string of `q`
    max_source_tokens: int = Field(10_000, ge=1)  # source subword tokens per request (EOS included)
    # What a sentence costs grows with its subword tokens, and 400 letters without a space are 400 tokens
    # where a sentence has 30: a sentence over max_sentence_tokens is cut into pieces of at most that many
    # (every sentence of 400 characters or less of the shipped models' corpora has at most 120), and no
    # translation is decoded past max_output_tokens.
    max_sentence_tokens: int = Field(128, ge=2)
    max_output_tokens: int = Field(256, ge=1)
    # A request's decoding cost: its source tokens × beam size (× 2 with confidence, which decodes again).
    max_decoding_cost: int = Field(50_000, ge=1)
    # format=html markup that takes longer to parse: 413. A 20,000-character page parses in milliseconds;
    # only pathological markup comes near this, and while it parses it holds the GIL.
    html_parse_seconds: float = Field(0.5, gt=0)

    # Cross-request batching (service/queue.py), per model.
    max_batch_tokens: int = Field(6_000, ge=1)  # estimated source tokens × beam per merged batch
    max_wait_ms: float = Field(5.0, ge=0)  # how long the first request waits for others to join it
    queue_size: int = Field(2_048, ge=1)  # pending sentences before requests get 503
    request_timeout_seconds: float = Field(30.0, gt=0)  # 504 after this
    # Batches translated side by side per model, torch threads split among them. Two single-threaded
    # searches beat one two-threaded search on a 2-core CPU (benchmarks/serve.py: 79% vs 60% of offline).
    batch_workers: int = Field(2, ge=1)
    # A request's sentences enter batches in slices of this many, one slice per request per batch
    # (round-robin): a big request cannot starve small ones, and a cancelled one stops within a batch.
    slice_sentences: int = Field(32, ge=1)

    # Connections (service/connections.py) and shutdown.
    header_timeout_seconds: float = Field(10.0, gt=0)  # a request's line and headers must arrive within this
    body_timeout_seconds: float = Field(30.0, gt=0)  # its whole body within this (else 408)
    keep_alive_seconds: float = Field(5.0, gt=0)  # an idle keep-alive connection is closed after this
    max_connections: int = Field(1_000, ge=1)  # concurrent connections and requests; more get 503
    shutdown_grace_seconds: float = Field(20.0, ge=0)  # after SIGTERM: requests in flight get this long

    # Access (service/access.py). Keys are required when keys_required says so; left unset, when fixed
    # keys or a key database are configured, whatever the database holds at the moment (an emptied or
    # recreated database never opens the server).
    api_keys: Annotated[list[str], NoDecode] = []
    keys_required: bool | None = None
    database_timeout_seconds: float = Field(2.0, gt=0)  # a locked or unreachable database: 503 after this
    rate_limit_per_minute: int = Field(0, ge=0)  # requests per key (per client address without keys); 0 = off
    key_failures_per_minute: int = Field(10, ge=0)  # failed API-key attempts per client address (then 429); 0 = off
    # Where the rate limits and lockouts are counted (service/counters.py): memory:// in this process, or
    # redis://HOST:PORT/DB shared by every replica. Redis unreachable for limits_timeout_seconds: 503.
    limits_storage: str = Field("memory://", pattern=r"^(memory|redis|rediss|redis\+unix)://")
    limits_timeout_seconds: float = Field(1.0, gt=0)
    cors_origins: Annotated[list[str], NoDecode] = []

    # File translation (/translate_file, /download_file; service/files.py, service/store.py).
    files_translation: bool = True
    files_dir: Path | None = None  # where translated files wait for download (None: a temporary directory)
    max_file_bytes: int = Field(2 * 1024 * 1024, ge=1)  # 413 above this
    max_stored_files: int = Field(200, ge=1)  # 507 while the store holds this many of other clients' files
    max_stored_bytes: int = Field(256 * 1024 * 1024, ge=1)
    # Each client (API key, else address) holds at most this much of the store; its oldest files make room.
    max_stored_files_per_client: int = Field(20, ge=1)
    max_stored_bytes_per_client: int = Field(32 * 1024 * 1024, ge=1)
    file_ttl_seconds: float = Field(3600.0, gt=0)  # a translated file can be downloaded for this long
    # One budget per file (413 above it, 504 past the time): texts (lines, messages, paragraphs), their
    # characters and sentences, and the time for the whole file, all its chunks together.
    max_file_texts: int = Field(10_000, ge=1)
    max_file_chars: int = Field(500_000, ge=1)
    max_file_sentences: int = Field(10_000, ge=1)
    file_timeout_seconds: float = Field(300.0, gt=0)
    # Reading or writing a document runs in a child process (service/document_process.py), ended after
    # this long or when it needs more memory than this (413), and at shutdown whatever it is doing.
    file_parse_seconds: float = Field(20.0, gt=0)
    file_memory_bytes: int = Field(1024 * 1024 * 1024, ge=64 * 1024 * 1024)
    file_workers: int = Field(2, ge=1)  # documents read or written at a time; more wait for a turn

    # The database of API keys and suggestions (service/database.py): a SQLite file, or a
    # postgresql://USER:PASSWORD@HOST:PORT/NAME URL shared by every replica; None: neither is used.
    database: str | None = None
    suggestions: bool = False  # accept /suggest (needs `database`)

    # The languages the web page starts with (/frontend/settings), as LibreTranslate's --frontend-language-*.
    frontend_language_source: str = "auto"
    frontend_language_target: str = "en"

    # Per-sentence confidence (model/confidence.py; models calibrated by `carousel calibrate`): below the
    # threshold a string gets a warning in `confidenceWarning` ("warn"), or the request is refused with
    # 422 ("refuse"); "off" only answers `confidence` when asked (return_confidence).
    confidence_action: Literal["off", "warn", "refuse"] = "off"
    confidence_threshold: float = Field(0.35, ge=0, le=1)

    log_level: LogLevel = "info"

    @field_validator("api_keys", "cors_origins", mode="before")
    @classmethod
    def _split_list(cls, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("database", mode="before")
    @classmethod
    def _path_as_text(cls, value):
        return str(value) if isinstance(value, Path) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _lower(cls, value):
        return value.lower() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _consistent(self) -> ServiceSettings:
        if self.default_beam > self.max_beam:
            raise ValueError(f"default_beam ({self.default_beam}) is larger than max_beam ({self.max_beam})")
        if self.max_alternatives >= self.max_beam:
            raise ValueError(
                f"max_alternatives ({self.max_alternatives}) needs a beam of at least max_alternatives + 1, "
                f"but max_beam is {self.max_beam}"
            )
        if any(not key for key in self.api_keys):
            raise ValueError("api_keys must not contain empty keys")
        if self.keys_required and not self.api_keys and self.database is None:
            raise ValueError("keys_required needs api_keys or a database of keys")
        return self

    @property
    def requires_keys(self) -> bool:
        """Whether every translation request needs a key: a setting, never read from the database's rows."""
        if self.keys_required is not None:
            return self.keys_required
        return bool(self.api_keys) or self.database is not None
