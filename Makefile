# The two commands of the README, and the helpers they need. Everything runs from this checkout:
# the virtual environment is .venv, the images are built locally and cached by tag.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test lint images agent-image bench fuzz clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

# The SageMaker SDK v3 (sagemaker.train's ModelTrainer) for the SDK tests: it cannot share .venv
# with the v2 the dev extra pins, so it has an environment of its own. It is built once per
# machine, outside the checkout, under a name derived from what it holds (a fresh clone, as CI
# makes, finds it built), and .venv-sdk3 links to it; flock keeps two checkouts from building
# the same one at once.
SDK3 := .venv-sdk3
SDK3_TRAIN := sagemaker-train==1.27.0
SDK3_KEY := $(shell (echo '$(SDK3_TRAIN)'; $(PYTHON) --version; cat tests/sdk3-requirements.txt) | sha256sum | cut -c1-16)
SDK3_CACHE := $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/trainforge/venv-sdk3-$(SDK3_KEY)
$(SDK3)/.installed: tests/sdk3-requirements.txt
	mkdir -p $(dir $(SDK3_CACHE))
	flock $(SDK3_CACHE).lock sh -c 'test -e $(SDK3_CACHE)/.installed || { \
	    rm -rf $(SDK3_CACHE) && $(PYTHON) -m venv $(SDK3_CACHE) && \
	    $(SDK3_CACHE)/bin/pip install -q -r tests/sdk3-requirements.txt && \
	    $(SDK3_CACHE)/bin/pip install -q --no-deps --no-warn-conflicts "$(SDK3_TRAIN)" && \
	    touch $(SDK3_CACHE)/.installed; }'
	rm -rf $(SDK3)
	ln -s $(SDK3_CACHE) $(SDK3)

## The main job: train the Iris example end to end with trainforge and say where the model landed.
example: $(VENV)/.installed
	bash examples/iris/run.sh

## The whole test suite (what CI runs): builds the test images once, then pytest in two workers,
## each test file whole in one of them (a file's fixtures, the swarm's cluster among them, are
## made once), so the swarm's slow tests run beside the rest.
test: $(VENV)/.installed-dev $(SDK3)/.installed images agent-image
	$(BIN)/python -m pytest -n 2 --dist loadfile

images:
	$(PYTHON) scripts/images.py busybox python example test

# The agent image of the Swarm tests: built from this checkout's trainforge.
agent-image: $(VENV)/.installed
	$(PYTHON) scripts/images.py agent

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check src tests scripts bench
	$(BIN)/ruff format --check src tests scripts bench
	$(BIN)/mypy
	$(BIN)/lint-imports

## The fuzz suite at length: 10,000 model-driven hostile requests, none may get a 5xx.
fuzz: $(VENV)/.installed-dev
	TRAINFORGE_FUZZ_EXAMPLES=10000 $(BIN)/python -m pytest tests/api/test_fuzz.py -p no:cacheprovider

## The benchmarks of bench/: trainforge against its baselines, one table of ratios.
bench: $(VENV)/.installed-dev images
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SDK3) .cache build *.egg-info
