# dalab — two commands: `make run` (set up + serve the UI) and `make test` (set up + every test).
SHELL := /bin/bash
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

# Offline everywhere: nothing is fetched from a model hub, no telemetry.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export GRADIO_ANALYTICS_ENABLED := False
export ANONYMIZED_TELEMETRY := False
export MPLBACKEND := Agg
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test bench install install-test browser index clean

# The venv is (re)built whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e . 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch, numpy, toyda; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import pytest, hypothesis"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test browser

# Debian's chromium for the browser test (Playwright drives it; its own browser download does not work here).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		echo "installing Debian's chromium for the browser test"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null; then SUDO=sudo; else \
			echo "the browser test needs /usr/bin/chromium: run 'apt-get install chromium' as root" >&2; exit 1; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi

index: $(VENV)/.installed
	$(VENV)/bin/dalab index

run: $(VENV)/.installed
	$(VENV)/bin/dalab index
	$(VENV)/bin/dalab ui

test: $(VENV)/.installed-test browser
	$(PY) -m pytest -q

bench: $(VENV)/.installed-test
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .gradio_tmp
