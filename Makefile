# The two commands: `make run` (web + clock + sandbox on SQLite) and `make test`.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 5000
HOST ?= 127.0.0.1
# The built-in sandbox: channels without credentials post to it (see README, "Sandbox").
SANDBOX_PORT ?= 5050
SANDBOX_URL ?= http://127.0.0.1:$(SANDBOX_PORT)

.PHONY: run test install install-test browser lint bench migrate clean

$(VENV)/bin/python:
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(VENV)/bin/python
	$(PY) -m pip install -q -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# A random SECRET_KEY for local runs; honcho reads .env. Real deployments set it in the env.
.env:
	@$(PY) -c 'import secrets; print("SECRET_KEY=" + secrets.token_hex(32))' > .env
	@echo "wrote .env with a fresh SECRET_KEY"

run: install .env
	$(VENV)/bin/honcho run $(VENV)/bin/cmoc db upgrade
	@echo "cmoc on http://$(HOST):$(PORT)  (web + clock + sandbox at $(SANDBOX_URL); Ctrl-C stops all)"
	HOST=$(HOST) CMOC_SANDBOX_URL=$(SANDBOX_URL) CMOC_SANDBOX_PORT=$(SANDBOX_PORT) \
	  PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho start -p $(PORT) web clock sandbox

# Debian's chromium for the browser tests (Playwright cannot download its own browser here).
browser:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: install Debian's chromium package for the browser tests" >&2; fi; \
	fi

# The template check (every message template with typical and edge inputs) runs first: it is
# quick and names the template, case and channel of any wording fault.
test: install-test browser
	$(PY) -m cmoc.template_check
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install-test
	$(VENV)/bin/ruff check cmoc tests bench

# Benchmarks print their figures; results are kept in docs/benchmarks.md. The scale and
# PostgreSQL runs use BENCH_DATABASE_URL (its public schema is reset).
BENCH_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/cmoc_bench
BENCH_METRICS_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/cmoc_bench_metrics
bench: install-test browser
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; }
	@# The benchmark databases (their public schema is reset by each run).
	@for url in $(BENCH_DATABASE_URL) $(BENCH_METRICS_DATABASE_URL); do \
	  name=$${url##*/}; psql "$${url%/*}/postgres" -tAc "select 1 from pg_database where datname='$$name'" \
	    | grep -q 1 || psql "$${url%/*}/postgres" -qc "create database $$name"; done
	$(PY) -m bench.fanout
	$(PY) -m bench.web
	$(PY) -m bench.keystroke
	$(PY) -m bench.watchers
	$(PY) -m bench.crash
	$(PY) -m bench.reminders
	$(PY) -m bench.reminders --database-url $(BENCH_DATABASE_URL)
	$(PY) -m bench.scale --database-url $(BENCH_DATABASE_URL)
	$(PY) -m bench.gitlab_hook
	$(PY) -m bench.gitlab_hook --database-url $(BENCH_DATABASE_URL)
	$(PY) -m bench.metrics
	$(PY) -m bench.metrics --database-url $(BENCH_METRICS_DATABASE_URL)
	# The 50-client load test (issue 16, target 6) prints its page p50/p99.
	$(PY) -m pytest -q -s tests/reliability/test_load.py -k sqlite

migrate: install .env
	$(VENV)/bin/honcho run $(VENV)/bin/cmoc db migrate -m "$(m)"

clean:
	rm -rf $(VENV) instance .pytest_cache
