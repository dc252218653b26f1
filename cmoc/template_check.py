"""The template check: renders every message template with typical and edge inputs and reports
wording faults — doubled punctuation, repeated phrases, leftover markers or template syntax,
text that calls components operational before Resolved, a tweet body over the handbook's 220.

`python -m cmoc.template_check` (run by `make test`) prints the faults and exits 1 if any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cmoc.enums import ACTIVE_STATUSES, Severity, State, Status
from cmoc.messages import MessageContext, MessageTemplate, TemplateLibrary, render
from cmoc.texts import markers_in, problem, resolve
from cmoc.tweet import count_tweet

BODY_BUDGET = 220
NEXT_AT = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
ISSUE = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"
# Distinct wording per variable (index), so a repeat can only come from the template.
TYPICAL = ["elevated error rates affecting some GitLab.com users", "a misconfigured load balancer",
           "rolling back the change", "the faulty change was rolled back"]
LONG = [
    "slow page loads and intermittent timeouts for merge requests, pipelines and the web IDE "
    "for a subset of users in several regions after yesterday's network maintenance window",
    "a configuration change to the shared load balancers that dropped idle connections early "
    "under heavy traffic from scheduled jobs, runners and API clients across every zone today",
    "reverting that configuration, draining the affected nodes one by one and watching error "
    "budgets",
]
CJK = ["GitLab.com でエラー率が上昇しています", "ロードバランサーの設定ミス",
       "変更を元に戻しています"]
PUNCTUATION = [".", "!", "...", ",", ";", "。"]
# Words a CMOC may type although the template already says them.
LEADS = ["We're seeing", "We've identified the cause as", "No material updates to report.",
         "This incident has been resolved:", "We're still investigating.", "are"]
_URL = re.compile(r"https?://\S+|#[\w-]+")
_DOUBLED = re.compile(r"[.,;:!?…。！？]\s*[.,;:…。]")
_WORD = re.compile(r"[a-z][a-z'’]*")
_OPERATIONAL = re.compile(r"\b(fully operational|(systems|components) are operational)\b",
                          re.IGNORECASE)
STOPWORDS = frozenset({"a", "an", "and", "are", "as", "at", "be", "by", "for", "in", "is", "it",
                       "of", "on", "or", "the", "to", "we", "we're", "we've", "will", "with",
                       "our", "this", "that"})


@dataclass(frozen=True)
class Finding:
    template: str
    case: str
    channel: str
    message: str
    text: str

    def __str__(self) -> str:
        return f"{self.template} [{self.case}] {self.channel}: {self.message}\n    {self.text!r}"


def _value(var, index: int, kind: str) -> str:
    if var.kind == "minutes":
        return {"long": "1440", "empty": ""}.get(kind, "30")
    if kind == "cjk":
        return CJK[index % len(CJK)]
    if kind == "long":
        return LONG[index % len(LONG)][: min(160, var.max_length)].rstrip()
    return TYPICAL[index % len(TYPICAL)]


def cases(template: MessageTemplate) -> Iterator[tuple[str, dict[str, str]]]:
    """(case name, variable values): typical, trailing punctuation, empty optional values,
    CJK, 160-character values, and values starting with words the template already says."""
    variables = template.variables
    yield "typical", {v.name: _value(v, i, "typical") for i, v in enumerate(variables)}
    for mark in PUNCTUATION:
        yield f"ends with {mark!r}", {
            v.name: _value(v, i, "typical") + (mark if v.kind != "minutes" else "")
            for i, v in enumerate(variables)}
    yield "empty optional", {v.name: _value(v, i, "typical") if v.required else ""
                             for i, v in enumerate(variables)}
    yield "CJK", {v.name: _value(v, i, "cjk") for i, v in enumerate(variables)}
    yield "160 characters", {v.name: _value(v, i, "long") for i, v in enumerate(variables)}
    words = template_words(template)
    typical = {v.name: _value(v, i, "typical") for i, v in enumerate(variables)}
    for var in variables:
        for lead in LEADS:
            # Only where the template says the lead right before this variable.
            if f"{lead.lower()} {{{{ {var.name}" in words:
                yield (f"{var.name} starts with {lead!r}",
                       {**typical, var.name: f"{lead} {typical[var.name]}"})


def template_words(template: MessageTemplate) -> str:
    """The template's own wording (its files' text, lowercased), to pick the lead cases."""
    files = {source.filename for source in template.sources.values()}
    return " ".join(Path(name).read_text(encoding="utf-8") for name in sorted(files)
                    if name and Path(name).is_file()).lower()


def contexts(template: MessageTemplate) -> Iterator[tuple[str, MessageContext]]:
    """The incident around the update: with and without issue link and components, and every
    status an update in the template's states may carry."""
    for state in template.states:
        statuses = [Status.OPERATIONAL] if state is State.RESOLVED else ACTIVE_STATUSES
        for status in statuses:
            for linked in (True, False):
                yield (f"{state.value}/{status.value}" + ("" if linked else "/bare"),
                       MessageContext(
                           title="Degraded performance", severity=Severity.S2, state=state,
                           status=status,
                           components=("Website", "API", "Git Operations") if linked else (),
                           issue_url=ISSUE if linked else "",
                           status_page_url="https://status.gitlab.com",
                           slack_channel="#incident-12345" if linked else None,
                           next_update_at=None if state is State.RESOLVED else NEXT_AT,
                           next_update_minutes=None if state is State.RESOLVED else 60))


