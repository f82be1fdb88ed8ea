# One target per task. Each sets itself up (virtual environment from the lock file) idempotently.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The runtime tests also run on Python 3.13, in a venv of their own from the same lock file
# (requirements.lock pins the same versions for 3.13 and holds their cp313 wheels' hashes;
# `make lock` checks that it still does). The interpreter: python3.13 on PATH if it runs
# (a pyenv shim may not), else the newest ~/.pyenv/versions/3.13*/bin/python3.13.
PYTHON313 ?= $(shell for p in "$$(command -v python3.13)" \
	$$(ls -d $$HOME/.pyenv/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do \
	[ -n "$$p" ] && "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' \
	2>/dev/null && { echo "$$p"; break; }; done)
VENV313 := .venv313
BIN313 := $(VENV313)/bin
STAMP313 := $(VENV313)/.installed

.PHONY: setup setup-py313 demo test test-py313 test-fast lint bench lock clean

setup: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $(STAMP)

setup-py313: $(STAMP313)

$(STAMP313): requirements.lock pyproject.toml
	@test -n "$(PYTHON313)" || { echo "no Python 3.13 found: set PYTHON313=/path/to/python3.13" >&2; exit 1; }
	test -x $(BIN313)/python || $(PYTHON313) -m venv $(VENV313)
	$(BIN313)/python -m pip install -q --upgrade pip
	$(BIN313)/python -m pip install -q --require-hashes -r requirements.lock
	$(BIN313)/python -m pip install -q --no-deps -e .
	touch $(STAMP313)

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
	$(MAKE) --no-print-directory test-py313

# The unit and integration tests on Python 3.13 (no coverage: the 3.11 run measures it).
# Without a 3.13 interpreter this fails in CI (CI=true) and is skipped, loudly, elsewhere.
test-py313:
	@if [ -z "$(PYTHON313)" ]; then \
	  case "$(CI)" in 1|true|TRUE|True|yes) \
	    echo "ERROR: Python 3.13 not found (python3.13 on PATH, ~/.pyenv/versions/3.13*/bin);" \
	      "CI must run the tests on 3.13: install it or set PYTHON313=/path/to/python3.13" >&2; \
	    exit 1;; esac; \
	  echo "########################################################################"; \
	  echo "## SKIPPED: the Python 3.13 test run. No python3.13 was found on PATH or"; \
	  echo "## under ~/.pyenv/versions/3.13*/bin; set PYTHON313=/path/to/python3.13."; \
	  echo "########################################################################"; \
	else \
	  $(MAKE) --no-print-directory $(STAMP313) PYTHON313="$(PYTHON313)" && \
	  $(BIN313)/pytest -q -p no:cacheprovider tests/unit tests/integration; \
	fi

test-fast: $(STAMP)
	$(BIN)/pytest -q -p no:cacheprovider -m "not slow"

bench: $(STAMP)
	bash bench/dbos/setup.sh
	$(BIN)/python bench/run.py

# Regenerate the lock file after changing dependencies in pyproject.toml. It serves the 3.11
# and the 3.13 venv: uv records the hash of every file of each pinned version, and this checks
# that a 3.13 resolution pins the same versions (if it ever does not, the 3.13 venv needs a
# lock file of its own, generated the same way with --python-version 3.13).
lock:
	$(BIN)/python -m pip install -q uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements.lock
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.11 --no-header --no-annotate -o $(VENV)/pins-3.11.txt
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --python-version 3.13 --no-header --no-annotate -o $(VENV)/pins-3.13.txt
	@diff $(VENV)/pins-3.11.txt $(VENV)/pins-3.13.txt || { echo "Python 3.13 resolves other versions than 3.11 (above): requirements.lock no longer serves both" >&2; exit 1; }

clean:
	rm -rf $(VENV) $(VENV313) build *.egg-info src/*.egg-info
