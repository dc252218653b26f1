"""Fake GitLab REST API v4: projects by id or URL-encoded path, issues (get, list with search
and labels, create, update with labels/add_labels/remove_labels/state_event), issue notes
(list with GitLab's pagination headers, create), the `PRIVATE-TOKEN` check, and project
webhooks: an issue created or changed through the API is announced to every registered hook
as GitLab would (`cmoc.fake_apis.gitlab_hooks`).

Shapes follow GitLab's API documentation: 401 `{"message": "401 Unauthorized"}`, 404
`{"message": "404 Project Not Found"}`, issues with `iid`, `labels` (names), `web_url`,
`issue_type`, `severity` (UPPER CASE), notes newest first unless `sort=asc`.
"""

from __future__ import annotations

import itertools
from typing import Any
from urllib.parse import unquote, urlencode

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.gitlab_hooks import HookSender
from cmoc.fake_apis.wire import Clock, answer, iso, real_now

GITLAB_TOKEN = "glpat-fake-token"
INCIDENT_PROJECT = "gitlab-com/gl-infra/production"
HANDOVER_PROJECT = "gitlab-com/support/dotcom/cmoc-handover"
BOT = {"id": 90, "username": "cmoc-bot", "name": "cmoc", "state": "active"}
PEOPLE = {"im": {"id": 7, "username": "incident-manager", "name": "Incident Manager",
                 "state": "active"}}
SEVERITIES = ("UNKNOWN", "LOW", "MEDIUM", "HIGH", "CRITICAL")


def _labels(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(x).strip() for x in items if str(x).strip()]


def _raw_path(request: Request) -> str:
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.path
    return raw.split("?", 1)[0]


