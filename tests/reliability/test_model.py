"""Model-based test of the public record (Hypothesis stateful).

Random sequences of publish / retry / clock pass / crash mid-send, with random faults at the
wire (timeouts with and without the remote having acted, 5xx before and after acting, 429 with
a reset, dropped connections, malformed bodies, status.io `error: yes`, failing look-ups),
against the loopback fakes, on every configured database. After every step the invariants are
checked on what the fakes actually received:

- per channel, the posts the remote holds are a subsequence of the publish order (so nothing
  older after anything newer, nothing after Resolved), each update at most once;
- one status.io incident; one X thread and one Slack thread, each post replying to the last;
- a delivery marked sent is on the remote under its recorded id; a superseded one never is;
- each reminder (clock passes of the reminder job, with faults on its Slack posts and look-ups)
  is in Slack at most once, and one marked sent is there under its recorded ts.

At the end of each example the faults stop and the clock runs until the lanes are quiet: then
every post on a remote is a sent delivery, every lane's newest delivery has settled, and no
reminder is left in flight.
`CMOC_MODEL_EXAMPLES` / `CMOC_MODEL_STEPS` run it longer.
"""

from __future__ import annotations

import itertools
import os
import time
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from sqlalchemy import select

from cmoc.enums import CHANNELS, DeliveryStatus, State
from cmoc.extensions import db
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.models import Delivery, Incident, Reminder, Update, User
from cmoc.services.components import refresh_components
from cmoc.services.delivering import (
    RetryPolicy,
    begin_send,
    channels_for,
    resume_deliveries,
    run_deliveries,
)
from cmoc.services.drafts import allowed_states
from cmoc.services.lanes import claim_next
from cmoc.services.publishing import retry_deliveries, start_publish
from cmoc.services.reminder_sending import REMINDER_EVENT
from cmoc.services.reminders import send_reminders
from cmoc.timeutil import utcnow
from tests.metrics_oracle import check

EXAMPLES = int(os.environ.get("CMOC_MODEL_EXAMPLES", "40"))
STEPS = int(os.environ.get("CMOC_MODEL_STEPS", "12"))
READ_TIMEOUT = 0.25
SLOW = READ_TIMEOUT * 2.5
EXAMPLE_IDS = itertools.count(1)
SEND_PATH = {"statusio": "", "twitter": "2/tweets", "slack": "chat.postMessage",
             "gitlab": "notes"}
LOOKUP_PATHS = {"statusio": [("", "GET")], "twitter": [("", "GET")], "gitlab": [("notes", "GET")],
                "slack": [("conversations.history", None), ("conversations.replies", None),
                          ("conversations.list", None)]}
FAULTS = ["none", "none", "none", "timeout", "timeout_after", "5xx", "5xx_after", "429_short",
          "429_long", "drop", "drop_after", "malformed_after", "error_yes"]
LOOKUP_FAULTS = ["none", "none", "5xx", "timeout", "drop"]
REMINDER_CHANNEL = "#cmoc-reminders"
REMINDER_FAULTS = ["none", "none", "timeout", "timeout_after", "5xx", "5xx_after", "429_short",
                   "429_long", "drop", "drop_after", "malformed_after"]


def fault_kwargs(channel: str, kind: str) -> dict | None:
    """The fake's answer for one fault kind on one channel's send, or None for no fault."""
    if kind == "none" or (kind == "error_yes" and channel != "statusio"):
        return None
    ok_body = {"statusio": {"status": {"error": "no"}, "result": "late"},
               "twitter": {"data": {"id": "0", "text": "late"}}, "slack": {"ok": True},
               "gitlab": {"id": 0, "body": "late"}}[channel]
    if kind in ("timeout", "timeout_after"):
        return dict(status=200, body=ok_body, delay=SLOW, apply=kind == "timeout_after")
    if kind in ("5xx", "5xx_after"):
        return dict(status=503 if kind == "5xx" else 502, body="unavailable",
                    apply=kind == "5xx_after")
    if kind.startswith("429"):
        wait = 3 if kind == "429_short" else 120
        headers = ({"x-rate-limit-reset": str(int(time.time()) + wait)} if channel == "twitter"
                   else {"Retry-After": str(wait)})
        body = {"ok": False, "error": "ratelimited"} if channel == "slack" else {"title": "429"}
        return dict(status=429, body=body, headers=headers)
    if kind in ("drop", "drop_after"):
        return dict(status=200, drop=True, apply=kind == "drop_after")
    if kind == "malformed_after":
        return dict(status=201 if channel == "twitter" else 200, body="<html>", apply=True)
    return dict(status=200, body={"status": {"error": "yes", "message": "Refused"}})