def text_faults(text: str, *, channel: str, state: State,
                markers: dict[str, str]) -> list[str]:
    """What is wrong with one rendered, resolved text."""
    faults = []
    reason = problem(channel, text, next_update_at=None if state is State.RESOLVED else NEXT_AT,
                     markers=markers)
    if reason:
        faults.append(reason)
    if markers_in(text, markers=markers) or "{" in text or "}" in text:
        faults.append("leftover marker or token")
    # The Slack header repeats title and status by design: only the body is checked.
    body = text.split("\n", 1)[1] if channel == "slack" and "\n" in text else text
    plain = _URL.sub(" ", body)
    doubled = _DOUBLED.search(plain)
    if doubled:
        faults.append(f"doubled punctuation {doubled.group(0)!r}")
    repeated = repeated_phrase(plain)
    if repeated:
        faults.append(f"repeated phrase {repeated!r}")
    if state is not State.RESOLVED and _OPERATIONAL.search(plain):
        faults.append("calls components operational before Resolved")
    if channel == "twitter":
        tweet = count_tweet(text, body_budget=BODY_BUDGET)
        if tweet.over_budget:
            faults.append(f"tweet body {tweet.body_length} over {BODY_BUDGET}")
    return faults


def repeated_phrase(text: str) -> str | None:
    """A word said twice in a row, a two-word phrase said twice, or one content word said again
    within six words ("affecting … affecting")."""
    words = _WORD.findall(text.lower().replace("’", "'"))
    seen: set[tuple[str, str]] = set()
    for i, word in enumerate(words):
        if i and words[i - 1] == word:
            return f"{word} {word}"
        if i:
            pair = (words[i - 1], word)
            if not set(pair) <= STOPWORDS:
                if pair in seen:
                    return " ".join(pair)
                seen.add(pair)
        if word not in STOPWORDS and len(word) > 4 and word in words[max(0, i - 6):i]:
            return f"{word} … {word}"
    return None


def check_library(library: TemplateLibrary) -> tuple[int, list[Finding]]:
    """(texts rendered, faults) over every template, case, context and channel."""
    markers = library.marker_labels()
    rendered = 0
    findings = []
    for slug, template in sorted(library.templates.items()):
        for case, values in cases(template):
            for where, context in contexts(template):
                texts = render(template, context=context, values=values)
                for channel, text in texts.items():
                    rendered += 1
                    sent = resolve(text, next_update_at=context.next_update_at)
                    for fault in text_faults(sent, channel=channel, state=context.state,
                                             markers=markers):
                        findings.append(Finding(slug, f"{case}, {where}", channel, fault, sent))
    return rendered, findings


def main(argv: list[str] | None = None) -> int:
    folder = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent / "templates" \
        / "messages"
    library = TemplateLibrary(folder)
    rendered, findings = check_library(library)
    for finding in findings:
        print(finding)
    print(f"template check: {len(library.templates)} templates, {rendered} texts, "
          f"{len(findings)} faults")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
