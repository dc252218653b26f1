"""The per-channel text rules and the next-update token (pure functions)."""

from __future__ import annotations

from datetime import UTC, datetime

from cmoc.texts import NEXT_UPDATE, markers_in, problem, problems, resolve, stale_times

AT = datetime(2026, 11, 26, 7, 44, 30, tzinfo=UTC)
LABELS = {"fix": "What changed?", "symptom": "What are users seeing?"}
ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"


def test_token_becomes_the_next_update_time_in_every_place():
    text = f"Fixed. Next update by {NEXT_UPDATE}. Again: {NEXT_UPDATE}"
    assert resolve(text, next_update_at=AT) == "Fixed. Next update by 07:44 UTC. Again: 07:44 UTC"
    # Without a next update (Resolved) the token stays, and the text is refused.
    assert resolve(text, next_update_at=None) == text
    assert "has no next update" in problem("statusio", text, next_update_at=None)


def test_a_good_text_has_no_problem():
    assert problem("twitter", f"All good. Next update by {NEXT_UPDATE}. {ISSUE}",
                   next_update_at=AT, markers=LABELS) is None


def test_empty_and_too_long_texts_are_refused_naming_the_channel():
    assert problem("slack", "  \n", next_update_at=AT) == "Slack text is empty."
    assert "Status page text is too long (5001" in problem("statusio", "x" * 5001,
                                                           next_update_at=AT)


def test_tweet_over_280_counts_the_resolved_time_urls_and_cjk():
    # 131 CJK characters weigh 262, the resolved " 07:44 UTC" 10 more: 272 fits.
    fits = "日" * 131 + " " + NEXT_UPDATE
    assert problem("twitter", fits, next_update_at=AT) is None
    over = "日" * 141
    message = problem("twitter", over, next_update_at=AT)
    assert message.startswith("Tweet is 282 weighted characters, 2 over the 280 limit")
    # The same text is no problem on the status page.
    assert problem("statusio", over, next_update_at=AT) is None


def test_unfilled_marker_blocks_naming_the_variable():
    """Finding 2: "[fix]" left in a hand-edited tweet."""
    text = "[fix]. We're monitoring for 60 minutes before resolving."
    assert markers_in(text, markers=LABELS) == ["fix"]
    message = problem("twitter", text, next_update_at=AT, markers=LABELS)
    assert message.startswith("Tweet still has the placeholder [fix] (“What changed?”)")
    # Square brackets that are not a variable's marker are the CMOC's own words.
    assert problem("twitter", "Fixed [beta] pages.", next_update_at=AT, markers=LABELS) is None
    # Without known names any [lowercase_name] counts.
    assert markers_in("Fixed [beta] pages.", markers=None) == ["beta"]


def test_template_syntax_and_unknown_tokens_are_refused():
    assert "template syntax" in problem("slack", "Hi {{ fix }}", next_update_at=AT)
    assert "unknown token {next_updte}" in problem("slack", "Next by {next_updte}.",
                                                   next_update_at=AT)


def test_problems_only_for_the_given_channels():
    texts = {"statusio": "fine", "twitter": "日" * 141, "slack": "", "gitlab": "fine"}
    assert set(problems(texts, next_update_at=AT)) == {"twitter", "slack"}
    assert problems(texts, next_update_at=AT, channels={"statusio"}) == {}


def test_a_literal_next_update_time_that_is_not_the_real_one_is_a_warning():
    """Finding 3: a time typed by hand goes stale while the form is open."""
    texts = {"statusio": f"Next update by {NEXT_UPDATE}.", "twitter": "Next update by 07:43 UTC.",
             "slack": "Next update at 7:44 UTC."}
    warnings = stale_times(texts, next_update_at=AT)
    assert set(warnings) == {"twitter"}
    assert "promises the next update at 07:43, but it will be due at 07:44 UTC" in \
        warnings["twitter"]
    assert stale_times(texts, next_update_at=None) == {}
