# The two commands: `make run` and `make test`. Everything else is a building block.
SHELL := /bin/bash
.DEFAULT_GOAL := build

BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
SANITIZE   ?= OFF
JOBS       ?= $(shell nproc)
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Every Debian 12 package the project needs to build, test and run.
APT_PACKAGES := build-essential cmake ninja-build ccache pkg-config git \
	libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev grpc-proto \
	librdkafka-dev librocksdb-dev prometheus-cpp-dev libabsl-dev \
	libgtest-dev libgmock-dev libbenchmark-dev \
	libspdlog-dev libfmt-dev libcli11-dev nlohmann-json3-dev libjwt-dev libssl-dev openssl \
	libphonenumber-dev libgoogle-perftools-dev \
	prometheus kcat python3 python3-grpcio python3-protobuf
BUF_VERSION := 1.75.0

.PHONY: deps configure build test run bench clean demo

deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; \
	  done); \
	if ! command -v npm >/dev/null; then missing="$$missing nodejs npm"; fi; \
	if [ -n "$$(echo $$missing)" ]; then \
	  echo "make deps: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi
	@if ! buf --version 2>/dev/null | grep -qx '$(BUF_VERSION)'; then \
	  echo "make deps: installing buf $(BUF_VERSION) from npm"; \
	  $(SUDO) npm install --global --no-fund --no-audit --loglevel=error @bufbuild/buf@$(BUF_VERSION); \
	fi

configure:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DCRM_SANITIZE=$(SANITIZE)

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

test: deps build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) --timeout 900

run: deps build
	BUILD_DIR=$(BUILD_DIR) deploy/run-local.sh

bench: deps build
	BUILD_DIR=$(BUILD_DIR) tests/bench/run.sh

clean:
	rm -rf $(BUILD_DIR)

# With the system running (make run, in another terminal): simulated weeks of a sales team's
# traffic through the public APIs, then the KPI scorecard. Flags: make demo DEMO_ARGS="--scale 0.1"
# (tools/demo/README.md).
demo:
	PYTHONPATH=$(BUILD_DIR)/python /usr/bin/python3 tools/demo/demo.py $(DEMO_ARGS)
