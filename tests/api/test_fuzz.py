"""Schema-driven fuzzing of the API from its own OpenAPI document: no input gives a 5xx."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings

from cmoc.extensions import db
from tests.api.conftest import token_for
from tests.factories import make_incident

FUZZ = settings(max_examples=50, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_no_input_causes_a_server_error(app):
    token = token_for("cmoc", "fuzzer")
    make_incident()  # incident 1 exists, so ids hit real rows as well as 404s
    auth = {"Authorization": f"Bearer {token}"}
    # The token API (the Slack endpoints in the document have their own fuzz, signed by Slack:
    # tests/test_slack_fuzz.py).
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, headers=auth) \
        .include(path_regex="^/api/v1/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 6
    seen: dict[str, set[int]] = {}

    def fuzzer(operation):
        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case):
            response = case.call(headers=auth)
            seen.setdefault(operation.label, set()).add(response.status_code)
            assert response.status_code < 500, (case.method, case.path, case.body,
                                                response.text[:500])
            if response.status_code >= 400:
                assert set(response.json()["error"]) == {"code", "message", "fields"}
            db.session.rollback()

        return fuzz

    for operation in operations:
        fuzzer(operation)()
    assert set(seen) == {op.label for op in operations}
    print({label: sorted(codes) for label, codes in seen.items()})
