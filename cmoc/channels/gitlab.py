"""The incident issue as a channel: each published update becomes a comment (Markdown) on the
GitLab incident issue named by the incident's issue link.

Every comment ends with a hidden marker naming the update (`<!-- cmoc:update:42 -->`): after
an unclear answer the issue's comments are searched for it, newest first, back to a little
before the first attempt, so a comment that was made is recorded, never made twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from cmoc.channels import ChannelResult, PostContext
from cmoc.channels.gitlab_api import GitLabApi, IssueRef, parse_issue_ref

MARKER = "<!-- cmoc:update:{update_id} -->"
# Comments made a little before our first attempt still count (clock skew with GitLab).
LOOKUP_WINDOW = timedelta(minutes=2)


def _created(note: dict) -> datetime | None:
    try:
        return datetime.fromisoformat(str(note.get("created_at")).replace("Z", "+00:00"))
    except ValueError:
        return None


class GitLab:
    name = "gitlab"

    def __init__(self, *, api: GitLabApi, default_project: str | None = None):
        self.api = api
        self.default_project = default_project

    @property
    def configured(self) -> bool:
        return self.api.configured

    def build(self, ctx: PostContext) -> dict[str, Any]:
        ref = parse_issue_ref(ctx.issue_url, base_url=self.api.url,
                              default_project=self.default_project)
        if ref is None:
            return {"skip": "No incident issue on GitLab to comment on: the incident's issue "
                            f"link ({ctx.issue_url or 'none'}) is not an issue on "
                            f"{self.api.url}."}
        marker = MARKER.format(update_id=ctx.update_id)
        return {"project": ref.project, "iid": ref.iid, "marker": marker,
                "body": f"{ctx.text.rstrip()}\n\n{marker}"}

    def send(self, payload: dict[str, Any]) -> ChannelResult:
        note, failure = self.api.create_note(IssueRef(payload["project"], payload["iid"]),
                                             payload["body"])
        if failure:
            return failure
        if not note.get("id"):
            return ChannelResult.failed("GitLab accepted the comment but returned no id",
                                        outcome_unknown=True)
        return ChannelResult.sent(str(note["id"]))

    def find_existing(self, payload: dict[str, Any], *,
                      since: datetime | None = None) -> ChannelResult | None:
        """The comment carrying this payload's marker, if the issue has it (None: certainly
        not; a failed result: GitLab could not be asked)."""
        ref = IssueRef(payload["project"], payload["iid"])
        oldest = since - LOOKUP_WINDOW if since is not None else None

        def search() -> str | None:
            for note in self.api.iter_notes(ref):
                if payload["marker"] in (note.get("body") or ""):
                    return str(note["id"])
                created = _created(note)
                if oldest is not None and created is not None and created < oldest:
                    return None       # newest first: everything further is older still
            return None

        found, failure = self.api.call(f"comments of {ref}", search)
        if failure:
            return failure
        return ChannelResult.sent(found) if found else None
