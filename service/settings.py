"""Service settings: one typed object, read from `CAROUSEL_*` environment variables and `carousel serve` flags.

    CAROUSEL_MODELS_DIR=models CAROUSEL_PORT=5000 CAROUSEL_API_KEYS=key1,key2 carousel serve

Lists (`api_keys`, `cors_origins`, `load_only`) are comma-separated in the environment (a JSON list also works).
The object is built once at the edge (carousel/commands/serve.py) and passed to everything that needs it.
Numbers must be finite: `inf` or `nan` is refused like any other value out of range.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal


from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from carousel.model.precision import DEFAULT_QUANTIZATION, QuantizeMode  # names only: no torch, so `--help` stays light
from carousel.routing.shipped import models_dir as shipped_models_dir

LogLevel = Literal["critical", "error", "warning", "info", "debug"]


class ServiceSettings(BaseSettings):
    """Every setting is also a `carousel serve` flag (`--max-chars` for max_chars), generated from its
    type and description (carousel/commands/serve.py) and listed by `--help` under its group (GROUPS)."""

    model_config = SettingsConfigDict(env_prefix="CAROUSEL_", extra="ignore", frozen=True, allow_inf_nan=False)

    # Where model directories are found (each one a translation direction, e.g. models/bible-es-en).
    models_dir: Path = Field(default_factory=shipped_models_dir, description="directory of model directories "
                             "(default: the shipped models/)")
    load_only: Annotated[list[str], NoDecode] = Field([], description="serve only the models between these "
                                                      "languages, comma-separated (es,en); none: every model")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(5000, ge=0, le=65535, description="port (LibreTranslate's default)")
    url_prefix: str = Field("", description="serve every route under this path (/translator: the page at "
                            "/translator/), as behind a proxy that forwards one path")
    web_ui: bool = Field(True, description="serve the web page at / (--no-web-ui or --disable-web-ui: the API only)")

    quantize: QuantizeMode = Field(DEFAULT_QUANTIZATION, description="inference precision: int8 dynamic "
                                   "quantization (faster, same BLEU), int8-row (a scale per sentence: a "
                                   "translation does not depend on the requests batched with it; slower), "
                                   "none (float32, also batch-independent) or bf16")

    # Decoding: requests choose a beam between 1 and max_beam; alternatives need beam > alternatives.
    default_beam: int | None = Field(None, ge=1, description="beam size of a request that names none (default: each "
                                     "model's own, chosen on validation data by `carousel tune`, else 5)")
    max_beam: int = Field(10, ge=1, description="largest beam a request may ask for")
    max_alternatives: int = Field(3, ge=0, description="most alternatives a request may ask for")

    # Request limits (413 above them).
    max_chars: int = Field(20_000, ge=1, description="characters per request, summed over q (413 above)")
    max_batch_items: int = Field(128, ge=1, description="strings in a list q")
    # What a request costs is mostly its sentences and source tokens (10,000 one-word lines fit in
    # max_chars but took ~95 CPU-seconds): both are bounded per request, counted after splitting.
    max_sentences: int = Field(1_000, ge=1, description="sentences per request, over every string of q")
    max_source_tokens: int = Field(10_000, ge=1, description="source subword tokens per request (EOS included)")
    # What a sentence costs grows with its subword tokens, and 400 letters without a space are 400 tokens
    # where a sentence has 30: a sentence over max_sentence_tokens is cut into pieces of at most that many
    # (every sentence of 400 characters or less of the shipped models' corpora has at most 120), and no
    # translation is decoded past max_output_tokens.
    max_sentence_tokens: int = Field(128, ge=2, description="a longer sentence is cut into pieces of this many tokens")
    max_output_tokens: int = Field(256, ge=1, description="no translation is decoded past this many tokens")
    max_decoding_cost: int = Field(50_000, ge=1, description="source tokens × beam size per request "
                                   "(× 2 with confidence, which decodes again)")
    # Only pathological markup comes near this (a 20,000-character page parses in milliseconds), and
    # while it parses it holds the GIL.
    html_parse_seconds: float = Field(0.5, gt=0, description="format=html markup that takes longer to parse: 413")

    # Cross-request batching (service/queue.py), per model.
    max_batch_tokens: int = Field(6_000, ge=1, description="estimated source tokens × beam per merged batch")
    max_wait_ms: float = Field(5.0, ge=0, description="how long the first request of a batch waits for others")
    queue_size: int = Field(2_048, ge=1, description="pending sentences per model before requests get 503")
    request_timeout_seconds: float = Field(30.0, gt=0, description="seconds a request may take, then 504")
    # Two single-threaded searches beat one two-threaded search on a 2-core CPU (benchmarks/serve.py:
    # 79% vs 60% of offline).
    batch_workers: int = Field(2, ge=1, description="batches translated side by side per model; torch's threads "
                               "are split among them")
    # The workers' searches share one GIL in the server process; in processes of their own they do not
    # (benchmarks/batch_workers.py: two processes 1.75 times one thread, two threads 1.3 times).
    batch_processes: bool = Field(True, description="translate the batching workers' batches in batch_workers "
                                  "child processes (each loads the models it is asked for; about 450 MB each) "
                                  "instead of in the server process, where their searches share one GIL")
    # Round-robin: a big request cannot starve small ones, and a cancelled one stops within a batch.
    slice_sentences: int = Field(32, ge=1, description="a request's sentences enter batches this many at a time")

    # Connections (service/connections.py) and shutdown.
    header_timeout_seconds: float = Field(10.0, gt=0, description="a request's line and headers must arrive "
                                          "within this")
    body_timeout_seconds: float = Field(30.0, gt=0, description="a request's whole body must arrive within this "
                                        "(else 408)")
    keep_alive_seconds: float = Field(5.0, gt=0, description="an idle keep-alive connection is closed after this")
    max_connections: int = Field(1_000, ge=1, description="concurrent connections and requests; more get 503")
    shutdown_grace_seconds: float = Field(20.0, ge=0, description="after SIGTERM, requests in flight get this long")

    # Access (service/access.py). Left unset, keys_required follows the configuration: required when
    # fixed keys or a key database are configured, whatever the database holds at the moment (an
    # emptied or recreated database never opens the server).
    api_keys: Annotated[list[str], NoDecode] = Field([], description="API keys a request may give, comma-separated "
                                                     "(prefer the environment: flags show in `ps`)")
    keys_required: bool | None = Field(None, description="whether every request needs a key (default: when keys "
                                       "or a database are configured)")
    database_timeout_seconds: float = Field(2.0, gt=0, description="a locked or unreachable database: 503 after "
                                            "this, never a stall")
    rate_limit_per_minute: int = Field(0, ge=0, description="requests a minute per key (per address without "
                                       "keys); 0: off")
    key_failures_per_minute: int = Field(10, ge=0, description="failed API-key attempts a minute per address, "
                                         "then 429; 0: off")
    # service/counters.py: memory:// counts in this process; redis:// is shared by every replica.
    limits_storage: str = Field("memory://", pattern=r"^(memory|redis|rediss|redis\+unix)://",
                                description="where rate limits and lockouts are counted: memory:// or "
                                "redis://HOST:PORT/DB (shared by replicas)")
    limits_timeout_seconds: float = Field(1.0, gt=0, description="Redis unreachable this long: 503 on limited routes")
    cors_origins: Annotated[list[str], NoDecode] = Field([], description="origins allowed by CORS, comma-separated")

    # File translation (/translate_file, /download_file; service/files.py, service/store.py).
    files_translation: bool = Field(True, description="translate files (--disable-files-translation: off)")
    files_dir: Path | None = Field(None, description="where translated files wait for download (default: a "
                                   "temporary directory)")
    max_file_bytes: int = Field(2 * 1024 * 1024, ge=1, description="largest file, in bytes (413 above)")
    max_stored_files: int = Field(200, ge=1, description="507 while the store holds this many of other clients' files")
    max_stored_bytes: int = Field(256 * 1024 * 1024, ge=1, description="bytes the file store holds at most")
    # Each client (API key, else address) holds at most this much of the store; its oldest files make room.
    max_stored_files_per_client: int = Field(20, ge=1, description="files one client (key, else address) "
                                             "may have stored")
    max_stored_bytes_per_client: int = Field(32 * 1024 * 1024, ge=1, description="bytes one client may have stored")
    file_ttl_seconds: float = Field(3600.0, gt=0, description="a translated file can be downloaded for this long")
    # One budget per file (413 above it, 504 past the time), all its chunks together.
    max_file_texts: int = Field(10_000, ge=1, description="texts (lines, messages, paragraphs) per file")
    max_file_chars: int = Field(500_000, ge=1, description="characters per file")
    max_file_sentences: int = Field(10_000, ge=1, description="sentences per file")
    file_timeout_seconds: float = Field(300.0, gt=0, description="seconds for a whole file, then 504")
    # Reading or writing a document runs in a child process (service/document_process.py), ended after
    # this long or when it needs more memory than this (413), and at shutdown whatever it is doing.
    file_parse_seconds: float = Field(20.0, gt=0, description="seconds to read or write one document")
    file_memory_bytes: int = Field(1024 * 1024 * 1024, ge=64 * 1024 * 1024, description="memory a document's "
                                   "reader or writer may use (413 above)")
    file_workers: int = Field(2, ge=1, description="documents read or written at a time; more wait for a turn")

    # The database of API keys and suggestions (service/database.py); None: neither is used.
    database: str | None = Field(None, description="database of API keys and suggestions: a SQLite file, or a "
                                 "postgresql://USER:PASSWORD@HOST:PORT/NAME URL shared by replicas (default: none)")
    suggestions: bool = Field(False, description="accept suggested translations at /suggest (needs --database)")
    # The translation memory (service/memory.py): off unless asked for, so a server translates with its
    # models alone by default.
    memory: bool = Field(False, description="look sentences up in the translation memory (imports and accepted "
                         "suggestions) before the model (needs --database)")

    # What the web page starts with (/frontend/settings), as LibreTranslate's --frontend-language-*.
    frontend_language_source: str = Field("auto", description="the page's source language at start (auto: "
                                          "detect)")
    frontend_language_target: str = Field("en", description="the page's target language at start")
    frontend_timeout_ms: int = Field(500, ge=0, description="the page translates this long after typing stops")

    # Per-sentence confidence (model/confidence.py; models calibrated by `carousel calibrate`).
    confidence_action: Literal["off", "warn", "refuse"] = Field("off", description="below the threshold: a "
                                                                "warning in confidenceWarning (warn), a 422 "
                                                                "(refuse), or only confidence when asked (off)")
    confidence_threshold: float = Field(0.35, ge=0, le=1, description="a confidence below this is low")

    log_level: LogLevel = Field("info", description="log level")

    @field_validator("api_keys", "cors_origins", "load_only", mode="before")
    @classmethod
    def _split_list(cls, value):
        if isinstance(value, str):
            value = value.strip()
            if value.startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("load_only")
    @classmethod
    def _language_codes(cls, value: list[str]) -> list[str]:
        return [code.lower() for code in value]

    @field_validator("url_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        """"/translator/", "translator" and "/translator" are one prefix, "/translator"; "" or "/" is none."""
        value = value.strip().strip("/")
        if any(part in ("", ".", "..") for part in value.split("/")) and value:
            raise ValueError(f"url_prefix {value!r} must be a path such as /translator")
        return f"/{value}" if value else ""

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
        if self.default_beam is not None and self.default_beam > self.max_beam:
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
        if self.memory and self.database is None:
            raise ValueError("memory needs a database (the memory is kept in it)")
        return self

    @property
    def requires_keys(self) -> bool:
        """Whether every translation request needs a key: a setting, never read from the database's rows."""
        if self.keys_required is not None:
            return self.keys_required
        return bool(self.api_keys) or self.database is not None


