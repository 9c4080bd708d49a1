# leadflow — the two commands that matter are `make demo` and `make test`.
# Everything installs into .venv from the pinned requirements; state lives in .leadflow/.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.leadflow-installed
MANIFEST := dbt_project/target/manifest.json
export DO_NOT_TRACK := 1
export SCARF_ANALYTICS := false
export GX_ANALYTICS_ENABLED := false
export DBT_SEND_ANONYMOUS_USAGE_STATS := false

.PHONY: setup demo test lint format airflow bench clean stop

setup: $(STAMP) $(MANIFEST)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# Cosmos renders the dbt graph from this manifest, so DAG parsing never calls dbt.
$(MANIFEST): $(STAMP) $(shell find dbt_project -name '*.sql' -o -name '*.yml' 2>/dev/null | grep -v target/)
	$(BIN)/python -c "from leadflow.transform.dbt import parse; parse()"

demo: setup
	$(BIN)/leadflow demo run

test: setup
	$(BIN)/pytest

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint dbt_project/models dbt_project/macros

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .
	$(BIN)/sqlfluff fix dbt_project/models dbt_project/macros

airflow: setup
	$(BIN)/leadflow airflow run -- standalone

bench: setup
	$(BIN)/python bench/run_all.py

stop:
	-$(BIN)/leadflow db stop

clean: stop
	rm -rf .leadflow dbt_project/target
