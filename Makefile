# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# This machine serves these wheels from local disk; pyproject.toml only declares ranges.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo data test check-clean check-export check-notebooks nbtest pytest package bench bench-quality napari-screenshot clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e '.[dev]' $(TORCH_PIN)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/pssr demo

# data/: synthetic samples always; a sample of the PSSR paper's data (doi:10.18738/T8/YLCK5A) where the network allows.
DATA_PATTERN ?= *
DATA_MAX_MB ?= 500
data: install
	$(BIN)/python scripts/make_data.py --out data --pattern '$(DATA_PATTERN)' --max-mb $(DATA_MAX_MB)

# nbdev-clean and nbdev-export must leave the committed tree unchanged.
check-clean: install
	$(BIN)/nbdev-clean
	git diff --exit-code --stat -- nbs
	@test -z "$$(git status --porcelain --untracked-files=all -- nbs)" || { git status --short -- nbs; echo 'nbdev-clean changed notebooks: run nbdev-clean and commit'; exit 1; }

check-export: install
	$(BIN)/nbdev-export
	git diff --exit-code --stat -- pssr
	@test -z "$$(git status --porcelain --untracked-files=all -- pssr)" || { git status --short -- pssr; echo 'pssr/ out of sync with nbs/: run nbdev-export and commit'; exit 1; }

# Every notebook carries outputs (they are the docs), none over 2 MB, nbs/ under 15 MB.
check-notebooks:
	python3 .ci/check_notebooks.py nbs

# Notebooks run two at a time on this 2-core machine: one torch thread each.
nbtest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/nbdev-test --n-workers 2 --do-print --timing

# Headless: the napari widget tests run on Qt's offscreen platform. Two pytest-xdist workers with one torch thread each
# (a test file stays on one worker, so its module fixtures are built once): 238 s instead of 444 s on this 2-core CPU.
PYTEST_WORKERS ?= 2
pytest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg QT_QPA_PLATFORM=offscreen $(BIN)/pytest tests/ -n $(PYTEST_WORKERS) --dist loadfile

# Wheel + sdist as PyPI would get them, checked by twine (offline: the venv's setuptools, no isolated env; ~6 s).
# (`test` runs it before pytest, so that `make test` ends with pytest's summary line.)
package: install
	rm -rf $(VENV)/dist build
	$(BIN)/python -m build --no-isolation --outdir $(VENV)/dist . > $(VENV)/build.log || { cat $(VENV)/build.log; exit 1; }
	$(BIN)/twine check --strict $(VENV)/dist/*
	rm -rf build

test: check-clean check-export check-notebooks nbtest package pytest

bench: install
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/predict_speed.py
	$(BIN)/python bench/profile_predict.py

# Restoration quality per CPU minute on the shared EM data (about 80 minutes; run on an idle machine).
bench-quality: install
	$(BIN)/python bench/quality_budget.py --minutes 5
	$(BIN)/python bench/quality_budget.py --cli 20

# README's picture of the plugin in a real napari window (nbs/images/napari_plugin.png): needs Xvfb and Mesa's
# software OpenGL (apt: xvfb libgl1-mesa-dri and Qt's xcb libraries); trains a 1-minute model first (about 2 min).
napari-screenshot: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 xvfb-run -a -s "-screen 0 1600x1000x24" $(BIN)/python scripts/napari_screenshot.py --overwrite

clean:
	rm -rf $(VENV) _proc _docs .pytest_cache
