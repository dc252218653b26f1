"""Who is writing an incident's update right now: the drafting page sends a heartbeat, and a
saved draft counts too. While the incident's CMOC is drafting, the heads-up (and the first
update's due reminder) wait — they would only interrupt the person already doing it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, union, update
from sqlalchemy.exc import IntegrityError

from cmoc.enums import UpdatePhase
from cmoc.extensions import db
from cmoc.models import DraftPresence, Incident, Update, User

# A heartbeat or a save this recent means the form is open (the page beats every 20 s).
DRAFTING_WINDOW = timedelta(seconds=60)


def heartbeat(*, incident: Incident, user: User, now: datetime, gone: bool = False) -> None:
    """Records that `user` has a drafting form of `incident` open; `gone` when they left it."""
    where = (DraftPresence.incident_id == incident.id, DraftPresence.user_id == user.id)
    if gone:
        db.session.execute(delete(DraftPresence).where(*where))
        db.session.commit()
        return
    if db.session.execute(update(DraftPresence).where(*where).values(seen_at=now)).rowcount:
        db.session.commit()
        return
    db.session.add(DraftPresence(incident_id=incident.id, user_id=user.id, seen_at=now))
    try:
        db.session.commit()
    except IntegrityError:
        # Another tab of the same person inserted first: its row is ours too.
        db.session.rollback()
        db.session.execute(update(DraftPresence).where(*where).values(seen_at=now))
        db.session.commit()


def drafting_now(*, incident_ids: list[int], now: datetime,
                 window: timedelta = DRAFTING_WINDOW) -> set[int]:
    """The incidents whose own CMOC (else the declarer) has a draft open or saved within the
    window. Anyone else drafting does not hold back the CMOC's reminders."""
    if not incident_ids:
        return set()
    since = now - window
    owner = func.coalesce(Incident.cmoc_id, Incident.declared_by_id)
    beating = (select(DraftPresence.incident_id)
               .join(Incident, Incident.id == DraftPresence.incident_id)
               .where(DraftPresence.incident_id.in_(incident_ids),
                      DraftPresence.seen_at >= since, DraftPresence.user_id == owner))
    saved = (select(Update.incident_id)
             .join(Incident, Incident.id == Update.incident_id)
             .where(Update.incident_id.in_(incident_ids),
                    Update.phase == UpdatePhase.DRAFT.value, Update.updated_at >= since,
                    Update.author_id == owner))
    return set(db.session.scalars(union(beating, saved)))
