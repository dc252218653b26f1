"""A requests transport that always applies a timeout and can route a fixed host elsewhere."""

from __future__ import annotations

from http.client import RemoteDisconnected

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ProtocolError

DEFAULT_TIMEOUT = (3.05, 10)


class RoutingAdapter(HTTPAdapter):
    """Sends with a default timeout; rewrites `from_prefix` to `to_prefix` when given.

    tweepy hard-codes https://api.twitter.com; mounting this adapter on its session points it at
    TWITTER_API_URL (a staging host or a local fake) without copying tweepy's code. The OAuth 1
    signature was computed for the original URL, which real proxies and fakes accept.
    """

    def __init__(self, *, timeout=DEFAULT_TIMEOUT, from_prefix: str | None = None,
                 to_prefix: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.timeout = timeout
        self.from_prefix = from_prefix
        self.to_prefix = to_prefix

    def send(self, request, **kwargs):
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        if self.from_prefix and self.to_prefix and request.url.startswith(self.from_prefix):
            request.url = self.to_prefix + request.url[len(self.from_prefix):]
        return super().send(request, **kwargs)


def make_session(*, timeout=DEFAULT_TIMEOUT, session: requests.Session | None = None,
                 from_prefix: str | None = None, to_prefix: str | None = None,
                 pool_maxsize: int = 10) -> requests.Session:
    """A session whose every request has a timeout (and optional host routing)."""
    session = session or requests.Session()
    adapter = RoutingAdapter(timeout=timeout, from_prefix=from_prefix, to_prefix=to_prefix,
                             pool_maxsize=pool_maxsize)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _dropped_mid_request(exc: BaseException) -> bool:
    """True when the connection broke after the request may have been received."""
    seen = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ProtocolError | RemoteDisconnected | ConnectionResetError):
            return True
        stack.extend([current.__cause__, current.__context__, getattr(current, "reason", None)])
        stack.extend(a for a in getattr(current, "args", ()) if isinstance(a, BaseException))
    return False


def describe_network_error(exc: requests.RequestException, service: str) -> tuple[str, bool]:
    """(message, retry_is_safe): a refused connection sent nothing; a read timeout may have."""
    unknown = (f"{service}: no answer (%s); the post may have gone out, so it is checked "
               "before any retry")
    if isinstance(exc, requests.ConnectTimeout):
        return f"{service}: could not connect (timeout)", True
    if isinstance(exc, requests.ReadTimeout):
        return unknown % "read timeout", False
    if isinstance(exc, requests.ConnectionError):
        if _dropped_mid_request(exc):
            return unknown % "connection dropped", False
        return f"{service}: could not connect (connection refused or unreachable)", True
    return f"{service}: request failed ({type(exc).__name__})", False
