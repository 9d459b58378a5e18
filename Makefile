# Two commands do all the set-up on a fresh clone:
#   make demo   create .venv, install, run the main job on the embedded model (no network)
#   make test   create .venv, install with test extras, run the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow lint bench clean chromium

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The CPU build of torch (a bare `torch` requirement would pull GBs of CUDA packages).
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev,app]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sefa demo --out outputs/demo

test: $(STAMP) chromium
	$(BIN)/python -m pytest -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -q --runslow

# The editor's browser test drives Debian's Chromium with Playwright (Playwright's own download is not used).
# Installing it needs root; without it the browser test is skipped with a reason.
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium) \
		|| echo "chromium could not be installed: the browser test will be skipped"

lint: $(STAMP)
	$(BIN)/ruff check sefa_plugin tests scripts benchmarks gradio_app

clean:
	rm -rf $(VENV) outputs
