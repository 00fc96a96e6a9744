VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run serve test bench scale soak lint format clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/postwatch

serve: $(STAMP)
	$(VENV)/bin/postwatch serve

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) bench/run.py
	$(PY) bench/tui.py
	$(PY) bench/tui.py --attached
	$(PY) bench/scale.py --sizes 1000,100000
	$(PY) bench/find.py --db bench/results/find-100000.db --make 100000
	$(PY) bench/reevaluate.py --conversions 100000

# reads and ingest on a large database; SIZES=1000,1000000 for the full run (fills once, cached)
scale: $(STAMP)
	$(PY) bench/scale.py --sizes $(or $(SIZES),1000,100000)

soak: $(STAMP)
	$(PY) bench/soak.py

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean:
	rm -rf $(VENV)
