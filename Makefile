# Every target does its own set-up: a virtual environment in .venv with the pinned torch.
# TORCH pins the release: on a machine with a local CPU wheel it takes that; elsewhere pip's
# default build (CUDA on Linux x86_64). Override with e.g.
# make TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126" setup
PYTHON ?= python3
TORCH ?= torch==2.13.0
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup test demo bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# The main job on the shipped default weights: bundled gray photos -> demo_out/, with diagnostics.
demo: $(STAMP)
	$(BIN)/python scripts/demo_inputs.py demo_in
	$(BIN)/colorize demo_in -o demo_out --diagnostics --overwrite

test: $(STAMP)
	$(BIN)/python -m pytest -q

# Speed beside the I/O floor and the peers' networks, in one run -> bench/RESULTS.md (a few minutes).
bench: $(STAMP)
	$(BIN)/python bench/bench_speed.py

clean:
	rm -rf $(VENV) demo_in demo_out build *.egg-info
