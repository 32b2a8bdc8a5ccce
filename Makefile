# unet-scratch: `make lab` opens the course, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: help venv lab test test-fast bench bench-quick student book chromium notebooks clean

help:
	@echo "make lab    set up .venv and open the course in JupyterLab"
	@echo "make test   set up .venv and run the whole test suite (pytest + nbval on the notebooks)"
	@echo "make notebooks  update each chapter's .ipynb from its .py source and re-execute it (CHAPTERS=\"00 02\": some)"
	@echo "make student  write student copies of the chapters (solutions removed) to student/"
	@echo "make book   build the course as a website (static HTML, offline) in book/_build/html/"
	@echo "make bench  benchmark the NumPy and Numba backends against TensorFlow (4-10 minutes, by CPU)"

# The environment is rebuilt only when pyproject.toml changes, so a second `make test` reuses it.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "unet-scratch needs Python >= 3.10"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

# --allow-root only where it is needed (containers, JupyterHub images that run as root). jupyter-config/ makes
# JupyterLab open the chapters' .py sources as notebooks (jupytext) on a double click.
lab: export JUPYTER_CONFIG_PATH := $(CURDIR)/jupyter-config$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))
lab: venv
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

# One BLAS thread for the tests and the notebooks: the same float rounding as when the stored outputs were
# made, and no collapse of OpenBLAS's spinning threads when the machine is shared (see benchmarks/training.py).
test notebooks: export OPENBLAS_NUM_THREADS := 1

test: venv chromium
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
	    tests notebooks

# Each chapter is notebooks/NN-name.py (jupytext percent script, the text to edit) paired with NN-name.ipynb
# (the same cells with outputs). Bring every .ipynb's cells up to date from its .py (unchanged cells keep their
# ids and outputs, new cells get ids derived from their text) and execute it in place, without timing
# metadata. A failing cell stops with the chapter, the cell and its traceback. Some: make notebooks CHAPTERS="00 02"
notebooks: venv
	$(BIN)/python tools/execute_notebooks.py $(CHAPTERS)

# Student copies of the chapters (solutions replaced by `raise NotImplementedError`) in student/
student: venv
	$(BIN)/python tools/make_student.py notebooks student

# The course as a website: book/ and the notebooks with their stored outputs (never re-run), built
# offline with Jupyter Book 1 into book/_build/html/. Fails naming any chapter missing from book/_toc.yml.
book: venv
	$(BIN)/python tools/build_book.py

# tests/test_book.py opens the website in headless Chromium: install Debian's package when it is missing
# (quietly; nothing happens when it is there). If that is impossible, that test fails and says why.
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
chromium:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  echo "installing chromium with apt-get (for tests/test_book.py)"; \
	  $(SUDO) apt-get update -qq >/dev/null 2>&1; \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	    chromium fonts-dejavu-core >/dev/null 2>&1 \
	  || echo "could not install chromium: tests/test_book.py will fail (apt-get install chromium)"; }

bench: venv
	$(BIN)/python -m unet_scratch bench

bench-quick: venv
	$(BIN)/python -m unet_scratch bench --quick --out /tmp/unet-scratch-bench

test-fast: venv
	$(BIN)/python -m pytest -q -x tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
