# Two commands matter: `make run` and `make test`. Everything else supports them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
BUF := .tools/node_modules/.bin/buf
export PYTHONPATH := $(CURDIR):$(CURDIR)/generated
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: run test generate lint token migrate check bench clean-data install rotate-keys sandbox

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

PROTOS = $$(cd protos && find invoicing -name '*.proto' | sort)
# The caller package's stubs come from an older protoc, so they run on a year of runtimes.
CLIENT_GEN := .tools/client-gen

$(CLIENT_GEN)/bin/python:
	@$(PYTHON) -m venv $(CLIENT_GEN)
	@env -u PYTHONPATH $(CLIENT_GEN)/bin/python -m pip install -q --disable-pip-version-check \
		grpcio-tools==1.76.0 mypy-protobuf==3.6.0 > $(CLIENT_GEN).log 2>&1 \
		|| { cat $(CLIENT_GEN).log; exit 1; }

## make generate: protos -> generated/ (messages, stubs, .pyi, descriptor set) and the
## caller package generated/client/ (protos + stubs for protobuf >= 6.31, grpcio >= 1.76)
generate: $(STAMP) $(CLIENT_GEN)/bin/python
	@rm -rf generated && mkdir -p generated/invoicing/v1 generated/client/invoicing/v1
	@$(BIN)/python -m grpc_tools.protoc -I protos -I third_party \
		--python_out=generated --grpc_python_out=generated \
		--mypy_out=quiet:generated --mypy_grpc_out=quiet:generated \
		--descriptor_set_out=generated/invoicing_v1.binpb --include_imports --include_source_info \
		$(PROTOS)
	@touch generated/invoicing/__init__.py generated/invoicing/v1/__init__.py
	@env -u PYTHONPATH PATH=$(CURDIR)/$(CLIENT_GEN)/bin:$$PATH $(CLIENT_GEN)/bin/python -m grpc_tools.protoc \
		-I protos -I third_party --python_out=generated/client --grpc_python_out=generated/client \
		--mypy_out=quiet:generated/client --mypy_grpc_out=quiet:generated/client $(PROTOS)
	@cp protos/invoicing/v1/*.proto generated/client/invoicing/v1/
	@cp protos/python-client/pyproject.toml protos/python-client/README.md generated/client/
	@touch generated/client/invoicing/__init__.py generated/client/invoicing/v1/__init__.py \
		generated/client/invoicing/py.typed

$(BUF):
	@npm install --prefix .tools --no-audit --no-fund --silent @bufbuild/buf@1.75.0

## make lint: ruff, mypy --strict on service/, the dependency contracts, buf lint
lint: $(STAMP) $(BUF)
	@$(BIN)/ruff check service tests migrations bench sandbox
	@$(BIN)/ruff format --check service tests migrations bench sandbox
	@$(BIN)/mypy
	@$(BIN)/lint-imports --no-cache
	@$(BUF) lint

## make token TENANT=<uuid>: a dev token with every permission (last line)
token: $(STAMP)
	@$(BIN)/python -m service.token $(if $(TENANT),--tenant $(TENANT)) $(if $(APP),--app $(APP))

## make sandbox: a local stand-in for Yooz on 127.0.0.1:8090 (account yz_sandbox_key)
sandbox: $(STAMP)
	@$(BIN)/python -m sandbox.yooz

## make rotate-keys: add a key to the secrets key ring and re-encrypt every stored secret
rotate-keys: $(STAMP)
	@$(BIN)/python -m service.connections.rotation rotate

## make migrate: upgrade the database to head
migrate: $(STAMP)
	@$(BIN)/python -m service.migrate

check: lint test

clean-data:
	rm -rf .data

## make bench [QUICK=1]: seed, run the service as `make run` does, compare with the floor
bench: $(STAMP)
	@$(BIN)/python -m bench.run $(if $(QUICK),--quick) $(BENCH_ARGS)
