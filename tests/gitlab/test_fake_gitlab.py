"""The GitLab fake answers python-gitlab as GitLab does: token, projects by path, issues,
labels, notes with pagination headers, webhooks shaped like the documented example."""

from __future__ import annotations

import gitlab
import pytest

from cmoc.fake_apis.gitlab import GITLAB_TOKEN, INCIDENT_PROJECT
from tests.gitlab.payloads import DOCUMENTED


@pytest.fixture
def gl(fakes):
    return gitlab.Gitlab(fakes.env()["GITLAB_URL"], private_token=GITLAB_TOKEN, timeout=10)


def test_the_token_is_checked(fakes):
    wrong = gitlab.Gitlab(fakes.env()["GITLAB_URL"], private_token="nope", timeout=10)
    with pytest.raises(gitlab.exceptions.GitlabAuthenticationError) as error:
        wrong.projects.get(INCIDENT_PROJECT)
    assert error.value.response_code == 401
    assert fakes.calls("gitlab")[-1].headers["Private-Token"] == "nope"


def test_projects_by_url_encoded_path_and_issues_with_labels(gl, fakes):
    project = gl.projects.get(INCIDENT_PROJECT)
    assert project.id == 1 and project.path_with_namespace == INCIDENT_PROJECT
    assert fakes.calls("gitlab")[-1].path.endswith("projects/gitlab-com/gl-infra/production")
    issue = project.issues.create({"title": "Errors", "labels": ["severity::2", "incident"],
                                   "issue_type": "incident"})
    assert issue.iid == 1 and issue.labels == ["severity::2", "incident"]
    assert issue.web_url.endswith(f"/{INCIDENT_PROJECT}/-/issues/1")
    project.issues.update(1, {"add_labels": "severity::1,Incident::Active",
                              "remove_labels": "incident"})
    # A scoped label replaces the other label of its scope.
    assert project.issues.get(1).labels == ["severity::1", "Incident::Active"]
    with pytest.raises(gitlab.exceptions.GitlabGetError) as error:
        project.issues.get(99)
    assert error.value.response_code == 404
    with pytest.raises(gitlab.exceptions.GitlabGetError):
        gl.projects.get("no/such-project")
    with pytest.raises(gitlab.exceptions.GitlabCreateError) as error:
        project.issues.create({"title": " "})
    assert error.value.response_code == 400
    assert [i.iid for i in project.issues.list(search="err", get_all=True)] == [1]
    assert project.issues.list(labels="severity::3", get_all=True) == []


def test_notes_paginate_with_gitlabs_headers(gl, fakes):
    issue = gl.projects.get(INCIDENT_PROJECT, lazy=True).issues.create({"title": "Notes"})
    for i in range(45):
        issue.notes.create({"body": f"note {i}"})
    page = gl.http_get(f"/projects/1/issues/{issue.iid}/notes", query_data={"per_page": 20},
                       raw=True)
    assert page.headers["X-Total"] == "45" and page.headers["X-Total-Pages"] == "3"
    assert page.headers["X-Next-Page"] == "2" and 'rel="next"' in page.headers["Link"]
    bodies = [n.body for n in issue.notes.list(get_all=True, per_page=20)]
    assert len(bodies) == 45 and bodies[0] == "note 44"          # newest first by default
    oldest = issue.notes.list(get_all=True, sort="asc", per_page=20)
    assert [n.body for n in oldest][:2] == ["note 0", "note 1"]


def test_webhook_payloads_have_the_documented_shape(fakes):
    fakes.gitlab_api.hooks.add(INCIDENT_PROJECT, url="http://127.0.0.1:9/none", token="t")
    issue = fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title="Errors",
                                        labels=["severity::1"], severity="critical")
    fakes.gitlab_api.change_labels(INCIDENT_PROJECT, issue["iid"], add=["severity::2"])
    fakes.gitlab_api.hooks.wait()
    opened, changed = fakes.gitlab_api.hooks.deliveries
    for delivery in (opened, changed):
        payload = delivery.payload
        assert set(payload) <= set(DOCUMENTED) and {"object_kind", "object_attributes",
                                                     "project", "labels", "changes"} <= \
            set(payload)
        assert set(payload["object_attributes"]) <= set(DOCUMENTED["object_attributes"]) | {
            "closed_at"}
        assert set(payload["project"]) <= set(DOCUMENTED["project"])
        assert set(payload["labels"][0]) == set(DOCUMENTED["labels"][0])
        assert delivery.headers["X-Gitlab-Event"] == "Issue Hook"
        assert delivery.headers["X-Gitlab-Token"] == "t"
        assert delivery.error == "ConnectionError"    # nobody listens there
    assert opened.payload["object_kind"] == "work_item"
    assert opened.payload["object_attributes"]["type"] == "Incident"
    assert opened.payload["object_attributes"]["severity"] == "critical"
    assert changed.payload["object_attributes"]["action"] == "update"
    assert [x["title"] for x in changed.payload["changes"]["labels"]["previous"]] == \
        ["severity::1"]
    assert [x["title"] for x in changed.payload["changes"]["labels"]["current"]] == \
        ["severity::2"]
    assert opened.headers["Idempotency-Key"] != changed.headers["Idempotency-Key"]
