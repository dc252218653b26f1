"""A new severity::1 incident issue -> a cmoc incident and the CMOC's Slack ping: latency.

    .venv/bin/python -m bench.gitlab_hook [--database-url URL] [--issues 30]

The fake GitLab opens each issue and sends its webhook (as GitLab does) to cmoc served on
loopback; measured from the moment the issue is opened to (a) the incident row being visible
in the database and (b) the ping being in the fake Slack. Issues are opened one at a time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time

from flask_migrate import upgrade
from sqlalchemy import func, select, text
from werkzeug.serving import make_server

from cmoc import create_app
from cmoc.extensions import db
from cmoc.fake_apis import FakeApis
from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
from cmoc.models import Incident

SECRET = "bench-secret"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--issues", type=int, default=30)
    args = parser.parse_args()
    fakes = FakeApis().start()
    with tempfile.TemporaryDirectory() as workdir:
        url = args.database_url or f"sqlite:///{workdir}/bench.sqlite3"
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "INSTANCE_PATH": workdir,
                          **fakes.env(), "GITLAB_WEBHOOK_SECRET": SECRET,
                          "SLACK_REMINDER_CHANNEL": "#bench"})
        with app.app_context():
            if args.database_url:
                db.session.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
                db.session.commit()
            upgrade()
        server = make_server("127.0.0.1", 0, app, threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        fakes.gitlab_api.hooks.add(INCIDENT_PROJECT, token=SECRET,
                                   url=f"http://127.0.0.1:{server.server_port}/hooks/gitlab")
        incident_s, ping_s, answer_s = [], [], []
        for n in range(1, args.issues + 1):
            title = f"Bench incident {n}"
            start = time.perf_counter()
            fakes.gitlab_api.open_issue(INCIDENT_PROJECT, title=title,
                                        labels=["severity::1", "Service::API"])
            with app.app_context():
                while db.session.scalar(select(func.count(Incident.id))) < n:
                    db.session.rollback()
                    time.sleep(0.002)
                incident_s.append(time.perf_counter() - start)
                db.session.remove()
            while not any(title in (m["text"] or "") for m in fakes.slack_messages):
                time.sleep(0.002)
            ping_s.append(time.perf_counter() - start)
            fakes.gitlab_api.hooks.wait()
            delivery = fakes.gitlab_api.hooks.deliveries[-1]
            assert delivery.status == 200, delivery.error
            answer_s.append((delivery.answered_at - delivery.sent_at).total_seconds())
        server.shutdown()
    fakes.stop()
    backend = "PostgreSQL" if args.database_url else "SQLite"
    for name, values in (("webhook answered", answer_s), ("incident visible", incident_s),
                         ("Slack ping posted", ping_s)):
        values = sorted(values)
        p95 = values[max(0, round(0.95 * len(values)) - 1)]
        print(f"{backend} {name:18} p50 {statistics.median(values) * 1000:6.0f} ms  "
              f"p95 {p95 * 1000:6.0f} ms  max {values[-1] * 1000:6.0f} ms  (n={len(values)})")


if __name__ == "__main__":
    main()
