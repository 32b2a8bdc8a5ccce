# unet-scratch: `make lab` opens the course, `make test` runs every check. Both set up .venv first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL := 3
export PYTHONHASHSEED := 0

.PHONY: help venv lab test test-fast bench bench-quick student clean

help:
	@echo "make lab    set up .venv and open the course in JupyterLab"
	@echo "make test   set up .venv and run the whole test suite (pytest + nbval on the notebooks)"
	@echo "make student  write student copies of the chapters (solutions removed) to student/"
	@echo "make bench  benchmark the NumPy and Numba backends against TensorFlow (about 4 minutes)"

# The environment is rebuilt only when pyproject.toml changes, so a second `make test` reuses it.
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "unet-scratch needs Python >= 3.10"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[all]'
	touch $(STAMP)

venv: $(STAMP)

# --allow-root only where it is needed (containers, JupyterHub images that run as root)
lab: venv
	$(BIN)/jupyter lab $(if $(filter 0,$(shell id -u)),--allow-root) notebooks/

test: venv
	$(BIN)/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg -p no:cacheprovider \
	    tests notebooks

# Student copies of the chapters (solutions replaced by `raise NotImplementedError`) in student/
student: venv
	$(BIN)/python tools/make_student.py notebooks student

bench: venv
	$(BIN)/python -m unet_scratch bench

bench-quick: venv
	$(BIN)/python -m unet_scratch bench --quick --out /tmp/unet-scratch-bench

test-fast: venv
	$(BIN)/python -m pytest -q -x tests

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
