"""gunicorn's access log without secrets: cmoc takes tokens only in headers and refuses them in a
query string, but a client that sends one there would otherwise have it written to the log."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from gunicorn.glogging import Logger

# Query parameters (and headers) whose value is, or may be, a credential (OIDC's `code` too).
SECRET_NAME = re.compile(r"token|secret|passw|key|auth|code|session|cookie|sig|cred|jwt",
                         re.IGNORECASE)
REDACTED = "[redacted]"


def redact_query(query: str) -> str:
    """The query string with every credential-like parameter's value replaced."""
    kept = []
    for part in query.split("&"):
        name, sep, value = part.partition("=")
        if not sep:  # a bare value (`?abc123`) may be a token itself
            kept.append(REDACTED if part else part)
        else:
            kept.append(f"{name}={REDACTED if SECRET_NAME.search(unquote_plus(name)) else value}")
    return "&".join(kept)


def redact_url(url: str) -> str:
    """A URL or request target with its query string redacted."""
    if "?" not in url:
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query=redact_query(parts.query)))


class RedactingLogger(Logger):
    """Logs the request line, query string and referrer with credential values redacted."""

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        raw_uri = redact_url(environ.get("RAW_URI") or "")
        query = redact_query(environ.get("QUERY_STRING") or "")
        atoms["r"] = f"{environ['REQUEST_METHOD']} {raw_uri} {environ['SERVER_PROTOCOL']}"
        atoms["q"] = query
        atoms["f"] = redact_url(atoms.get("f") or "-")
        for key in ("{raw_uri}e", "{request_uri}e"):
            if key in atoms:
                atoms[key] = raw_uri
        if "{query_string}e" in atoms:
            atoms["{query_string}e"] = query
        if "{referer}i" in atoms:
            atoms["{referer}i"] = atoms["f"]
        # Header atoms such as {authorization}i: never logged, whatever the format says.
        for key in [k for k in atoms if k.endswith("}i") and SECRET_NAME.search(k)]:
            atoms[key] = REDACTED
        return atoms
