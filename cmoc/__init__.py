"""cmoc: the Communications Manager On Call's tool. `create_app` builds the Flask app."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Builds the app from config/default.toml, the environment and `config` overrides."""
    from cmoc import api, auth, hooks, oidc, prometheus, web
    from cmoc.cli import register_commands
    from cmoc.config import load_config
    from cmoc.extensions import csrf, db, login_manager, migrate
    from cmoc.messages import TemplateLibrary

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        instance_path=str((config or {}).get("INSTANCE_PATH")
                          or os.environ.get("CMOC_INSTANCE_PATH") or ROOT / "instance"),
    )
    load_config(app, config)
    if app.config.get("TRUSTED_PROXIES"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        # The client's address and scheme from the X-Forwarded-For/-Proto entries that the
        # trusted hops appended (the rest of those headers is the client's and ignored).
        # X-Forwarded-Host is not used: proxies pass a client's own through unless told not
        # to, and links that leave the app are built from BASE_URL.
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0)
    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS))
    csrf.init_app(app)
    login_manager.init_app(app)
    app.extensions["cmoc.templates"] = TemplateLibrary(ROOT / "templates" / "messages")
    auth.init_app(app)
    oidc.init_app(app)
    web.init_app(app)
    api.init_app(app)
    hooks.init_app(app)
    prometheus.init_app(app)
    register_commands(app)
    return app