# How `carousel serve --help` groups the flags: group title → settings. A setting in no group is listed
# under "other settings", so a new one has its flag at once.
GROUPS: dict[str, tuple[str, ...]] = {
    "server": ("models_dir", "load_only", "host", "port", "url_prefix", "web_ui", "log_level"),
    "decoding": ("quantize", "default_beam", "max_beam", "max_alternatives", "max_sentence_tokens",
                 "max_output_tokens"),
    "request limits": ("max_chars", "max_batch_items", "max_sentences", "max_source_tokens", "max_decoding_cost",
                       "html_parse_seconds", "request_timeout_seconds"),
    "batching": ("max_batch_tokens", "max_wait_ms", "queue_size", "batch_workers", "batch_processes",
                 "slice_sentences"),
    "connections and shutdown": ("header_timeout_seconds", "body_timeout_seconds", "keep_alive_seconds",
                                 "max_connections", "shutdown_grace_seconds"),
    "access: keys and limits": ("api_keys", "keys_required", "rate_limit_per_minute", "key_failures_per_minute",
                                "limits_storage", "limits_timeout_seconds", "cors_origins"),
    "database and suggestions": ("database", "database_timeout_seconds", "suggestions", "memory"),
    "file translation": ("files_translation", "files_dir", "max_file_bytes", "max_stored_files", "max_stored_bytes",
                         "max_stored_files_per_client", "max_stored_bytes_per_client", "file_ttl_seconds",
                         "max_file_texts", "max_file_chars", "max_file_sentences", "file_timeout_seconds",
                         "file_parse_seconds", "file_memory_bytes", "file_workers"),
    "web page": ("frontend_language_source", "frontend_language_target", "frontend_timeout_ms"),
    "confidence": ("confidence_action", "confidence_threshold"),
}
