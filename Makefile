# Two commands from a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
WORKSPACE ?= workspace
HOST ?= 127.0.0.1
PORT ?= 8050
# Test processes (pytest-xdist; each takes whole test files); 0 runs every test in this one.
TEST_WORKERS ?= 2

# Read the public datasets from the local mirror beside the checkout when there is one.
ifneq ($(wildcard ../shared/data),)
export AVOCADO_DATA_MIRROR ?= $(abspath ../shared/data)
endif
# torch's OpenMP threads busy-wait on shared cores; passive waiting is much faster here.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test install install-test chromium clean-workspace

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/activate requirements.txt pyproject.toml
	$(BIN)/pip install --quiet -r requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed requirements-test.txt
	$(BIN)/pip install --quiet -r requirements-test.txt
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test chromium

# Debian's Chromium for the browser tests (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

demo: install
	$(BIN)/avocado demo $(WORKSPACE) --host $(HOST) --port $(PORT)

test: install-test
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadfile tests

clean-workspace:
	rm -rf $(WORKSPACE)
