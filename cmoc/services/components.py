"""The component catalogue: status.io's real components when fetched, else the config list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, select

from cmoc.channels.registry import configured_channels
from cmoc.channels.statusio import StatusIO
from cmoc.extensions import db
from cmoc.models import StatusioComponent, User
from cmoc.services.audit import record


def component_catalog(config: dict[str, Any]) -> list[dict[str, Any]]:
    """[{name, id, containers: [container ids]}], from the status.io cache when it has rows."""
    cached = db.session.scalars(
        select(StatusioComponent).order_by(StatusioComponent.position, StatusioComponent.name)
    ).all()
    if cached:
        return [{"name": c.name, "id": c.id, "containers": [x["id"] for x in c.containers]}
                for c in cached]
    return [{"name": c["name"], "id": c.get("id"), "containers": list(c.get("containers") or [])}
            for c in config["COMPONENTS"]]


def components_without_ids(names: list[str], config: dict[str, Any]) -> list[str]:
    """Of these components, those status.io cannot be told about (no component id or no
    container), when status.io is configured; none otherwise (dry-run sends nothing)."""
    if not configured_channels(config)["statusio"]:
        return []
    known = {c["name"]: c for c in component_catalog(config)}
    return [name for name in names
            if not (known.get(name, {}).get("id") and known.get(name, {}).get("containers"))]


def components_fetched_at() -> datetime | None:
    return db.session.scalar(select(StatusioComponent.fetched_at).limit(1))


def refresh_components(*, statusio: StatusIO, now: datetime,
                       actor: User | None = None) -> tuple[int, str | None]:
    """Replaces the cache with status.io's component/list; (count, error). Keeps it on error."""
    if not statusio.configured:
        return 0, "status.io is not configured (STATUSIO_API_ID, _KEY, _STATUSPAGE_ID)."
    components, error = statusio.list_components()
    if error:
        return 0, error
    before = [c["name"] for c in component_catalog({"COMPONENTS": []})]
    db.session.execute(delete(StatusioComponent))
    for item in components:
        db.session.add(StatusioComponent(
            id=item["id"], name=item["name"], position=item["position"],
            containers=item["containers"], fetched_at=now))
    after = [c["name"] for c in components]
    if after != before:
        record("components.refresh", actor=actor, actor_name=None if actor else "clock",
               now=now, before={"components": before}, after={"components": after})
    db.session.commit()
    return len(components), None


def ensure_components(*, statusio: StatusIO, now: datetime) -> None:
    """Fetches status.io's components once when it is configured and nothing is cached yet."""
    if statusio.configured and components_fetched_at() is None:
        refresh_components(statusio=statusio, now=now)