def lookup_fault_kwargs(kind: str) -> dict | None:
    return {"none": None, "5xx": dict(status=500, body="down"),
            "timeout": dict(status=200, body={}, delay=SLOW),
            "drop": dict(status=200, drop=True)}[kind]


class PublicRecord(RuleBasedStateMachine):
    app = None
    fakes = None

    def __init__(self):
        super().__init__()
        self.example = next(EXAMPLE_IDS)
        self.now = utcnow()
        self.fakes.now = lambda: self.now
        self.fakes.clear_faults()
        self.seq = 0
        issue = self.fakes.gitlab_api.open_issue(INCIDENT_PROJECT,
                                                 title=f"Model outage {self.example}")
        self.issue_key = (issue["project_id"], issue["iid"])
        with self.app.app_context():
            user = db.session.scalar(select(User))
            incident = Incident(title=f"Model outage {self.example}", severity="S1",
                                issue_url=issue["web_url"],
                                status="service_disruption", components=["API"],
                                state=State.INVESTIGATING.value, declared_by_id=user.id,
                                created_at=self.now, updated_at=self.now,
                                next_update_due_at=self.now)
            db.session.add(incident)
            db.session.commit()
            self.incident_id, self.user_id = incident.id, user.id
            db.session.remove()

    # -- helpers --------------------------------------------------------------------------
    def marker(self, seq: int) -> str:
        return f"[m{self.example}u{seq}]"

    def sleep(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)   # inline waits pass on the model's clock

    def state(self) -> State:
        with self.app.app_context():
            value = db.session.get(Incident, self.incident_id).state
            db.session.remove()
        return State(value)

    def inject(self, channel: str, kind: str, lookup: str) -> None:
        kwargs = fault_kwargs(channel, kind)
        if kwargs:
            self.fakes.fail(channel, SEND_PATH[channel], method="POST", **kwargs)
        lookup_kwargs = lookup_fault_kwargs(lookup)
        if lookup_kwargs:
            for path, method in LOOKUP_PATHS[channel]:
                self.fakes.fail(channel, path, method=method, **lookup_kwargs)

    def crash(self, channel: str, acted: bool) -> None:
        """A runner claims this lane's next step, then its process dies: before the call, or
        after the remote got it (whatever the remote then answered)."""
        policy = RetryPolicy.from_config(self.app.config)
        claim = claim_next(incident_id=self.incident_id, channel=channel, now=self.now,
                           lease=policy.lease)
        if claim is None or claim.action != "send":
            return
        adapter = channels_for(self.app)[channel]
        begun = begin_send(claim, channel=adapter, policy=policy, clock=lambda: self.now)
        if begun and acted and adapter.configured and "skip" not in begun[1]:
            adapter.send(begun[1])

    # -- rules ----------------------------------------------------------------------------
    @precondition(lambda self: self.state() is not State.RESOLVED)
    @rule(pick=st.integers(0, 3), chosen=st.sets(st.sampled_from(CHANNELS), min_size=1),
          faults=st.fixed_dictionaries({c: st.sampled_from(FAULTS) for c in CHANNELS}),
          lookups=st.fixed_dictionaries({c: st.sampled_from(LOOKUP_FAULTS) for c in CHANNELS}),
          crash=st.one_of(st.none(), st.sampled_from(CHANNELS)), acted=st.booleans())
    def publish(self, pick, chosen, faults, lookups, crash, acted):
        states = allowed_states(self.state())
        state = states[min(pick, len(states) - 1)]
        self.seq += 1
        mark = self.marker(self.seq)
        with self.app.app_context():
            update = Update(incident_id=self.incident_id, author_id=self.user_id,
                            state=state.value, template=state.value,
                            status="operational" if state is State.RESOLVED
                            else "service_disruption",
                            text_statusio=f"{mark} {state.label}: status page text",
                            text_twitter=f"{mark} {state.label}: tweet",
                            text_slack=f"{mark} {state.label}: Slack text",
                            text_gitlab=f"{mark} {state.label}: issue comment",
                            created_at=self.now, updated_at=self.now)
            db.session.add(update)
            db.session.commit()
            start_publish(update=update, channels=set(chosen), confirm_public=False,
                          actor=db.session.get(User, self.user_id),
                          cadence=self.app.config["CADENCE_MATRIX"], now=self.now)
            update_id = update.id
            for channel in CHANNELS:
                self.inject(channel, faults[channel], lookups[channel])
            if crash in chosen:
                self.crash(crash, acted)
            db.session.remove()
        run_deliveries(self.app, update_id, sleep=self.sleep, clock=lambda: self.now)
        self.fakes.clear_faults()

    @rule(seconds=st.sampled_from([5, 30, 65, 130, 400]),
          lookups=st.fixed_dictionaries({c: st.sampled_from(LOOKUP_FAULTS) for c in CHANNELS}))
    def clock_pass(self, seconds, lookups):
        self.now += timedelta(seconds=seconds)
        for channel in CHANNELS:
            self.inject(channel, "none", lookups[channel])
        resume_deliveries(self.app, now=self.now, sleep=self.sleep)
        self.fakes.clear_faults()

    @rule(seconds=st.sampled_from([0, 40, 130, 330, 700]),
          fault=st.sampled_from(REMINDER_FAULTS), times=st.integers(1, 3),
          lookup=st.sampled_from(LOOKUP_FAULTS))
    def remind(self, seconds, fault, times, lookup):
        """A pass of the clock's reminder job, its Slack posts (and look-ups) faulty."""
        self.now += timedelta(seconds=seconds)
        kwargs = fault_kwargs("slack", fault)
        if kwargs:
            self.fakes.fail("slack", "chat.postMessage", method="POST", times=times,
                            where={"channel": REMINDER_CHANNEL}, **kwargs)
        self.inject("slack", "none", lookup)
        send_reminders(self.app, now=self.now)
        self.fakes.clear_faults()

    @rule(data=st.data())
    def retry(self, data):
        with self.app.app_context():
            failed = db.session.scalars(select(Delivery).join(Update).where(
                Update.incident_id == self.incident_id,
                Delivery.status == DeliveryStatus.FAILED.value).order_by(Delivery.id)).all()
            if not failed:
                db.session.remove()
                return
            delivery = data.draw(st.sampled_from(failed))
            update_id = delivery.update_id
            retry_deliveries(update=delivery.update, channels={delivery.channel}, now=self.now)
            db.session.remove()
        run_deliveries(self.app, update_id, sleep=self.sleep, clock=lambda: self.now)

    # -- what must always hold ------------------------------------------------------------
    def remote_posts(self) -> dict[str, list[dict]]:
        """This example's posts on each remote, in the order the remote received them."""
        prefix = f"[m{self.example}u"
        with self.fakes.lock:
            incidents = [i for i in self.fakes.incidents.values()
                         if i["name"] == f"Model outage {self.example}"]
            assert len(incidents) <= 1, "two status.io incidents for one outage"
            statusio = [{"seq": _seq(m["details"], prefix), "id": incidents[0]["_id"]}
                        for m in (incidents[0]["messages"] if incidents else [])]
            tweets = [{"seq": _seq(t["text"], prefix), "id": t["id"],
                       "reply_to": t["in_reply_to"]}
                      for t in self.fakes.tweets.values() if t["text"].startswith(prefix)]
            slack = [{"seq": _seq(m["text"], prefix), "id": m["ts"], "thread": m["thread_ts"]}
                     for m in self.fakes.slack_messages if prefix in (m["text"] or "")]
            notes = [{"seq": _seq(n["body"], prefix), "id": str(n["id"])}
                     for n in sorted(self.fakes.gitlab_api.notes.get(self.issue_key, []),
                                     key=lambda n: n["id"]) if prefix in n["body"]]
        return {"statusio": statusio, "twitter": tweets, "slack": slack, "gitlab": notes}

    @invariant()
    def public_record_is_right(self):
        posts = self.remote_posts()
        for channel, received in posts.items():
            seqs = [p["seq"] for p in received]
            assert seqs == sorted(set(seqs)), f"{channel} out of order or twice: {seqs}"
        tweets = posts["twitter"]
        for previous, current in zip([None, *tweets], tweets, strict=False):
            assert current["reply_to"] == (previous["id"] if previous else None), \
                f"X thread forked: {tweets}"
        slack = posts["slack"]
        for message in slack:
            assert message["thread"] == (slack[0]["id"] if message is not slack[0] else None), \
                f"Slack thread broken: {slack}"
        with self.app.app_context():
            rows = db.session.execute(
                select(Update.publish_seq, Delivery.channel, Delivery.status,
                       Delivery.external_id)
                .join(Update, Update.id == Delivery.update_id)
                .where(Update.incident_id == self.incident_id)).all()
            db.session.remove()
        for seq, channel, status, external_id in rows:
            on_remote = {p["seq"]: p["id"] for p in posts[channel]}
            if status == DeliveryStatus.SENT.value:
                assert on_remote.get(seq) == external_id, \
                    f"{channel} update {seq} marked sent as {external_id}, remote: {on_remote}"
            if status == DeliveryStatus.SUPERSEDED.value:
                assert seq not in on_remote, f"{channel} update {seq} superseded but posted"

    def reminder_rows(self) -> dict[int, tuple[str, str | None]]:
        with self.app.app_context():
            rows = {rid: (status, ts) for rid, status, ts in db.session.execute(
                select(Reminder.id, Reminder.status, Reminder.external_id)
                .where(Reminder.incident_id == self.incident_id))}
            db.session.remove()
        return rows

    @invariant()
    def each_reminder_is_in_slack_at_most_once(self):
        rows = self.reminder_rows()
        with self.fakes.lock:
            posted = [(m["metadata"]["event_payload"]["reminder_id"], m["ts"])
                      for m in self.fakes.slack_messages
                      if (m.get("metadata") or {}).get("event_type") == REMINDER_EVENT]
        mine = [(rid, ts) for rid, ts in posted if rid in rows]
        ids = [rid for rid, _ in mine]
        assert len(ids) == len(set(ids)), f"a reminder posted twice: {mine}"
        for rid, (status, ts) in rows.items():
            if status == "sent":
                assert (rid, ts) in mine, f"reminder {rid} marked sent as {ts}, Slack: {mine}"

    def teardown(self):
        self.fakes.clear_faults()
        for _ in range(4):
            self.now += timedelta(minutes=10)
            resume_deliveries(self.app, now=self.now, sleep=self.sleep)
            send_reminders(self.app, now=self.now)
        self.public_record_is_right()
        self.each_reminder_is_in_slack_at_most_once()
        in_flight = {rid: row for rid, row in self.reminder_rows().items() if row[0] == "sending"}
        assert not in_flight, f"reminders left in flight: {in_flight}"
        posts = self.remote_posts()
        with self.app.app_context():
            rows = db.session.execute(
                select(Update.publish_seq, Delivery.channel, Delivery.status)
                .join(Update, Update.id == Delivery.update_id)
                .where(Update.incident_id == self.incident_id)).all()
            db.session.remove()
        unsettled = {DeliveryStatus.PENDING.value, DeliveryStatus.WAITING.value,
                     DeliveryStatus.SENDING.value}
        assert not [r for r in rows if r[2] in unsettled], f"lanes not quiet: {rows}"
        for channel in CHANNELS:
            sent = {seq for seq, c, status in rows
                    if c == channel and status == DeliveryStatus.SENT.value}
            assert {p["seq"] for p in posts[channel]} == sent, f"{channel}: {rows}"
        # /metrics (the trigger-kept counters) agrees with a recount of the rows.
        with self.app.app_context():
            check(self.app.test_client())


def _seq(text: str, prefix: str) -> int:
    return int(text[text.index(prefix) + len(prefix):].split("]", 1)[0])


@pytest.fixture
def model_app(make_app, fakes):
    app = make_app(**fakes.env(), PUBLISH_BACKOFF_SECONDS=1, HTTP_READ_TIMEOUT=READ_TIMEOUT,
                   HTTP_CONNECT_TIMEOUT=1.0, SLACK_REMINDER_CHANNEL=REMINDER_CHANNEL)
    with app.app_context():
        db.session.add(User(username="model", password_hash="-", role="cmoc"))
        db.session.commit()
        refresh_components(statusio=channels_for(app)["statusio"], now=utcnow())
        db.session.remove()
    return app


@pytest.mark.timeout(max(300, EXAMPLES * STEPS * 3))
def test_public_record_holds_under_random_faults(model_app, fakes):
    PublicRecord.app, PublicRecord.fakes = model_app, fakes
    try:
        run = PublicRecord.TestCase
        run.settings = settings(max_examples=EXAMPLES, stateful_step_count=STEPS,
                                deadline=None, derandomize=False,
                                suppress_health_check=list(HealthCheck))
        run("runTest").runTest()
    finally:
        fakes.now = lambda: utcnow()
