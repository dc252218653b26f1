"""The `cmoc` command: Flask's CLI on the app factory, plus cmoc's own commands."""

from __future__ import annotations

import os
import sys

import click
from flask import Flask
from flask.cli import AppGroup, FlaskGroup, with_appcontext

from cmoc.enums import Role


def register_commands(app: Flask) -> None:
    from cmoc.cli_tokens import tokens_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(clock_command)
    app.cli.add_command(resume_deliveries_command)
    app.cli.add_command(send_reminders_command)
    app.cli.add_command(refresh_components_command)
    app.cli.add_command(fake_apis_command)
    app.cli.add_command(sandbox_command)
    app.cli.add_command(send_notices_command)
    app.cli.add_command(check_live_pages_command)
    app.cli.add_command(handover_command)
    app.cli.add_command(follow_oncall_command)
    app.cli.add_command(fold_metrics_command)


users_cli = AppGroup("users", help="Manage local accounts.")


@users_cli.command("create")
@click.argument("name")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def create_user_command(name: str, role: str, password_stdin: bool) -> None:
    """Create a local account NAME with ROLE."""
    from cmoc.services import ValidationError
    from cmoc.services.users import create_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user = create_user(username=name, password=password, role=role)
    except ValidationError as exc:
        for message in exc.errors.values():
            click.echo(f"error: {message}", err=True)
        sys.exit(1)
    click.echo(f"created {user.username} ({user.role})")


def _create_app() -> Flask:
    from cmoc import create_app

    app = create_app()
    # SQLite lives in the instance folder; make sure it exists before anything opens it.
    os.makedirs(app.instance_path, exist_ok=True)
    return app


# honcho (make run) already loads .env; Flask's own dotenv hint would only add noise.
main = FlaskGroup(create_app=_create_app, load_dotenv=False,
                  help="cmoc: draft, remind and publish incident updates.")


@click.command("clock")
@with_appcontext
def clock_command() -> None:
    """Run the clock process (reminders, delivery recovery, component refresh)."""
    import logging

    from flask import current_app

    from cmoc.clock import run_clock

    logging.basicConfig(level=logging.INFO, format="%(asctime)s clock %(levelname)s %(message)s")
    # APScheduler logs every run at INFO; the jobs log what they did themselves.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    run_clock(current_app._get_current_object())


@click.command("send-reminders")
@with_appcontext
def send_reminders_command() -> None:
    """One pass: send the reminders and escalations that are due."""
    from flask import current_app

    from cmoc.services.reminders import send_reminders
    from cmoc.timeutil import utcnow

    counts = send_reminders(current_app._get_current_object(), now=utcnow())
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("resume-deliveries")
@with_appcontext
def resume_deliveries_command() -> None:
    """One pass over every lane with work: expired leases, due retries and look-ups, queued
    or waiting deliveries."""
    from flask import current_app

    from cmoc.services.delivering import resume_deliveries

    counts = resume_deliveries(current_app._get_current_object())
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("fold-metrics")
@with_appcontext
def fold_metrics_command() -> None:
    """Folds the /metrics deltas appended by the triggers into the totals (the clock does
    this every 15 s)."""
    from cmoc.services.metric_counters import fold

    click.echo(f"folded={fold()}")


@click.command("send-notices")
@with_appcontext
def send_notices_command() -> None:
    """One pass: queue what published updates call for (stakeholder messages, the GitLab
    label), send queued notices (e.g. the post-mortem link) and retry due ones."""
    from flask import current_app

    from cmoc.services.stakeholders import notices_pass
    from cmoc.timeutil import utcnow

    counts = notices_pass(current_app._get_current_object(), now=utcnow())
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@click.command("follow-oncall")
@with_appcontext
def follow_oncall_command() -> None:
    """One pass: ask PagerDuty who is on call for the CMOC schedule and hand the incidents of
    an off-call CMOC to them (nothing without PAGERDUTY_API_TOKEN/PAGERDUTY_CMOC_SCHEDULE_ID)."""
    from flask import current_app

    from cmoc.services.oncall import follow_oncall
    from cmoc.timeutil import utcnow

    result = follow_oncall(current_app._get_current_object(), now=utcnow())
    click.echo(" ".join(f"{k}={v}" for k, v in result.items()))
    if result.get("error"):
        raise SystemExit(1)


@click.command("handover")
@click.option("--shift", type=click.Choice(["current", "previous"]), default="previous",
              show_default=True, help="The shift in progress, or the one that ended last.")
