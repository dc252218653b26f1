"""API fixtures: tokens per role and a JSON client."""

from __future__ import annotations

import pytest

from cmoc.services.tokens import create_token
from cmoc.timeutil import utcnow
from tests.factories import make_user


class ApiClient:
    def __init__(self, client, token: str | None):
        self.client = client
        self.token = token

    def call(self, method: str, path: str, json=None, **kwargs):
        headers = kwargs.pop("headers", {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        return self.client.open("/api/v1" + path, method=method, json=json, headers=headers,
                                **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.call("POST", path, json=json, **kw)

    def patch(self, path, json=None, **kw):
        return self.call("PATCH", path, json=json, **kw)


def token_for(role: str, username: str | None = None) -> str:
    make_user(username or f"{role}-user", role)
    return create_token(username=username or f"{role}-user", name="test", now=utcnow())[1]


@pytest.fixture
def api(app):
    return ApiClient(app.test_client(), token_for("cmoc"))


@pytest.fixture
def viewer_api(app):
    return ApiClient(app.test_client(), token_for("viewer"))
