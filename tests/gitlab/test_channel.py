"""The incident issue as a channel, on the wire through the GitLab fake: the comment with its
hidden marker, the look-up after an unclear answer, and the fault matrix."""

from __future__ import annotations

from datetime import timedelta

import pytest

from cmoc.channels.gitlab import GitLab
from cmoc.channels.gitlab_api import GitLabApi, IssueRef, parse_issue_ref
from cmoc.channels.http import make_session
from cmoc.channels.registry import build_gitlab
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.timeutil import utcnow
from tests.factories import post_context


@pytest.fixture
def issue(fakes):
    return fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title="Errors", labels=["severity::1"])


@pytest.fixture
def channel(fakes) -> GitLab:
    env = fakes.env()
    return GitLab(api=GitLabApi(session=make_session(timeout=(1, 1)), url=env["GITLAB_URL"],
                                token=env["GITLAB_TOKEN"], timeout=(1, 1)),
                  default_project=INCIDENT_PROJECT)


def notes(fakes, issue) -> list[str]:
    return [n["body"] for n in fakes.gitlab_api.notes.get((1, issue["iid"]), [])]


def test_refs_parse_from_urls_and_short_forms():
    base = "https://gitlab.com"
    assert str(parse_issue_ref("https://gitlab.com/gitlab-com/gl-infra/production/-/issues/"
                               "12345#note_1", base_url=base)) == \
        "gitlab-com/gl-infra/production#12345"
    assert str(parse_issue_ref("https://gitlab.com/g/p/-/issues/incident/7", base_url=base)) \
        == "g/p#7"
    assert str(parse_issue_ref(" g/sub/p#9 ", base_url=base)) == "g/sub/p#9"
    assert str(parse_issue_ref("#12", base_url=base, default_project="g/p")) == "g/p#12"
    assert parse_issue_ref("#12", base_url=base) is None
    assert parse_issue_ref("https://example.com/g/p/-/issues/1", base_url=base) is None
    assert parse_issue_ref("https://gitlab.com/g/p/-/merge_requests/1", base_url=base) is None
    assert str(parse_issue_ref("http://127.0.0.1:5/gitlab/g/p/-/issues/3",
                               base_url="http://127.0.0.1:5/gitlab")) == "g/p#3"


def test_an_update_becomes_a_comment_with_a_hidden_marker(channel, issue, fakes):
    payload = channel.build(post_context(update_id=42, issue_url=issue["web_url"],
                                         text="**Investigating**: errors on the API"))
    assert payload == {"project": INCIDENT_PROJECT, "iid": issue["iid"],
                       "marker": "<!-- cmoc:update:42 -->",
                       "body": "**Investigating**: errors on the API\n\n<!-- cmoc:update:42 -->"}
    result = channel.send(payload)
    assert result.ok and result.external_id.isdigit()
    assert notes(fakes, issue) == [payload["body"]]
    call = fakes.calls("gitlab", "notes", method="POST")[-1]
    assert call.headers["Private-Token"] == fakes.env()["GITLAB_TOKEN"]
    assert call.path.endswith(f"/projects/gitlab-com/gl-infra/production/issues/"
                              f"{issue['iid']}/notes")
    found = channel.find_existing(payload, since=utcnow())
    assert found.ok and found.external_id == result.external_id


def test_an_incident_without_a_gitlab_issue_is_skipped(channel):
    payload = channel.build(post_context(issue_url="https://example.com/tracker/1"))
    assert "skip" in payload and "not an issue on" in payload["skip"]


def test_the_look_up_pages_through_comments_and_stops_at_older_ones(channel, issue, fakes):
    payload = channel.build(post_context(update_id=7, issue_url=issue["web_url"]))
    channel.send(payload)
    for i in range(150):      # newer comments push ours to the second page
        fakes.gitlab_api.notes[(1, issue["iid"])].append(
            {**fakes.gitlab_api.notes[(1, issue["iid"])][0], "id": 10_000 + i,
             "body": f"chatter {i}"})
    found = channel.find_existing(payload, since=utcnow() - timedelta(minutes=1))
    assert found.ok
    pages = [c for c in fakes.calls("gitlab", "notes", method="GET")]
    assert len(pages) == 2 and pages[1].args["page"] == "2"
    other = {**payload, "marker": "<!-- cmoc:update:8 -->"}
    assert channel.find_existing(other, since=utcnow()) is None


