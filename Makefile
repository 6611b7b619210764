# The two commands of the README, and the helpers they need. Everything runs from this checkout:
# the virtual environment is .venv, the images are built locally and cached by tag.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: example test test-s3s lint images agent-image bench bench-tools fuzz clean

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

## The whole test suite (what CI runs): builds the test images and the SDK v3 environment once
## (side by side: most of it is waiting on downloads and debootstrap), then pytest in three
## workers, each test file whole in one of them (a file's fixtures, the swarm's cluster among them,
## are made once), so the swarm's slow tests run beside the rest. Three on two cores: most of a
## test's time is spent waiting on containers, not computing. The slowest tests are listed at the
## end, to see where the suite's ten minutes go.
test: $(VENV)/.installed-dev
	$(MAKE) -j3 --no-print-directory $(SDK3)/.installed images agent-image
	$(BIN)/python -m pytest -n 3 --dist loadfile --durations=15

## The tests that move data through S3, against s3s-fs (a second S3 implementation, built from
## crates.io with cargo once and cached under .cache/s3s-fs) instead of moto. The swarm's tests
## are not among them: their nodes reach the session's S3 endpoint the same way either way.
S3_TESTS := tests/integration/test_channels.py tests/integration/test_outputs.py \
	tests/integration/test_invocation_and_tree.py tests/integration/test_lifecycle_rules.py \
	tests/integration/test_status_and_failures.py tests/integration/test_pipe_feeder_s3.py \
	tests/integration/test_pipe_mode.py tests/integration/test_while_running.py \
	tests/integration/test_spot_and_retries.py tests/integration/test_hostile_inputs.py \
	tests/integration/test_full_disk.py tests/integration/test_doctor.py \
	tests/api/test_update_and_interrupt.py
## One test is left out: s3s-fs makes a bucket when an object is put into one that does not
## exist, where S3 answers NoSuchBucket, so a job whose output bucket is missing completes there.
S3S_DIFFERS := tests/integration/test_status_and_failures.py::test_output_bucket_missing_fails_with_a_client_error
test-s3s: $(VENV)/.installed-dev images
	$(PYTHON) scripts/s3s.py
	TRAINFORGE_TEST_S3=s3s $(BIN)/python -m pytest -n 2 --dist loadfile $(S3_TESTS) \
		--deselect $(S3S_DIFFERS)

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

## What the benchmarks need besides the dev extra: wrk and GNU time (Debian's packages,
## installed with apt-get when run as root), s3s-fs (built with cargo, cached) and boto3 with the CRT in a
## virtual environment of its own (a baseline: in trainforge's, botocore would load the CRT).
CRT_VENV := .cache/crt-venv
$(CRT_VENV)/.installed:
	$(PYTHON) -m venv $(CRT_VENV)
	$(CRT_VENV)/bin/pip install -q 'boto3[crt]'
	touch $@

bench-tools: $(CRT_VENV)/.installed
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get install -y -q wrk >/dev/null; } \
		|| { echo "bench: wrk is needed (apt-get install wrk)" >&2; exit 1; }
	@test -x /usr/bin/time || { [ "$$(id -u)" = 0 ] && apt-get update -q >/dev/null && apt-get install -y -q time >/dev/null; } \
		|| { echo "bench: GNU time is needed (apt-get install time)" >&2; exit 1; }
	$(PYTHON) scripts/s3s.py

## The benchmarks of bench/: trainforge against its baselines, one table of ratios. A row that
## cannot run is printed as a failure, and the exit status is then non-zero.
bench: $(VENV)/.installed-dev images bench-tools
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SDK3) .cache build *.egg-info
