"""The fake GitLab's project webhooks: "Issue Hook" deliveries shaped like GitLab's documented
work item event payload (object_kind `issue` for issues, `work_item` with `type` "Incident"
for incidents; labels as objects; `changes` with previous/current), sent with the headers
GitLab sends (X-Gitlab-Event, X-Gitlab-Token, X-Gitlab-Event-UUID, X-Gitlab-Webhook-UUID,
Idempotency-Key). A delivery can be sent again with the same Idempotency-Key, as GitLab's
retries and "Resend request" do.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import requests

HOOK_TIMEOUT = (3.05, 10)   # GitLab gives up on a receiver after about 10 s


@dataclass
class HookTarget:
    project_id: int
    url: str
    token: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


@dataclass
class HookDelivery:
    target: HookTarget
    headers: dict[str, str]
    payload: dict[str, Any]
    sent_at: datetime | None = None
    status: int | None = None
    error: str | None = None
    answered_at: datetime | None = None


def label_objects(names: list[str], project_id: int) -> list[dict[str, Any]]:
    """Labels as a hook payload carries them (the API lists only names)."""
    return [{"id": 200 + sum(map(ord, name)) % 7919, "title": name, "color": "#dc143c",
             "project_id": project_id, "created_at": "2024-01-02T10:00:00Z",
             "updated_at": "2024-01-02T10:00:00Z", "template": False, "description": None,
             "type": "ProjectLabel", "group_id": None} for name in names]


def issue_payload(*, project: dict, web_url: str, issue: dict, action: str, user: dict,
                  changes: dict | None = None) -> dict[str, Any]:
    """An issue event payload in the documented shape."""
    work_type = "Incident" if issue.get("issue_type") == "incident" else "Issue"
    labels = label_objects(issue["labels"], project["id"])
    hook_changes = dict(changes or {})
    if "labels" in hook_changes:
        hook_changes["labels"] = {
            "previous": label_objects(hook_changes["labels"]["previous"], project["id"]),
            "current": label_objects(hook_changes["labels"]["current"], project["id"])}
    stamp = issue["updated_at"].replace("T", " ").split(".")[0].rstrip("Z") + " UTC"
    hook_changes.setdefault("updated_at", {"previous": stamp, "current": stamp})
    return {
        "object_kind": "issue" if work_type == "Issue" else "work_item",
        "event_type": "issue" if work_type == "Issue" else "work_item",
        "user": {**{k: user[k] for k in ("id", "name", "username")}, "avatar_url": None,
                 "email": "[REDACTED]"},
        "project": {"id": project["id"], "name": project["name"], "description": "",
                    "web_url": web_url, "avatar_url": None, "namespace": project["namespace"],
                    "visibility_level": 20,
                    "path_with_namespace": project["path_with_namespace"],
                    "default_branch": "main", "ci_config_path": None, "homepage": web_url,
                    "url": f"{web_url}.git", "http_url": f"{web_url}.git"},
        "object_attributes": {
            "id": issue["id"], "iid": issue["iid"], "title": issue["title"],
            "description": issue["description"], "project_id": project["id"],
            "author_id": issue["author"]["id"], "assignee_ids": [], "assignee_id": None,
            "created_at": issue["created_at"], "updated_at": issue["updated_at"],
            "updated_by_id": user["id"], "closed_at": issue.get("closed_at"),
            "state": issue["state"], "state_id": 1 if issue["state"] == "opened" else 2,
            "confidential": False, "discussion_locked": None, "due_date": None,
            "time_estimate": 0, "total_time_spent": 0, "weight": None, "health_status": None,
            "type": work_type, "url": issue["web_url"], "action": action,
            "severity": issue.get("severity", "UNKNOWN").lower(),
            "labels": labels,
            **({"escalation_status": "triggered"} if work_type == "Incident" else {}),
        },
        "repository": {"name": project["name"], "url": f"{web_url}.git", "description": "",
                       "homepage": web_url},
        "assignees": [], "labels": labels, "changes": hook_changes,
    }


class HookSender:
    def __init__(self, fake):
        self.fake = fake
        self.targets: list[HookTarget] = []
        self.deliveries: list[HookDelivery] = []
        self.threads: list[threading.Thread] = []
        self.sync = False       # tests may want each delivery answered before going on

    def add(self, project_path: str, *, url: str, token: str) -> HookTarget:
        target = HookTarget(project_id=self.fake.project(project_path)["id"], url=url,
                            token=token)
        self.targets.append(target)
        return target

    def issue_event(self, project: dict, issue: dict, *, action: str, user: dict,
                    changes: dict | None = None) -> list[HookDelivery]:
        sent = []
        for target in [t for t in self.targets if t.project_id == project["id"]]:
            payload = issue_payload(project=project, web_url=self.fake.web_url(project),
                                    issue=issue, action=action, user=user, changes=changes)
            headers = {"Content-Type": "application/json", "User-Agent": "GitLab/17.6.0",
                       "X-Gitlab-Event": "Issue Hook", "X-Gitlab-Token": target.token,
                       "X-Gitlab-Instance": self.fake.base_url.rsplit("/gitlab", 1)[0],
                       "X-Gitlab-Webhook-UUID": target.uuid,
                       "X-Gitlab-Event-UUID": str(uuid.uuid4()),
                       "Idempotency-Key": str(uuid.uuid4())}
            delivery = HookDelivery(target=target, headers=headers, payload=payload)
            self.deliveries.append(delivery)
            self.send(delivery)
            sent.append(delivery)
        return sent

    def send(self, delivery: HookDelivery) -> None:
        """Sends (again): the same body, Idempotency-Key and event UUID."""
        if self.sync:
            self._post(delivery)
            return
        thread = threading.Thread(target=self._post, args=(delivery,), daemon=True,
                                  name="fake-gitlab-hook")
        self.threads.append(thread)
        thread.start()

    def _post(self, delivery: HookDelivery) -> None:
        delivery.sent_at = datetime.now(UTC)
        try:
            response = requests.post(delivery.target.url, json=delivery.payload,
                                     headers=delivery.headers, timeout=HOOK_TIMEOUT)
            delivery.status, delivery.error = response.status_code, None
        except requests.RequestException as exc:
            delivery.status, delivery.error = None, type(exc).__name__
        delivery.answered_at = datetime.now(UTC)

    def wait(self, timeout: float = 30.0) -> None:
        for thread in list(self.threads):
            thread.join(timeout)

