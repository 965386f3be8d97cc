# Two commands for a fresh clone: `make demo` and `make test`.
# Each creates or updates .venv (only when setup.cfg, pyproject.toml or
# constraints.txt changed since the last install), then runs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

SOUNDFONT := /usr/share/sounds/sf2/FluidR3_GM.sf2
SYSTEM_PACKAGES := fluidsynth fluid-soundfont-gm chromium chromium-driver

.PHONY: demo test test-fast explore lint format setup system-deps clean

demo: $(STAMP)
	$(BIN)/python scripts/run.py experiment=adain_multilayer

test: $(STAMP)
	$(BIN)/python -m pytest

# The tests that run in this process: no run.py in a process of its own, no full-size model.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The app (Streamlit) on the bundled model, offline: style transfer on your files, and the channel explorer.
explore: $(STAMP)
	$(BIN)/streamlit run scripts/app.py

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
	@$(MAKE) --no-print-directory system-deps
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt torch==2.13.0 -e ".[dev]"
	touch $@

# FluidSynth and the FluidR3_GM sound font render audio (scripts/render_data.py and its tests); Chromium and
# its driver run the app's browser test.
system-deps:
	@if [ -f $(SOUNDFONT) ] && ldconfig -p | grep -q libfluidsynth && [ -x /usr/bin/chromedriver ]; then exit 0; fi; \
	echo "installing $(SYSTEM_PACKAGES) (FluidSynth, its General MIDI sound font, Chromium and its driver)"; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; \
	else echo "please install the Debian/Ubuntu packages: $(SYSTEM_PACKAGES)"; exit 1; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
