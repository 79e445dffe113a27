# spiral-gym: `make demo` and `make test` set everything up from nothing (Debian/Ubuntu).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export MUJOCO_GL ?= egl

.PHONY: setup demo paint test bench lint docs clean

setup: $(STAMP)

$(STAMP): pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[all]"
	touch $(STAMP)

# The main job: a short CPU training run of the SPIRAL agent on the shipped MNIST digits, ending
# with held-out metrics and pictures in outputs/train_mnist.
demo: $(STAMP)
	$(PY) examples/train_mnist.py --minutes 3 --out outputs/train_mnist

# Paint episodes with a random and a scripted agent; print the env throughput.
paint: $(STAMP)
	$(PY) examples/demo.py --out outputs/paint

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_paint.py
	$(PY) benchmarks/bench_scene.py

lint: $(STAMP)
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# The documentation site (mkdocs.yml, docs/) into site/; `$(PY) -m mkdocs serve` serves it live.
docs: $(STAMP)
	$(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) outputs site .pytest_cache
