"""Message templates: the shipped set, sandboxing, variables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError

from cmoc import ROOT
from cmoc.cadence import ConfigError
from cmoc.enums import Severity, State, Status
from cmoc.messages import MessageContext, TemplateLibrary, clean_variables, render
from cmoc.tweet import count_tweet

LIBRARY = TemplateLibrary(ROOT / "templates" / "messages")
ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"


def context(state=State.INVESTIGATING, **extra) -> MessageContext:
    values = dict(
        title="Elevated error rates", severity=Severity.S1, state=state,
        status=Status.SERVICE_DISRUPTION, components=("Website", "API", "Git Operations"),
        issue_url=ISSUE, status_page_url="https://status.gitlab.com", slack_channel="#incident-1",
        next_update_at=datetime(2026, 11, 26, 14, 30, tzinfo=UTC), next_update_minutes=10,
    )
    values.update(extra)
    return MessageContext(**values)


def test_every_state_has_one_default_and_no_material_updates_is_offered():
    for state in State:
        assert LIBRARY.default_for(state).applies_to(state)
    for state in (State.INVESTIGATING, State.IDENTIFIED, State.MONITORING):
        slugs = [t.slug for t in LIBRARY.for_state(state)]
        assert slugs[0] == LIBRARY.default_for(state).slug
        assert "no-material-updates" in slugs
    assert [t.slug for t in LIBRARY.for_state(State.RESOLVED)] == ["resolved"]


SAMPLES = {
    "investigating": {"symptom": "elevated error rates on GitLab.com"},
    "identified": {"cause": "a misconfigured load balancer", "action": "rolling back the change"},
    "monitoring": {"fix": "A fix has been deployed", "monitor_minutes": "30"},
    "resolved": {"resolution": "the faulty change was rolled back"},
    "no-material-updates": {"detail": "We tried starting the Gitaly servers but we're still "
                                      "missing connectivity."},
}


@pytest.mark.parametrize("slug", sorted(SAMPLES))
def test_shipped_templates_render_every_channel_within_limits(slug):
    template = LIBRARY.get(slug)
    values, errors = clean_variables(template, SAMPLES[slug])
    assert errors == {}
    texts = render(template, context=context(state=template.states[0]), values=values)
    assert set(texts) == {"statusio", "twitter", "slack"}
    for text in texts.values():
        assert text and "[" not in text  # no placeholder left
    assert ISSUE in texts["statusio"] and texts["twitter"].endswith(ISSUE)
    tweet = count_tweet(texts["twitter"])
    assert tweet.valid and not tweet.over_budget
    assert "Elevated error rates" in texts["slack"]


def test_handbook_wording():
    investigating = render(LIBRARY.get("investigating"), context=context(),
                           values=SAMPLES["investigating"])
    assert investigating["statusio"].startswith(
        "We're seeing elevated error rates on GitLab.com affecting Website, API and Git "
        "Operations, investigation is underway in: " + ISSUE)
    assert "Next update by 14:30 UTC." in investigating["statusio"]
    monitoring = render(LIBRARY.get("monitoring"), context=context(state=State.MONITORING),
                        values=SAMPLES["monitoring"])
    assert "If there are no recurrences in the next 30 minutes" in monitoring["statusio"]
    nmu = render(LIBRARY.get("no-material-updates"), context=context(),
                 values=SAMPLES["no-material-updates"])
    assert nmu["twitter"].startswith("No material updates to report. We tried starting")


def test_typed_text_is_data_not_template_source():
    values = {"symptom": "{{ config }} {% for x in range(3) %}x{% endfor %} <script>"}
    texts = render(LIBRARY.get("investigating"), context=context(title="{{ 7*7 }}"),
                   values=values)
    assert "{{ config }} {% for x in range(3) %}x{% endfor %} <script>" in texts["statusio"]
    assert "{{ 7*7 }}" in texts["slack"] and "49" not in texts["slack"]


def test_empty_required_variable_shows_placeholder_and_is_an_error():
    template = LIBRARY.get("identified")
    values, errors = clean_variables(template, {"cause": "  ", "action": ""})
    assert errors == {"cause": "What is the cause? is required."}
    texts = render(template, context=context(state=State.IDENTIFIED), values=values)
    assert "[cause]" in texts["statusio"]
    assert " and are " not in texts["statusio"]  # optional variable left out cleanly


def test_variable_length_and_minutes_are_checked():
    _, errors = clean_variables(LIBRARY.get("investigating"), {"symptom": "x" * 161})
    assert "too long" in errors["symptom"]
    for bad in ("0", "1441", "abc", "-5"):
        _, errors = clean_variables(LIBRARY.get("monitoring"),
                                    {"fix": "ok", "monitor_minutes": bad})
        assert "minutes" in errors["monitor_minutes"]


def _write_template(folder: Path, slug: str, body: str, states='["investigating"]',
                    default='["investigating", "identified", "monitoring", "resolved"]'):
    (folder / slug).mkdir()
    (folder / slug / "template.toml").write_text(
        f'label = "x"\nstates = {states}\ndefault_for = {default}\n')
    for channel in ("statusio", "twitter", "slack"):
        (folder / slug / f"{channel}.j2").write_text(body)


def test_sandbox_blocks_unsafe_template_files(tmp_path):
    _write_template(tmp_path, "evil", "{{ ''.__class__.__mro__[1].__subclasses__() }}")
    library = TemplateLibrary(tmp_path)
    with pytest.raises(SecurityError):
        render(library.get("evil"), context=context(), values={})


def test_broken_template_folder_is_refused(tmp_path):
    _write_template(tmp_path, "broken", "{% if %}")
    with pytest.raises(ConfigError, match="broken"):
        TemplateLibrary(tmp_path)
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(ConfigError, match="default template"):
        TemplateLibrary(empty)
