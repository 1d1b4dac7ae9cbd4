# KSDiff for QGIS: every target sets itself up (QGIS from Debian + .venv) first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export QT_QPA_PLATFORM := offscreen
# where `make data` caches real imagery; the same default as model_core/datacache.py (DEFAULT_DATA_ROOT)
export KSDIFF_DATA ?= $(HOME)/.cache/ksdiff/data
SENSOR ?= wv2

.PHONY: setup lint test demo data train bench package deploy clean

setup:
	@./scripts/setup.sh

# ruff with the checked-in ruff.toml; fix what it can with `$(PY) -m ruff check --fix .`
lint: setup
	@$(PY) -m ruff check .

test: setup lint
	@$(PY) -m pytest; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests" >&2; exit 1; fi; exit $$rc

demo: setup
	@$(PY) scripts/demo.py

data: setup
	@$(PY) scripts/fetch_data.py

# trains the sensor's default KSDiff config and exports ksdiff_qgis/resources/models/$(SENSOR).onnx + its card
# (with the evaluation on the config's held-apart test case); `make bench` only reads them
train: setup data
	@$(PY) -m model_core train --sensor $(SENSOR)
	@$(PY) -m model_core export --sensor $(SENSOR)

bench: setup data
	@$(PY) -m bench
	@$(PY) scripts/robustness.py
	@$(PY) scripts/ablation.py
	@if ls runs/rr4_fusionnet_hpm_step1_prered_trval_warm_seed*/fullres.pt >/dev/null 2>&1; then $(PY) scripts/paired_seeds.py --recipes hpm_step1_prered_trval_warm; \
	else echo "bench: no paired-seed runs (model_core train --config rr4_{ksdiff,fusionnet}_hpm_step1_prered_trval_warm.yaml --seed N): skipped"; fi
	@$(PY) scripts/bench_speed.py
	@$(PY) scripts/bench_batch.py

package: setup
	@$(PY) scripts/package.py

deploy: package
	@$(PY) scripts/deploy.py

clean:
	rm -rf dist build demo-output .pytest_cache
