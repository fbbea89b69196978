# The two commands of the README: `make run` and `make test`. Everything else is a helper.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
START ?= 2026-06-01
STOP ?= 2026-06-04
export LUIGI_CONFIG_PATH ?= $(CURDIR)/luigi.cfg
LUIGID_ADDRESS ?= 127.0.0.1
LUIGID_PORT ?= 8082
IMAGE ?= batchml:latest
VERSION := $(shell sed -n 's/^__version__ = "\(.*\)"/\1/p' batchml/__init__.py)

.PHONY: run lint test test-slow bench venv system-deps clean luigid test-container image

$(BIN)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

venv: $(BIN)/.installed

## Programs the tests drive for real: headless Chromium renders the daily report.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium is missing and cannot be installed here: the report browser test will skip"; fi; }

## Score START..STOP (STOP exclusive) on the embedded defaults, then say what was written.
run: venv
	$(BIN)/luigi --module pipelines RangeDaily --of DailyScore --start $(START) --stop $(STOP)
	$(BIN)/python -m pipelines.summary --start $(START) --stop $(STOP)

## Lint first (ruff, settings in pyproject.toml): a lint error fails `make test`. Then the
## default test suite (unit, task and end-to-end tiers); slow and container suites are marked.
LINTED := batchml tasks pipelines tests bench
lint: venv
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

test: lint system-deps
	$(BIN)/python -m pytest -m "not slow and not container" $(PYTEST_ARGS)

test-slow: venv system-deps
	$(BIN)/python -m pytest -m slow $(PYTEST_ARGS)

## luigid, the central scheduler, in the foreground (config/luigid.cfg); UI on
## http://$(LUIGID_ADDRESS):$(LUIGID_PORT). Ctrl-C saves its task graph in luigid/state.pkl.
luigid: venv
	mkdir -p luigid
	LUIGI_CONFIG_PATH=$(CURDIR)/config/luigid.cfg $(BIN)/python -m tasks.luigid --address $(LUIGID_ADDRESS) --port $(LUIGID_PORT)

## Builds the image and runs the CronJob's command in it, then the compose stack (needs Docker:
## started, or installed from Debian's docker.io, when run as root; skipped if it cannot start).
test-container: venv
	$(BIN)/python -m pytest -m container $(PYTEST_ARGS)

## The image, tagged $(IMAGE) and batchml:$(VERSION) (the tag docker/k8s/ runs). Its base is
## built from Debian packages (docker/base-image.sh) unless PYTHON_IMAGE names another.
image:
	docker/dockerd.sh
	$(if $(PYTHON_IMAGE),PYTHON_IMAGE=$(PYTHON_IMAGE)) docker/build-image.sh $(IMAGE) batchml:$(VERSION)

bench: venv
	$(BIN)/python bench/score.py $(BENCH_ARGS)

clean:
	rm -rf data mlflow.db mlruns .cache bench/out
