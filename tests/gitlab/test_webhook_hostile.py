"""The input guard on GitLab's webhook: only what cannot be stored is refused (GitLab's text is
anyone's), and a large delivery from the known sender is not cut at the app's body limit."""

from __future__ import annotations

from cmoc.extensions import db
from cmoc.models import GitlabEvent, Incident
from tests.gitlab.conftest import SECRET
from tests.gitlab.payloads import hook_headers, issue_hook


def test_a_nul_in_a_webhook_is_refused_before_the_database(gitlab_app):
    response = gitlab_app.test_client().post(
        "/hooks/gitlab", json=issue_hook(labels=["severity::1"], title="Outage\x00"),
        headers=hook_headers(SECRET))
    assert response.status_code == 422
    assert response.json["error"]["fields"] == {
        "object_attributes.title": "Control characters are not allowed here."}
    assert db.session.query(Incident).count() == 0
    assert db.session.query(GitlabEvent).count() == 0


def test_terminal_escapes_and_a_large_description_still_arrive(gitlab_app):
    # Pasted terminal output, over the 256 KiB form limit: GitLab sends such issues.
    description = "```\n\x1b[31mERROR\x1b[0m 502\n```\n" + "log line\n" * 60_000
    response = gitlab_app.test_client().post(
        "/hooks/gitlab", json=issue_hook(labels=["severity::1"], description=description),
        headers=hook_headers(SECRET))
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert db.session.query(Incident).count() == 1
