"""API fuzzing from the service's own OpenAPI schema (schemathesis), over the session's tiny model.

Every operation gets generated requests: schemathesis' boundary cases (coverage phase) and random ones
(fuzzing phase), valid and schema-breaking, in JSON and in both form encodings. Every answer must not
be a server error, must have a status and content type the operation declares, and its body must
match the declared schema (the answer types and the `{"error": ...}` body of service/responses.py).
Generation is derandomized: every run sends the same requests.

The schema, the hook steering bodies towards translation and the checks come from scripts/fuzz_api.py,
the longer run (`python scripts/fuzz_api.py --examples 2000`).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.python.asgi import shutdown_lifespans

from carousel.service.app import create_app
from carousel.service.settings import ServiceSettings
from tests.conftest import load_script

pytestmark = pytest.mark.slow  # minutes of servers under load, fuzzing or a browser: run in full, not in the fast loop

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "fuzz_api.py"
MAX_EXAMPLES = 100  # random requests per operation; the fuzzing itself takes about 15 s


fuzz_api = load_script(SCRIPT)


@pytest.fixture(scope="module")
def api_schema(models_dir):
    app = create_app(ServiceSettings(models_dir=models_dir))
    schema = fuzz_api.load_schema(app=app)  # starts the app's lifespan: models load in the background
    assert app.state.registry.wait_until_loaded(120) and app.state.registry.ready
    yield schema
    shutdown_lifespans()  # the app's shutdown: queues drained, worker threads stopped


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_declared_and_no_input_is_a_server_error(case):
    case.call_and_validate(checks=fuzz_api.CHECKS)
