# Every target creates .venv and node_modules when they are missing (or their pins changed), so a fresh
# machine needs only `make synth` and `make test`. Node 22 and the CDK CLI come from node_modules/.bin,
# which is first on PATH: the machine's own Node 20 is end-of-life.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
# Python 3.13, the Lambda runtime's version (stacks/worker_code.py): the suite runs the worker on the Python it
# runs on in AWS, and Django 6 (examples/django_signup, jobstack.django) needs 3.12 or newer. Found on PATH or
# under pyenv (a pyenv shim that cannot run it is passed over); `make PYTHON=/path/to/python3.13` names another.
PYTHON ?= $(shell for p in $$(command -v python3.13) $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null); do $$p -c '' 2>/dev/null && echo $$p && break; done)
VENV := .venv
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true
# The suite starts hundreds of Python processes (pytest's workers, the CLI, the examples): with bytecode
# writing off (some machines set PYTHONDONTWRITEBYTECODE), each compiles this repository's modules and pytest
# rewrites every test module's asserts again. __pycache__ is ignored by git.
unexport PYTHONDONTWRITEBYTECODE
ENV ?= dev
STACK := JobsStack-$(ENV)
PYTEST := $(VENV)/bin/pytest

# $(call debian_package,BINARY,PACKAGE): install Debian's PACKAGE unless BINARY is there (root, or sudo; the
# package index is refreshed only if the first try fails), then fail in one line if it still is not.
define debian_package
	@test -x $(1) || { \
		SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(2) >/dev/null || \
		{ DEBIAN_FRONTEND=noninteractive $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(2) >/dev/null; }; }
	@test -x $(1) || { echo "make $@: no $(2) at $(1); install Debian's $(2) package" >&2; exit 1; }
endef

.PHONY: deps wheel local console synth deploy test docs check lint typecheck unit integration infra e2e migrate diff snapshot statements trip reliability bench pgbouncer browser zsh deploy-local destroy-local clean

deps: $(VENV)/.installed $(VENV)/bin/jobstack node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt worker/requirements.txt pyproject.toml
	@test -n "$(PYTHON)" || { echo "make: no Python 3.13 (the Lambda runtime's); install one (pyenv install 3.13) or run make PYTHON=/path/to/python3.13" >&2; exit 1; }
	@test ! -x $(VENV)/bin/python || $(VENV)/bin/python -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' || { echo "make: $(VENV) is not Python 3.13; making it again"; rm -rf $(VENV); }
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@$(VENV)/bin/pip uninstall --quiet --disable-pip-version-check -y jobstack 2>/dev/null || true  # the old distribution name
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --no-deps -e .  # `import jobstack` too
	@touch $@

# The CLI, `jobstack` (never `jobs`: a shell builtin of that name answers first once the venv is activated).
$(VENV)/bin/jobstack: $(VENV)/.installed
	@printf '#!/bin/sh\n# jobstack: this repository'"'"'s CLI (cli/), with its virtualenv.\nPYTHONPATH="%s$${PYTHONPATH:+:$$PYTHONPATH}" exec "%s/bin/python" -m cli "$$@"\n' "$(CURDIR)" "$(CURDIR)/$(VENV)" > $@
	@chmod +x $@
	@rm -f $(VENV)/bin/jobs  # the old name

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	@touch $@

# The wheel a web app installs (`pip install "dist/jobstack_sqs-0.1.0-py3-none-any.whl[web]"`): this checkout's
# db/, job types included, under the import name `jobstack`. Never `pip install jobstack`: that name on PyPI is
# another project.
wheel: deps
	rm -rf dist && $(VENV)/bin/pip wheel --quiet --disable-pip-version-check --no-deps -w dist .

# The README's "see it work": a fresh embedded SQLite database, 20 test-echo jobs (1 in 5 failing), the
# worker run locally until the queue drains, then the jobs and the DLQ.
# `make local TYPE=resize-image PAYLOAD='{"width": 200}'` runs one job of your own type the same way instead.
local: deps
	@mkdir -p .build && rm -f .build/local.sqlite3*
	$(VENV)/bin/jobstack local $(if $(TYPE),--publish '$(TYPE)' '$(or $(PAYLOAD),{})',--demo 20) --sqlite .build/local.sqlite3 --console

# Two lines of CDK's that say nothing to this project are dropped: "Supply a stack id ... to display its
# template" (--quiet displays none by design) and "N feature flags are not configured" (the flags stay at
# their defaults on purpose: setting them would change every deployed template; `make diff` shows any change).
synth: deps
	cdk synth --quiet 2>&1 | { grep -v -e '^Supply a stack id (' -e 'feature flags are not configured' || true; }

lint: deps
	ruff check .
	ruff format --check .

typecheck: deps
	mypy

check: lint typecheck

# `unit` and `infra` never need PostgreSQL (tests/conftest.py refuses a test of theirs that asks for it:
# it is an integration test), so every test runs in exactly one tier target as well as in `make test`.
unit: deps
	$(PYTEST) -m unit

integration: deps
	$(PYTEST) -m integration

infra: deps
	$(PYTEST) -m infra

e2e: deps browser
	$(PYTEST) -m e2e

# Chromium for the console's browser tests (tests/console/test_browser.py): Debian's package, installed when
# missing (root, or sudo), as pgbouncer is. Playwright drives it by path; it never downloads a browser.
CHROMIUM ?= $(shell command -v chromium || echo /usr/bin/chromium)
browser:
	$(call debian_package,$(CHROMIUM),chromium)

