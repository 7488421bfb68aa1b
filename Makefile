# The two commands that do everything on a fresh clone: `make demo` and `make test`.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
# The local CPU build of torch; pinned in the same pip command as the project so that a fresh
# venv never resolves a multi-GB CUDA build (see shared/reference/stack.md).
TORCH   ?= torch==2.13.0
PLUGINS := $(sort $(dir $(wildcard plugins/*/pyproject.toml)))
STAMP   := $(VENV)/.cellzoo-installed

.PHONY: demo test bench bench-upscale lint install clean

$(STAMP): pyproject.toml $(wildcard plugins/*/pyproject.toml)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)" -e ".[torch,onnx,test,dask]" $(foreach p,$(PLUGINS),-e $(p))
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m cellzoo.demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -q

SUITES  := annotate-pbmc68k annotate-splat annotate-splat-large-recipe markers markers-attribution discover discover-nact-markers generate-splat upscale

bench: $(STAMP)
	$(BIN)/python -m pytest -q -m slow
	$(foreach s,$(SUITES),$(BIN)/cellzoo bench benchmarks/$(s).toml -o benchmarks/results/$(s) &&) true
	$(BIN)/python benchmarks/throughput.py
	$(BIN)/python benchmarks/predict_vs_run.py
	$(BIN)/python benchmarks/weighting.py
	$(BIN)/python benchmarks/weighting_activa.py
	$(BIN)/python benchmarks/upscale_crops.py

# the upscale leaderboard and its side-by-side crops (plugins/srvae/README.md)
bench-upscale: $(STAMP)
	$(BIN)/cellzoo bench benchmarks/upscale.toml -o benchmarks/results/upscale
	$(BIN)/python benchmarks/upscale_crops.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports --no-cache

clean:
	rm -rf $(VENV) build *.egg-info core/*.egg-info plugins/*/*.egg-info
