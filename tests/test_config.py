"""Configuration layering and validation."""

from __future__ import annotations

import pytest
from flask import Flask

from cmoc import create_app
from cmoc.cadence import ConfigError
from cmoc.config import load_config, normalise_database_url
from cmoc.enums import Severity, State

BASE = {"SECRET_KEY": "k", "DATABASE_URL": "sqlite://"}


def test_defaults_from_toml_carry_the_handbook_cadence():
    app = create_app(BASE)
    cadence = app.config["CADENCE_MATRIX"]
    table = {(s.value, v.value): m for (s, v), m in cadence.minutes.items()}
    assert table[("investigating", "S1")] == 10
    assert table[("identified", "S1")] == 10
    assert table[("monitoring", "S1")] == 30
    for sev in ("S2", "S3", "S4"):
        assert (table[("investigating", sev)], table[("identified", sev)],
                table[("monitoring", sev)]) == (15, 30, 60)
    assert cadence.interval(State.RESOLVED, Severity.S1) is None
    assert "API" in [c["name"] for c in app.config["COMPONENTS"]]


def test_factory_is_not_testing_unless_told():
    assert not create_app(BASE).testing
    assert create_app({**BASE, "TESTING": True}).testing


def test_cmoc_config_file_layers_on_top(tmp_path, monkeypatch):
    extra = tmp_path / "extra.toml"
    extra.write_text('status_page_url = "https://status.example.com"\n'
                     "[cadence.monitoring]\nS1 = 20\n")
    monkeypatch.setenv("CMOC_CONFIG", str(extra))
    app = create_app(BASE)
    assert app.config["STATUS_PAGE_URL"] == "https://status.example.com"
    assert app.config["CADENCE_MATRIX"].minutes[(State.MONITORING, Severity.S1)] == 20
    # cells not named in the extra file keep their defaults
    assert app.config["CADENCE_MATRIX"].minutes[(State.MONITORING, Severity.S2)] == 60


def test_environment_overrides_file_and_overrides_win(monkeypatch):
    monkeypatch.setenv("CMOC_TITLE_MAX_LENGTH", "90")
    monkeypatch.setenv("SLACK_API_URL", "http://127.0.0.1:9/api")
    app = create_app(BASE)
    assert app.config["TITLE_MAX_LENGTH"] == 90
    assert app.config["SLACK_API_URL"] == "http://127.0.0.1:9/api"
    assert create_app({**BASE, "TITLE_MAX_LENGTH": 50}).config["TITLE_MAX_LENGTH"] == 50


@pytest.mark.parametrize(("body", "message", "line"), [
    ("[cadence.investigating]\nS1 = 0\n", "must be between 1 and 1440", 2),
    ("[cadence.identified]\nS1 = 10\nS2 = -5\n", "cadence.identified.S2", 3),
    ("[cadence.investigating]\nS1 = 'ten'\n", "whole number", 2),
    ("[cadence.escalated]\nS1 = 10\n", "unknown state 'cadence.escalated'", 1),
    ("[cadence.monitoring]\nS9 = 10\n", "unknown severity", 2),
])
def test_bad_cadence_refuses_to_start_naming_the_line(tmp_path, body, message, line):
    extra = tmp_path / "bad.toml"
    extra.write_text(body)
    with pytest.raises(ConfigError) as err:
        create_app({**BASE, "CMOC_CONFIG": str(extra)})
    assert message in str(err.value)
    assert f"line {line}" in str(err.value)
    assert str(extra) in str(err.value)


def test_missing_cadence_cell_is_refused(tmp_path, monkeypatch):
    import cmoc.config as config_module

    config_dir = tmp_path / "config"
    config_dir.mkdir()
    source = (config_module.CONFIG_DIR / "default.toml").read_text()
    (config_dir / "default.toml").write_text(source.replace("S3 = 30\n", "", 1))
    monkeypatch.setattr(config_module, "CONFIG_DIR", config_dir)
    with pytest.raises(ConfigError, match=r"cadence.identified.S3 is missing"):
        load_config(Flask("t"), BASE)


def test_secret_in_config_file_is_refused(tmp_path):
    extra = tmp_path / "secret.toml"
    extra.write_text('slack_bot_token = "xoxb-123"\n')
    with pytest.raises(ConfigError, match="environment"):
        create_app({**BASE, "CMOC_CONFIG": str(extra)})


def test_secret_key_is_required(monkeypatch):
    with pytest.raises(ConfigError, match="SECRET_KEY"):
        create_app({"DATABASE_URL": "sqlite://"})
    monkeypatch.setenv("SECRET_KEY", "from-env")
    assert create_app({"DATABASE_URL": "sqlite://"}).secret_key == "from-env"


def test_database_url_from_env_accepts_heroku_form(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgres://u:p@db.example:5432/cmoc")
    app = create_app({"SECRET_KEY": "k"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example:5432/cmoc"


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://h/db", "postgresql+psycopg://h/db"),
    ("postgresql://h/db", "postgresql+psycopg://h/db"),
    ("postgresql+psycopg://h/db", "postgresql+psycopg://h/db"),
    ("sqlite:///x.db", "sqlite:///x.db"),
])
def test_normalise_database_url(given, expected):
    assert normalise_database_url(given) == expected


def test_default_database_is_sqlite_in_instance_folder(tmp_path):
    app = create_app({"SECRET_KEY": "k", "INSTANCE_PATH": str(tmp_path)})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path}/cmoc.sqlite3"
