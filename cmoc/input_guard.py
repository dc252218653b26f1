"""Refuses hostile input before any view, check or the database sees it.

Runs first on every request (before the CSRF check and the sign-in guard, whose refusals are
audited and would otherwise store what they refuse): control characters in the path, the query
string, form fields and JSON strings (NUL cannot be stored by PostgreSQL at all), JSON nested
deeper than any of our shapes (the parser recurses), and ids beyond the database's integer
column (the `int` URL converter)."""

from __future__ import annotations

import json
import re

from flask import Flask, current_app, jsonify, render_template, request
from werkzeug.routing import IntegerConverter

from cmoc.parsing import DB_INT_MAX

# Deeper than any body we accept (the API's and GitLab's webhooks are under 8 levels).
MAX_JSON_DEPTH = 20
# Never storable: NUL (PostgreSQL text) and lone surrogates (not encodable as UTF-8).
UNSTORABLE = "\x00\ud800-\udfff"
SINGLE_LINE = re.compile(f"[{UNSTORABLE}\x01-\x1f\x7f]")
MULTI_LINE = re.compile(f"[{UNSTORABLE}\x01-\x08\x0b\x0c\x0e-\x1f\x7f]")  # keeps \t \n \r
ONLY_UNSTORABLE = re.compile(f"[{UNSTORABLE}]")
# Fields people write paragraphs in: update texts, template variables, reasons.
MULTI_LINE_PREFIXES = ("text_", "var_", "rendered_")
MULTI_LINE_FIELDS = frozenset({"reason"})
MULTI_LINE_JSON = frozenset({"texts", "variables"})
# Webhook bodies are GitLab's (issue descriptions may hold any text): only what cannot be
# stored is refused there.
LENIENT_PATHS = ("/hooks/",)
CONTROL_MESSAGE = "Control characters are not allowed here."


class IdConverter(IntegerConverter):
    """`<int:...>` for ids: ASCII digits only, and 404 beyond the database's integer column
    (so `/incidents/99999999999999999999` is not found rather than a database error)."""

    regex = r"[0-9]+"

    def __init__(self, map, *args, **kwargs) -> None:
        super().__init__(map, *args, **kwargs)
        self.max = DB_INT_MAX if self.max is None else min(self.max, DB_INT_MAX)


def init_app(app: Flask) -> None:
    """Call before any blueprint adds a rule: rules bind their converter when added."""
    app.url_map.converters["int"] = IdConverter
    # First of all before-request functions, ahead of CSRF (registered by Flask-WTF earlier).
    app.before_request_funcs.setdefault(None, []).insert(0, guard)


def guard():
    """Answers 400/422 naming the first hostile field; None lets the request through."""
    if SINGLE_LINE.search(request.path):
        return _refuse(400, "control_character", "The address contains control characters.",
                       {"path": CONTROL_MESSAGE})
    lenient = request.path.startswith(LENIENT_PATHS)
    for field, value in _fields():
        pattern = ONLY_UNSTORABLE if lenient else _pattern(field)
        if pattern.search(field) or pattern.search(value):
            return _refuse(400, "control_character",
                           f"The field “{_printable(field)}” contains a control character "
                           "(such as NUL); remove it and try again.", {field: CONTROL_MESSAGE})
    if request.is_json and request.content_length != 0 and not _left_to_the_route(lenient):
        return _json_problem(lenient)
    return None


def _left_to_the_route(lenient: bool) -> bool:
    """A webhook body over the app's limit: reading it here would refuse it as too large, but
    the webhook raises the limit once it knows the sender, and checks it itself."""
    limit = current_app.config.get("MAX_CONTENT_LENGTH")
    return lenient and bool(limit and (request.content_length or 0) > limit)


def _fields():
    # Only a form body is parsed as one: touching request.form on any other body would apply
    # the form size limit to it (a large webhook would be refused as too large).
    is_form = request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data")
    if request.mimetype == "application/x-www-form-urlencoded":
        # Keep the raw body: a signed request (Slack's) is checked over the exact bytes, and
        # parsing the form from the stream would leave nothing to check. The form is then
        # parsed from this copy.
        request.get_data(cache=True)
    sources = [request.args] + ([request.form] if is_form else [])
    for source in sources:
        for key, values in source.lists():
            for value in values:
                yield key, value


def _pattern(field: str) -> re.Pattern:
    multi = field.startswith(MULTI_LINE_PREFIXES) or field in MULTI_LINE_FIELDS
    return MULTI_LINE if multi else SINGLE_LINE


def _json_problem(lenient: bool):
    try:
        document = json.loads(request.get_data(cache=True) or b"null")
    except RecursionError:
        return _too_deep()
    except ValueError:
        return None  # not JSON: the route answers that in its own words
    stack: list[tuple[object, str, int]] = [(document, "", 1)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > MAX_JSON_DEPTH:
                return _too_deep()
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, child in items:
                path = f"{where}.{key}" if where else str(key)
                pattern = ONLY_UNSTORABLE if lenient else _json_pattern(path)
                if isinstance(key, str) and pattern.search(key):
                    return _control_in_json(path)
                stack.append((child, path, depth + 1))
        elif isinstance(value, str):
            pattern = ONLY_UNSTORABLE if lenient else _json_pattern(where)
            if pattern.search(value):
                return _control_in_json(where or "body")
    return None


def _json_pattern(path: str) -> re.Pattern:
    return MULTI_LINE if path.split(".", 1)[0] in MULTI_LINE_JSON and "." in path else SINGLE_LINE


def _too_deep():
    return _refuse(400, "too_deep", f"The JSON body is nested deeper than {MAX_JSON_DEPTH} "
                   "levels.", {})


def _control_in_json(path: str):
    path = _printable(path)
    return _refuse(422, "control_character",
                   f"The field “{path}” contains a control character.", {path: CONTROL_MESSAGE})


def _printable(text: str) -> str:
    """A field name fit to show and log: its control characters as \\xNN escapes."""
    return SINGLE_LINE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace")
                           .decode("ascii"), text)[:100]


def _refuse(status: int, code: str, message: str, fields: dict[str, str]):
    from cmoc.web import _wants_json as wants_json

    fields = {_printable(k): v for k, v in fields.items()}
    if wants_json():
        return jsonify(error={"code": code, "message": message, "fields": fields}), status
    return render_template("error.html", code=status, message=message), status
