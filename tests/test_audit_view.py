"""The audit log page: changes as readable fields (no JSON, no \\u escapes), paged by id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cmoc.extensions import db
from cmoc.models import AuditEntry
from cmoc.services.audit import AuditFilter
from cmoc.services.audit_pages import audit_page
from cmoc.views.audit_diff import FieldChange, audit_changes, flatten, readable
from tests.factories import login, make_user

T = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)


def test_changed_fields_only_with_both_values():
    changes = audit_changes(
        {"title": "Errors", "severity": "S2", "components": ["API"]},
        {"title": "Errors on GitLab.com", "severity": "S2", "components": ["API", "Website"]})
    assert changes == [
        FieldChange("title", "changed", "Errors", "Errors on GitLab.com"),
        FieldChange("components", "changed", "API", "API, Website"),
    ]


def test_set_and_removed_fields_and_plain_values():
    changes = audit_changes({"slack_user_id": "U0123ABCD"},
                            {"active": False, "note": "", "tags": [], "channel": None})
    assert changes == [
        FieldChange("slack user id", "removed", "U0123ABCD", None),
        FieldChange("active", "set", None, "no"),
        FieldChange("note", "set", None, "(empty)"),
        FieldChange("tags", "set", None, "(none)"),
        FieldChange("channel", "set", None, "none"),
    ]
    assert audit_changes(None, None) == []


def test_nested_settings_become_dotted_names_and_text_stays_readable():
    assert flatten({"files": {"a.toml": "1", "b.toml": "2"}, "n": 3}) == {
        "files.a.toml": "1", "files.b.toml": "2", "n": 3}
    changes = audit_changes({"files": {"a.toml": "1", "b.toml": "2"}},
                            {"files": {"a.toml": "1", "b.toml": "9"}})
    assert changes == [FieldChange("files.b.toml", "changed", "2", "9")]
    assert readable("障害 “quoted” <b>") == "障害 “quoted” <b>"  # escaped by the template
    assert readable([{"id": "c1", "name": "API"}]) == '[{"id": "c1", "name": "API"}]'


def add_entries(count: int, *, action: str = "incident.edit") -> list[int]:
    ids = []
    for n in range(count):
        entry = AuditEntry(at=T + timedelta(seconds=n), actor_name="ada", action=action,
                           via="web", before={"title": f"old {n}"},
                           after={"title": f"新しい {n}"})
        db.session.add(entry)
        db.session.flush()
        ids.append(entry.id)
    db.session.commit()
    return ids


def test_pages_by_id_newest_first(app):
    ids = add_entries(7)
    add_entries(2, action="login")
    edits = AuditFilter(action="incident.edit")
    first = audit_page(edits, per_page=3)
    assert [e.id for e in first.entries] == ids[:-4:-1]
    assert (first.newer_than, first.older_than) == (None, ids[4])
    second = audit_page(edits, before=first.older_than, per_page=3)
    assert [e.id for e in second.entries] == [ids[3], ids[2], ids[1]]
    assert (second.newer_than, second.older_than) == (ids[3], ids[1])
    last = audit_page(edits, before=second.older_than, per_page=3)
    assert [e.id for e in last.entries] == [ids[0]] and last.older_than is None
    # Back from the last page: the three just newer, still newest first.
    back = audit_page(edits, after=last.entries[0].id, per_page=3)
    assert [e.id for e in back.entries] == [ids[3], ids[2], ids[1]]
    assert audit_page(AuditFilter(action="nothing")).entries == []


def test_audit_page_shows_fields_not_json(app, client):
    login(client, make_user("ada", "admin"))
    ids = add_entries(60)
    html = client.get("/admin/audit?action=incident.edit").get_data(as_text=True)
    assert "新しい 59" in html and "\\u" not in html and "{&#34;" not in html
    assert '<del>old 59</del> → <ins>新しい 59</ins>' in html
    assert f'id="audit-{ids[10]}"' in html and f'id="audit-{ids[9]}"' not in html  # 50 a page
    assert f"before={ids[10]}" in html and "action=incident.edit" in html
    older = client.get(f"/admin/audit?action=incident.edit&before={ids[10]}")
    assert f'id="audit-{ids[9]}"' in older.get_data(as_text=True)
    assert client.get("/admin/audit?before=x&after=-1").status_code == 200
