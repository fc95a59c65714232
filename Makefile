# The two commands: `make demo` (the main job, end to end on embedded defaults) and `make test`.
# Both create .venv with pip when it is missing; a second run installs nothing.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
export PYTHONUNBUFFERED := 1

.PHONY: venv demo test lint bench-clean up down screens clean-work help

help:
	@echo "make demo   - run the pipeline end to end on embedded defaults (creates .venv if missing)"
	@echo "make test   - lint, layer contracts and the test suite (creates .venv if missing)"
	@echo "make up     - start the MLflow, Airflow and Flink UIs in the background (make down stops them)"
	@echo "make screens - README screenshots of the UIs (needs Chromium: apt-get install -y chromium)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

test: lint
	$(PY) -m pytest -q --durations=12 $(PYTEST_ARGS)

demo: $(STAMP)
	$(PY) -m dags.demo $(DEMO_ARGS)

up: $(STAMP)
	$(PY) -m dags.services up

down: $(STAMP)
	$(PY) -m dags.services down

screens: $(STAMP)
	$(PY) -m dags.screenshots $(SCREENS_ARGS)

bench-clean: $(STAMP)
	$(PY) -m bench.clean_bench $(BENCH_ARGS)
