# facereel: `make run` and `make test` work from a clean clone on Debian with Python 3.11.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
DATA   ?= ../shared/data/cse546
VIDEOS ?= $(DATA)/videos
DATA_DIR ?= facereel-data

.PHONY: run recognize test lint bench bench-long bench-pipeline bench-images clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "facereel needs Python 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The main job: the pipeline on embedded defaults. The clips are dropped into the input bucket
# (a folder) first, so there is something to see in $(DATA_DIR)/buckets/output right away.
run: $(VENV)/.installed
	$(BIN)/facereel gallery import $(DATA)/encoding --data-dir $(DATA_DIR) >/dev/null
	$(BIN)/facereel metadata load $(DATA)/student_data.json --data-dir $(DATA_DIR)
	-$(BIN)/facereel workload $(VIDEOS) --data-dir $(DATA_DIR)
	$(BIN)/facereel up --data-dir $(DATA_DIR)

# The one-shot core on the clips: a table, and <stem>.json/.txt/.csv in $(DATA_DIR)/results.
recognize: $(VENV)/.installed
	$(BIN)/facereel gallery import $(DATA)/encoding --data-dir $(DATA_DIR) >/dev/null
	$(BIN)/facereel metadata load $(DATA)/student_data.json --data-dir $(DATA_DIR)
	$(BIN)/facereel recognize $(VIDEOS) --data-dir $(DATA_DIR) --out $(DATA_DIR)/results

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -q

bench: $(VENV)/.installed-dev
	$(BIN)/python bench/throughput.py

bench-long: $(VENV)/.installed-dev
	$(BIN)/python bench/long_video.py

bench-pipeline: $(VENV)/.installed-dev
	$(BIN)/python bench/pipeline.py

bench-images: $(VENV)/.installed-dev
	$(BIN)/python bench/images.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache bench/out test-artifacts
