"""Database models: users, incidents, their updates and each update's per-channel deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql.expression import text

from cmoc.enums import PUBLIC_CHANNELS, DeliveryStatus, Role, Severity, State, Status, UpdatePhase
from cmoc.extensions import db
from cmoc.timeutil import UTCDateTime, utcnow


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16), default=Role.VIEWER.value)
    active: Mapped[bool] = mapped_column(default=True)
    slack_user_id: Mapped[str | None] = mapped_column(String(32))
    # How PagerDuty knows them (the on-call CMOC is found by email); set by OpenID Connect
    # sign-in or on the profile page.
    email: Mapped[str | None] = mapped_column(String(255), index=True)
    # Set for accounts that sign in through OpenID Connect: the provider's subject.
    oidc_subject: Mapped[str | None] = mapped_column(String(255), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_active(self) -> bool:  # flask-login: inactive users cannot log in
        return self.active

    def can(self, needed: Role) -> bool:
        return self.role_enum.allows(needed)


class UserSession(db.Model):
    """One signed-in browser session. The cookie holds a random id; only its SHA-256 is stored.
    Ending the row ends every copy of that cookie."""

    __tablename__ = "user_sessions"
    __table_args__ = (Index("ix_user_sessions_user", "user_id", "ended_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # logout | ended | expired | idle | password | role | deactivated | browser changed
    end_reason: Mapped[str | None] = mapped_column(String(32))
    # "Firefox on Linux": shown on the profile, and a cookie sent by another browser is refused.
    user_agent: Mapped[str] = mapped_column(String(64), default="")
    ip: Mapped[str | None] = mapped_column(String(64))


class SetupDone(db.Model):
    """A single row, written in the same transaction as the first admin: its fixed primary key
    lets only one first-run setup commit, however many run at once."""

    __tablename__ = "setup_done"
    __table_args__ = (CheckConstraint("id = 1", name="singleton"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Incident(db.Model):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_active_due", "resolved_at", "next_update_due_at"),
        # The communication report selects incidents by declaration time.
        Index("ix_incidents_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(2))
    state: Mapped[str] = mapped_column(String(16), default=State.INVESTIGATING.value)
    status: Mapped[str] = mapped_column(String(32))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    issue_url: Mapped[str | None] = mapped_column(String(500))
    slack_channel: Mapped[str | None] = mapped_column(String(81))
    declared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The CMOC on duty for this incident: reminders go to them.
    cmoc_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_update_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Per-update override of the cadence ("next update in N minutes") from the last publish.
    next_update_minutes: Mapped[int | None] = mapped_column()
    # Channel threading: where later updates attach.
    statusio_incident_id: Mapped[str | None] = mapped_column(String(64))
    # After Resolved: the incident review (post-mortem) link, and why an incident declared by
    # mistake was closed without any public post.
    postmortem_url: Mapped[str | None] = mapped_column(String(500))
    closed_reason: Mapped[str | None] = mapped_column(Text)
    twitter_last_tweet_id: Mapped[str | None] = mapped_column(String(32))
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))
    # -- GitLab (issue 14) ------------------------------------------------------------------
    # The GitLab incident issue this incident follows, as "group/project#iid" (declared from
    # it, or created by its webhook): severity and state changes on the issue come here.
    gitlab_issue: Mapped[str | None] = mapped_column(String(300), index=True)
    # Issue 11 (drafting): the next-update time the last public update promised (snoozing
    # past it needs a confirmation), and whether the CMOC gets a heads-up before due.
    promised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    heads_up: Mapped[bool] = mapped_column(default=True)

    declared_by: Mapped[User] = relationship(foreign_keys=[declared_by_id])
    cmoc: Mapped[User | None] = relationship(foreign_keys=[cmoc_id])
    updates: Mapped[list[Update]] = relationship(
        back_populates="incident", order_by="Update.created_at.desc(), Update.id.desc()"
    )

    @property
    def severity_enum(self) -> Severity:
        return Severity(self.severity)

    @property
    def state_enum(self) -> State:
        return State(self.state)

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_resolved(self) -> bool:
        return self.state == State.RESOLVED.value


class Update(db.Model):
    """One drafted or published update; its texts are exactly what each channel gets."""

    __tablename__ = "updates"
    __table_args__ = (
        Index("ix_updates_incident_created", "incident_id", "created_at"),
        # The publish order of an incident's updates: each channel posts them in this order.
        UniqueConstraint("incident_id", "publish_seq", name="uq_updates_publish_seq"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    phase: Mapped[str] = mapped_column(String(16), default=UpdatePhase.DRAFT.value)
    state: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    template: Mapped[str] = mapped_column(String(64))
    variables: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    text_statusio: Mapped[str] = mapped_column(Text, default="")
    text_twitter: Mapped[str] = mapped_column(Text, default="")
    text_slack: Mapped[str] = mapped_column(Text, default="")
    # The comment on the GitLab incident issue (Markdown).
    text_gitlab: Mapped[str] = mapped_column(Text, default="")
    # Channels whose text the CMOC edited by hand (kept instead of re-rendered).
    edited_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    next_update_minutes: Mapped[int | None] = mapped_column()
    # Issue 11: whether status.io notifies its subscribers of this update, {email, sms,
    # webhook: bool}; None means the configured default (the handbook's "broadcast all").
    statusio_notify: Mapped[dict[str, bool] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # 1, 2, 3… per incident, fixed when the update is published (under the incident's lock).
    publish_seq: Mapped[int | None] = mapped_column()
    # Fixed at publish time, for the communication metrics: the severity then, the minutes
    # until the next update that applied, and when that next update was due.
    severity_at_publish: Mapped[str | None] = mapped_column(String(2))
    cadence_minutes: Mapped[int | None] = mapped_column()
    next_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the drafting form or API so a resubmitted request maps to the same update.
    idempotency_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    incident: Mapped[Incident] = relationship(back_populates="updates")
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    published_by: Mapped[User | None] = relationship(foreign_keys=[published_by_id])
    deliveries: Mapped[list[Delivery]] = relationship(
        back_populates="update", order_by="Delivery.id"
    )

    @property
    def state_enum(self) -> State:
        return State(self.state)

    @property
    def status_enum(self) -> Status:
        return Status(self.status)

    @property
    def is_draft(self) -> bool:
        return self.phase == UpdatePhase.DRAFT.value

    def text_for(self, channel: str) -> str:
        return getattr(self, f"text_{channel}")


PUBLIC_SENT = (f"status = '{DeliveryStatus.SENT.value}' AND channel IN ("
               + ", ".join(f"'{c}'" for c in PUBLIC_CHANNELS) + ")")


class Delivery(db.Model):
    """What one channel did with one update. Unique per (update, channel): one post at most.

    Deliveries of one incident on one channel form a lane, worked in publish order by one
    runner at a time: the runner holds a lease (token + expiry) renewed before every call.
    """

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("update_id", "channel", name="uq_deliveries_update_channel"),
        Index("ix_deliveries_status_updated", "status", "updated_at"),
        # The report asks of every update of the period whether it reached the public (a
        # status page or X post sent): answered from this small index alone. Migration 0019.
        Index("ix_deliveries_public_sent", "update_id",
              sqlite_where=text(PUBLIC_SENT), postgresql_where=text(PUBLIC_SENT)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    update_id: Mapped[int] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING.value)
    external_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    # Whether a failure may be retried automatically (transient) — permanent ones wait for a person.
    retryable: Mapped[bool] = mapped_column(default=False)
    # The last attempt got no clear answer: the remote may have posted, so look before resending.
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    # Some attempt ever got no clear answer: X's "duplicate" may then be our own tweet.
    maybe_posted: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The first attempt: a look-up for an unanswered post searches from here.
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Held by the runner working on it (status sending); an expired lease means it died.
    lease_token: Mapped[str | None] = mapped_column(String(32))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The audit entry of the publish or retry that caused this delivery.
    audit_id: Mapped[int | None] = mapped_column(ForeignKey("audit_log.id"))

    update: Mapped[Update] = relationship(back_populates="deliveries")

    @property
    def status_enum(self) -> DeliveryStatus:
        return DeliveryStatus(self.status)


class Notice(db.Model):
    """A one-off post that is not an update (e.g. the post-mortem link in the Slack thread).
    Sent once: claimed with a lease, and looked up on the remote before any resend."""

    __tablename__ = "notices"
    __table_args__ = (
        UniqueConstraint("incident_id", "kind", "key", name="uq_notices_incident_kind_key"),
        Index("ix_notices_status", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    # What makes two notices of a kind the same one (e.g. the link posted): never twice.
    key: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    external_id: Mapped[str | None] = mapped_column(String(128))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    retryable: Mapped[bool] = mapped_column(default=False)
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # -- GitLab and stakeholder notices (issue 14) ------------------------------------------
    # A reply: the notice whose message starts its thread (its external id is the thread's ts).
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    # Sent only once this one is settled, so replies in a thread keep their order.
    after_id: Mapped[int | None] = mapped_column(ForeignKey("notices.id", ondelete="SET NULL"))
    # The published update the notice relays, if any.
    update_id: Mapped[int | None] = mapped_column(ForeignKey("updates.id", ondelete="CASCADE"))

    incident: Mapped[Incident] = relationship()


class StatusioComponent(db.Model):
    """status.io components cached from component/list, so the picker shows the real page."""

    __tablename__ = "statusio_components"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    position: Mapped[int] = mapped_column(default=0)
    containers: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    fetched_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class IncidentEvent(db.Model):
    """Timeline entries that are not updates: snoozes, reminders, escalations, handovers."""

    __tablename__ = "incident_events"
    __table_args__ = (Index("ix_incident_events_incident", "incident_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    actor: Mapped[User | None] = relationship()


class DraftPresence(db.Model):
    """Issue 11: who has a drafting form of an incident open, from the page's heartbeat.

    While the incident's CMOC is drafting, the heads-up (and the first update's due reminder)
    wait: they would only interrupt."""

    __tablename__ = "draft_presence"

    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Reminder(db.Model):
    """One reminder slot of one due time. The unique key makes every slot fire at most once,
    however many clocks run and however often they restart."""

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("incident_id", "due_at", "kind", "seq", name="uq_reminders_slot"),
        Index("ix_reminders_status", "status", "updated_at"),
        # The report counts each incident's reminders by status and kind from the index alone.
        Index("ix_reminders_incident_status", "incident_id", "status", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(16))  # heads_up | due | escalation | repeat
    seq: Mapped[int] = mapped_column(default=0)
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # sending | sent | failed | dry_run | superseded | cancelled | undeliverable (nobody to tell)
    status: Mapped[str] = mapped_column(String(16))
    target: Mapped[str | None] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    # The last send got no clear answer: Slack is searched for it before any resend.
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A failed reminder is tried again from then on (Slack's Retry-After, or 30 s).
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    incident: Mapped[Incident] = relationship()


class SlackAction(db.Model):
    """An action taken from a Slack button or slash command. The unique key (action, incident,
    due time) lets one of several clicks on the same message act; the row is also what the
    dashboard shows."""

    __tablename__ = "slack_actions"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    incident_id: Mapped[int] = mapped_column(ForeignKey("incidents.id", ondelete="CASCADE"),
                                             index=True)
    action: Mapped[str] = mapped_column(String(16))  # nmu | snooze | snooze_break | take_over
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    slack_user_id: Mapped[str] = mapped_column(String(32))
    # pending | done | refused (e.g. past the promise) | failed; refused and failed may be
    # claimed again.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    detail: Mapped[str | None] = mapped_column(Text)
    update_id: Mapped[int | None] = mapped_column(ForeignKey("updates.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User | None] = relationship()


class ClockHeartbeat(db.Model):
    """The clock's last check-in, so the UI can warn when reminders are not running."""

    __tablename__ = "clock_heartbeats"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    pid: Mapped[int] = mapped_column()
    host: Mapped[str] = mapped_column(String(255))


