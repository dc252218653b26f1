"""The web blueprint; each view module adds its routes to it when imported."""

import importlib

from flask import Blueprint

bp = Blueprint("web", __name__)

VIEW_MODULES = ("incidents", "updates", "drafting", "reminders", "admin", "reports", "sandbox",
                "aftercare", "live", "gitlab", "sessions", "slack")


def load_views() -> Blueprint:
    for name in VIEW_MODULES:
        importlib.import_module(f"cmoc.views.{name}")
    return bp
