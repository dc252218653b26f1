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
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
