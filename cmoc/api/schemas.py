"""JSON shapes of the HTTP API (pydantic); the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StringConstraints

Severity = Literal["S1", "S2", "S3", "S4"]
State = Literal["investigating", "identified", "monitoring", "resolved"]
Status = Literal["operational", "degraded_performance", "partial_service_disruption",
                 "service_disruption", "security_issue"]
Channel = Literal["statusio", "twitter", "slack", "gitlab"]
DeliveryState = Literal["pending", "waiting", "sending", "sent", "failed", "dry_run", "skipped",
                        "superseded"]
VariableName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,40}$")]
ShortText = Annotated[str, StringConstraints(max_length=2000)]


class Strict(BaseModel):
    """Unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class IncidentCreate(Strict):
    # Required unless `issue` is given (then read from the GitLab issue when missing).
    title: str | None = Field(default=None, min_length=1, max_length=255)
    severity: Severity | None = None
    status: Status | None = None
    components: list[Annotated[str, StringConstraints(max_length=255)]] | None = Field(
        default=None, min_length=1, max_length=100)
    issue_url: str | None = Field(default=None, max_length=500)
    slack_channel: str | None = Field(default=None, max_length=81)
    issue: str | None = Field(default=None, min_length=1, max_length=500, description=(
        "The GitLab incident issue (URL or `group/project#iid`): title, severity, components, "
        "issue_url and slack_channel not given are read from it; status then follows the "
        "severity."))


class IncidentPatch(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=255)
    severity: Severity | None = None
    status: Status | None = None
    components: list[Annotated[str, StringConstraints(max_length=255)]] | None = Field(
        default=None, min_length=1, max_length=100)


class IncidentQuery(Strict):
    state: Literal["active", "resolved", "all"] = "active"
    limit: int = Field(default=100, ge=1, le=500)


class Texts(Strict):
    statusio: str | None = Field(default=None, max_length=5000)
    twitter: str | None = Field(default=None, max_length=1000)
    slack: str | None = Field(default=None, max_length=3000)
    gitlab: str | None = Field(default=None, max_length=10000,
                               description="The comment on the GitLab incident issue (Markdown).")


class Notify(Strict):
    """Whether status.io notifies its subscribers of this update (each default: on)."""

    email: StrictBool | None = None
    sms: StrictBool | None = None
    webhook: StrictBool | None = None


class UpdateCreate(Strict):
    state: State
    status: Status | None = None
    template: str | None = Field(default=None, min_length=1, max_length=64)
    variables: dict[VariableName, ShortText] = Field(default_factory=dict, max_length=20)
    texts: Texts | None = Field(default=None, description=(
        "Final text per channel; a channel given here is not rendered from the template, and "
        "a template field is required only while some chosen channel's text comes from it. "
        "Write `{next_update}` where the next-update time goes."))
    channels: list[Channel] | None = Field(default=None, max_length=4, description=(
        "Channels to publish to (default all). A chosen channel whose text is blocked (empty, "
        "over 280, an unfilled [placeholder]) refuses the publish with 422 naming it; leave "
        "it out to publish the others."))
    notify: Notify | None = None
    # Strict: true, "5" and 5.0 are refused rather than read as 1 or 5.
    next_update_in_minutes: StrictInt | None = Field(default=None, ge=1, le=1440)
    publish: StrictBool = False
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=64)
    confirm_public: StrictBool = Field(default=False, description=(
        "Required to post a security issue on the public channels (status.io, X)."))


class RetryRequest(Strict):
    channels: list[Channel] | None = Field(default=None, max_length=4)


class DeliveryOut(BaseModel):
    channel: Channel
    status: DeliveryState
    external_id: str | None
    attempts: int
    error: str | None
    updated_at: datetime


class TextsOut(BaseModel):
    statusio: str
    twitter: str
    slack: str
    gitlab: str


class UpdateOut(BaseModel):
    id: int
    incident_id: int
    phase: Literal["draft", "publishing", "published"]
    state: State
    status: Status
    template: str
    texts: TextsOut
    next_update_in_minutes: int | None
    notify: dict[str, bool] = Field(description="status.io subscriber flags of this update.")
    blocked: dict[str, str] = Field(description=(
        "A draft's channels whose text cannot be sent yet, with why (empty once published)."))
    author: str
    created_at: datetime
    published_at: datetime | None
    deliveries: list[DeliveryOut]


class IncidentSummary(BaseModel):
    id: int
    title: str
    severity: Severity
    state: State
    status: Status
    components: list[str]
    issue_url: str | None
    slack_channel: str | None
    statusio_incident_id: str | None
    gitlab_issue: str | None = Field(description="The GitLab issue it follows, "
                                     "`group/project#iid`.")
    cmoc: str | None
    created_at: datetime
    resolved_at: datetime | None
    last_published_at: datetime | None
    next_update_due_at: datetime | None


class IncidentOut(IncidentSummary):
    updates: list[UpdateOut]


class IncidentList(BaseModel):
    incidents: list[IncidentSummary]


class ErrorBody(BaseModel):
    code: str
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    error: ErrorBody
