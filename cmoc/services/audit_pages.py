"""Paging through the audit log, newest first, by entry id (keyset): a page stays the same
while new entries arrive, and a deep page costs no more than the first one."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import exists, select

from cmoc.extensions import db
from cmoc.models import AuditEntry
from cmoc.services.audit import AuditFilter, audit_query

PER_PAGE = 50


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]      # newest first
    newer_than: int | None         # "Newer" link: ?after=<this id>, when newer entries exist
    older_than: int | None         # "Older" link: ?before=<this id>, when older entries exist


def audit_page(f: AuditFilter, *, before: int | None = None, after: int | None = None,
               per_page: int = PER_PAGE) -> AuditPage:
    """The entries just older than `before`, or just newer than `after`, or the newest ones."""
    query = audit_query(f)
    if after is not None:
        rows = list(db.session.scalars(query.where(AuditEntry.id > after)
                                       .order_by(AuditEntry.id.asc()).limit(per_page)))
        rows.reverse()
    else:
        if before is not None:
            query = query.where(AuditEntry.id < before)
        rows = list(db.session.scalars(query.order_by(AuditEntry.id.desc()).limit(per_page)))
    if not rows:
        return AuditPage([], None, None)
    matching = audit_query(f).with_only_columns(AuditEntry.id)
    newer = db.session.scalar(select(exists(matching.where(AuditEntry.id > rows[0].id))))
    older = db.session.scalar(select(exists(matching.where(AuditEntry.id < rows[-1].id))))
    return AuditPage(rows, rows[0].id if newer else None, rows[-1].id if older else None)
