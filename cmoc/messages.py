"""Message templates: files under templates/messages/, rendered per channel in a Jinja2 sandbox.

Each template is a folder with `template.toml` (label, states, declared variables) and one
Jinja file per channel (`statusio.j2`, `twitter.j2`, `slack.j2`). What a CMOC types is passed in
as data, never compiled as template source, so `{{ config }}` in a field stays literal.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cmoc.cadence import MAX_MINUTES, ConfigError
from cmoc.enums import CHANNELS, Severity, State, Status
from cmoc.timeutil import fmt_utc

VARIABLE_KINDS = ("text", "paragraph", "minutes")
BUILTIN_NAMES = frozenset({
    "title", "severity", "state", "status", "components", "components_text", "issue_url",
    "status_page_url", "slack_channel", "next_update_at", "next_update_minutes",
})
DEFAULT_MAX_LENGTH = {"text": 200, "paragraph": 1000, "minutes": 4}
_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class TemplateVariable:
    name: str
    label: str
    kind: str = "text"
    help: str = ""
    required: bool = True
    default: str = ""
    max_length: int = 200


@dataclass(frozen=True)
class MessageTemplate:
    slug: str
    label: str
    description: str
    states: tuple[State, ...]
    default_for: tuple[State, ...]
    variables: tuple[TemplateVariable, ...]
    sources: dict[str, Template] = field(repr=False, compare=False)

    def applies_to(self, state: State) -> bool:
        return state in self.states


@dataclass(frozen=True)
class MessageContext:
    """Everything a template may refer to besides its own declared variables."""

    title: str
    severity: Severity
    state: State
    status: Status
    components: tuple[str, ...]
    issue_url: str
    status_page_url: str
    slack_channel: str | None
    next_update_at: datetime | None
    next_update_minutes: int | None

    def as_jinja(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "severity": self.severity.value,
            "state": self.state.label,
            "status": self.status.label,
            "components": list(self.components),
            "components_text": join_names(self.components),
            "issue_url": self.issue_url,
            "status_page_url": self.status_page_url,
            "slack_channel": self.slack_channel or "",
            "next_update_at": fmt_utc(self.next_update_at, with_date=False)
            if self.next_update_at else "",
            "next_update_minutes": self.next_update_minutes or "",
        }


def join_names(names: tuple[str, ...] | list[str]) -> str:
    names = list(names)
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def tidy(text: str) -> str:
    """Strips each line's trailing space and collapses runs of blank lines."""
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


class TemplateLibrary:
    """The loaded, validated message templates of one folder."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(directory)),
            undefined=StrictUndefined,
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.templates: dict[str, MessageTemplate] = {}
        for meta in sorted(directory.glob("*/template.toml")):
            template = self._load(meta)
            self.templates[template.slug] = template
        for state in (State.INVESTIGATING, State.IDENTIFIED, State.MONITORING, State.RESOLVED):
            defaults = [t for t in self.templates.values() if state in t.default_for]
            if len(defaults) != 1:
                raise ConfigError(
                    f"{directory}: need exactly one default template for state {state.value}, "
                    f"found {len(defaults)}"
                )

    def _load(self, meta_path: Path) -> MessageTemplate:
        slug = meta_path.parent.name
        where = str(meta_path)
        if not _SLUG.match(slug):
            raise ConfigError(f"{where}: folder name must be a lowercase slug")
        try:
            meta = tomllib.loads(meta_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{where}: {exc}") from exc
        try:
            states = tuple(State(s) for s in meta["states"])
            default_for = tuple(State(s) for s in meta.get("default_for", []))
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"{where}: bad or missing states ({exc})") from exc
        variables = []
        for raw in meta.get("variables", []):
            name = raw.get("name", "")
            kind = raw.get("kind", "text")
            if not re.match(r"^[a-z][a-z0-9_]*$", name) or name in BUILTIN_NAMES:
                raise ConfigError(f"{where}: variable name {name!r} is invalid or reserved")
            if kind not in VARIABLE_KINDS:
                raise ConfigError(f"{where}: variable {name} has unknown kind {kind!r}")
            variables.append(TemplateVariable(
                name=name,
                label=raw.get("label", name),
                kind=kind,
                help=raw.get("help", ""),
                required=bool(raw.get("required", True)),
                default=str(raw.get("default", "")),
                max_length=int(raw.get("max_length", DEFAULT_MAX_LENGTH[kind])),
            ))
        sources = {}
        for channel in CHANNELS:
            try:
                sources[channel] = self.env.get_template(f"{slug}/{channel}.j2")
            except TemplateError as exc:
                raise ConfigError(f"{meta_path.parent}/{channel}.j2: {exc}") from exc
        return MessageTemplate(
            slug=slug,
            label=meta.get("label", slug),
            description=meta.get("description", ""),
            states=states,
            default_for=default_for,
            variables=tuple(variables),
            sources=sources,
        )

    def get(self, slug: str) -> MessageTemplate | None:
        return self.templates.get(slug)

    def for_state(self, state: State) -> list[MessageTemplate]:
        """Templates offered for a target state, the default first."""
        found = [t for t in self.templates.values() if t.applies_to(state)]
        return sorted(found, key=lambda t: (state not in t.default_for, t.label))

    def default_for(self, state: State) -> MessageTemplate:
        return next(t for t in self.templates.values() if state in t.default_for)


def clean_variables(
    template: MessageTemplate, raw: dict[str, str]
) -> tuple[dict[str, str], dict[str, str]]:
    """Returns (values, errors) for a template's declared variables; values keep what was typed."""
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for var in template.variables:
        value = str(raw.get(var.name, "")).strip()
        if var.kind != "paragraph":
            value = " ".join(value.split())
        value = value or var.default  # a declared default fills an empty field
        values[var.name] = value
        if not value:
            if var.required:
                errors[var.name] = f"{var.label} is required."
            continue
        if len(value) > var.max_length:
            errors[var.name] = f"{var.label} is too long ({len(value)} > {var.max_length})."
        elif var.kind == "minutes" and (not value.isdigit()
                                        or not 1 <= int(value) <= MAX_MINUTES):
            errors[var.name] = f"{var.label} must be a whole number of minutes (1–1440)."
    return values, errors


def render(
    template: MessageTemplate, *, context: MessageContext, values: dict[str, str]
) -> dict[str, str]:
    """Renders every channel's text; an empty required variable shows as [name] in the preview."""
    data = context.as_jinja()
    for var in template.variables:
        value = values.get(var.name, "") or var.default
        if not value and var.required:
            value = f"[{var.name}]"
        data[var.name] = int(value) if var.kind == "minutes" and value.isdigit() else value
    return {channel: tidy(source.render(data)) for channel, source in template.sources.items()}
