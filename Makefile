# Run `make help` for the list. Everything installs itself: uv (from PyPI), the Python
# dependencies (uv.lock), Kafka (Maven Central) and FerretDB (Go module proxy).

SHELL := /bin/bash
.DEFAULT_GOAL := help
UV_VERSION := 0.13.8
STACK := python3 deploy/local/stack.py
STARTED_BY_TEST := .stack/started-by-test
STARTED_BY_RUN := .stack/started-by-run
PYTEST_ARGS ?=
BENCH_ARGS ?=

export PATH := $(HOME)/.local/bin:$(PATH)

.PHONY: help
help: ## List the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}'

.PHONY: install
install: system-deps ## Install uv and the locked Python dependencies into .venv
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --user --quiet "uv==$(UV_VERSION)"
	@uv sync --frozen --quiet

.PHONY: system-deps
system-deps: ## Install ffprobe (Debian's ffmpeg), which the approval service's media probing runs
	@command -v ffprobe >/dev/null 2>&1 || { \
	  echo "installing ffmpeg (ffprobe) from Debian's packages ..."; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; \
	}

.PHONY: stack-up
stack-up: ## Start the local Kafka broker and FerretDB (installs them on first use)
	@$(STACK) start

.PHONY: stack-down
stack-down: ## Stop the local Kafka broker and FerretDB
	@$(STACK) stop

.PHONY: stack-status
stack-status: ## Show whether the local stack is running and healthy
	@$(STACK) status

.PHONY: stack-wipe
stack-wipe: ## Stop the local stack and delete its data
	@$(STACK) wipe

.PHONY: run
run: install ## Run the whole system on local defaults (Ctrl-C stops it all, the stack too if this started it)
	@mkdir -p .stack && rm -f $(STARTED_BY_RUN)
	@$(STACK) start --started-file $(STARTED_BY_RUN)
	@eval "$$($(STACK) env)" && RUN_LOCAL_STACK_STARTED_FILE=$(STARTED_BY_RUN) uv run python -m tools.run_local

.PHONY: test
test: install ## Run the whole suite against the real Kafka and FerretDB (starts and stops them)
	@mkdir -p .stack && rm -f $(STARTED_BY_TEST)
	@$(STACK) start --started-file $(STARTED_BY_TEST)
	@status=0; eval "$$($(STACK) env)" && uv run pytest $(PYTEST_ARGS) || status=$$?; \
	  started="$$(cat $(STARTED_BY_TEST) 2>/dev/null)"; \
	  if [ -n "$$started" ]; then $(STACK) stop $$started; fi; \
	  exit $$status

.PHONY: test-unit
test-unit: install ## Run only the fast unit tests (no stack needed)
	@uv run pytest tests/unit $(PYTEST_ARGS)

.PHONY: lint
lint: install validate-deploy ## ruff lint and format check, and the deploy files
	@uv run ruff check .
	@uv run ruff format --check .

.PHONY: validate-deploy
validate-deploy: install ## Validate compose, k8s (kustomize + kubeconform), alert rules and tests (promtool), dashboard
	@uv run python deploy/validate.py

.PHONY: typecheck
typecheck: install ## mypy --strict with the pydantic plugin
	@uv run mypy

.PHONY: docs
docs: install ## Regenerate the JSON Schemas and AsyncAPI documents under docs/
	@uv run python -m tools.contracts

.PHONY: bench-scheduler
bench-scheduler: install stack-up ## Scheduler benchmark: steady 200/s, a 50,000-post burst, memory (prints figures)
	@eval "$$($(STACK) env)" && uv run python -m tools.bench.scheduler

.PHONY: demo
demo: install stack-up ## Push a batch of demo content through approval to published, with a live status table
	@eval "$$($(STACK) env)" && uv run python -m tools.demo

.PHONY: bench
bench: install stack-up ## Whole-system load benchmark: 200 posts/s for 5 min, a 50,000-post burst (prints figures, draws a plot)
	@eval "$$($(STACK) env)" && uv run python -m tools.bench.load $(BENCH_ARGS)

.PHONY: bench-publisher
bench-publisher: install stack-up ## Publisher benchmark: posts/s for one and two instances at 50 ms platform latency
	@eval "$$($(STACK) env)" && uv run python -m tools.bench.publisher $(BENCH_ARGS)

.PHONY: chaos
chaos: install stack-up ## Fault suite: 20,000 posts while services are killed, Kafka restarts and the platforms misbehave
	@eval "$$($(STACK) env)" && uv run python -m tools.bench.chaos $(BENCH_ARGS)

.PHONY: check
check: lint typecheck test ## Everything CI runs
