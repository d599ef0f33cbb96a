# `make run` serves the API on http://localhost:8000 (SQLite); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run serve worker test lint clean

$(BIN)/.installed: requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

install: $(BIN)/.installed

run: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runserver $(PORT)

# Production server (set DEBUG=false, SECRET_KEY, ALLOWED_HOSTS, ... first: see README, "Deploying").
serve: install
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/gunicorn -c gunicorn.conf.py otp_project.wsgi

# The worker that sends security emails, beside `serve` (or `run`) with TASKS_BACKEND=database: see
# README, "Security emails". Run as many as you like; each stops after its current message on SIGTERM.
worker: install
	$(BIN)/python manage.py db_worker

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

# Lint (pyflakes, pycodestyle, import order, bugbear, Django rules) and the format check, as
# configured in pyproject.toml; `$(BIN)/ruff format .` rewrites what the check refuses.
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .pytest_cache

# The Postman collection (postman/), run by newman against BASE_URL: by default the API that
# `make run` serves. `make test` runs it against its own server too (tests/e2e/test_postman.py).
BASE_URL ?= http://localhost:$(PORT)
.PHONY: postman
postman: postman/node_modules/.installed
	postman/node_modules/.bin/newman run postman/2fa-api.postman_collection.json --env-var baseUrl=$(BASE_URL)

postman/node_modules/.installed: postman/package-lock.json
	npm ci --prefix postman --no-audit --no-fund
	touch $@

# Benchmark (see README, "Benchmark"): `make bench` (about 11 minutes), `make bench-quick` (about
# 3), `make bench-scale` (1,000 against 1,000,000 accounts). DATABASE_URL=postgres://...
# REDIS_URL=redis://... run them on PostgreSQL and Redis; BENCH_ARGS adds options (--help).
.PHONY: bench bench-quick bench-scale
bench: install
	$(BIN)/python -m bench.run $(BENCH_ARGS)

bench-quick: install
	$(BIN)/python -m bench.run --quick $(BENCH_ARGS)

bench-scale: install
	$(BIN)/python -m bench.run --scale-only $(BENCH_ARGS)