class ApiToken(db.Model):
    """A bearer token for the HTTP API; only its SHA-256 is stored. It carries its user's role."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class AuditEntry(db.Model):
    """Append-only record of every change: who, when, from where, before and after."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_action", "action", "at"),
        Index("ix_audit_log_target", "target_type", "target_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    actor_name: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    target_type: Mapped[str | None] = mapped_column(String(32))
    target_id: Mapped[str | None] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    via: Mapped[str] = mapped_column(String(16), default="web")   # web | api | cli | clock
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class LoginFailure(db.Model):
    """Failed sign-ins, for per-account lockout and per-address rate limits."""

    __tablename__ = "login_failures"
    __table_args__ = (Index("ix_login_failures_user", "username", "at"),
                      Index("ix_login_failures_ip", "ip", "at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class RefusalCounter(db.Model):
    """Requests refused to clients that are not signed in, by kind (the audit action), for
    /metrics; the audit log gets one summary per kind per interval, not one row each.
    `reported_count` is `count` as of the last summary entry (written at `reported_at`)."""

    __tablename__ = "refusal_counters"

    kind: Mapped[str] = mapped_column(String(40), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)
    reported_count: Mapped[int] = mapped_column(default=0)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# -- GitLab (issue 14) ------------------------------------------------------------------------
class GitlabEvent(db.Model):
    """One webhook delivery from GitLab that was accepted. Its key (the Idempotency-Key or
    event UUID, else the issue's updated_at) is unique, so GitLab's retries change nothing."""

    __tablename__ = "gitlab_events"
    __table_args__ = (Index("ix_gitlab_events_received", "received_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    event_key: Mapped[str] = mapped_column(String(160), unique=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issue: Mapped[str | None] = mapped_column(String(300))
    action: Mapped[str | None] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    incident_id: Mapped[int | None] = mapped_column(
        ForeignKey("incidents.id", ondelete="SET NULL"))
    # Set on the event that created an incident for an issue: one incident per issue even when
    # two events about a new issue arrive at once.
    created_for: Mapped[str | None] = mapped_column(String(300), unique=True)


class WebhookCounter(db.Model):
    """Webhook requests by outcome, for /metrics; refusals are counted here, not audited one by
    one (anyone can send them)."""

    __tablename__ = "webhook_counters"

    source: Mapped[str] = mapped_column(String(16), primary_key=True)
    outcome: Mapped[str] = mapped_column(String(32), primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


class MetricCounter(db.Model):
    """A /metrics total (a count by labels, or a histogram's bucket or sum) kept by database
    triggers (migration 0020): they append to MetricDelta; the clock folds those in here."""

    __tablename__ = "metric_counters"

    metric: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(64), primary_key=True)
    sublabel: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[float] = mapped_column(Float)


class MetricDelta(db.Model):
    """One change to a MetricCounter, appended by a trigger in the changing transaction."""

    __tablename__ = "metric_deltas"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"),
                                    primary_key=True)
    metric: Mapped[str] = mapped_column(String(32))
    label: Mapped[str] = mapped_column(String(64))
    sublabel: Mapped[str] = mapped_column(String(32))
    value: Mapped[float] = mapped_column(Float)


class Handover(db.Model):
    """The end-of-shift handover issue of one shift: claimed by its start before it is written,
    looked up in GitLab (by the marker in its description) before any second attempt."""

    __tablename__ = "handovers"

    id: Mapped[int] = mapped_column(primary_key=True)
    shift_start: Mapped[datetime] = mapped_column(UTCDateTime, unique=True)
    shift_end: Mapped[datetime] = mapped_column(UTCDateTime)
    # pending | sending | sent | failed | dry_run
    status: Mapped[str] = mapped_column(String(16), default="pending")
    title: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text, default="")
    issue_iid: Mapped[int | None] = mapped_column()
    issue_url: Mapped[str | None] = mapped_column(String(500))
    error: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(default=0)
    outcome_unknown: Mapped[bool] = mapped_column(default=False)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    via: Mapped[str] = mapped_column(String(16), default="clock")  # web | cli | clock
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User | None] = relationship()


class OnCall(db.Model):
    """Who PagerDuty says is on call for a schedule, as the clock last read it. Kept when
    PagerDuty cannot be asked (the error is noted); used only until that shift's end."""

    __tablename__ = "oncall"

    schedule_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    pd_user_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str | None] = mapped_column(String(255))
    email: Mapped[str | None] = mapped_column(String(255))
    shift_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    shift_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # last good answer
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)   # last attempt
    error: Mapped[str | None] = mapped_column(Text)
