# Two commands on a fresh machine: `make demo` and `make test`. Both bootstrap .venv themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# This machine serves these wheels from local disk; pyproject.toml only declares ranges.
TORCH_PIN := torch==2.14.1 torchvision==0.29.1

.PHONY: install demo test check-clean check-export nbtest pytest bench bench-quality clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH_PIN)
	$(BIN)/python -m pip install -q -e '.[dev]' $(TORCH_PIN)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/pssr demo

# nbdev-clean and nbdev-export must leave the committed tree unchanged.
check-clean: install
	$(BIN)/nbdev-clean
	git diff --exit-code --stat -- nbs
	@test -z "$$(git status --porcelain --untracked-files=all -- nbs)" || { git status --short -- nbs; echo 'nbdev-clean changed notebooks: run nbdev-clean and commit'; exit 1; }

check-export: install
	$(BIN)/nbdev-export
	git diff --exit-code --stat -- pssr
	@test -z "$$(git status --porcelain --untracked-files=all -- pssr)" || { git status --short -- pssr; echo 'pssr/ out of sync with nbs/: run nbdev-export and commit'; exit 1; }

# Notebooks run two at a time on this 2-core machine: one torch thread each.
nbtest: install
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 MPLBACKEND=Agg $(BIN)/nbdev-test --n-workers 2 --do-print --timing

pytest: install
	MPLBACKEND=Agg $(BIN)/pytest tests/

test: check-clean check-export nbtest pytest

bench: install
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/predict_speed.py
	$(BIN)/python bench/profile_predict.py

# Restoration quality per CPU minute on the shared EM data (about 80 minutes; run on an idle machine).
bench-quality: install
	$(BIN)/python bench/quality_budget.py --minutes 5
	$(BIN)/python bench/quality_budget.py --cli 20

clean:
	rm -rf $(VENV) _proc _docs .pytest_cache
