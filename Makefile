# Two commands do all set-up on a fresh machine:  make train  |  make test
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
RUN ?= quickstart-$(shell date +%Y%m%d-%H%M%S)

.PHONY: train test test-slow bench lint clean-venv

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

## Train the default Glow on the embedded MNIST subset (~14 min on 2 cores), then sample from it.
train: $(VENV)/.installed
	WANDB_MODE=$${WANDB_MODE:-offline} $(PY) train.py run_name=$(RUN)
	$(PY) sample.py ckpt=checkpoints/$(RUN)/last.ckpt temperature=[0.5,0.7,1.0] \
		out=outputs/$(RUN)/final-grid
	$(PY) sample.py ckpt=checkpoints/$(RUN)/last.ckpt mode=interpolate endpoints=data \
		indices=[0,1] out=outputs/$(RUN)/final-interpolation
	@echo "Checkpoints: checkpoints/$(RUN)/"
	@echo "Pictures:    outputs/$(RUN)/samples/ (during training), outputs/$(RUN)/final-grid/,"
	@echo "             outputs/$(RUN)/final-interpolation/"

## Run the test suite (no network, no GPU; ~11 min on 2 cores; `make test-slow`: the rest).
test: $(VENV)/.installed
	$(PY) -m pytest -q -m "not slow"

## Longer checks (real data from ../shared/datasets, many steps).
test-slow: $(VENV)/.installed
	$(PY) -m pytest -q -m slow

## Speed and memory against the reference Glow, configs A-D (~15 min on 2 cores; see README).
bench: $(VENV)/.installed
	$(PY) bench/speed.py --markdown bench/results.md

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
