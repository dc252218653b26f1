"""The GitLab incident issue as the source of an incident: read title, severity, affected
services and the incident Slack channel from it, fill the declare form or API body with them
(keeping what the CMOC typed), and link the incident to its issue.

Severity: a `severity::N` label wins; else the incident's own severity field through
`[gitlab.severity_field]`. Components: the issue's labels through `[gitlab.components]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cmoc.channels.gitlab_api import IssueRef, parse_issue_ref
from cmoc.channels.registry import build_gitlab_api
from cmoc.gitlab_settings import SEVERITY_LABEL, GitlabSettings, gitlab_settings
from cmoc.services import ValidationError


@dataclass(frozen=True)
class IssueFacts:
    """What cmoc takes from an incident issue."""

    ref: IssueRef
    web_url: str
    title: str
    severity: str | None
    severity_source: str                   # e.g. "label severity::1", "" when none
    components: list[str]
    unknown_components: list[str] = field(default_factory=list)  # mapped, not on the page
    slack_channel: str | None = None
    labels: list[str] = field(default_factory=list)
    is_incident: bool = True
    state: str = "opened"


def severity_from(labels: Iterable[str], field_value: str | None,
                  settings: GitlabSettings) -> tuple[str | None, str]:
    """(S1..S4 or None, where it came from)."""
    found = sorted((int(m.group(1)), label) for label in labels
                   if (m := SEVERITY_LABEL.match(label)))
    if found:   # two severity labels (should not happen: scoped) -> the most severe
        return f"S{found[0][0]}", f"label {found[0][1]}"
    mapped = settings.severity_field.get(str(field_value or "").upper())
    return (mapped, f"severity field {str(field_value).upper()}") if mapped else (None, "")


def components_from(labels: Iterable[str], settings: GitlabSettings,
                    component_names: list[str]) -> tuple[list[str], list[str]]:
    """(known components in the status page's order, mapped names the page does not have)."""
    mapped = [settings.components[x.lower()] for x in labels if x.lower() in settings.components]
    return ([c for c in component_names if c in mapped],
            list(dict.fromkeys(m for m in mapped if m not in component_names)))


def is_incident(*, work_type: str | None, labels: Iterable[str],
                settings: GitlabSettings) -> bool:
    return (str(work_type or "").lower() == "incident"
            or any(x.lower() in settings.incident_labels for x in labels))


def slack_channel_for(ref: IssueRef, settings: GitlabSettings) -> str | None:
    return settings.slack_channel.format(iid=ref.iid) if settings.slack_channel else None


def facts_from(*, ref: IssueRef, title: str, web_url: str, labels: list[str],
               severity_field: str | None, work_type: str | None, state: str,
               settings: GitlabSettings, component_names: list[str]) -> IssueFacts:
    severity, source = severity_from(labels, severity_field, settings)
    known, unknown = components_from(labels, settings, component_names)
    return IssueFacts(ref=ref, web_url=web_url, title=" ".join(str(title or "").split()),
                      severity=severity, severity_source=source, components=known,
                      unknown_components=unknown, slack_channel=slack_channel_for(ref, settings),
                      labels=list(labels), state=state,
                      is_incident=is_incident(work_type=work_type, labels=labels,
                                              settings=settings))


def read_issue(*, text: str, config: dict[str, Any], component_names: list[str],
               field_name: str = "issue_url") -> IssueFacts:
    """Reads the issue named by a URL or `project#iid` from GitLab; a ValidationError on
    `field_name` says why it could not."""
    settings = gitlab_settings(config)
    ref = parse_issue_ref(text, base_url=settings.url, default_project=settings.incident_project)
    if ref is None:
        raise ValidationError({field_name: (
            f"Paste the incident issue's URL on {settings.url} or group/project#123"
            + (f" (or #123 in {settings.incident_project})" if settings.incident_project
               else "") + ".")})
    if not settings.configured:
        raise ValidationError({field_name: "GitLab is not configured (GITLAB_TOKEN): type the "
                                           "fields in."})
    issue, failure = build_gitlab_api(config).get_issue(ref)
    if failure:
        raise ValidationError({field_name: f"Could not read {ref}: {failure.error}"})
    return facts_from(ref=ref, title=issue.get("title", ""), web_url=issue.get("web_url", ""),
                      labels=list(issue.get("labels") or []),
                      severity_field=issue.get("severity"),
                      work_type=issue.get("issue_type") or issue.get("type"),
                      state=issue.get("state", "opened"), settings=settings,
                      component_names=component_names)


def fill_form(form: dict[str, Any], facts: IssueFacts
              ) -> tuple[dict[str, Any], list[str], list[str]]:
    """The declare form with what the issue says filled into the fields the CMOC left empty
    (the status stays the CMOC's choice: the handbook asks the IM). Returns (form, fields
    filled, fields kept as typed). The issue link becomes the issue's URL."""
    out = dict(form)
    filled, kept = [], []

    def put(name: str, value: Any, typed: bool) -> None:
        if value in (None, "", []):
            return
        if typed:
            kept.append(name)
        else:
            out[name] = value
            filled.append(name)

    put("title", facts.title, bool(str(form.get("title") or "").strip()))
    put("severity", facts.severity, bool(form.get("severity")))
    put("components", facts.components, bool(form.get("components")))
    put("slack_channel", facts.slack_channel, bool(str(form.get("slack_channel") or "").strip()))
    out["issue_url"] = facts.web_url or form.get("issue_url", "")
    return out, filled, kept


FIELD_LABELS = {"title": "title", "severity": "severity", "components": "components",
                "slack_channel": "Slack channel"}


def gitlab_read_summary(facts: IssueFacts, filled: list[str], kept: list[str]) -> str:
    """What the CMOC is told after "Read from GitLab"."""
    parts = [f"Read {facts.ref} from GitLab."]
    if filled:
        parts.append("Filled: " + ", ".join(FIELD_LABELS[f] for f in filled) + ".")
    if kept:
        parts.append("Kept what you typed: " + ", ".join(FIELD_LABELS[f] for f in kept) + ".")
    if facts.severity:
        parts.append(f"Severity {facts.severity} from the {facts.severity_source}.")
    else:
        parts.append("The issue has no severity::N label or severity: choose one.")
    if not facts.components:
        parts.append("No affected-service label maps to a component: tick them.")
    if facts.unknown_components:
        parts.append("Not on the status page: " + ", ".join(facts.unknown_components) + ".")
    if not facts.is_incident:
        parts.append("Note: GitLab does not mark this issue as an incident.")
    if facts.state != "opened":
        parts.append("Note: the issue is closed.")
    return " ".join(parts)


def gitlab_ref(issue_url: str | None, config: dict[str, Any]) -> str | None:
    """"group/project#iid" when the issue link is an issue on GITLAB_URL, else None."""
    settings = gitlab_settings(config)
    ref = parse_issue_ref(issue_url, base_url=settings.url)
    return str(ref) if ref else None


API_REQUIRED = ("title", "severity", "status", "components")


def api_fields_from_issue(body: dict[str, Any], *, config: dict[str, Any],
                          component_names: list[str]) -> dict[str, Any]:
    """An API declare body with the fields it lacks read from its `issue` (given fields win;
    status follows the severity). ValidationError names each field still missing."""
    fields = dict(body)
    fields["gitlab_issue"] = gitlab_ref(fields.get("issue_url"), config)
    if fields.get("issue"):
        facts = read_issue(text=fields["issue"], config=config,
                           component_names=component_names, field_name="issue")
        settings = gitlab_settings(config)
        for name, value in (("title", facts.title), ("severity", facts.severity),
                            ("components", facts.components or None),
                            ("issue_url", facts.web_url), ("slack_channel", facts.slack_channel)):
            if not fields.get(name):
                fields[name] = value
        if not fields.get("status") and fields.get("severity"):
            fields["status"] = settings.status_by_severity.get(fields["severity"])
        fields["gitlab_issue"] = str(facts.ref)
    missing = {name: "Field required (or give `issue` to read it from GitLab)."
               for name in API_REQUIRED if not fields.get(name)}
    if missing:
        raise ValidationError(missing)
    return fields
