# The two commands that matter on a fresh clone: `make serve` and `make test`.
# Each creates the virtual environment on first use; nothing needs installing by hand.

PYTHON ?= python3
VENV := .venv
# The venv is exactly requirements/test.lock (hashes checked) + kabinet itself; `make lock` refreshes the
# locks from pyproject.toml. The stamp names the inputs' checksum: change one and the venv is rebuilt.
LOCKS := requirements/build.lock requirements/test.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCKS) | cksum | cut -d' ' -f1)
PIP := $(VENV)/bin/pip --quiet --disable-pip-version-check
POSTGRES_URL ?= postgres://root@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379
# Where `make serve` listens: `make serve PORT=8001` when 8000 is taken.
HOST ?= 127.0.0.1
PORT ?= 8000
# Workers for the suite: each gets its own database (and Redis namespace); a test file stays on one
# worker, in order. Much of the suite waits on sockets and processes, so more workers than cores help.
TEST_WORKERS ?= 3
PYTEST := $(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: serve test test-postgres schema clean bench lock venv

# A fresh venv each time (--clear): nothing a former lock installed survives. pip and setuptools come
# from build.lock, so kabinet is built with --no-build-isolation and nothing unhashed is downloaded.
$(STAMP): pyproject.toml $(LOCKS)
	$(PYTHON) -m venv --clear $(VENV)
	$(PIP) install --require-hashes -r requirements/build.lock
	$(PIP) install --require-hashes -r requirements/test.lock
	$(PIP) install --no-deps --no-build-isolation -e .
	touch $(STAMP)

venv: $(STAMP)

# Re-resolve requirements/*.lock from pyproject.toml (needs PyPI): after editing dependencies, or
# `make lock ARGS=--upgrade` for the newest versions pyproject.toml allows. Commit requirements/.
lock:
	PYTHON=$(PYTHON) scripts/lock.sh $(ARGS)

serve: $(STAMP)
	$(VENV)/bin/kabinet serve --host $(HOST) --port $(PORT)

test: $(STAMP)
	$(PYTEST)

# The same suite on PostgreSQL (a fresh database per run) with Redis as the broker.
test-postgres: $(STAMP)
	KABINET_TEST_DATABASE_URL=$(POSTGRES_URL) KABINET_TEST_BROKER_URL=$(REDIS_URL) $(PYTEST)

# kabinet against PostGraphile on a throwaway PostgreSQL database (bench/README.md); needs PostgreSQL
# and Redis on 127.0.0.1. `make bench ARGS=--smoke` is the short run CI does (no Node needed).
bench: $(STAMP)
	$(VENV)/bin/python -m bench.run $(ARGS)

schema: $(STAMP)
	$(VENV)/bin/kabinet export-schema > schema.graphql

clean:
	rm -rf $(VENV) .lock-tools data .pytest_cache
