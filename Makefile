# Two commands for a newcomer: `make demo` (set up and run the demo), `make test` (run the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; on a GPU host install the CUDA build you want before `make setup`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,torch,cuda12,dashboard,ray

.PHONY: setup demo test lint bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	# torch first and pinned, so that no extra can pull a multi-GB CUDA build.
	$(BIN)/python -m pip install -q "$(TORCH_SPEC)"
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

demo: setup
	$(BIN)/rrweb-dali demo

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/tokenizer.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
