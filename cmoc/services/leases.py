"""Keeps the leases of the deliveries this process is working on alive.

A runner's lease says "someone is on it": the clock takes a delivery over only once its lease
has expired. Renewing it from a background thread while the runner is alive lets the lease be
short (seconds), so a delivery whose process died is resumed within seconds, while a slow but
living runner (a long look-up, a wait before an inline retry) is never doubled. The keeper
dies with its process: that is the point.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import and_, or_, update

from cmoc.extensions import db
from cmoc.models import Delivery

log = logging.getLogger(__name__)


class LeaseKeeper:
    """One per process: renews every held lease to now + lease, every lease / 3."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.held: dict[int, tuple[str, Callable[[], datetime], timedelta, Flask]] = {}
        self.thread: threading.Thread | None = None

    @contextmanager
    def holding(self, app: Flask, delivery_id: int, token: str, *, lease: timedelta,
                clock: Callable[[], datetime]):
        """Renews the lease `token` on `delivery_id` for as long as the block runs."""
        with self.lock:
            self.held[delivery_id] = (token, clock, lease, app)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="lease-keeper",
                                               daemon=True)
                self.thread.start()
        try:
            yield
        finally:
            with self.lock:
                if self.held.get(delivery_id, (None,))[0] == token:
                    del self.held[delivery_id]

    def _run(self) -> None:
        while True:
            with self.lock:
                held = dict(self.held)
            interval = 1.0
            if held:
                self.renew(held)
                interval = max(0.2, min(lease for _, _, lease, _ in held.values())
                               .total_seconds() / 3)
            time.sleep(interval)

    @staticmethod
    def renew(held: dict[int, tuple[str, Callable[[], datetime], timedelta, Flask]]) -> None:
        for delivery_id, (token, clock, lease, app) in held.items():
            try:
                with app.app_context():
                    until = clock() + lease
                    # Never shortens a lease (one kept across an inline wait may run longer).
                    db.session.execute(update(Delivery).where(
                        Delivery.id == delivery_id, Delivery.lease_token == token,
                        or_(Delivery.lease_until.is_(None),
                            and_(Delivery.lease_until < until))).values(lease_until=until))
                    db.session.commit()
                    db.session.remove()
            except Exception:  # a database hiccup must not kill the keeper
                log.exception("renewing the lease of delivery %s failed", delivery_id)


KEEPER = LeaseKeeper()
