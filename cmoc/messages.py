"""Message templates: files under templates/messages/, rendered per channel in a Jinja2 sandbox.

Each template is a folder with `template.toml` (label, states, declared variables) and one
Jinja file per channel (`statusio.j2`, `twitter.j2`, `slack.j2`, `gitlab.j2`; a folder without
`gitlab.j2` comments the status page text under a short header). What a CMOC types is passed in
as data, never compiled as template source, so `{{ config }}` in a field stays literal.
Templates write the next-update time as the token `{next_update}` (resolved when the update is
published, see `cmoc.texts`), and shape typed values with the filters `clause`, `sentence`,
`strip_lead` and `weighted` so "back to normal." never becomes "normal..".
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, Template, TemplateError
from jinja2 import meta as jinja_meta
from jinja2.sandbox import ImmutableSandboxedEnvironment

from cmoc.cadence import MAX_MINUTES, ConfigError
from cmoc.enums import CHANNELS, Severity, State, Status
from cmoc.parsing import parse_int
from cmoc.texts import NEXT_UPDATE
from cmoc.tweet import weighted_length
from cmoc.wording import clause, sentence, strip_lead

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
    # Left empty, the value follows this built-in (e.g. the Monitoring wait follows
    # next_update_minutes) instead of a fixed default.
    default_from: str = ""


@dataclass(frozen=True)
class MessageTemplate:
    slug: str
    label: str
    description: str
    states: tuple[State, ...]
    default_for: tuple[State, ...]
    variables: tuple[TemplateVariable, ...]
    sources: dict[str, Template] = field(repr=False, compare=False)
    # Preselected instead of the default once the incident has published an update in that
    # state (the "Investigating: follow-up" after the first update).
    follow_up_for: tuple[State, ...] = ()
    # Per channel, the declared variables its file refers to.
    uses: dict[str, frozenset[str]] = field(default_factory=dict, compare=False)

    def applies_to(self, state: State) -> bool:
        return state in self.states

    def variables_used_by(self, channels: set[str]) -> set[str]:
        """Names of the variables the given channels' texts are rendered from."""
        return set().union(*(self.uses.get(c, frozenset()) for c in channels))


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
            # The token, not a time: it is resolved when the update is published.
            "next_update_at": NEXT_UPDATE if self.next_update_at else "",
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
        self.env.filters.update(clause=clause, sentence=sentence, strip_lead=strip_lead,
                                weighted=lambda v: weighted_length(str(v)))
        self.templates: dict[str, MessageTemplate] = {}
        self._markers: dict[str, str] | None = None
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
            follow_ups = [t for t in self.templates.values() if state in t.follow_up_for]
            if len(follow_ups) > 1:
                raise ConfigError(f"{directory}: more than one follow-up template for state "
                                  f"{state.value}")

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
            follow_up_for = tuple(State(s) for s in meta.get("follow_up_for", []))
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
            default_from = raw.get("default_from", "")
            if default_from and default_from not in BUILTIN_NAMES:
                raise ConfigError(f"{where}: variable {name}: default_from {default_from!r} "
                                  "is not a built-in name")
            variables.append(TemplateVariable(
                name=name,
                label=raw.get("label", name),
                kind=kind,
                help=raw.get("help", ""),
                required=bool(raw.get("required", True)),
                default=str(raw.get("default", "")),
                max_length=int(raw.get("max_length", DEFAULT_MAX_LENGTH[kind])),
                default_from=default_from,
            ))
        declared = {v.name for v in variables}
        sources, uses = {}, {}
        for channel in CHANNELS:
            name = f"{slug}/{channel}.j2"
            try:
                own_file = (meta_path.parent / f"{channel}.j2").exists()
                if channel in FALLBACK_SOURCES and not own_file:
                    source = FALLBACK_SOURCES[channel].replace("SLUG", slug)
                    sources[channel] = self.env.from_string(source)
                    # It includes the status page text: it needs that text's fields (an
                    # include is not followed by find_undeclared_variables).
                    source += " " + self.env.loader.get_source(
                        self.env, f"{slug}/statusio.j2")[0]
                else:
                    sources[channel] = self.env.get_template(name)
                    source = self.env.loader.get_source(self.env, name)[0]
                referred = jinja_meta.find_undeclared_variables(self.env.parse(source))
            except TemplateError as exc:
                raise ConfigError(f"{meta_path.parent}/{channel}.j2: {exc}") from exc
            uses[channel] = frozenset(referred & declared)
        return MessageTemplate(
            slug=slug,
            label=meta.get("label", slug),
            description=meta.get("description", ""),
            states=states,
            default_for=default_for,
            variables=tuple(variables),
            sources=sources,
            follow_up_for=follow_up_for,
            uses=uses,
        )

    def get(self, slug: str) -> MessageTemplate | None:
        return self.templates.get(slug)

    def for_state(self, state: State) -> list[MessageTemplate]:
        """Templates offered for a target state, the default first."""
        found = [t for t in self.templates.values() if t.applies_to(state)]
        return sorted(found, key=lambda t: (state not in t.default_for, t.label))

    def default_for(self, state: State, *, follow_up: bool = False) -> MessageTemplate:
        """The template preselected for a state; `follow_up` once the incident has published
        an update in it (when the state has a follow-up template)."""
        if follow_up:
            found = next((t for t in self.templates.values() if state in t.follow_up_for),
                         None)
            if found is not None:
                return found
        return next(t for t in self.templates.values() if state in t.default_for)

    def marker_labels(self) -> dict[str, str]:
        """Every variable name that can show as an unfilled [marker], with its label."""
        if self._markers is None:
            self._markers = self._collect_markers()
        return self._markers

    def _collect_markers(self) -> dict[str, str]:
        labels = dict.fromkeys(sorted(BUILTIN_NAMES), "")
        for template in self.templates.values():
            for var in template.variables:
                labels.setdefault(var.name, var.label)
                labels[var.name] = labels[var.name] or var.label
        return labels


