# Two commands do all set-up on a fresh machine:
#   make demo   venv + dependencies + extension build, then `snn demo`
#   make test   the same set-up, then the test suite
# Override the torch spec with e.g. `make test TORCH='torch==2.13.0'`.
HOST_PYTHON ?= python3
VENV        ?= .venv
TORCH       ?= torch==2.13.0
PY          := $(VENV)/bin/python
PIP         := $(PY) -m pip --disable-pip-version-check -q
PYTEST_ARGS ?= --durations=15 -m "not slow"

.PHONY: all setup build demo test bench clean datasets

all: demo

$(PY):
	$(HOST_PYTHON) -m venv $(VENV)

# Dependencies: re-installed only when this Makefile or the requirements change.
$(VENV)/.deps: $(PY) Makefile requirements-dev.txt
	$(PIP) install "$(TORCH)" "numpy<2"
	$(PIP) install -r requirements-dev.txt "$(TORCH)"
	# Peers without their heavy extras (their wheels would pull torchvision/tensorboard and a CUDA torch).
	$(PIP) install --no-deps spikingjelly==2.0.0 norse==1.1.0
	# lava-nc 0.10.0 declares Python<3.11 on paper; snn.export.lava_compat makes it import here.
	$(PIP) install --no-deps --ignore-requires-python lava-nc==0.10.0
	touch $@

# Editable install of snn (entry point `snn`); the extension is built in place by `build`.
$(VENV)/.snn: $(VENV)/.deps setup.py pyproject.toml
	SNN_NO_EXT=1 $(PIP) install --no-build-isolation --no-deps -e .
	touch $@

# The venv's ninja (requirements-dev.txt) compiles the extension's translation units in parallel.
build: $(VENV)/.snn
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) setup.py -q build_ext --inplace

datasets:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist espeak-ng >/dev/null) \
	  || echo "note: could not install dataset-fashion-mnist/espeak-ng; the digits data set is used instead"; \
	fi

setup: build datasets

demo: setup
	$(VENV)/bin/snn demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: setup
	$(PY) benchmarks/lif_throughput.py

clean:
	rm -rf build snn/_C*.so *.egg-info
