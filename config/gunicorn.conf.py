"""gunicorn settings for the web process (Procfile `web:`)."""

import os

bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '5000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads keep slow channel calls from blocking the dashboard.
threads = int(os.environ.get("WEB_THREADS", "4"))
worker_class = "gthread"
timeout = 60
graceful_timeout = 30
accesslog = "-"
# The access log redacts credential-like query parameters (`?access_token=...`): cmoc refuses
# tokens there, but would otherwise still write them to the log.
logger_class = "cmoc.access_log.RedactingLogger"
errorlog = "-"
# gunicorn trusts no X-Forwarded-* header itself (it never resolves X-Forwarded-For anyway):
# the app applies them, for CMOC_TRUSTED_PROXIES hops only (Werkzeug's ProxyFix), so one
# setting decides the client's address and scheme for throttling, audit and /metrics.
forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
