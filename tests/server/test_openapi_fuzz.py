"""Property-based fuzzing of every documented operation (schemathesis, from /openapi.json).

For a bounded number of generated requests per operation: no 5xx, and every response conforms to the document
(status code documented, content type, body schema). Event streams are excluded: they are infinite by design and
are covered by tests/server/test_stream_api.py. (Driven directly rather than through schemathesis' pytest plugin,
whose lazy-schema loader is not compatible with pytest 9.)
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from .conftest import KEY_A, ServerProcess

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


def test_no_server_errors_and_no_schema_violations(server: ServerProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json").exclude(path_regex=r"/stream$")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 30, "the document describes fewer operations than the server implements"
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers={"authorization": f"Bearer {KEY_A}"}, checks=CHECKS)

        try:
            fuzz()
        except Exception as exc:  # collect every operation's failure, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
