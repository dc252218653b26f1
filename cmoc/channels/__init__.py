"""Outbound channels: one module per channel behind a small interface returning a result."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol


@dataclass(frozen=True)
class PostContext:
    """What a channel needs to build its payload for one update of one incident."""

    update_id: int
    incident_id: int
    title: str
    text: str
    state: str
    status: str
    severity: str
    components: tuple[str, ...]
    issue_url: str
    status_page_url: str
    # Threading state left by earlier publishes of this incident.
    statusio_incident_id: str | None = None
    previous_state: str | None = None
    twitter_last_tweet_id: str | None = None
    slack_channel_id: str | None = None
    slack_thread_ts: str | None = None
    # This update's status.io subscriber choice {email, sms, webhook}; None: the adapter's.
    statusio_notify: dict[str, bool] | None = None


@dataclass(frozen=True)
class ChannelResult:
    """Outcome of one attempt. `retryable` only when sending again cannot duplicate the post."""

    ok: bool
    external_id: str | None = None
    error: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    # The remote may have acted although we got no answer (read timeout, malformed reply).
    outcome_unknown: bool = False
    # X answered 403 "duplicate content": the same text is already on the timeline.
    duplicate: bool = False
    # Threading facts to store on the incident (e.g. slack channel id, status.io incident id).
    thread: dict[str, str] = field(default_factory=dict)

    @classmethod
    def sent(cls, external_id: str | None, **thread: str) -> ChannelResult:
        return cls(ok=True, external_id=external_id, thread=thread)

    @classmethod
    def failed(cls, error: str, *, retryable: bool = False, retry_after: float | None = None,
               outcome_unknown: bool = False) -> ChannelResult:
        return cls(ok=False, error=error, retryable=retryable, retry_after=retry_after,
                   outcome_unknown=outcome_unknown)


class Channel(Protocol):
    name: str
    configured: bool

    def build(self, ctx: PostContext) -> dict[str, Any]:
        """The exact request this channel would send (pure; recorded on the delivery)."""

    def send(self, payload: dict[str, Any]) -> ChannelResult:
        """Sends the payload once; expected remote failures come back as a failed result."""

    def find_existing(self, payload: dict[str, Any], *,
                      since: datetime | None = None) -> ChannelResult | None:
        """After an unclear answer or a crash: the earlier post of this payload (made at or
        after `since`) if the remote has it; None if certainly not; a failed result if the
        remote could not be asked."""
