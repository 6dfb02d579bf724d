# Data Console: `make run` serves the console, `make test` runs the checks and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# Apache's build tool (apache2-dev): with it `make run` serves through mod_wsgi-express, else runserver.
APXS := $(shell command -v apxs 2>/dev/null || command -v apxs2 2>/dev/null)

.PHONY: run setup demo test test-sqlite test-mariadb lint clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

# mod_wsgi compiles against Apache and this venv's libpython: never from pip's wheel cache, which may
# hold a build for another Python of the same version. A failed build leaves `make run` on runserver.
$(BIN)/.installed-wsgi: requirements-wsgi.txt $(BIN)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check --no-cache-dir -r requirements-wsgi.txt \
		&& touch $@ || echo "NOTE: building mod_wsgi failed (see above); make run uses runserver."

## Embedded default: one SQLite file per database under var/, demo data, a login.
setup: $(BIN)/.installed
	mkdir -p var
	$(BIN)/python manage.py migrate_all --verbosity 0
	$(BIN)/python manage.py create_legacy_schema --add-missing
	$(BIN)/python manage.py load_demo_data
	$(BIN)/python manage.py create_login --password-file var/login.txt

## Apache + mod_wsgi-express in daemon mode when apache2-dev is present (as root, the daemon runs as
## www-data from a world-readable runtime: admin_site/express.py); otherwise Django's development server.
## Either way the background worker (manage.py db_worker: big imports and exports) runs beside it.
run: setup $(if $(APXS),$(BIN)/.installed-wsgi)
	@echo "Data Console on http://$(HOST):$(PORT)/ (log in with the line above; it is kept in var/login.txt)"
ifneq ($(APXS),)
	$(BIN)/python manage.py serve --host $(HOST) --port $(PORT)
else
	@echo "NOTE: Apache development files not found (apt-get install apache2-dev); serving with Django's development server instead."
	$(BIN)/python manage.py db_worker --no-reload & worker=$$!; trap 'kill $$worker' EXIT INT TERM; \
		$(BIN)/python manage.py runserver $(HOST):$(PORT)
endif

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## SQLite always; MariaDB too when CONSOLE_TEST_DATABASE_URL is set (.ci/run sets it). The e2e tests
## (tests/e2e: mod_wsgi-express, Chromium, a MariaDB restart) run in the MariaDB phase, last.
test: lint test-sqlite
	@if [ -n "$$CONSOLE_TEST_DATABASE_URL" ]; then \
		$(MAKE) --no-print-directory test-mariadb; \
	else \
		echo "NOTE: MariaDB run skipped: set CONSOLE_TEST_DATABASE_URL (eval \"\$$(tests/mariadb.sh)\") to run it."; \
	fi

test-sqlite: $(BIN)/.installed
	@echo "== tests on SQLite =="
	env -u CONSOLE_TEST_DATABASE_URL DJANGO_SETTINGS_MODULE=tests.settings $(BIN)/python manage.py makemigrations --check --dry-run --verbosity 1
	env -u CONSOLE_TEST_DATABASE_URL $(BIN)/python -m pytest

test-mariadb: $(BIN)/.installed $(if $(APXS),$(BIN)/.installed-wsgi)
	@test -n "$$CONSOLE_TEST_DATABASE_URL" || { echo "CONSOLE_TEST_DATABASE_URL is not set"; exit 2; }
	@echo "== tests on MariaDB =="
	$(BIN)/python -m pytest --create-db

clean:
	rm -rf var/*.sqlite3* var/login.txt