@cache
def shipped_marker_labels() -> dict[str, str]:
    """The [marker] names of the templates the app ships (`templates/messages/`), for callers
    that publish without the app's library at hand."""
    return TemplateLibrary(Path(__file__).resolve().parent.parent / "templates" / "messages") \
        .marker_labels()


def clean_variables(
    template: MessageTemplate, raw: dict[str, str], *, needed: set[str] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """Returns (values, errors) for a template's declared variables; values keep what was typed.

    A required variable must be filled only when it is `needed` (default: all of them): a
    field no selected channel's text is rendered from is required of nobody.
    """
    values: dict[str, str] = {}
    errors: dict[str, str] = {}
    for var in template.variables:
        value = str(raw.get(var.name, "")).strip()
        if var.kind != "paragraph":
            value = " ".join(value.split())
        value = value or var.default  # a declared default fills an empty field
        values[var.name] = value
        if not value:
            wanted = needed is None or var.name in needed
            if var.required and wanted and not var.default_from:
                errors[var.name] = f"{var.label} is required."
            continue
        if len(value) > var.max_length:
            errors[var.name] = f"{var.label} is too long ({len(value)} > {var.max_length})."
        elif var.kind == "minutes" and parse_int(value, lo=1, hi=MAX_MINUTES) is None:
            errors[var.name] = f"{var.label} must be a whole number of minutes (1–1440)."
    return values, errors


# Channels whose template file a folder may leave out (written before the channel existed).
COMMENT_HEADER = "**Public update ({severity})**"
FALLBACK_SOURCES = {
    "gitlab": COMMENT_HEADER.format(severity="{{ severity }}")
    + '\n\n{% include "SLUG/statusio.j2" %}'}


def comment_from_status_page(text: str, *, severity: str) -> str:
    """The incident issue's comment when the CMOC wrote the status page text by hand: that
    text, so the issue says what the public read."""
    return f"{COMMENT_HEADER.format(severity=severity)}\n\n{text}" if text else ""


def render(
    template: MessageTemplate, *, context: MessageContext, values: dict[str, str]
) -> dict[str, str]:
    """Renders every channel's text; an empty required variable shows as [name] in the preview."""
    data = context.as_jinja()
    for var in template.variables:
        value = values.get(var.name, "") or var.default
        if not value and var.default_from:
            value = str(data.get(var.default_from) or "")
        if not value and var.required:
            value = f"[{var.name}]"
        number = parse_int(value, lo=1, hi=MAX_MINUTES) if var.kind == "minutes" else None
        data[var.name] = number if number is not None else value
    return {channel: tidy(source.render(data)) for channel, source in template.sources.items()}
