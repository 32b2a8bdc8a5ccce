# unet-scratch: `make lab` opens the course, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: help venv lab test test-fast bench bench-quick gpu-check student book chromium notebooks nbgrader clean

help:
	@echo "make lab    set up .venv and open the course in JupyterLab, on chapter 00"
	@echo "make test   set up .venv and run the whole test suite (pytest + nbval on the notebooks)"
	@echo "make test-fast  the quick inner loop: the unit tests, without notebooks, nbgrader runs or the browser"
	@echo "make notebooks  update each chapter's .ipynb from its .py source and re-execute it (CHAPTERS=\"00 02\": some)"
	@echo "make student  write student copies of the chapters (solutions removed) to student/"
	@echo "make book   build the course as a website (static HTML, offline) in book/_build/html/ (Chinese: html/zh/)"
	@echo "make nbgrader  write an nbgrader course folder (nbgrader/) from the chapters, for instructors"
	@echo "make bench  benchmark the NumPy and Numba backends against TensorFlow (4-10 minutes, by CPU)"
	@echo "make gpu-check  on an NVIDIA GPU: check the CuPy backend and time it against PyTorch (<= 8 min); SMOKE=1: tiny, on the CPU stand-in"

# The environment is rebuilt only when pyproject.toml changes, so a second `make test` reuses it.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "unet-scratch needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

# JupyterLab's settings for the course: no "receive official Jupyter news?" pop-up on the first start
# (tools/lab-overrides.json, copied to where JupyterLab reads overrides: `jupyter lab path`'s
# "Application directory" + /settings).
LAB_OVERRIDES := $(VENV)/share/jupyter/lab/settings/overrides.json
$(LAB_OVERRIDES): tools/lab-overrides.json $(STAMP)
	mkdir -p $(dir $@)
	cp tools/lab-overrides.json $@

venv: $(STAMP) $(LAB_OVERRIDES)

# --allow-root only where it is needed (containers, JupyterHub images that run as root). jupyter-config/ makes
# JupyterLab open the chapters' .py sources as notebooks (jupytext) on a double click.
lab: export JUPYTER_CONFIG_PATH := $(CURDIR)/jupyter-config$(if $(JUPYTER_CONFIG_PATH),:$(JUPYTER_CONFIG_PATH))
lab: venv
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/00-introduction.ipynb

# One BLAS thread for the tests and the notebooks: the same float rounding as when the stored outputs were
# made, and no collapse of OpenBLAS's spinning threads when the machine is shared (see benchmarks/training.py).
test notebooks: export OPENBLAS_NUM_THREADS := 1

# pytest-xdist: WORKERS processes (default: one per core); --dist loadscope keeps each notebook's cells, and
# each test module, on one worker, in order. WORKERS=0 runs everything in this process (less CPU in all: each
# worker imports TensorFlow and collects the tests; the better choice on a machine that is already busy).
WORKERS ?= auto
XDIST = $(if $(filter 0,$(WORKERS)),,-n $(WORKERS) --dist loadscope)
test: venv chromium
	$(BIN)/python -m pytest $(XDIST) -p no:cacheprovider \
	    --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg tests notebooks

# The inner loop: the unit tests, without executing notebooks, running nbgrader, driving a browser or the
# whole-pipeline tests marked slow (tests/conftest.py). About a minute of CPU on the 2-core course machine.
test-fast: export OPENBLAS_NUM_THREADS := 1
test-fast: venv
	$(BIN)/python -m pytest -q $(XDIST) -p no:cacheprovider -m "not slow and not notebook and not browser" tests

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
# The Chinese edition (book/zh/, notebooks/zh/) is built beside it into book/_build/html/zh/, every page of
# each site linked to the same page in the other language.
book: venv
	$(BIN)/python tools/build_book.py

# tests/test_book.py opens the website in headless Chrome/Chromium (tools/find_chrome.py finds it, Linux or
# macOS, or $CHROME). When there is none and apt-get exists, install Debian's chromium, quietly. This target
# never fails: without a browser the test skips, saying how to install one, or fails where CI is set.
# The Chinese pages need a CJK font, or the browser draws their text as empty boxes: where fontconfig knows
# none (`fc-list :lang=zh`), Debian's fonts-noto-cjk is installed the same way (macOS and Windows have one).
SUDO := $(if $(filter 0,$(shell id -u)),,sudo -n)
chromium:
	@$(PYTHON) tools/find_chrome.py >/dev/null 2>&1 || { \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium with apt-get (for tests/test_book.py)"; \
	    $(SUDO) apt-get update -qq >/dev/null 2>&1; \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends \
	      chromium fonts-dejavu-core >/dev/null 2>&1 \
	    || echo "could not install chromium with apt-get: tests/test_book.py will skip (fail with CI set)"; \
	  else \
	    $(PYTHON) tools/find_chrome.py || true; echo "tests/test_book.py will skip (fail with CI set)"; \
	  fi; }
	@if command -v fc-list >/dev/null 2>&1 && [ -z "$$(fc-list :lang=zh 2>/dev/null)" ]; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    echo "installing fonts-noto-cjk with apt-get (the Chinese pages of the website, tests/test_book.py)"; \
	    $(SUDO) apt-get update -qq >/dev/null 2>&1; \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends fonts-noto-cjk \
	      >/dev/null 2>&1 \
	    || echo "could not install fonts-noto-cjk: tests/test_book.py's Chinese pages will fail (no CJK font)"; \
	  else \
	    echo "no CJK font found (fc-list :lang=zh): install Noto Sans CJK for the Chinese pages of the website"; \
	  fi; \
	fi

# For instructors: an nbgrader course folder (nbgrader/, git-ignored) with every chapter as an assignment
# (solution cells, locked graded check cells) and its nbgrader_config.py; README "For instructors".
# Then, in nbgrader/ with the venv active (nbgrader runs `alembic` from PATH): nbgrader generate_assignment "*"
nbgrader: venv
	$(BIN)/python tools/make_nbgrader.py notebooks nbgrader

bench: venv
	$(BIN)/python -m unet_scratch bench

bench-quick: venv
	$(BIN)/python -m unet_scratch bench --quick --out /tmp/unet-scratch-bench

# The GPU's one command (tools/gpu_check.py): versions and a kernel compile, the GPU test suite, the kernels
# at full size, the seed model against the NumPy reference, timings against PyTorch/cuDNN (TF32 off, and on
# as its own column); writes benchmarks/results/gpu-<gpu>.md/.json. It needs no venv (a GPU machine often
# has no network): any Python with NumPy, SciPy, CuPy 14 (cupy-cuda12x[ctk] or cupy-cuda13x[ctk]), pytest
# and hypothesis, plus PyTorch with CUDA for the comparison; GPU_PYTHON picks it (default: .venv's, else
# python3). SMOKE=1 runs tiny sizes end to end, on tests/strict_cupy.py where there is no GPU.
GPU_PYTHON ?= $(if $(wildcard $(BIN)/python),$(BIN)/python,python3)
gpu-check:
	OPENBLAS_NUM_THREADS=$${OPENBLAS_NUM_THREADS:-4} $(GPU_PYTHON) tools/gpu_check.py $(if $(filter-out 0,$(SMOKE)),--smoke)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
