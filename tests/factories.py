"""Small factory helpers for tests: users, incidents, signed-in clients."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from werkzeug.security import generate_password_hash

from cmoc.enums import State
from cmoc.extensions import db
from cmoc.models import Incident, Reminder, User
from cmoc.timeutil import utcnow

PASSWORD = "correct-horse-battery"
ISSUE_URL = "https://gitlab.com/gitlab-com/gl-infra/production/-/issues/12345"
# Hashing is deliberately slow; one hash serves every test user.
_HASH = generate_password_hash(PASSWORD)


def make_user(username: str = "alice", role: str = "cmoc", **extra) -> User:
    user = User(username=username, password_hash=_HASH, role=role, **extra)
    db.session.add(user)
    db.session.commit()
    return user


def make_incident(author: User | None = None, *, now: datetime | None = None, **extra) -> Incident:
    author = author or db.session.query(User).first() or make_user("declarer")
    now = now or utcnow()
    values = {
        "title": "Elevated error rates on GitLab.com", "severity": "S1",
        "status": "service_disruption", "components": ["Website", "API"],
        "issue_url": ISSUE_URL, "state": State.INVESTIGATING.value,
        "created_at": now, "updated_at": now, "next_update_due_at": now,
    }
    values.update(extra)
    incident = Incident(declared_by_id=author.id, **values)
    db.session.add(incident)
    db.session.commit()
    return incident


def due_incident(due_at: datetime, **extra) -> Incident:
    """An S1 Investigating incident published ten minutes before `due_at`, its next update
    due then."""
    values = {"created_at": due_at - timedelta(minutes=30),
              "last_published_at": due_at - timedelta(minutes=10), "next_update_due_at": due_at,
              **extra}
    return make_incident(**values)


def all_reminders() -> list[Reminder]:
    """Every reminder row, oldest first, read afresh."""
    db.session.expire_all()
    return db.session.scalars(select(Reminder).order_by(Reminder.id)).all()


def login(client, user: User, password: str = PASSWORD):
    response = client.post("/login", data={"username": user.username, "password": password})
    assert response.status_code == 302, response.get_data(as_text=True)
    return response


def post_context(**overrides):
    """A channel PostContext for an S1 Investigating update; tests override what they check."""
    from cmoc.channels import PostContext

    values = dict(update_id=1, incident_id=1, title="Elevated error rates",
                  text="We're seeing errors", state="investigating",
                  status="service_disruption", severity="S1", components=(),
                  issue_url="https://gitlab.com/i/1", status_page_url="https://status.gitlab.com")
    return PostContext(**{**values, **overrides})


CHANNELS = ["statusio", "twitter", "slack"]


def fake_issue(fakes, title: str = "Elevated error rates on GitLab.com") -> str:
    """An incident issue opened on the fake GitLab; its URL is what the incident links to."""
    from cmoc.fake_apis.gitlab import INCIDENT_PROJECT

    return fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title=title)["web_url"]


def issue_notes(fakes) -> list[dict]:
    """Every comment made on the fake GitLab's issues, oldest first."""
    return sorted((n for notes in fakes.gitlab_api.notes.values() for n in notes),
                  key=lambda n: n["id"])


def publish(client, incident, *, state="investigating", template=None, key=None,
            channels=CHANNELS, **variables):
    """Publishes through the drafting form, as a CMOC's click would."""
    data = {"action": "publish", "state": state, "template": template or state,
            "channels": channels, "channels_shown": "1", "idempotency_key": key or "",
            **{f"var_{k}": v for k, v in variables.items()}}
    return client.post(f"/incidents/{incident.id}/updates/new", data=data)


def deliveries(update_id=None) -> dict:
    """The deliveries (of one update, or the last of each channel), fresh from the database."""
    from sqlalchemy import select

    from cmoc.models import Delivery

    db.session.expire_all()
    query = select(Delivery)
    if update_id:
        query = query.where(Delivery.update_id == update_id)
    return {d.channel: d for d in db.session.scalars(query.order_by(Delivery.id))}
