"""GitLab REST v4 through python-gitlab: read an incident issue, comment on it, list its
comments, add labels, find or create an issue. Every call returns (value, None) or (None, a
failed ChannelResult) — never raises for what a remote can answer.

python-gitlab sleeps on 429 and may retry on its own; cmoc turns both off (a second POST of a
comment doubles it) and decides itself: a refused connection or a 429 (with its reset time) is
safe to retry, a 5xx, timeout, dropped connection or unreadable body may hide a comment that
was made, so it is looked up before anything is sent again.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import gitlab
import requests
from gitlab import exceptions as gle

from cmoc.channels import ChannelResult
from cmoc.channels.http import describe_network_error

T = TypeVar("T")
REF = re.compile(r"^(?P<project>[\w.-]+(?:/[\w.-]+)+)#(?P<iid>\d+)$")
SHORT_REF = re.compile(r"^#?(?P<iid>\d+)$")
# <project path>/-/issues/<iid> (also /-/issues/incident/<iid> and /-/work_items/<iid>).
URL_PATH = re.compile(r"^/(?P<project>[^?#]+?)/-/(?:issues(?:/incident)?|work_items)/"
                      r"(?P<iid>\d+)(?:[/?#].*)?$")


@dataclass(frozen=True)
class IssueRef:
    project: str
    iid: int

    def __str__(self) -> str:
        return f"{self.project}#{self.iid}"


def parse_issue_ref(text: str | None, *, base_url: str,
                    default_project: str | None = None) -> IssueRef | None:
    """An issue from `group/project#123`, `#123` or `123` (the incident project), or its URL
    on GITLAB_URL; None for anything else (another host, not an issue)."""
    text = (text or "").strip()
    if match := REF.match(text):
        return IssueRef(match["project"], int(match["iid"]))
    if (match := SHORT_REF.match(text)) and default_project:
        return IssueRef(default_project, int(match["iid"]))
    base = urlsplit(base_url.rstrip("/"))
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != base.netloc.lower():
        return None
    path = parts.path
    if base.path and base.path != "/":
        if not path.startswith(base.path.rstrip("/") + "/"):
            return None
        path = path[len(base.path.rstrip("/")):]
    if match := URL_PATH.match(path):
        return IssueRef(match["project"], int(match["iid"]))
    return None


class _Client(gitlab.Gitlab):
    """python-gitlab that never waits on a 429 and never retries by itself."""

    def http_request(self, verb: str, path: str, *args: Any, **kwargs: Any):
        kwargs.update(obey_rate_limit=False, retry_transient_errors=False, max_retries=0)
        return super().http_request(verb, path, *args, **kwargs)


class GitLabApi:
    name = "gitlab"

    def __init__(self, *, session: requests.Session, url: str, token: str | None,
                 timeout: tuple[float, float] = (3.05, 10)):
        self.url = url.rstrip("/")
        self.token = token
        self._local = threading.local()
        session.hooks.setdefault("response", []).append(self._remember)
        self.client = _Client(self.url, private_token=token, session=session, timeout=timeout,
                              keep_base_url=True, per_page=100)

    @property
    def configured(self) -> bool:
        return bool(self.token)

    def _remember(self, response: requests.Response, *args, **kwargs) -> None:
        # python-gitlab's errors carry no headers; a 429's reset time is read from here.
        self._local.last = response

    # -- calls --------------------------------------------------------------------------------
    def call(self, what: str, fn: Callable[[], T]) -> tuple[T | None, ChannelResult | None]:
        self._local.last = None
        try:
            return fn(), None
        except requests.exceptions.ChunkedEncodingError:
            return None, ChannelResult.failed(
                f"GitLab: no answer (connection dropped); it may have been done, so it is "
                f"checked before any retry ({what})", outcome_unknown=True)
        except requests.RequestException as exc:
            message, safe = describe_network_error(exc, "GitLab")
            return None, ChannelResult.failed(f"{message} ({what})", retryable=safe,
                                              outcome_unknown=not safe)
        except gle.GitlabParsingError:
            return None, ChannelResult.failed(
                f"GitLab answered with a body that is not JSON ({what})", outcome_unknown=True)
        except gle.GitlabError as exc:
            return None, self._http_failure(exc, what)

    def _http_failure(self, exc: gle.GitlabError, what: str) -> ChannelResult:
        code = exc.response_code
        detail = str(exc.error_message or "")[:200]
        if code == 401:
            return ChannelResult.failed(f"GitLab refused the token (HTTP 401, {what}) — check "
                                        "GITLAB_TOKEN")
        if code == 403:
            return ChannelResult.failed(f"GitLab: not allowed (HTTP 403, {what}) — the token "
                                        "needs the api scope and access to the project")
        if code == 404:
            return ChannelResult.failed(f"GitLab: not found (HTTP 404, {what}) — check the "
                                        "project and issue, and that the token can see them")
        if code == 429:
            return ChannelResult.failed(f"GitLab rate limit (HTTP 429, {what})", retryable=True,
                                        retry_after=self._retry_after())
        if code is not None and code >= 500:
            return ChannelResult.failed(f"GitLab server error (HTTP {code}, {what})",
                                        outcome_unknown=True, retry_after=self._retry_after())
        return ChannelResult.failed(f"GitLab error (HTTP {code}, {what}): {detail}")

    def _retry_after(self) -> float | None:
        response = getattr(self._local, "last", None)
        if response is None:
            return None
        value = response.headers.get("Retry-After")
        reset = response.headers.get("RateLimit-Reset")
        try:
            if value is not None:
                return max(0.0, float(value))
            if reset is not None:
                return max(0.0, float(reset) - time.time())
        except ValueError:
            return None
        return None

    # -- operations ---------------------------------------------------------------------------
    def _issue(self, ref: IssueRef, lazy: bool = True):
        return self.client.projects.get(ref.project, lazy=True).issues.get(ref.iid, lazy=lazy)

    def get_issue(self, ref: IssueRef) -> tuple[dict | None, ChannelResult | None]:
        return self.call(f"issue {ref}", lambda: dict(self._issue(ref, lazy=False).attributes))

    def create_note(self, ref: IssueRef, body: str) -> tuple[dict | None, ChannelResult | None]:
        return self.call(f"comment on {ref}", lambda: dict(
            self._issue(ref).notes.create({"body": body}).attributes))

    def iter_notes(self, ref: IssueRef) -> Iterator[dict]:
        """The issue's comments, newest first, fetched a page at a time (raises on failure:
        use inside `call`)."""
        for note in self._issue(ref).notes.list(iterator=True, order_by="created_at",
                                                sort="desc", per_page=100):
            yield dict(note.attributes)

    def add_labels(self, ref: IssueRef, labels: list[str]
                   ) -> tuple[dict | None, ChannelResult | None]:
        """Adds labels (GitLab keeps existing ones; adding one twice changes nothing)."""
        return self.call(f"labels on {ref}", lambda: self.client.projects.get(
            ref.project, lazy=True).issues.update(ref.iid, {"add_labels": ",".join(labels)}))

    def find_issue(self, project: str, *, search: str, marker: str
                   ) -> tuple[dict | None, ChannelResult | None]:
        """The newest issue whose title matches `search` and whose description holds
        `marker`; ({}, None) when there is none."""
        def find() -> dict:
            issues = self.client.projects.get(project, lazy=True).issues.list(
                iterator=True, search=search, order_by="created_at", sort="desc",
                per_page=100, **{"in": "title"})
            for issue in issues:
                if marker in (issue.attributes.get("description") or ""):
                    return dict(issue.attributes)
            return {}
        return self.call(f"issues of {project}", find)

    def create_issue(self, project: str, *, title: str, description: str,
                     labels: list[str]) -> tuple[dict | None, ChannelResult | None]:
        return self.call(f"new issue in {project}", lambda: dict(
            self.client.projects.get(project, lazy=True).issues.create(
                {"title": title, "description": description,
                 "labels": ",".join(labels)}).attributes))