class FakeGitLab:
    def __init__(self, lock, clock: Clock = real_now):
        self.lock = lock
        self.clock = clock
        self.projects: dict[int, dict[str, Any]] = {}
        self.issues: dict[tuple[int, int], dict[str, Any]] = {}
        self.notes: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.base_url = "http://gitlab.invalid"   # FakeApis sets its own URL
        self._ids = itertools.count(1000)
        self.hooks = HookSender(self)
        for path in (INCIDENT_PROJECT, HANDOVER_PROJECT):
            self.add_project(path)

    def reseed_ids(self) -> None:
        """After loading saved state: new ids follow the ones already used."""
        used = [i["id"] for i in self.issues.values()] + [
            n["id"] for notes in self.notes.values() for n in notes]
        self._ids = itertools.count(max(used, default=999) + 1)

    # -- seeding (tests and the sandbox) ----------------------------------------------------
    def add_project(self, path: str) -> dict[str, Any]:
        with self.lock:
            project_id = len(self.projects) + 1
            project = {"id": project_id, "path_with_namespace": path,
                       "name": path.rsplit("/", 1)[-1], "namespace": path.rsplit("/", 1)[0]}
            self.projects[project_id] = project
            return project

    def project(self, ref: str | int) -> dict[str, Any] | None:
        if isinstance(ref, int) or str(ref).isdigit():
            return self.projects.get(int(ref))
        return next((p for p in self.projects.values()
                     if p["path_with_namespace"].lower() == str(ref).lower()), None)

    def web_url(self, project: dict[str, Any]) -> str:
        return f"{self.base_url}/{project['path_with_namespace']}"

    def open_issue(self, path: str, *, title: str, labels: list[str] | None = None,
                   issue_type: str = "incident", severity: str = "UNKNOWN",
                   description: str = "", author: str = "im") -> dict[str, Any]:
        """An issue opened by a person in GitLab (not through cmoc); hooks are told."""
        with self.lock:
            project = self.project(path)
            issue = self._create(project, {"title": title, "labels": labels or [],
                                           "description": description,
                                           "issue_type": issue_type}, PEOPLE[author])
            issue["severity"] = severity.upper()
        self.hooks.issue_event(project, issue, action="open", user=PEOPLE[author])
        return issue

    def change_labels(self, path: str, iid: int, *, add: list[str] = (),
                      remove: list[str] = (), author: str = "im") -> dict[str, Any]:
        """A person relabels an issue in GitLab; hooks are told."""
        with self.lock:
            project = self.project(path)
            issue = self.issues[(project["id"], iid)]
            changes = self._relabel(issue, {"add_labels": ",".join(add),
                                            "remove_labels": ",".join(remove)})
        self.hooks.issue_event(project, issue, action="update", user=PEOPLE[author],
                               changes=changes)
        return issue

    # -- the API ------------------------------------------------------------------------------
    def handle(self, request: Request, path: str, body: Any) -> Response:
        if request.headers.get("PRIVATE-TOKEN") != GITLAB_TOKEN:
            return answer(401, {"message": "401 Unauthorized"})
        # The raw path: a project path is URL-encoded (gitlab-com%2Fgl-infra%2Fproduction).
        parts = [unquote(p) for p in _raw_path(request).split("/gitlab/api/v4/", 1)[-1]
                 .split("/") if p]
        if len(parts) < 2 or parts[0] != "projects":
            return answer(404, {"error": "404 Not Found"})
        body = body if isinstance(body, dict) else {}
        args = request.args.to_dict()
        with self.lock:
            project = self.project(parts[1])
            if project is None:
                return answer(404, {"message": "404 Project Not Found"})
            rest, method = parts[2:], request.method
            if not rest and method == "GET":
                return answer(200, {**project, "web_url": self.web_url(project)})
            if rest == ["issues"] and method == "GET":
                return self._list_issues(request, project, args)
            if rest == ["issues"] and method == "POST":
                if not str(body.get("title") or "").strip():
                    return answer(400, {"error": "title is missing"})
                issue = self._create(project, body, BOT)
                created = dict(issue)
            elif len(rest) >= 2 and rest[0] == "issues" and rest[1].isdigit():
                issue = self.issues.get((project["id"], int(rest[1])))
                if issue is None:
                    return answer(404, {"message": "404 Issue Not Found"})
                return self._issue_route(request, project, issue, rest[2:], body, args)
            else:
                return answer(404, {"error": "404 Not Found"})
        self.hooks.issue_event(project, created, action="open", user=BOT)
        return answer(201, created)

    def _issue_route(self, request: Request, project, issue, rest, body, args) -> Response:
        key, method = (project["id"], issue["iid"]), request.method
        if not rest and method == "GET":
            return answer(200, issue)
        if not rest and method == "PUT":
            changes = self._relabel(issue, body)
            action = {"close": "close", "reopen": "reopen"}.get(body.get("state_event"), "update")
            if action != "update":
                changes["state"] = {"previous": issue["state"],
                                    "current": "closed" if action == "close" else "opened"}
                issue["state"] = changes["state"]["current"]
            for field in ("title", "description"):
                if field in body:
                    changes[field] = {"previous": issue[field], "current": body[field]}
                    issue[field] = body[field]
            self.hooks.issue_event(project, dict(issue), action=action, user=BOT,
                                   changes=changes)
            return answer(200, issue)
        if rest == ["notes"] and method == "GET":
            notes = sorted(self.notes.get(key, []), key=lambda n: (n[args.get(
                "order_by", "created_at")], n["id"]), reverse=args.get("sort", "desc") != "asc")
            return self._page(request, notes, args)
        if rest == ["notes"] and method == "POST":
            if not str(body.get("body") or "").strip():
                return answer(400, {"message": {"note": ["can't be blank"]}})
            now = iso(self.clock())
            note = {"id": next(self._ids), "body": body["body"], "author": BOT,
                    "created_at": now, "updated_at": now, "system": False,
                    "noteable_id": issue["id"], "noteable_type": "Issue",
                    "noteable_iid": issue["iid"], "internal": bool(body.get("internal"))}
            self.notes.setdefault(key, []).append(note)
            issue["user_notes_count"] = len(self.notes[key])
            return answer(201, note)
        return answer(404, {"error": "404 Not Found"})

    # -- state --------------------------------------------------------------------------------
    def _create(self, project, body: dict, author: dict) -> dict[str, Any]:
        iid = 1 + max((i for (p, i) in self.issues if p == project["id"]), default=0)
        now = iso(self.clock())
        issue_type = str(body.get("issue_type") or "issue").lower()
        issue = {
            "id": next(self._ids), "iid": iid, "project_id": project["id"],
            "title": str(body["title"]), "description": str(body.get("description") or ""),
            "state": "opened", "created_at": now, "updated_at": now, "closed_at": None,
            "labels": _labels(body.get("labels")), "author": author,
            "issue_type": issue_type, "type": issue_type.upper(), "severity": "UNKNOWN",
            "web_url": f"{self.web_url(project)}/-/issues/{iid}", "user_notes_count": 0,
            "references": {"short": f"#{iid}",
                           "full": f"{project['path_with_namespace']}#{iid}"},
        }
        self.issues[(project["id"], iid)] = issue
        return issue

    def _relabel(self, issue: dict, body: dict) -> dict[str, Any]:
        before = list(issue["labels"])
        labels = _labels(body["labels"]) if "labels" in body else list(before)
        for name in _labels(body.get("add_labels")):
            # A scoped label replaces the other label of its scope, as in GitLab.
            if "::" in name:
                scope = name.rsplit("::", 1)[0] + "::"
                labels = [x for x in labels if not (x.startswith(scope) and x.count("::")
                                                    == name.count("::"))]
            if name not in labels:
                labels.append(name)
        removed = {x.lower() for x in _labels(body.get("remove_labels"))}
        labels = [x for x in labels if x.lower() not in removed]
        issue["labels"] = labels
        issue["updated_at"] = iso(self.clock())
        return {"labels": {"previous": before, "current": labels}} if labels != before else {}

    def _list_issues(self, request: Request, project, args: dict) -> Response:
        found = [i for (p, _), i in self.issues.items() if p == project["id"]]
        if args.get("state") in ("opened", "closed"):
            found = [i for i in found if i["state"] == args["state"]]
        wanted = {x.lower() for x in _labels(args.get("labels"))}
        found = [i for i in found if wanted <= {x.lower() for x in i["labels"]}]
        if args.get("search"):
            fields = (args.get("in") or "title,description").split(",")
            term = args["search"].lower()
            found = [i for i in found if any(term in str(i.get(f, "")).lower() for f in fields)]
        found.sort(key=lambda i: (i[args.get("order_by", "created_at")], i["id"]),
                   reverse=args.get("sort", "desc") != "asc")
        return self._page(request, found, args)

    def _page(self, request: Request, rows: list, args: dict) -> Response:
        """GitLab's offset pagination: X-Page, X-Next-Page, X-Total(-Pages) and Link."""
        per_page = max(1, min(int(args.get("per_page") or 20), 100))
        page = max(1, int(args.get("page") or 1))
        pages = max(1, -(-len(rows) // per_page))
        headers = {"X-Page": str(page), "X-Per-Page": str(per_page), "X-Total": str(len(rows)),
                   "X-Total-Pages": str(pages),
                   "X-Next-Page": str(page + 1) if page < pages else "",
                   "X-Prev-Page": str(page - 1) if page > 1 else ""}
        base = request.host_url.rstrip("/") + _raw_path(request)

        def link(number: int, rel: str) -> str:
            return f'<{base}?{urlencode({**args, "page": number, "per_page": per_page})}>; ' \
                   f'rel="{rel}"'

        links = ([link(page + 1, "next")] if page < pages else []) + \
            ([link(page - 1, "prev")] if page > 1 else []) + [link(1, "first"),
                                                               link(pages, "last")]
        headers["Link"] = ", ".join(links)
        return answer(200, rows[(page - 1) * per_page: page * per_page], headers)


class GitLabSandbox:
    """The sandbox's GitLab: state kept across restarts, and the control API the Sandbox page
    uses to play the incident manager (open an incident issue, relabel it)."""

    def __init__(self, fake: FakeGitLab):
        self.fake = fake

    def snapshot(self) -> dict[str, Any]:
        return {"issues": list(self.fake.issues.values()),
                "notes": [{"project_id": p, "iid": i, "notes": n}
                          for (p, i), n in self.fake.notes.items()]}

    def load(self, state: dict[str, Any] | None) -> None:
        state = state or {}
        self.fake.issues = {(i["project_id"], i["iid"]): i for i in state.get("issues", [])}
        self.fake.notes = {(n["project_id"], n["iid"]): n["notes"]
                           for n in state.get("notes", [])}
        self.fake.reseed_ids()

    def handle(self, request: Request, path: str) -> Response:
        body = request.get_json(silent=True) or {}
        if path == "gitlab" and request.method == "GET":
            return answer(200, self.view())
        if path == "gitlab/issues" and request.method == "POST":
            title = str(body.get("title") or "").strip()[:200]
            severity = str(body.get("severity") or "")
            if not title or severity not in ("1", "2", "3", "4"):
                return answer(400, {"error": "title and severity (1-4) are required"})
            labels = [f"severity::{severity}", "Incident::Active",
                      *[str(x) for x in body.get("labels") or []][:5]]
            issue = self.fake.open_issue(INCIDENT_PROJECT, title=title, labels=labels)
            return answer(201, issue)
        if path == "gitlab/labels" and request.method == "POST":
            try:
                issue = self.fake.change_labels(INCIDENT_PROJECT, int(body.get("iid")),
                                                add=[str(body.get("add") or "")])
            except (KeyError, TypeError, ValueError):
                return answer(400, {"error": "iid and add are required"})
            return answer(200, issue)
        return answer(404, {"error": "unknown sandbox endpoint"})

    def view(self) -> dict[str, Any]:
        with self.fake.lock:
            issues = sorted(self.fake.issues.values(), key=lambda i: i["id"], reverse=True)
            return {"issues": [{**i, "project": self.fake.projects[i["project_id"]][
                "path_with_namespace"], "notes": self.fake.notes.get(
                (i["project_id"], i["iid"]), [])} for i in issues],
                "hooks": [{"url": t.url} for t in self.fake.hooks.targets],
                "deliveries": [{"status": d.status, "error": d.error,
                                "action": d.payload["object_attributes"]["action"],
                                "iid": d.payload["object_attributes"]["iid"]}
                               for d in self.fake.hooks.deliveries[-20:]]}
