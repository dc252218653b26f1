"""The cmoc command line and migrations."""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from cmoc.extensions import db
from cmoc.models import User


def test_users_create_with_password_stdin(runner):
    result = runner.invoke(args=["users", "create", "dana", "--role", "cmoc",
                                 "--password-stdin"], input="a-long-password\n")
    assert result.exit_code == 0, result.output
    assert "created dana (cmoc)" in result.output
    assert db.session.query(User).filter_by(username="dana").one().role == "cmoc"
    again = runner.invoke(args=["users", "create", "dana", "--role", "cmoc", "--password-stdin"],
                          input="a-long-password\n")
    assert again.exit_code == 1 and "already exists" in again.output
    short = runner.invoke(args=["users", "create", "eve", "--role", "admin",
                                "--password-stdin"], input="short\n")
    assert short.exit_code == 1 and "Password must be" in short.output
    bad_role = runner.invoke(args=["users", "create", "eve", "--role", "root",
                                   "--password-stdin"], input="a-long-password\n")
    assert bad_role.exit_code == 2


def test_models_match_migrations(app):
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        assert compare_metadata(context, db.metadata) == []


def test_console_script_upgrades_a_fresh_database(tmp_path):
    env = {**os.environ, "SECRET_KEY": "x", "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    cmoc = os.path.join(os.path.dirname(sys.executable), "cmoc")
    upgrade = subprocess.run([cmoc, "db", "upgrade"], env=env, capture_output=True, text=True,
                             timeout=120, check=False)
    assert upgrade.returncode == 0, upgrade.stderr
    created = subprocess.run([cmoc, "users", "create", "root", "--role", "admin",
                              "--password-stdin"], input="a-long-password\n", env=env,
                             capture_output=True, text=True, timeout=120, check=False)
    assert created.returncode == 0, created.stderr
    assert "created root (admin)" in created.stdout
