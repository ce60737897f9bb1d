# Two commands for a newcomer:  `make train`  and  `make test`.
# Both create or refresh .venv first (re-installed whenever requirements.txt or pyproject.toml change).
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.spikelfp-installed
SEED   ?= 0
ARGS   ?=

.PHONY: venv train test lint bench clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (spikelfp needs Python 3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade "pip>=24" "setuptools>=68" wheel
	$(PY) -m pip install -r requirements.txt
	# lava-nc 0.10.0 declares python<3.11 but runs on 3.11 (with spikelfp's compat shim)
	$(PY) -m pip install --no-deps --ignore-requires-python lava-nc==0.10.0
	$(PY) -m pip install --no-deps --no-build-isolation -e .
	# compile and cache every numba kernel now, so the first run does not wait for the JIT
	$(PY) -m spikelfp.warmup
	touch $(STAMP)

train: venv
	$(VENV)/bin/spikelfp train --dataset digits-saccade --seed $(SEED) --out runs/default --overwrite $(ARGS)

test: venv
	$(PY) -m pytest -q $(ARGS)

lint: venv
	$(VENV)/bin/ruff check spikelfp backends datasets benchmarks tests

bench: venv
	$(PY) benchmarks/simulator.py --quick

clean:
	rm -rf $(VENV) build *.egg-info