@click.option("--at", "at", default=None, help="A UTC time in the shift (ISO 8601) instead.")
@with_appcontext
def handover_command(shift: str, at: str | None) -> None:
    """Write the shift's handover issue in GITLAB_HANDOVER_PROJECT (once per shift: a second
    run finds the issue)."""
    from datetime import UTC, datetime

    from flask import current_app

    from cmoc.gitlab_settings import handover_settings
    from cmoc.services.handover import previous_shift, shift_at, write_handover
    from cmoc.timeutil import utcnow

    now = utcnow()
    starts = handover_settings(current_app.config).shift_starts
    if at:
        moment = datetime.fromisoformat(at.replace("Z", "+00:00"))
        start, end = shift_at(moment if moment.tzinfo else moment.replace(tzinfo=UTC), starts)
    else:
        start, end = (shift_at if shift == "current" else previous_shift)(now, starts)
    row = write_handover(config=current_app.config, start=start, end=end, now=now, via="cli")
    click.echo(f"{row.title}: {row.status} {row.issue_url or row.error or ''}".rstrip())
    if row.status == "dry_run":
        click.echo(row.body)
    sys.exit(0 if row.status in ("sent", "dry_run") else 1)


@click.command("check-live-pages")
@with_appcontext
def check_live_pages_command() -> None:
    """Read back from status.io every recently resolved incident not checked yet."""
    from flask import current_app

    from cmoc.services.aftercare import run_live_checks
    from cmoc.timeutil import utcnow

    click.echo(f"checked={run_live_checks(current_app._get_current_object(), now=utcnow())}")


@click.command("refresh-components")
@with_appcontext
def refresh_components_command() -> None:
    """Reload the component list from status.io."""
    from flask import current_app

    from cmoc.services.components import refresh_components
    from cmoc.services.delivering import statusio_for
    from cmoc.timeutil import utcnow

    count, error = refresh_components(statusio=statusio_for(current_app),
                                      now=utcnow())
    if error:
        click.echo(f"error: {error}", err=True)
        sys.exit(1)
    click.echo(f"loaded {count} components")


@click.command("sandbox")
@click.option("--port", type=int, default=None, help="Default: sandbox_port (5050).")
@click.option("--state", "state_path", type=click.Path(dir_okay=False), default=None,
              help="Where the sandbox keeps its state (default: the instance folder).")
@with_appcontext
def sandbox_command(port: int | None, state_path: str | None) -> None:
    """Serve the sandbox: cmoc's simulated status.io, X and Slack, for channels without
    credentials (point CMOC_SANDBOX_URL at it; `make run` does)."""
    from pathlib import Path

    from flask import current_app

    from cmoc.fake_apis import FakeApis

    config = current_app.config
    # The sandbox's status page has the components cmoc offers, each on one container.
    components = [(c["name"], ["Production"]) for c in config["COMPONENTS"]]
    path = Path(state_path or Path(current_app.instance_path) / "sandbox.json")
    sandbox = FakeApis(port=port or int(config.get("SANDBOX_PORT", 5050)),
                       components=components, sandbox=True, state_path=path,
                       keep_requests=1000)
    # Its GitLab tells cmoc of incident issues, as a project webhook would.
    from cmoc.fake_apis.gitlab import INCIDENT_PROJECT
    from cmoc.gitlab_settings import sandbox_webhook_secret

    sandbox.gitlab_api.hooks.add(
        INCIDENT_PROJECT, url=f"{str(config['BASE_URL']).rstrip('/')}/hooks/gitlab",
        token=config.get("GITLAB_WEBHOOK_SECRET")
        or sandbox_webhook_secret(str(config.get("SECRET_KEY") or "")))
    click.echo(f"sandbox on {sandbox.url} (state in {path}); channels without credentials "
               f"post here when CMOC_SANDBOX_URL={sandbox.url}")
    sandbox.serve_forever()


@click.command("fake-apis")
@click.option("--port", default=5050, show_default=True)
@click.option("--latency", default=0.0, show_default=True, help="Seconds added to each answer.")
def fake_apis_command(port: int, latency: float) -> None:
    """Serve fake status.io, X and Slack APIs on 127.0.0.1 for local trials."""
    from cmoc.fake_apis import FakeApis

    fakes = FakeApis(port=port, latency={"statusio": latency, "twitter": latency,
                                         "slack": latency, "gitlab": latency})
    click.echo(f"fake APIs on {fakes.url}: STATUSIO_API_URL={fakes.url}/statusio/v2 "
               f"TWITTER_API_URL={fakes.url}/twitter SLACK_API_URL={fakes.url}/slack/api "
               f"GITLAB_URL={fakes.url}/gitlab")
    fakes.serve_forever()
