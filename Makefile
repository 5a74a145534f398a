# Two commands for a newcomer: `make demo` (set up and run the demo), `make test` (run the tests).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch; on a GPU host install the CUDA build you want before `make setup`.
TORCH_SPEC ?= torch==2.13.0
EXTRAS ?= dev,torch,dali,dashboard,ray

.PHONY: setup demo dashboard test bench clean

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

# The dashboard over the demo's profile run (Streamlit on 127.0.0.1).
dashboard: setup
	$(BIN)/rrweb-dali dashboard demo-out/runs

test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

bench: setup
	$(BIN)/python bench/tokenizer.py
	$(BIN)/python bench/preprocess.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/train.py
	$(BIN)/python bench/raw.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
