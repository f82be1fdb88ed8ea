# One target per task. Each sets itself up (virtual environment from the lock file) idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test test-fast lint bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	rm -f examples/demo.db examples/demo.db-wal examples/demo.db-shm
	cd examples && ../$(BIN)/python demo.py
	cd examples && ../$(BIN)/legato --db sqlite:///demo.db runs show order-1001

lint: $(STAMP)
	$(BIN)/ruff check src tests bench examples
	$(BIN)/ruff format --check src tests bench examples
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q -p no:cacheprovider --cov=legato --cov-report=term --cov-fail-under=85

test-fast: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	bash bench/dbos/setup.sh
	$(BIN)/python bench/run.py

# Regenerate the lock file after changing dependencies in pyproject.toml.
lock:
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
