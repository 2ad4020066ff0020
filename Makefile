# snnbatch developer and user targets. Everything runs in ./.venv, made on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
SNN    := $(VENV)/bin/snnbatch
SYSTEM_PACKAGES := slurm-wlm munge slurmdbd mariadb-server
BROWSER_PACKAGES := chromium# the report's browser test renders report.html in headless Chromium

.PHONY: quickstart test test-fast test-slow bench bench-full wheel-check system-deps browser-deps clean help

help:
	@echo "make quickstart   install into .venv and run the quick-start sweep (examples/quickstart.yaml)"
	@echo "make test         the whole test suite, live SLURM included (installs $(SYSTEM_PACKAGES) as root if missing)"
	@echo "make test-fast    the suite without the SLURM and slow tests"
	@echo "make test-slow    the long kill campaign and large sweeps"
	@echo "make bench        quick benchmarks (ratios against references measured in the same run)"
	@echo "make bench-full   the full benchmarks, with scaling plots"

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip setuptools wheel
	$(PY) -m pip install --quiet -e ".[test]"
	$(PY) -m pip install --quiet -e examples/plugin
	touch $@

quickstart: $(VENV)/.installed
	$(SNN) submit examples/quickstart.yaml --store runs/quickstart
	$(SNN) status runs/quickstart

# The autograd reference of the gradient tests (tests/kernels/test_autograd.py) and the benchmark's deep peers
# (tests/kernels/test_bench_peers.py): the bench extra's PyTorch (CPU build, 2.13.0), snnTorch and Norse, not
# the rest of the bench extra (Brian2, Cython). Installed together, so that Norse's torchvision matches torch.
$(VENV)/.reference: $(VENV)/.installed
	$(PY) -m pip install --quiet "torch==2.13.0" "snntorch>=1.0" "norse>=1.1"
	touch $@

system-deps: browser-deps
	@if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1 || ! command -v mariadbd >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	  else \
	    echo "The SLURM tests need: $(SYSTEM_PACKAGES) (Debian packages). Install them, or run 'make test-fast'."; exit 1; \
	  fi; \
	fi

browser-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $(BROWSER_PACKAGES) >/dev/null; \
	  else \
	    echo "The report's browser test needs: $(BROWSER_PACKAGES) (Debian package). Install it."; exit 1; \
	  fi; \
	fi

# The live-SLURM tests beside the rest of the suite (tests/run-suite.sh says why); the exit status is
# non-zero if either part fails.
test: $(VENV)/.installed system-deps $(VENV)/.reference
	tests/run-suite.sh $(PY)

test-fast: $(VENV)/.installed browser-deps $(VENV)/.reference
	$(PY) -m pytest -m "not slurm and not slow" -n "$${SNNBATCH_TEST_WORKERS:-2}" --dist loadfile

test-slow: $(VENV)/.installed system-deps
	$(PY) -m pytest -m slow

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m benchmarks.run --quick

bench-full: $(VENV)/.installed
	$(PY) -m pip install --quiet -e ".[bench]"
	$(PY) -m benchmarks.run --full

clean:
	rm -rf $(VENV) build dist *.egg-info runs benchmarks/results
