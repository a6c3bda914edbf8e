# bcconnect: `make run` and `make test` set everything up themselves on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)

.PHONY: install run test suite lint migrate check serve demo docs

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
	$(BIN)/python manage.py createcachetable

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

# The suite in two runs: pytest-xdist spreads most tests over TEST_WORKERS processes (auto:
# one per core); the browser tests and those that start gunicorn or the demo run after, alone.
TEST_WORKERS ?= auto

test: install
	$(BIN)/ruff check .
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(MAKE) --no-print-directory suite

suite: install
	$(BIN)/pytest -n $(TEST_WORKERS) -m "not e2e and not serial"
	$(BIN)/pytest -m "e2e or serial"
	@test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || echo "NOTE: the browser tests \
	(tests/e2e) were SKIPPED: /usr/bin/chromium or /usr/bin/chromedriver is missing \
	(apt-get install chromium chromium-driver)."

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

# The documentation site (docs/, mkdocs.yml), rebuilt as you edit: http://127.0.0.1:8001/
docs: install
	$(BIN)/mkdocs serve -a 127.0.0.1:8001

# Production: static files and migrations first, then gunicorn (settings in gunicorn.conf.py;
# BIND and WEB_CONCURRENCY override the address and the number of workers).
serve: install
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py createcachetable
	$(BIN)/gunicorn

# Newcomer path: the fake Microsoft and the site configured against it, no Entra tenant needed.
DEMO_DIR ?= .demo
# demo-change and demo-worker join the running demo: the ports it was started with (saved in
# $(DEMO_DIR)/ports.mk by `make demo`), unless given again.
ifneq ($(filter demo-change demo-worker,$(MAKECMDGOALS)),)
-include $(DEMO_DIR)/ports.mk
endif
DEMO_PORT ?= 8000
FAKE_PORT ?= 8443
DEMO_ENV = DATABASE_URL=sqlite:///$(abspath $(DEMO_DIR))/db.sqlite3 \
	PUBLIC_BASE_URL=http://127.0.0.1:$(DEMO_PORT) \
	BC_AUTHORITY_HOST=https://127.0.0.1:$(FAKE_PORT) BC_API_HOST=https://127.0.0.1:$(FAKE_PORT) \
	REQUESTS_CA_BUNDLE=$(abspath $(DEMO_DIR))/certs/ca.pem

demo: install demo-ports
	@$(DEMO_ENV) $(BIN)/python -m tests.fakes.demo
	@$(BIN)/python -m tests.fakes.microsoft --port $(FAKE_PORT) --cert-dir $(DEMO_DIR)/certs \
	  --public-base-url http://127.0.0.1:$(DEMO_PORT) > $(DEMO_DIR)/fake-microsoft.log 2>&1 & \
	fake=$$!; trap 'kill $$fake 2>/dev/null' EXIT INT TERM; \
	for _ in $$(seq 100); do grep -q "listening on" $(DEMO_DIR)/fake-microsoft.log && break; \
	  kill -0 $$fake 2>/dev/null || break; sleep 0.1; done; \
	grep -q "listening on" $(DEMO_DIR)/fake-microsoft.log || \
	  { cat $(DEMO_DIR)/fake-microsoft.log; echo "The fake Microsoft did not start (port $(FAKE_PORT) in use? set FAKE_PORT=...)."; exit 1; }; \
	echo "Fake Microsoft: https://127.0.0.1:$(FAKE_PORT) (log: $(DEMO_DIR)/fake-microsoft.log). Ctrl-C stops both."; \
	$(DEMO_ENV) $(BIN)/python manage.py runserver --noreload 127.0.0.1:$(DEMO_PORT)

# Beside a running `make demo`: change a customer in the fake BC (a subscription then gets a
# notification, shown in the admin), and run the task worker that delivers notifications.
# The worker runs without the autoreloader (--no-reload; db_worker's default is DEBUG): under
# it a SIGTERM cuts the task in the middle, while alone db_worker finishes the task under way
# on SIGTERM or Ctrl-C, then exits (a second signal gives the notification back for a retry).
.PHONY: demo-change demo-worker demo-ports
demo-ports:
	@mkdir -p $(DEMO_DIR)
	@printf 'DEMO_PORT ?= %s\nFAKE_PORT ?= %s\n' '$(DEMO_PORT)' '$(FAKE_PORT)' > $(DEMO_DIR)/ports.mk
demo-change: install
	@$(DEMO_ENV) $(BIN)/python -m tests.fakes.demo change
demo-worker: install
	@$(DEMO_ENV) $(BIN)/python manage.py db_worker --no-reload
