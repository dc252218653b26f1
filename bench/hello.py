"""The baseline: a minimal Flask app served by the same gunicorn settings as cmoc."""

from flask import Flask


def create_app() -> Flask:
    app = Flask(__name__)

    @app.get("/")
    def hello():
        return "Hello, World!"

    return app
