"""The drafting form's live preview: median and p90 of one POST /preview, in process, on SQLite.

    .venv/bin/python -m bench.preview [--requests 300]

Each request types a different symptom (as every keystroke does), so nothing is answered from
a cache of an earlier identical text. The preview renders every channel, checks each channel's
text (cmoc.texts) and counts the tweet with twitter-text, which is most of its cost.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from flask_migrate import upgrade

from cmoc import create_app
from cmoc.extensions import db
from cmoc.models import Incident, User

PASSWORD = "bench-password-1"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="cmoc-bench-preview-")
    app = create_app({"SECRET_KEY": "bench", "WTF_CSRF_ENABLED": False,
                      "DATABASE_URL": f"sqlite:///{workdir}/bench.sqlite3",
                      "INSTANCE_PATH": workdir})
    with app.app_context():
        upgrade()
        from werkzeug.security import generate_password_hash

        user = User(username="carol", role="cmoc", password_hash=generate_password_hash(PASSWORD))
        db.session.add(user)
        db.session.flush()
        incident = Incident(title="Elevated error rates", severity="S1", state="investigating",
                            status="service_disruption", components=["API"],
                            declared_by_id=user.id)
        db.session.add(incident)
        db.session.commit()
        client = app.test_client()
        client.post("/login", data={"username": "carol", "password": PASSWORD})
        url = f"/incidents/{incident.id}/preview"
        form = {"state": "investigating", "template": "investigating", "channels_shown": "1",
                "channels": ["statusio", "twitter", "slack"]}
        for n in range(20):
            client.post(url, data={**form, "var_symptom": f"warm-up {n}"})
        times = []
        for n in range(args.requests):
            started = time.perf_counter()
            response = client.post(url, data={**form, "var_symptom": f"elevated errors {n}"})
            times.append(time.perf_counter() - started)
            assert response.status_code == 200, response.status_code
    times.sort()
    print(f"preview: n={len(times)} p50={statistics.median(times) * 1000:.2f}ms "
          f"p90={times[int(0.9 * (len(times) - 1))] * 1000:.2f}ms")


if __name__ == "__main__":
    main()
