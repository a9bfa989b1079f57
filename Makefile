# KioskOps — `make run` starts the demo, `make test` runs the suite, `make bench` the benchmarks.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# `make run` is a local demo: debug on, embedded defaults unless DATABASE_URL / REDIS_URL are set.
RUN_ENV := DJANGO_DEBUG=$${DJANGO_DEBUG:-1}
# Starts the embedded PostgreSQL (without DATABASE_URL) before its command and stops it after; one at a time.
LAUNCH  := $(PY) -m config.embedded_postgres run --
TEST_ENV := DJANGO_SECRET_KEY=$${DJANGO_SECRET_KEY:-test-secret-key-that-is-long-enough-for-django} DJANGO_DEBUG=0

.PHONY: install run serve setup test lint bench bench-store bench-scaleout messages clean

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	$(PYTHON) -c 'import sys; sys.exit("KioskOps needs Python 3.11+") if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-dev.txt -c constraints.txt
	touch $@

# The console's front-end libraries (ECharts), served by core/staticfiles.py; npm comes with Node.js.
node_modules/.installed: package.json package-lock.json
	@command -v npm >/dev/null || { echo "KioskOps needs Node.js with npm (Debian: apt install nodejs npm)"; exit 1; }
	npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

setup: install  ## migrate and load the demo fleet and its reconciliation data (idempotent; run by `make run`)
	$(RUN_ENV) $(LAUNCH) sh -c '$(PY) manage.py migrate_all -v 0 && $(PY) manage.py collectstatic --noinput -v 0 \
	    && $(PY) manage.py seed_demo && $(PY) manage.py seed_recon_demo && $(PY) manage.py seed_incidents_demo && $(PY) manage.py seed_workorders_demo && $(PY) manage.py seed_parts_demo && $(PY) manage.py seed_inspections_demo && $(PY) manage.py seed_drills_demo && $(PY) manage.py seed_guidance_demo && $(PY) manage.py seed_analytics_demo'

run: install  ## the database, then setup, web server, Celery worker and beat, the kiosk simulator, until Ctrl-C
	$(RUN_ENV) $(LAUNCH) $(MAKE) --no-print-directory serve

serve: setup  # inside `make run`, once the database is up
	$(RUN_ENV) $(VENV)/bin/honcho start -f Procfile

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(TEST_ENV) $(PY) -m config.embedded_postgres use -- $(PY) manage.py makemigrations --check --dry-run

test: lint  ## the whole suite (PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set)
	$(TEST_ENV) $(VENV)/bin/pytest

bench: install  ## benchmarks against PostgreSQL and Redis; see docs/performance.md (BENCH_ARGS="--help")
	$(PY) bench/run.py $(BENCH_ARGS)
	$(PY) bench/reconciliation.py $(RECON_BENCH_ARGS)
	$(PY) bench/incidents.py $(INCIDENT_BENCH_ARGS)
	$(PY) bench/analytics.py $(ANALYTICS_BENCH_ARGS)
	$(PY) bench/recon_bulk.py $(BULK_BENCH_ARGS)
	$(PY) bench/recon_ledger.py $(LEDGER_BENCH_ARGS)

bench-store: install  ## the reconciliation store: a city day with 30 days of history (STORE_BENCH_ARGS; province: see docs/performance.md)
	$(PY) bench/recon_store.py --kiosks 10000 --lines 1000000 --history-days 30 --duckdb-rounds 1 $(STORE_BENCH_ARGS)

bench-scaleout: install  ## two hosts in network namespaces against one PostgreSQL and Redis (needs root); docs/scaling.md
	$(PY) bench/scaleout.py $(SCALEOUT_BENCH_ARGS)

messages: install  ## refresh locale/zh_Hans/LC_MESSAGES/django.po from the code, then compile it (needs gettext)
	$(TEST_ENV) $(PY) manage.py makemessages -l zh_Hans --add-location=file --ignore=tests --ignore=var --ignore=bench
	$(TEST_ENV) $(PY) manage.py compilemessages -l zh_Hans --ignore=.venv

clean:  ## remove var/ (the embedded cluster, broker, cache); refused while `make run` runs
	if [ -x $(PY) ]; then $(PY) -m config.embedded_postgres stop; fi
	rm -rf var
