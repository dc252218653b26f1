"""The fixed vocabularies of an incident: severity, state, status, roles and update phases."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"

    @property
    def label(self) -> str:
        return {"S1": "S1 Critical", "S2": "S2 High", "S3": "S3 Medium", "S4": "S4 Low"}[self.value]


class State(StrEnum):
    """status.io "Current State", in lifecycle order."""

    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def label(self) -> str:
        return self.value.capitalize()

    @property
    def order(self) -> int:
        return list(State).index(self)


class Status(StrEnum):
    """status.io "Current Status" (the component status level)."""

    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_SERVICE_DISRUPTION = "partial_service_disruption"
    SERVICE_DISRUPTION = "service_disruption"
    SECURITY_ISSUE = "security_issue"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").title()


# Statuses an active (not resolved) incident may carry; Operational only comes with Resolved.
ACTIVE_STATUSES = [s for s in Status if s is not Status.OPERATIONAL]


class Role(StrEnum):
    VIEWER = "viewer"
    CMOC = "cmoc"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


class UpdatePhase(StrEnum):
    DRAFT = "draft"
    PUBLISHING = "publishing"
    PUBLISHED = "published"


class DeliveryStatus(StrEnum):
    PENDING = "pending"      # queued, not yet handed to the channel
    WAITING = "waiting"      # held back until an older update's post on the channel is settled
    SENDING = "sending"      # handed to the channel; outcome not yet recorded
    SENT = "sent"
    FAILED = "failed"
    DRY_RUN = "dry_run"      # channel has no credentials: payload recorded, nothing sent
    SKIPPED = "skipped"      # not selected for this update, or nothing to do
    SUPERSEDED = "superseded"  # never sent: a newer update (or Resolved) went out on the channel

    @property
    def settled(self) -> bool:
        return self not in (DeliveryStatus.PENDING, DeliveryStatus.WAITING,
                            DeliveryStatus.SENDING)

    @property
    def label(self) -> str:
        return {"dry_run": "Dry-run"}.get(self.value, self.value.capitalize())


CHANNELS = ("statusio", "twitter", "slack", "gitlab")
# What counts as telling the public (first public update, cadence adherence).
PUBLIC_CHANNELS = ("statusio", "twitter")
# Posts anyone outside the company may read: a security issue needs an explicit confirmation
# for each (the incident issue's comments are public on a public project).
OUTWARD_CHANNELS = ("statusio", "twitter", "gitlab")
CHANNEL_LABELS = {"statusio": "Status page", "twitter": "Tweet", "slack": "Slack",
                  "gitlab": "GitLab issue"}
