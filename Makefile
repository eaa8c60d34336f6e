# Gatehouse: `make run` serves the portal, `make test` runs the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi
# The portal's issuer follows PORT and the demo client app is registered for DEMO_PORT (app/config.py, app/demo.py).
DEV_ENV = GATEHOUSE_ENV=development PORT=$(PORT) DEMO_PORT=$(DEMO_PORT)
HOST ?= 127.0.0.1
PORT ?= 5000
DEMO_PORT ?= 5001

.PHONY: run test bench lint format screenshots

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev-installed: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# A development secret, written once, used only when SECRET_KEY is not set.
instance/secret_key: | $(BIN)/python
	mkdir -p instance
	umask 077 && $(BIN)/python -c "import secrets; print(secrets.token_urlsafe(48))" > $@

# The portal (http://localhost:$(PORT): a name, since WebAuthn refuses IP addresses, and a secure context), the
# back-channel logout worker and the demo client app (http://127.0.0.1:$(DEMO_PORT), another site); Ctrl-C stops all
# three. Both listen on the IPv4 loopback: browsers and clients reach localhost there when ::1 refuses.
run: $(VENV)/.installed instance/secret_key
	$(DEV_ENV) $(FLASK) db upgrade
	$(DEV_ENV) $(FLASK) demo
	@[ -n "$$MAIL_SERVER" ] || echo "Mail is not sent without MAIL_SERVER: read it at http://localhost:$(PORT)/dev/mail"
	trap 'kill 0' EXIT INT TERM; \
	$(DEV_ENV) $(FLASK) worker & \
	PORT=$(PORT) DEMO_PORT=$(DEMO_PORT) $(BIN)/gunicorn --no-control-socket --workers 1 --threads 8 --bind 127.0.0.1:$(DEMO_PORT) --access-logfile - app.relying_party.demo:app & \
	$(DEV_ENV) $(BIN)/gunicorn --no-control-socket --workers 1 --threads 8 --bind $(HOST):$(PORT) --access-logfile - wsgi:app

test: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/pytest -n 2 --dist loadfile

# Gatehouse embedded, production (PostgreSQL + Redis) and two production instances against a bare Flask route, in one
# run (bench/__main__.py): about 4 minutes; `make bench BENCH_SECONDS=1 BENCH_ROUNDS=1` is a smoke run.
bench: $(VENV)/.dev-installed
	$(BIN)/python -m bench

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(VENV)/.dev-installed
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Regenerate the README's screenshots from the browser tests (they write elsewhere otherwise).
screenshots: $(VENV)/.dev-installed
	GATEHOUSE_SCREENSHOTS=1 $(BIN)/pytest -q tests/e2e