# zsh, for the test that runs the CLI the way a zsh user does (source the venv, then `jobstack`): Debian's
# package, installed when missing, as chromium is.
ZSH ?= $(shell command -v zsh || echo /usr/bin/zsh)
zsh:
	$(call debian_package,$(ZSH),zsh)

# The whole suite: lint, types, then every tier in one pytest run, spread over 4 pytest-xdist processes. Each
# worker process has its own scratch database (tests/conftest.py's session fixture), and --dist loadfile keeps
# a file's tests in one process (the deploy rehearsal's two runs share .build/rehearsal-dev). Four on a 2-core
# machine on purpose: much of the suite waits (moto's server, PostgreSQL, subprocesses, long polls), and on
# this machine 4 finished in 234 s against 2 (one per core) in 256 s. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 4
# The load test's volume (tests/reliability/test_load.py): 1,000 jobs here prove what its 10,000 prove in
# `make reliability` (each completes once, duplicates absorbed, connections within the budget, 8 invocations
# at once: 100 batches over 8 slots, two waves of the feeder), in a tenth of the time. Alone, 1,000 take 6 s
# and 2,000 11 s; inside the suite, sharing 2 cores with the deploy rehearsal, 2,000 took 107 s. The
# reliability report's row is always the 10,000-job run.
# Lint and types run beside the tests, not before them: mypy alone takes 24 s on a fresh clone, and the tests
# leave a core idle often enough to absorb it. Either failing fails `make test`; their output follows the tests'.
test: export JOBSTACK_LOAD_JOBS ?= 1000
test: export JOBSTACK_TENANT_BACKLOG ?= 200
test: deps browser zsh
	@mkdir -p .build
	@$(MAKE) --no-print-directory check > .build/check.log 2>&1 & checking=$$!; \
	status=0; $(PYTEST) $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder) || status=$$?; \
	if wait $$checking; then cat .build/check.log; else cat .build/check.log; echo "make test: make check failed (above)" >&2; exit 1; fi; \
	exit $$status

# The documentation site (mkdocs.yml) into .build/site: strict, so a broken link, a missing anchor or an API
# entry that no longer resolves fails the build. `make test` builds it too (tests/docs/test_site.py) and runs
# every snippet (tests/docs/test_snippets.py).
docs: deps
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

# Offline `cdk diff` of the current synth against the committed snapshot of $(ENV): what a reviewer needs,
# without AWS credentials. With credentials, plain `cdk diff JobsStack-$(ENV)` compares with the deployed stack.
diff: synth
	$(VENV)/bin/python -m tests.infra.diff_base $(ENV) cdk.out/diff-base-$(ENV).json
	cdk diff --no-change-set --template cdk.out/diff-base-$(ENV).json $(STACK)

# Accept the current templates as the new snapshots (after reviewing `make diff`), with their code asset hashes
# (tests/infra/code_assets.json), so `make diff` shows code changes as well.
snapshot: synth
	$(PYTEST) tests/infra/test_snapshot.py --snapshot-update -q
	$(VENV)/bin/python -m tests.infra.diff_base record

# A real deploy to your AWS account, after the one check that CloudFormation would otherwise fail half-way:
# the account's Lambda concurrency against the environment's reservations (`jobstack doctor --before-deploy`).
deploy: deps
	$(VENV)/bin/jobstack doctor --env $(ENV) --before-deploy
	cdk deploy $(STACK)

# The real `cdk deploy JobsStack-$(ENV)` rehearsed against a moto server of its own (cli/rehearsal.py): bootstrap,
# deploy, migrate, doctor, publish and work a few jobs on the deployed queues. The server keeps running for
# `jobstack --env $(ENV) --endpoint-url ...` until `make destroy-local`.
deploy-local: deps
	$(VENV)/bin/python -m cli.rehearsal up --env $(ENV) $(if $(SETTINGS),--settings '$(SETTINGS)')

destroy-local: deps
	$(VENV)/bin/python -m cli.rehearsal down --env $(ENV)

migrate: deps
	$(VENV)/bin/python -m db.migrate upgrade

# docs/statements.md: every statement the worker, the sweeper and a publisher send, written from the code as
# psycopg sends it (tests/db/test_statements_doc.py fails in `make test` when the page is behind).
statements: deps
	JOBSTACK_STATEMENTS_DOC=1 $(PYTEST) tests/db/test_statements_doc.py -q -p no:xdist

# The worker's trip (the SQS event followed call by call through the code), written into docs/architecture.md.
trip: deps
	$(VENV)/bin/python -m tests.support.trip --write

# The reliability suite, writing docs/reliability.md from this complete run (no other run writes it).
reliability: deps
	JOBSTACK_RELIABILITY_DOC=1 $(PYTEST) tests/reliability -q

# PgBouncer for bench.ceiling (the database's jobs/s through a transaction-mode pooler): Debian's package,
# installed when missing (root, or sudo). Only `make bench` needs it.
PGBOUNCER ?= $(shell command -v pgbouncer || echo /usr/sbin/pgbouncer)
pgbouncer:
	$(call debian_package,$(PGBOUNCER),pgbouncer)

bench: deps pgbouncer
	$(VENV)/bin/python -m bench.publish
	$(VENV)/bin/python -m bench.cold_start
	$(VENV)/bin/python -m bench.tracing
	$(VENV)/bin/python -m bench.secret_read
	$(VENV)/bin/python -m bench.ceiling
	$(VENV)/bin/python -m bench.synth
	$(VENV)/bin/python -m bench.cost
	$(VENV)/bin/python -m bench.pools

clean:
	rm -rf cdk.out .build .pytest_cache .mypy_cache .ruff_cache
