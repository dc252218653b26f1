"""Shared fixtures: an app per test on SQLite (always) and PostgreSQL (when configured)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from flask import g
from flask_migrate import upgrade
from sqlalchemy import create_engine, text

from cmoc import create_app
from cmoc.config import CHANNEL_ENV
from cmoc.extensions import db

PG_URL = os.environ.get("CMOC_TEST_DATABASE_URL")
# Its own schema per checkout (CMOC_TEST_PG_SCHEMA) so two runs on one server never collide.
PG_SCHEMA = os.environ.get("CMOC_TEST_PG_SCHEMA", "cmoc_test")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
BASE_CONFIG = {"SECRET_KEY": "test-secret-key", "TESTING": True, "WTF_CSRF_ENABLED": False}


def _pg_url() -> str:
    # Each run works in its own schema so it never touches other data in the database.
    sep = "&" if "?" in PG_URL else "?"
    return f"{PG_URL}{sep}options=-csearch_path%3D{PG_SCHEMA}"


class Database:
    """A migrated database of one backend; `fresh_url` hands each test an empty one."""

    def __init__(self, backend: str, workdir: Path):
        self.backend = backend
        self.workdir = workdir
        if backend == "sqlite":
            self.template = workdir / "template.sqlite3"
            self._migrate(f"sqlite:///{self.template}")
        else:
            engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
            with engine.begin() as conn:
                conn.execute(text(f"DROP SCHEMA IF EXISTS {PG_SCHEMA} CASCADE"))
                conn.execute(text(f"CREATE SCHEMA {PG_SCHEMA}"))
            engine.dispose()
            self._migrate(_pg_url())

    def _migrate(self, url: str) -> None:
        app = create_app({**BASE_CONFIG, "DATABASE_URL": url, "INSTANCE_PATH": str(self.workdir)})
        with app.app_context():
            upgrade()
            db.engine.dispose()

    def fresh_url(self, tmp_path: Path) -> str:
        if self.backend == "sqlite":
            target = tmp_path / f"cmoc-{uuid.uuid4().hex[:8]}.sqlite3"
            shutil.copy(self.template, target)
            return f"sqlite:///{target}"
        return _pg_url()

    def clear(self, app) -> None:
        if self.backend != "postgresql":
            return
        with app.app_context():
            # The metric tables last: the triggers write them after the table they watch, and
            # a runner thread of the test may still be writing; locking them in the same order
            # as it does avoids a deadlock.
            ordered = sorted(db.metadata.sorted_tables, key=lambda t: t.name.startswith("metric_"))
            tables = ", ".join(t.name for t in ordered)
            with db.engine.begin() as conn:
                conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
            db.engine.dispose()


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Tests never see real credentials from the environment."""
    for key in [*CHANNEL_ENV, "DATABASE_URL", "SECRET_KEY", "CMOC_CONFIG"]:
        monkeypatch.delenv(key, raising=False)


@pytest.fixture(scope="session", params=BACKENDS)
def database(request, tmp_path_factory) -> Database:
    return Database(request.param, tmp_path_factory.mktemp(f"db-{request.param}"))


@pytest.fixture
def make_app(database, tmp_path):
    """Builds apps on this test's fresh database; extra config overrides the defaults."""
    created = []

    def factory(**overrides):
        config = {**BASE_CONFIG, "DATABASE_URL": database.fresh_url(tmp_path),
                  "INSTANCE_PATH": str(tmp_path), **overrides}
        app = create_app(config)
        fresh_g_per_request(app)
        created.append(app)
        return app

    yield factory
    if created:
        database.clear(created[0])
    for app in created:
        with app.app_context():
            db.engine.dispose()


def fresh_g_per_request(app) -> None:
    """Tests hold an app context open so they can use the database between requests; Flask
    then reuses it, and its `g` (where Flask-Login and Flask-WTF cache the user and the CSRF
    token) would outlive a request. Production gets a fresh `g` per request: so do tests."""

    @app.teardown_request
    def _clear_g(exc):
        for name in list(vars(g)):
            delattr(g, name)


@pytest.fixture
def app(make_app):
    app = make_app()
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def fakes():
    """Fake status.io, X and Slack on loopback."""
    from cmoc.fake_apis import FakeApis

    server = FakeApis().start()
    yield server
    server.stop()


@pytest.fixture
def remind_app(make_app, fakes):
    """An app whose reminders go to the fake Slack (#cmoc-reminders unless a DM), in context."""
    app = make_app(**fakes.env(), SLACK_REMINDER_CHANNEL="#cmoc-reminders",
                   BASE_URL="https://cmoc.example.com")
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def sandbox(tmp_path):
    """cmoc's sandbox (the fakes with saved state and the control API) on loopback."""
    from cmoc.fake_apis import FakeApis

    server = FakeApis(sandbox=True, state_path=tmp_path / "sandbox.json").start()
    yield server
    server.stop()


@pytest.fixture
def live_app(make_app, fakes):
    """An app whose channels all point at the fakes, retrying without real waits."""
    app = make_app(**fakes.env(), PUBLISH_BACKOFF_SECONDS=0, PUBLISH_WAIT_SECONDS=30,
                   HTTP_READ_TIMEOUT=1.0)
    with app.app_context():
        yield app
        db.session.remove()


@pytest.fixture
def cmoc_user(live_app):
    """A CMOC in `live_app`'s database."""
    from tests.factories import make_user

    return make_user("carol", "cmoc")


@pytest.fixture
def live_client(live_app, cmoc_user):
    """A CMOC signed in to `live_app`, with status.io's components loaded from the fakes."""
    from cmoc.services.components import refresh_components
    from cmoc.services.delivering import channels_for
    from cmoc.timeutil import utcnow
    from tests.factories import login

    client = live_app.test_client()
    login(client, cmoc_user)
    refresh_components(statusio=channels_for(live_app)["statusio"], now=utcnow())
    return client


@pytest.fixture
def provider():
    """An OpenID Connect provider on loopback."""
    from tests.oidc_provider import OidcProvider

    server = OidcProvider().start()
    yield server
    server.stop()
