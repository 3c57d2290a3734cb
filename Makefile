# H.N Commerce ML Platform. `make demo` and `make test` bootstrap everything they need.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export HN_HOME ?= $(CURDIR)/.hn
export DAGSTER_HOME := $(HN_HOME)/dagster
export DBT_PROFILES_DIR := $(CURDIR)/dbt_project
export PATH := $(CURDIR)/$(BIN):$(PATH)
# TLS through the machine's trust store (registries may sit behind a proxy with its own CA).
export UV_SYSTEM_CERTS ?= 1
export UV_NATIVE_TLS ?= 1
# uv from PATH, else installed from PyPI into .tools/ (outside .venv, which uv manages).
UV := $(shell command -v uv 2>/dev/null || echo $(CURDIR)/.tools/bin/uv)
DAGSTER := $(BIN)/dagster
DEMO_ARGS ?=

.PHONY: help install demo test ui serve clean validate bench redis-server

help:
	@echo "make demo      install, simulate the H.N store and materialise every asset"
	@echo "make test      install and run the test suite (own temporary data)"
	@echo "make ui        Dagster UI on http://127.0.0.1:3000"
	@echo "make serve     the champion's Bento on http://127.0.0.1:3001 (after 'make demo')"
	@echo "make validate  dagster definitions validate -w workspace.yaml"
	@echo "make bench     run the benchmarks in bench/"
	@echo "make clean     remove HN_HOME ($(HN_HOME)) if 'make demo' made it, and build output"

# The environment: uv (from PyPI when missing) installs exactly uv.lock into .venv.
$(BIN)/.installed: pyproject.toml uv.lock
	@[ -x "$(UV)" ] || { $(PYTHON) -m venv .tools && .tools/bin/pip install -q uv; }
	$(UV) sync --frozen --python $(PYTHON)
	@touch $@

MANIFEST := dbt_project/target/manifest.json
$(MANIFEST): $(BIN)/.installed dbt_project/dbt_project.yml $(shell find dbt_project/models dbt_project/macros -type f 2>/dev/null)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --quiet

# The environment, the HN_HOME layout with DAGSTER_HOME/dagster.yaml, and the dbt manifest
# that the Dagster code location is built from.
install: $(BIN)/.installed $(MANIFEST)
	@$(BIN)/hn env >/dev/null

# `make demo` and `make clean` delete HN_HOME only when the demo made it: the demo marks the store
# it creates with DEMO_MARKER. Any other HN_HOME (a user's own store: a loaded REES46 log, its
# pseudonym key, the model registry) is refused in one line before anything runs, so nothing is
# installed or deleted; an absent HN_HOME (a fresh machine) or one holding no data yet (only what
# `hn env` lays out, e.g. after `make test`) is fine. Checked when the Makefile is
# read rather than in the recipe: `install` creates HN_HOME (hn env) before the recipe would run.
DEMO_MARKER := $(HN_HOME)/.hn-demo-store
ifneq ($(filter demo clean,$(MAKECMDGOALS)),)
ifneq ($(shell [ ! -e "$(HN_HOME)" ] || [ -e "$(DEMO_MARKER)" ] || [ -z "$$(find "$(HN_HOME)" -type f ! -name dagster.yaml -print -quit)" ] && echo removable),removable)
$(error refusing to delete HN_HOME=$(HN_HOME): 'make demo' did not create it (no $(notdir $(DEMO_MARKER))); set HN_HOME to another folder, or delete it yourself)
endif
endif

# The demo rebuilds its store from scratch under HN_HOME each time (same seed, same data).
demo: install
	rm -rf "$(HN_HOME)" && mkdir -p "$(HN_HOME)" && touch "$(DEMO_MARKER)" && $(BIN)/hn env >/dev/null
	$(BIN)/hn simulate $(DEMO_ARGS)
	$(DAGSTER) job execute -m hn_assets.definitions -j end_to_end
	@echo
	@echo "Done. Open the Dagster UI with 'make ui' -> http://127.0.0.1:3000 (HN_HOME=$(HN_HOME))"

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash .ci/system-packages.sh || true
	$(BIN)/pytest

validate: install
	$(DAGSTER) definitions validate -w workspace.yaml

ui: install
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

bench: install
	$(BIN)/python bench/simulator_throughput.py
	$(BIN)/python bench/bronze_ingest_throughput.py
	bash .ci/system-packages.sh redis-server wrk
	$(BIN)/python bench/online_feature_latency.py
	$(BIN)/python bench/landing_to_gold.py --sizes 1 5 10
	$(BIN)/python bench/scoring.py --home "$(HN_HOME)"  # the demo store (make demo first)

# The champion's Bento (built by `make demo`: asset purchase_intent_bento) against the demo's stores.
# BENTOML_HOME lives under HN_HOME; SERVE_ARGS are passed to `bentoml serve`.
BENTOML_HOME := $(HN_HOME)/bentoml
SERVE_BENTO ?= purchase_intent:latest
serve: install
	@[ -d "$(BENTOML_HOME)/bentos/$(firstword $(subst :, ,$(SERVE_BENTO)))" ] || { echo "no Bento $(SERVE_BENTO) under $(BENTOML_HOME): run 'make demo' first (HN_HOME=$(HN_HOME))"; exit 2; }
	BENTOML_HOME="$(BENTOML_HOME)" BENTOML_DO_NOT_TRACK=true $(BIN)/bentoml serve $(SERVE_BENTO) --host 127.0.0.1 --port 3001 $(SERVE_ARGS)

clean:
	rm -rf "$(HN_HOME)" dbt_project/target dbt_project/logs .pytest_cache
