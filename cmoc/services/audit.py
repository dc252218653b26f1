"""The audit trail: every change recorded with actor, time, source address, before and after.

`record` adds the entry to the current transaction, so the change and its audit entry are
committed together or not at all. Entries are never updated or deleted (enforced below for
every database, and by a trigger on PostgreSQL).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import has_request_context, request
from sqlalchemy import Select, event, select

from cmoc.csvexport import csv_text
from cmoc.extensions import db
from cmoc.models import AuditEntry, User
from cmoc.timeutil import utcnow


def source_ip() -> str | None:
    # The real client's: ProxyFix resolved X-Forwarded-For for CMOC_TRUSTED_PROXIES hops.
    return request.remote_addr if has_request_context() else None


def _via() -> str:
    if not has_request_context():
        return "cli"
    return "api" if request.path.startswith("/api/") else "web"


def record(action: str, *, actor: User | None, target: Any = None,
           before: dict | None = None, after: dict | None = None,
           actor_name: str | None = None, now: datetime | None = None) -> AuditEntry:
    """Adds an audit entry to the session (committed with the change it describes)."""
    target_type = target_id = None
    if target is not None:
        target_type = type(target).__name__.lower()
        target_id = str(getattr(target, "id", None) or target)
    entry = AuditEntry(
        at=now or utcnow(), actor_id=getattr(actor, "id", None),
        actor_name=actor_name or getattr(actor, "username", None), action=action,
        target_type=target_type, target_id=target_id, ip=source_ip(), via=_via(),
        before=_jsonable(before), after=_jsonable(after))
    db.session.add(entry)
    return entry


def record_now(action: str, **kwargs) -> AuditEntry:
    """Records and commits at once (for events with no other change: logins, refusals)."""
    entry = record(action, **kwargs)
    db.session.commit()
    return entry


def _jsonable(value: dict | None) -> dict | None:
    if value is None:
        return None
    out = {}
    for key, item in value.items():
        if isinstance(item, datetime):
            item = item.isoformat()
        elif isinstance(item, set | tuple):
            item = sorted(item)
        out[key] = item
    return out


def snapshot(obj: Any, fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: getattr(obj, f) for f in fields}


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor: str = ""
    target: str = ""
    since: datetime | None = None
    until: datetime | None = None


def query_audit(f: AuditFilter, *, limit: int = 500) -> list[AuditEntry]:
    q = audit_query(f).order_by(AuditEntry.id.desc())
    return list(db.session.scalars(q.limit(limit)))


def audit_query(f: AuditFilter) -> Select:
    """The entries matching the filter (unordered)."""
    q = select(AuditEntry)
    if f.action:
        q = q.where(AuditEntry.action.like(f"{f.action}%"))
    if f.actor:
        q = q.where(AuditEntry.actor_name == f.actor)
    if f.target:
        kind, _, ident = f.target.partition(":")
        q = q.where(AuditEntry.target_type == kind)
        if ident:
            q = q.where(AuditEntry.target_id == ident)
    if f.since:
        q = q.where(AuditEntry.at >= f.since)
    if f.until:
        q = q.where(AuditEntry.at < f.until)
    return q


def audit_csv(entries: list[AuditEntry]) -> str:
    def as_json(value) -> str:
        return json.dumps(value, sort_keys=True, default=str) if value is not None else ""

    return csv_text(
        ["id", "at", "actor", "action", "target_type", "target_id", "ip", "via", "before",
         "after"],
        ([e.id, e.at.isoformat(), e.actor_name or "", e.action, e.target_type or "",
          e.target_id or "", e.ip or "", e.via, as_json(e.before), as_json(e.after)]
         for e in entries))


class AppendOnlyError(RuntimeError):
    pass


@event.listens_for(AuditEntry, "before_update")
def _no_update(mapper, connection, target) -> None:
    raise AppendOnlyError("audit entries are append-only")


@event.listens_for(AuditEntry, "before_delete")
def _no_delete(mapper, connection, target) -> None:
    raise AppendOnlyError("audit entries are append-only")


def config_fingerprint(paths: list[Path]) -> dict[str, str]:
    """SHA-256 of each configuration and message-template file, by path."""
    files = {}
    for path in paths:
        candidates = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in candidates:
            if file.exists():
                files[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return files


def record_config_change(*, paths: list[Path], now: datetime) -> AuditEntry | None:
    """Audits a change of configuration or templates since the last recorded fingerprint
    (they are files, changed by deploys rather than in the app)."""
    current = config_fingerprint(paths)
    last = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "config.change")
                             .order_by(AuditEntry.id.desc()).limit(1))
    previous = (last.after or {}).get("files", {}) if last else {}
    if previous == current:
        return None
    changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
    entry = record("config.change", actor=None, actor_name="deploy", now=now,
                   before={"files": previous, "changed": changed}, after={"files": current})
    db.session.commit()
    return entry
