# Two commands matter: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BUF := .tools/node_modules/.bin/buf
export PYTHONPATH := $(CURDIR):$(CURDIR)/generated
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test generate lint token migrate check bench clean-data install

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing dependencies into $(VENV) (log: $(VENV)/install.log)"
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip > $(VENV)/install.log 2>&1 \
		&& $(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]' >> $(VENV)/install.log 2>&1 \
		|| { cat $(VENV)/install.log; exit 1; }
	@rm -f $(VENV)/.installed-* && touch $@

## make run: embedded PostgreSQL (unless DATABASE_URL), migrate, serve gRPC on 127.0.0.1:50051
run: $(STAMP)
	@$(BIN)/python -m service

## make test: the whole suite on a real PostgreSQL over a real gRPC port
test: $(STAMP)
	@$(BIN)/python -m pytest $(PYTEST_ARGS)

## make generate: protos -> generated/ (messages, stubs, .pyi, descriptor set)
generate: $(STAMP)
	@rm -rf generated && mkdir -p generated/invoicing/v1
	@$(BIN)/python -m grpc_tools.protoc -I protos -I third_party \
		--python_out=generated --grpc_python_out=generated \
		--mypy_out=quiet:generated --mypy_grpc_out=quiet:generated \
		--descriptor_set_out=generated/invoicing_v1.binpb --include_imports --include_source_info \
		$$(cd protos && find invoicing -name '*.proto' | sort)
	@touch generated/invoicing/__init__.py generated/invoicing/v1/__init__.py

$(BUF):
	@npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@1.75.0

## make lint: ruff, mypy --strict on service/, the dependency contracts, buf lint
lint: $(STAMP) $(BUF)
	@$(BIN)/ruff check service tests migrations bench
	@$(BIN)/ruff format --check service tests migrations bench
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache
	@$(BUF) lint

## make token TENANT=<uuid>: a dev token with every permission (last line)
token: $(STAMP)
	@$(BIN)/python -m service.token $(if $(TENANT),--tenant $(TENANT)) $(if $(APP),--app $(APP))

## make migrate: upgrade the database to head
migrate: $(STAMP)
	@$(BIN)/python -m service.migrate

check: lint test

clean-data:
	rm -rf .data

## make bench [QUICK=1]: seed, run the service as `make run` does, compare with the floor
bench: $(STAMP)
	@$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)
