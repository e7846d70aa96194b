"""Fuzz the HTTP API from its own OpenAPI schema (schemathesis): a longer run than tests/test_service_fuzz.py.

    python scripts/fuzz_api.py                                 # the models in models/, in this process
    python scripts/fuzz_api.py --examples 2000 --seed 7
    python scripts/fuzz_api.py --url http://127.0.0.1:5000     # a running server

Every operation gets `--examples` generated requests per generation mode: valid ones (positive) and ones
that break the schema (negative), in JSON and in both form encodings. Every answer is checked: not a
server error, a status and content type the operation declares, a body that matches its declared schema
(service/responses.py). The script prints the answers by operation and status, then each distinct
failure once with a curl command that reproduces it, and exits with status 1 if there was any.

tests/test_service_fuzz.py loads its schema and checks from here, so the two runs cannot drift apart.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

# Random language codes and beam sizes are almost always refused (400, 422) before anything is
# translated; replacing them in most generated bodies sends the fuzzed text and options to the model.
# (Hypothesis favours the first element of a list: the generated values, `{}`, come last.)
SERVED_LANGUAGES = [{"source": "es", "target": "en"}, {"source": "auto", "target": "en"}, {}]
SEARCH_IN_RANGE = [{"beam_size": 1, "alternatives": 0}, {"beam_size": 4, "alternatives": 3}, {"alternatives": 1}, {}]


def towards_translation(context, body):
    """A strategy over `body` with its languages and search options maybe made valid (`flatmap_body` hook)."""
    if context.operation is None or context.operation.path != "/translate" or not isinstance(body, dict):
        return st.just(body)
    changes = st.tuples(st.sampled_from(SERVED_LANGUAGES), st.sampled_from(SEARCH_IN_RANGE))
    return changes.map(lambda change: {**body, **change[0], **change[1]})


def load_schema(app=None, url: str | None = None):
    """The service's schema, from an app in this process (its lifespan starts) or from a running server."""
    if app is not None:
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    else:
        schema = schemathesis.openapi.from_url(f"{url.rstrip('/')}/openapi.json")
    schema.hook("flatmap_body")(towards_translation)
    return schema


# -- the longer run ----------------------------------------------------------------------------------


@dataclass
class Tally:
    answers: Counter = field(default_factory=Counter)  # (operation, status) -> count
    # (operation, kind of failure) -> the first one's details and a curl command that repeats it
    failures: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def fail(self, case, kind: str, details: str = "") -> None:
        first_line = details.strip().splitlines()[0] if details.strip() else ""
        self.failures.setdefault((case.operation.label, kind), (first_line, case.as_curl_command()))


def fuzz_operation(operation, mode: GenerationMode, examples: int, run_seed: int, tally: Tally) -> None:
    """Send `examples` generated requests to one operation, counting answers and recording failures."""

    @seed(run_seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],  # no shrinking: failures are recorded, never raised
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def send(case):
        try:
            response = case.call()
        except Exception as error:  # the app raised: in-process, a 500 surfaces like this
            tally.answers[(operation.label, type(error).__name__)] += 1
            tally.fail(case, f"the app raised {type(error).__name__}", str(error))
            return
        tally.answers[(operation.label, str(response.status_code))] += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (AssertionError, BaseExceptionGroup) as failure:  # one Failure, or a FailureGroup of them
            problems = failure.exceptions if isinstance(failure, BaseExceptionGroup) else [failure]
            for problem in problems:
                tally.fail(case, getattr(problem, "title", type(problem).__name__), getattr(problem, "message", ""))

    try:
        send()
    except Unsatisfiable:  # negative mode on an operation without parameters: nothing to break
        pass


def print_report(tally: Tally, seconds: float) -> None:
    print(f"\n{sum(tally.answers.values())} requests in {seconds:.0f} s")
    print(f"{'operation':<20} {'status':>12} {'count':>7}")
    for (operation, status), count in sorted(tally.answers.items()):
        print(f"{operation:<20} {status:>12} {count:>7}")
    if not tally.failures:
        print("\nno failures")
        return
    print(f"\n{len(tally.failures)} distinct failure(s):")
    for (operation, kind), (details, curl) in sorted(tally.failures.items()):
        print(f"\n- {operation}: {kind}\n  {details}\n  {curl}")


def in_process_app(models_dir: Path, threads: int):
    import torch

    from carousel.service.app import create_app
    from carousel.service.settings import ServiceSettings

    if threads:
        torch.set_num_threads(threads)
    return create_app(ServiceSettings(models_dir=models_dir))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=200, help="requests per operation and generation mode")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis seed: the same seed sends the same requests")
    parser.add_argument("--models-dir", type=Path, default=Path("models"), help="models for the in-process app")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the in-process app (0: torch's)")
    parser.add_argument("--url", help="fuzz this running server instead of an app in this process")
    args = parser.parse_args()
    if args.examples < 1:
        parser.error("--examples must be at least 1")

    app = None if args.url else in_process_app(args.models_dir, args.threads)
    schema = load_schema(app=app, url=args.url)
    if app is not None and not (app.state.registry.wait_until_loaded(300) and app.state.registry.ready):
        print(f"the app cannot translate: {app.state.registry.not_ready_reason()}", file=sys.stderr)
        return 2
    tally, started = Tally(), time.perf_counter()
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in GenerationMode:
                print(f"{operation.label} ({mode.value}) ...", flush=True)
                fuzz_operation(operation, mode, args.examples, args.seed, tally)
    finally:
        if app is not None:
            from schemathesis.python.asgi import shutdown_lifespans

            shutdown_lifespans()  # the app's shutdown: queues drained, worker threads stopped
    print_report(tally, time.perf_counter() - started)
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
