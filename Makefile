# Two commands do all the set-up on a fresh clone:
#   make demo   create .venv, install, run the main job on the embedded model (no network)
#   make test   create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch (a bare `torch` requirement would pull GBs of CUDA packages).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,app]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sefa demo --out outputs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --runslow

lint: $(STAMP)
	$(BIN)/ruff check sefa_plugin tests scripts benchmarks gradio_app

clean:
	rm -rf $(VENV) outputs