# Each fault on the comment POST: what the adapter reports, and whether the comment is there.
FAULTS = [
    ("server error, nothing done", dict(status=503, body="unavailable"), False, "unknown"),
    ("server error after commenting", dict(status=500, apply=True, body="oops"), True,
     "unknown"),
    ("bad gateway after commenting", dict(status=502, apply=True, body="bad"), True, "unknown"),
    ("timeout after commenting", dict(status=201, apply=True, delay=2.5), True, "unknown"),
    ("dropped connection", dict(drop=True), False, "unknown"),
    ("dropped after commenting", dict(drop=True, apply=True), True, "unknown"),
    ("malformed body after commenting", dict(status=201, apply=True, body="{not json"), True,
     "unknown"),
    ("rate limited", dict(status=429, body={"message": "429 Too Many Requests"},
                          headers={"Retry-After": "17"}), False, "retry"),
    ("token refused", dict(status=401, body={"message": "401 Unauthorized"}), False, "final"),
    ("forbidden", dict(status=403, body={"message": "403 Forbidden"}), False, "final"),
    ("issue gone", dict(status=404, body={"message": "404 Issue Not Found"}), False, "final"),
]


@pytest.mark.parametrize(("name", "fault", "posted", "kind"), FAULTS, ids=[f[0] for f in FAULTS])
def test_fault_matrix(channel, issue, fakes, name, fault, posted, kind):
    payload = channel.build(post_context(update_id=5, issue_url=issue["web_url"]))
    started = utcnow()
    fakes.fail("gitlab", "notes", method="POST", **fault)
    result = channel.send(payload)
    assert not result.ok
    assert result.outcome_unknown == (kind == "unknown")
    assert result.retryable == (kind == "retry")
    if kind == "retry":
        assert result.retry_after == 17.0
    if name == "token refused":
        assert "GITLAB_TOKEN" in result.error
    assert (payload["body"] in notes(fakes, issue)) == posted
    # The look-up tells which: found (recorded as sent), or certainly not there (resend).
    found = channel.find_existing(payload, since=started)
    if posted:
        assert found.ok
        assert channel.send(payload).ok and notes(fakes, issue).count(payload["body"]) == 2
    else:
        assert found is None
        assert channel.send(payload).ok and notes(fakes, issue).count(payload["body"]) == 1


@pytest.mark.parametrize("fault", [dict(status=500), dict(status=200, delay=2.5),
                                   dict(drop=True), dict(status=429)])
def test_a_look_up_that_cannot_ask_gitlab_is_a_failure_not_a_no(channel, issue, fakes, fault):
    payload = channel.build(post_context(update_id=6, issue_url=issue["web_url"]))
    fakes.fail("gitlab", "notes", method="GET", **fault)
    found = channel.find_existing(payload, since=utcnow())
    assert found is not None and not found.ok


def test_refused_connection_is_safe_to_retry():
    api = GitLabApi(session=make_session(timeout=(1, 1)), url="http://127.0.0.1:9/gitlab",
                    token="t", timeout=(1, 1))
    _, failure = api.create_note(IssueRef("g/p", 1), "x")
    assert failure.retryable and not failure.outcome_unknown


def test_the_registry_builds_it_from_config_and_the_sandbox(fakes):
    live = build_gitlab(fakes.env())
    assert live.configured and live.api.url == fakes.env()["GITLAB_URL"]
    assert not build_gitlab({"GITLAB_URL": "https://gitlab.com"}).configured
    sandboxed = build_gitlab({"SANDBOX_URL": fakes.url, "SECRET_KEY": "k"})
    assert sandboxed.configured and sandboxed.api.url == f"{fakes.url}/gitlab"
    assert sandboxed.default_project == INCIDENT_PROJECT
