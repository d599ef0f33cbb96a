# `make run` serves the API on http://localhost:8000 (SQLite); `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: install run serve test clean

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

test: install
	$(BIN)/pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) db.sqlite3 db.sqlite3-* .pytest_cache
