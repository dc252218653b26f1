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
from cmoc.texts import NEXT_UPDATE, resolve
from cmoc.tweet import count_tweet
from cmoc.wording import clause, sentence, strip_lead

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


def test_investigating_has_a_follow_up_template_for_later_updates():
    assert LIBRARY.default_for(State.INVESTIGATING).slug == "investigating"
    follow_up = LIBRARY.default_for(State.INVESTIGATING, follow_up=True)
    assert follow_up.slug == "investigating-follow-up"
    assert follow_up.label == "Investigating: follow-up"
    assert "investigating-follow-up" in [t.slug for t in LIBRARY.for_state(State.INVESTIGATING)]
    # States without a follow-up keep their default.
    assert LIBRARY.default_for(State.IDENTIFIED, follow_up=True).slug == "identified"


SAMPLES = {
    "investigating": {"symptom": "elevated error rates on GitLab.com"},
    "identified": {"cause": "a misconfigured load balancer", "action": "rolling back the change"},
    "investigating-follow-up": {"progress": "We've ruled out the database."},
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
    ctx = context(state=template.states[0])
    texts = render(template, context=ctx, values=values)
    assert set(texts) == {"statusio", "twitter", "slack", "gitlab"}
    for text in texts.values():
        assert text and "[" not in text  # no placeholder left
    assert ISSUE in texts["statusio"] and texts["twitter"].endswith(ISSUE)
    tweet = count_tweet(resolve(texts["twitter"], next_update_at=ctx.next_update_at))
    assert tweet.valid and not tweet.over_budget
    assert "Elevated error rates" in texts["slack"]


def test_handbook_wording():
    investigating = render(LIBRARY.get("investigating"), context=context(),
                           values=SAMPLES["investigating"])
    assert investigating["statusio"].startswith(
        "We're seeing elevated error rates on GitLab.com. Affected: Website, API and Git "
        "Operations. We're investigating. Details: " + ISSUE)
    # The time is a token until publishing; the same words every time.
    assert f"Next update by {NEXT_UPDATE}." in investigating["statusio"]
    assert "affecting" not in investigating["statusio"] and "in: " not in investigating["statusio"]
    monitoring = render(LIBRARY.get("monitoring"), context=context(state=State.MONITORING),
                        values=SAMPLES["monitoring"])
    assert "If there are no recurrences in the next 30 minutes" in monitoring["statusio"]
    nmu = render(LIBRARY.get("no-material-updates"), context=context(),
                 values=SAMPLES["no-material-updates"])
    assert nmu["twitter"].startswith("No material updates to report. We tried starting")


def test_typed_punctuation_and_lead_words_are_not_doubled():
    """Finding 9: "back to normal." became "normal.."; a lead the template says is dropped."""
    monitoring = render(LIBRARY.get("monitoring"), context=context(state=State.MONITORING),
                        values={"fix": "Error rates are back to normal.", "monitor_minutes": ""})
    for text in monitoring.values():
        assert "normal.." not in text
    assert monitoring["twitter"].startswith("Error rates are back to normal. We're monitoring")
    identified = render(LIBRARY.get("identified"), context=context(state=State.IDENTIFIED),
                        values={"cause": "a bad deploy!", "action": "are rolling it back."})
    assert identified["statusio"].startswith(
        "We've identified the cause as a bad deploy and are rolling it back. Details:")
    nmu = render(LIBRARY.get("no-material-updates"), context=context(),
                 values={"detail": "No material updates to report. Still rolling back..."})
    assert nmu["twitter"].startswith(
        "No material updates to report. Still rolling back. Next update by")


def test_monitoring_says_the_status_actually_set_and_waits_until_the_next_update():
    """Findings 4 and 9: the wait follows the next-update time (60 min for S2) unless set,
    and the text keeps the components at the status chosen, never "fully operational"."""
    ctx = context(state=State.MONITORING, status=Status.DEGRADED_PERFORMANCE,
                  next_update_minutes=60)
    texts = render(LIBRARY.get("monitoring"), context=ctx, values={"fix": "Fixed"})
    assert "no recurrences in the next 60 minutes" in texts["statusio"]
    assert "We're monitoring for 60 minutes" in texts["twitter"]
    assert "marked as Degraded Performance" in texts["statusio"]
    assert "fully operational" not in texts["statusio"]
    values, errors = clean_variables(LIBRARY.get("monitoring"), {"fix": "Fixed"})
    assert errors == {} and values["monitor_minutes"] == ""  # stored empty: it keeps following
    chosen = render(LIBRARY.get("monitoring"), context=ctx,
                    values={"fix": "Fixed", "monitor_minutes": "30"})
    assert "in the next 30 minutes" in chosen["statusio"]


def test_next_update_time_is_a_token_resolved_at_publish_time():
    texts = render(LIBRARY.get("identified"), context=context(state=State.IDENTIFIED),
                   values=SAMPLES["identified"])
    assert f"Next update by {NEXT_UPDATE}." in texts["twitter"]
    sent = resolve(texts["twitter"], next_update_at=datetime(2026, 11, 26, 7, 44, tzinfo=UTC))
    assert "Next update by 07:44 UTC." in sent and NEXT_UPDATE not in sent


def test_each_channel_knows_the_variables_it_is_rendered_from():
    identified = LIBRARY.get("identified")
    assert identified.uses["statusio"] == {"cause", "action"}
    assert identified.variables_used_by({"twitter"}) == {"cause", "action"}
    assert identified.variables_used_by(set()) == set()
    _, errors = clean_variables(identified, {}, needed=set())
    assert errors == {}
    _, errors = clean_variables(identified, {}, needed={"cause"})
    assert set(errors) == {"cause"}


@pytest.mark.parametrize(("typed", "as_clause", "as_sentence"), [
    ("back to normal.", "back to normal", "back to normal."),
    ("normal..", "normal", "normal."),
    ("normal...", "normal", "normal."),
    ("normal", "normal", "normal."),
    ("is it down?", "is it down", "is it down?"),
    ("fixed!", "fixed", "fixed!"),
    ("rates, ", "rates", "rates."),
    ("エラーが発生しています。", "エラーが発生しています", "エラーが発生しています。"),
    ("  ", "", ""),
])
def test_wording_filters(typed, as_clause, as_sentence):
    assert clause(typed) == as_clause
    assert sentence(typed) == as_sentence


def test_strip_lead_drops_only_whole_leading_words():
    assert strip_lead("We're seeing errors", "we're seeing") == "errors"
    assert strip_lead("are rolling back", "are") == "rolling back"
    assert strip_lead("areas of the API", "are") == "areas of the API"


def test_typed_text_is_data_not_template_source():
    values = {"symptom": "{{ config }} {% for x in range(3) %}x{% endfor %} <script>"}
    texts = render(LIBRARY.get("investigating"), context=context(title="{{ 7*7 }}"),
                   values=values)
    assert "{{ config }} {% for x in range(3) %}x{% endfor %} <script>." in texts["statusio"]
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


def test_a_folder_without_gitlab_template_comments_the_status_page_text(tmp_path):
    _write_template(tmp_path, "older", "{{ title }}: we're on it.")
    texts = render(TemplateLibrary(tmp_path).get("older"), context=context(), values={})
    assert texts["gitlab"] == f"**Public update (S1)**\n\n{texts['statusio']}"
