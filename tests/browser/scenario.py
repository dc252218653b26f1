"""A busy on-call afternoon for the console tests: several incidents, published updates with
deliveries, reminders, a saved draft, long titles and many components (phone layouts break on
exactly this kind of data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select

from cmoc.extensions import db
from cmoc.models import Incident, Reminder, Update
from cmoc.services.components import refresh_components
from cmoc.services.delivering import statusio_for
from cmoc.timeutil import utcnow
from tests.factories import login, make_incident, make_user

LONG_TITLE = "Elevated error rates and slow page loads on GitLab.com for users in Europe and Asia"
MANY = ["Website", "API", "Git Operations", "Container Registry",
        "CI/CD - Hosted runners on Linux"]


@dataclass
class Scenario:
    main: int        # S1 with three published updates, reminders and an escalation
    overdue: int     # S3, overdue
    drafted: int     # S2 with a saved draft waiting
    quiet: int       # S4, due later


def publish(client, incident_id: int, state: str, **variables) -> None:
    data = {"action": "publish", "state": state, "template": state,
            "channels": ["statusio", "twitter", "slack"], "channels_shown": "1",
            **{f"var_{k}": v for k, v in variables.items()}}
    response = client.post(f"/incidents/{incident_id}/updates/new", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:2000]


def seed(app) -> Scenario:
    """Fills the app's database; publishes through the real drafting form."""
    now = utcnow()
    csrf = app.config.get("WTF_CSRF_ENABLED", True)
    app.config["WTF_CSRF_ENABLED"] = False  # the test client posts without a form token
    with app.app_context():
        make_user("ada", "admin")
        carol = make_user("carol", "cmoc")
        dave = make_user("dave", "cmoc")
        refresh_components(statusio=statusio_for(app), now=now)
        main = make_incident(carol, title=LONG_TITLE, components=MANY, cmoc_id=carol.id,
                             created_at=now - timedelta(minutes=40))
        client = app.test_client()
        login(client, carol)
        publish(client, main.id, "investigating",
                symptom="elevated error rates on GitLab.com — “quotes” & <tags>")
        publish(client, main.id, "identified", cause="a failing database replica")
        publish(client, main.id, "monitoring", fix="the replica was replaced")
        for kind, seq, status, minutes in (("due", 0, "sent", 30), ("escalation", 0, "dry_run", 25),
                                           ("repeat", 1, "dry_run", 20)):
            at = now - timedelta(minutes=minutes)
            db.session.add(Reminder(incident_id=main.id, due_at=now - timedelta(minutes=31),
                                    kind=kind, seq=seq, slot_at=at, status=status,
                                    target="#cmoc-reminders", created_at=at, updated_at=at,
                                    sent_at=at if status == "sent" else None))
        overdue = make_incident(dave, title="Slow CI pipelines", severity="S3",
                                status="degraded_performance", components=["API"],
                                cmoc_id=dave.id, next_update_due_at=now - timedelta(minutes=4),
                                last_published_at=now - timedelta(minutes=19))
        drafted = make_incident(carol, title="Container Registry pulls failing intermittently",
                                severity="S2", components=["Container Registry"],
                                cmoc_id=carol.id, next_update_due_at=now + timedelta(minutes=7))
        client.post(f"/incidents/{drafted.id}/updates/new", data={
            "action": "save", "state": "investigating", "template": "investigating",
            "var_symptom": "failing container image pulls"})
        quiet = make_incident(dave, title="Docs search is slow", severity="S4",
                              status="degraded_performance", components=["Website"],
                              cmoc_id=None, next_update_due_at=now + timedelta(minutes=50))
        db.session.commit()
        assert db.session.scalar(select(Update).where(Update.incident_id == drafted.id))
        ids = Scenario(main.id, overdue.id, drafted.id, quiet.id)
        assert all(db.session.get(Incident, i) for i in vars(ids).values())
        db.session.remove()
    app.config["WTF_CSRF_ENABLED"] = csrf
    return ids
