# The targets README and CI call. Everything the project needs is installed from here.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PYTEST_ARGS ?=

BENCH_ARGS ?=

.PHONY: install run test lint format bench bench-peers clean

install: $(STAMP)

# Re-install whenever the dependency list changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[worker,dev]'
	touch $(STAMP)

run: install
	$(PY) -m devstack

test: install
	bash deploy/system-deps.sh
	$(PY) -m pytest $(PYTEST_ARGS)

# Benchmarks (issue #7): results, tables and plots in docs/benchmarks/. LiteLLM's proxy, the peer,
# is installed by the harness into its own virtualenv, never into ours.
bench: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench --peers $(BENCH_ARGS)

bench-peers: install
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) -m bench peers $(BENCH_ARGS)

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
