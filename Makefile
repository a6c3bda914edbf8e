# bcconnect: `make run` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

.PHONY: install run test lint migrate check serve

$(STAMP): requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

.env:
	cp .env.example .env

install: $(STAMP) .env

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	@if [ -n "$$DJANGO_SUPERUSER_USERNAME" ] && [ -n "$$DJANGO_SUPERUSER_PASSWORD" ]; then \
	  if $(BIN)/python manage.py shell -c "import os,sys; from django.contrib.auth import get_user_model as g; sys.exit(g().objects.filter(username=os.environ['DJANGO_SUPERUSER_USERNAME']).exists())"; then \
	    $(BIN)/python manage.py createsuperuser --noinput --email "$${DJANGO_SUPERUSER_EMAIL:-admin@localhost}"; \
	  else echo "Superuser $$DJANGO_SUPERUSER_USERNAME already exists."; fi; \
	else \
	  echo "No superuser created: set DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD," \
	       "or run: $(BIN)/python manage.py createsuperuser"; \
	fi
	@echo "Admin: http://127.0.0.1:8000/admin/"
	$(BIN)/python manage.py runserver 127.0.0.1:8000

test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Production: static files and migrations first, then gunicorn (settings in gunicorn.conf.py;
# BIND and WEB_CONCURRENCY override the address and the number of workers).
serve: install
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/gunicorn
