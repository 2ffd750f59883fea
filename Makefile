# The two commands that matter on a fresh clone: `make serve` and `make test`.
# Each creates the virtual environment on first use; nothing needs installing by hand.

PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
POSTGRES_URL ?= postgres://root@127.0.0.1:5432/test
REDIS_URL ?= redis://127.0.0.1:6379
# Where `make serve` listens: `make serve PORT=8001` when 8000 is taken.
HOST ?= 127.0.0.1
PORT ?= 8000
# Workers for the suite: each gets its own database (and Redis namespace); a test file stays on one
# worker, in order. Much of the suite waits on sockets and processes, so more workers than cores help.
TEST_WORKERS ?= 3
PYTEST := $(VENV)/bin/python -m pytest -n $(TEST_WORKERS) --dist loadfile

.PHONY: serve test test-postgres schema clean bench

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check --upgrade pip
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

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
	rm -rf $(VENV) data .pytest_cache
