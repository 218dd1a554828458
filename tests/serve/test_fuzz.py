"""Property-based fuzzing of every operation in the server's OpenAPI schema (schemathesis): valid requests and
schema-breaking ones, and not one answer may be a server error. benchmarks/serving.py runs 1,000 per operation;
the unit suite runs a bounded sample, derandomized so a failure reproduces."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="fuzzing needs schemathesis (the dev extra)")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402

EXAMPLES = 25  # per operation and generation mode


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    return [result.ok() for result in schema.get_all_operations()]


def test_no_operation_answers_with_a_server_error(app):
    from schemathesis import GenerationMode

    operations = _operations(app)
    assert len(operations) >= 11
    seen = 0
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            statuses = []

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None,
                      derandomize=True)
            def send(case):
                response = case.call()
                statuses.append(response.status_code)
                assert response.status_code < 500, f"{operation.method} {operation.path} {case.body!r:.300}: " \
                                                   f"{response.text[:300]}"
                if response.status_code >= 400:  # the API's error form, naming a field or none
                    error = response.json()["error"]
                    assert set(error) == {"field", "message"} and error["message"]

            try:
                send()
            except Unsatisfiable:  # an operation without parameters cannot break its schema
                continue
            seen += len(statuses)
    assert seen >= 10 * EXAMPLES
