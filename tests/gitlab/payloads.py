"""Webhook payloads from GitLab's documentation ("Webhook events" → "Work item events", the
Issue Hook example), adapted to an incident in the incident project; and the headers GitLab
sends with them."""

from __future__ import annotations

import copy
import uuid
from typing import Any

PROJECT = "gitlab-com/gl-infra/production"
ISSUE_URL = f"https://gitlab.com/{PROJECT}/-/issues/23"


def _label(title: str, label_id: int) -> dict[str, Any]:
    return {"id": label_id, "title": title, "color": "#ffffff", "project_id": 14,
            "created_at": "2013-12-03T17:15:43Z", "updated_at": "2013-12-03T17:15:43Z",
            "template": False, "description": f"{title} label", "type": "ProjectLabel",
            "group_id": 41}


# The documented example's fields, with an incident's type, severity and labels.
DOCUMENTED = {
    "object_kind": "work_item",
    "event_type": "work_item",
    "user": {"id": 1, "name": "Administrator", "username": "root",
             "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61"
                           "?s=40&d=identicon", "email": "admin@example.com"},
    "project": {"id": 1, "name": "production", "description": "Production incidents",
                "web_url": f"https://gitlab.com/{PROJECT}", "avatar_url": None,
                "git_ssh_url": f"git@gitlab.com:{PROJECT}.git",
                "git_http_url": f"https://gitlab.com/{PROJECT}.git", "namespace": "gl-infra",
                "visibility_level": 20, "path_with_namespace": PROJECT,
                "default_branch": "master", "ci_config_path": None,
                "homepage": f"https://gitlab.com/{PROJECT}",
                "url": f"https://gitlab.com/{PROJECT}.git",
                "ssh_url": f"git@gitlab.com:{PROJECT}.git",
                "http_url": f"https://gitlab.com/{PROJECT}.git"},
    "object_attributes": {
        "id": 301, "title": "Elevated error rates on GitLab.com", "assignee_ids": [51],
        "assignee_id": 51, "author_id": 51, "project_id": 14,
        "created_at": "2013-12-03T17:15:43Z", "updated_at": "2013-12-03T17:15:43Z",
        "updated_by_id": 1, "last_edited_at": None, "last_edited_by_id": None,
        "relative_position": 0, "description": "Error rates are above the SLO.",
        "milestone_id": None, "state_id": 1, "confidential": False, "discussion_locked": True,
        "due_date": None, "moved_to_id": None, "duplicated_to_id": None, "time_estimate": 0,
        "total_time_spent": 0, "time_change": 0, "human_total_time_spent": None,
        "human_time_estimate": None, "human_time_change": None, "weight": None,
        "health_status": "at_risk", "type": "Incident", "iid": 23, "url": ISSUE_URL,
        "state": "opened", "action": "open", "severity": "high",
        "escalation_status": "triggered",
        "escalation_policy": {"id": 18, "name": "Engineering On-call"},
        "labels": [_label("severity::1", 206), _label("Service::API", 207)],
    },
    "repository": {"name": "production", "url": f"https://gitlab.com/{PROJECT}.git",
                   "description": "Production incidents",
                   "homepage": f"https://gitlab.com/{PROJECT}"},
    "assignees": [{"name": "User1", "username": "user1",
                   "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61"
                                 "?s=40&d=identicon"}],
    "assignee": {"name": "User1", "username": "user1",
                 "avatar_url": "http://www.gravatar.com/avatar/e64c7d89f26bd1972efa854d13d7dd61"
                               "?s=40&d=identicon"},
    "labels": [_label("severity::1", 206), _label("Service::API", 207)],
    "changes": {"updated_by_id": {"previous": None, "current": 1},
                "updated_at": {"previous": "2017-09-15 16:50:55 UTC",
                               "current": "2017-09-15 16:52:00 UTC"}},
}


def issue_hook(*, labels: list[str] | None = None, previous: list[str] | None = None,
               action: str = "open", updated_at: str = "2013-12-03T17:15:43Z",
               **attributes: Any) -> dict[str, Any]:
    """The documented payload with these labels (and, for a change, the labels before)."""
    payload = copy.deepcopy(DOCUMENTED)
    attrs = payload["object_attributes"]
    if labels is not None:
        objects = [_label(name, 300 + i) for i, name in enumerate(labels)]
        attrs["labels"], payload["labels"] = objects, copy.deepcopy(objects)
    if previous is not None:
        payload["changes"]["labels"] = {
            "previous": [_label(name, 400 + i) for i, name in enumerate(previous)],
            "current": copy.deepcopy(payload["labels"])}
    attrs.update(action=action, updated_at=updated_at, **attributes)
    return payload


def hook_headers(secret: str | None, *, key: str | None = None) -> dict[str, str]:
    headers = {"X-Gitlab-Event": "Issue Hook", "X-Gitlab-Webhook-UUID": str(uuid.uuid4()),
               "X-Gitlab-Event-UUID": str(uuid.uuid4()),
               "Idempotency-Key": key or str(uuid.uuid4())}
    if secret is not None:
        headers["X-Gitlab-Token"] = secret
    return headers
