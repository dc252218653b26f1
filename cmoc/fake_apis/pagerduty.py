"""Fake PagerDuty REST API v2: `GET /oncalls` for the CMOC schedule, as PagerDuty documents it.

Requests need `Authorization: Token token=<PAGERDUTY_TOKEN>` (else 401 with PagerDuty's error
object). `schedule_ids[]` filters, `include[]=users` embeds the user (with `email`), `since`/
`until` (default: now) pick the shifts that overlap, `earliest=true` keeps the earliest per
escalation level; classic `limit`/`offset`/`more` pagination. The shifts come from `shifts`
(tests and the sandbox set them) and the simulated clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from cmoc.fake_apis.wire import Clock, answer, iso, real_now

PAGERDUTY_TOKEN = "u+fake-pagerduty-token"
CMOC_SCHEDULE = "PCMOC01"


@dataclass
class Shift:
    schedule_id: str
    user_id: str
    name: str
    email: str
    start: datetime
    end: datetime


class FakePagerDuty:
    def __init__(self, lock, clock: Clock = real_now):
        self.lock = lock
        self.clock = clock
        self.shifts: list[Shift] = []

    def put_on_call(self, *, user_id: str, name: str, email: str, start: datetime,
                    end: datetime, schedule_id: str = CMOC_SCHEDULE) -> None:
        with self.lock:
            self.shifts.append(Shift(schedule_id, user_id, name, email, start, end))

    def handle(self, request: Request, path: str, body: Any) -> Response:
        if request.headers.get("Authorization") != f"Token token={PAGERDUTY_TOKEN}":
            return answer(401, {"error": {"message": "Unauthorized", "code": 2006}})
        if path.strip("/") != "oncalls" or request.method != "GET":
            return answer(404, {"error": {"message": "Not Found", "code": 2100}})
        return self._oncalls(request)

    def _oncalls(self, request: Request) -> Response:
        args = request.args
        now = self.clock()
        try:
            since = datetime.fromisoformat(args["since"]) if "since" in args else now
            until = datetime.fromisoformat(args["until"]) if "until" in args else since
            limit = min(int(args.get("limit", 25)), 100)
            offset = int(args.get("offset", 0))
        except ValueError:
            return answer(400, {"error": {"message": "Invalid Input Provided", "code": 2001}})
        schedules = set(args.getlist("schedule_ids[]"))
        with self.lock:
            rows = [s for s in self.shifts if (not schedules or s.schedule_id in schedules)
                    and s.start <= until and s.end > since]
        rows.sort(key=lambda s: s.start)
        if args.get("earliest") == "true":
            rows = rows[:1]
        users = "users" in args.getlist("include[]")
        page = rows[offset:offset + limit]
        return answer(200, {
            "oncalls": [self._row(s, users) for s in page],
            "limit": limit, "offset": offset, "more": offset + limit < len(rows),
            "total": None})

    @staticmethod
    def _row(shift: Shift, with_user: bool) -> dict[str, Any]:
        user = {"id": shift.user_id, "type": "user_reference", "summary": shift.name,
                "self": f"https://api.pagerduty.com/users/{shift.user_id}"}
        if with_user:
            user.update(type="user", name=shift.name, email=shift.email)
        return {
            "escalation_policy": {"id": "PCMOCEP", "type": "escalation_policy_reference",
                                  "summary": "Incident Management - CMOC"},
            "escalation_level": 1,
            "schedule": {"id": shift.schedule_id, "type": "schedule_reference",
                         "summary": "Incident Management - CMOC"},
            "user": user, "start": iso(shift.start), "end": iso(shift.end),
        }
