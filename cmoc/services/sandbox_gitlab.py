"""The sandbox's GitLab, for the Sandbox page: its incident issues (labels, cmoc's comments,
webhook deliveries), and playing the incident manager — open an incident issue, mark it
mitigated or resolved — so a new CMOC sees cmoc follow the issue without a real GitLab."""

from __future__ import annotations

from typing import Any

import requests

from cmoc.gitlab_settings import gitlab_settings
from cmoc.services.sandbox import TIMEOUT, SandboxUnavailable

STATE_LABELS = ("Incident::Mitigated", "Incident::Resolved", "severity::1", "severity::2")


def _call(config: dict[str, Any], method: str, path: str, **kwargs) -> dict[str, Any]:
    base = str(config.get("SANDBOX_URL") or "").rstrip("/")
    if not base or not gitlab_settings(config).sandboxed:
        raise SandboxUnavailable("GitLab is not simulated here (GITLAB_TOKEN is set, or no "
                                 "sandbox).")
    try:
        response = requests.request(method, f"{base}/_sandbox/{path}", timeout=TIMEOUT,
                                    **kwargs)
    except requests.RequestException as exc:
        raise SandboxUnavailable(f"The sandbox does not answer ({type(exc).__name__}).") from None
    if response.status_code >= 400:
        raise SandboxUnavailable(f"The sandbox refused it: {response.text[:200]}")
    return response.json()


def gitlab_view(config: dict[str, Any]) -> dict[str, Any] | None:
    """The sandbox GitLab's issues, or None when GitLab is not simulated or not reachable."""
    try:
        return _call(config, "GET", "gitlab")
    except SandboxUnavailable:
        return None


def open_incident_issue(config: dict[str, Any], *, title: str, severity: str) -> dict:
    return _call(config, "POST", "gitlab/issues", json={"title": title, "severity": severity})


def add_label(config: dict[str, Any], *, iid: int, label: str) -> dict:
    if label not in STATE_LABELS:
        raise SandboxUnavailable(f"Unknown label {label}.")
    return _call(config, "POST", "gitlab/labels", json={"iid": iid, "add": label})
