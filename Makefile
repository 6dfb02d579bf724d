# Data Console: `make run` serves the console, `make test` runs the checks and tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run setup demo test test-sqlite test-mariadb lint clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

## Embedded default: one SQLite file per database under var/, demo data, a login.
setup: $(BIN)/.installed
	mkdir -p var
	$(BIN)/python manage.py migrate_all --verbosity 0
	$(BIN)/python manage.py create_legacy_schema
	$(BIN)/python manage.py load_demo_data
	$(BIN)/python manage.py create_login --password-file var/login.txt

run: setup
	@echo "Data Console on http://$(HOST):$(PORT)/  ($$(cat var/login.txt))"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## SQLite always; MariaDB too when CONSOLE_TEST_DATABASE_URL is set (.ci/run sets it).
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

test-mariadb: $(BIN)/.installed
	@test -n "$$CONSOLE_TEST_DATABASE_URL" || { echo "CONSOLE_TEST_DATABASE_URL is not set"; exit 2; }
	@echo "== tests on MariaDB =="
	$(BIN)/python -m pytest --create-db

clean:
	rm -rf var/*.sqlite3* var/login.txt
