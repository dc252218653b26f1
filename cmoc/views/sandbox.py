"""The Sandbox page: what cmoc's simulated status page, X account and Slack hold, and the
failures a CMOC in training can make them answer with."""

from __future__ import annotations

from flask import current_app, flash, redirect, render_template, request, url_for

from cmoc.auth import role_required
from cmoc.enums import CHANNEL_LABELS, CHANNELS, Role
from cmoc.fake_apis.sandbox import FAULT_KINDS
from cmoc.modes import channel_modes
from cmoc.services.sandbox import (
    SandboxUnavailable,
    clear_faults,
    inject_fault,
    reset,
    sandbox_view,
    slack_markup,
)
from cmoc.views import bp


@bp.get("/sandbox")
def sandbox():
    config = current_app.config
    try:
        view, problem = sandbox_view(config), None
    except SandboxUnavailable as exc:
        view, problem = None, str(exc)
    return render_template("sandbox.html", view=view, problem=problem,
                           modes=channel_modes(config), fault_kinds=FAULT_KINDS,
                           channels=CHANNELS, labels=CHANNEL_LABELS, slack_markup=slack_markup)


def _ask_sandbox(call, done: str):
    """Calls the sandbox's control API; says what happened (or that it is unreachable) and
    goes back to the Sandbox page."""
    try:
        call()
    except SandboxUnavailable as exc:
        flash(str(exc), "error")
    else:
        flash(done, "success")
    return redirect(url_for("web.sandbox"))


@bp.post("/sandbox/faults")
@role_required(Role.CMOC)
def sandbox_fault():
    channel, kind = request.form.get("channel", ""), request.form.get("kind", "")
    times = request.form.get("times", "1")
    if channel not in CHANNELS or kind not in FAULT_KINDS or times not in ("1", "2", "3"):
        flash("Choose a channel, a failure and how many times (1–3).", "error")
        return redirect(url_for("web.sandbox"))
    return _ask_sandbox(
        lambda: inject_fault(current_app.config, channel=channel, kind=kind, times=int(times)),
        f"The sandbox's {CHANNEL_LABELS[channel]} will answer the next {times} post(s) "
        f"with: {FAULT_KINDS[kind][0]}.")


@bp.post("/sandbox/faults/clear")
@role_required(Role.CMOC)
def sandbox_clear_faults():
    return _ask_sandbox(lambda: clear_faults(current_app.config),
                        "No failures pending: the sandbox answers normally again.")


@bp.post("/sandbox/reset")
@role_required(Role.ADMIN)
def sandbox_reset():
    return _ask_sandbox(lambda: reset(current_app.config),
                        "The sandbox was emptied. Incidents already posted to it can no longer "
                        "be updated there: declare new ones to practise.")
