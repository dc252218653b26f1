"""Database models: users, incidents, their updates and each update's per-channel deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cmoc.enums import Role, Severity, State, Status, UpdatePhase
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
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    @property
    def is_active(self) -> bool:  # flask-login: inactive users cannot log in
        return self.active

    def can(self, needed: Role) -> bool:
        return self.role_enum.allows(needed)


class Incident(db.Model):
    __tablename__ = "incidents"
    __table_args__ = (Index("ix_incidents_active_due", "resolved_at", "next_update_due_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(255))
    severity: Mapped[str] = mapped_column(String(2))
    state: Mapped[str] = mapped_column(String(16), default=State.INVESTIGATING.value)
    status: Mapped[str] = mapped_column(String(32))
    components: Mapped[list[str]] = mapped_column(JSON, default=list)
    issue_url: Mapped[str] = mapped_column(String(500))
    slack_channel: Mapped[str | None] = mapped_column(String(81))
    declared_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_update_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Per-update override of the cadence ("next update in N minutes") from the last publish.
    next_update_minutes: Mapped[int | None] = mapped_column()
    # Channel threading: where later updates attach.
    statusio_incident_id: Mapped[str | None] = mapped_column(String(64))
    twitter_last_tweet_id: Mapped[str | None] = mapped_column(String(32))
    slack_channel_id: Mapped[str | None] = mapped_column(String(32))
    slack_thread_ts: Mapped[str | None] = mapped_column(String(32))

    declared_by: Mapped[User] = relationship()
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
    __table_args__ = (Index("ix_updates_incident_created", "incident_id", "created_at"),)

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
    # Channels whose text the CMOC edited by hand (kept instead of re-rendered).
    edited_channels: Mapped[list[str]] = mapped_column(JSON, default=list)
    next_update_minutes: Mapped[int | None] = mapped_column()
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    incident: Mapped[Incident] = relationship(back_populates="updates")
    author: Mapped[User] = relationship(foreign_keys=[author_id])
    published_by: Mapped[User | None] = relationship(foreign_keys=[published_by_id])

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
