# Two commands for a fresh clone: `make demo` and `make test`.
# Each creates or updates .venv (only when setup.cfg, pyproject.toml or
# constraints.txt changed since the last install), then runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format setup clean

demo: $(STAMP)
	$(BIN)/python scripts/run.py experiment=adain_multilayer

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

setup: $(STAMP)

# torch is named in the same pip command as everything else so that the resolver
# never reaches for an unpinned (CUDA) build; constraints.txt pins every version.
$(STAMP): setup.cfg pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0 -e ".[dev]"
	touch $@

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
