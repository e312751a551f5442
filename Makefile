# irqshift build, test and demo. `make test` runs every test; `make demo`
# boots an arm64 VM and shows the main job end to end.
GO ?= go
BIN := bin
ARM64_BIN := $(BIN)/irqshift-linux-arm64
STATICCHECK_VERSION := 2025.1.1

.PHONY: all build build-arm64 test test-host lint bench clean

all: build

build:
	$(GO) build -o $(BIN)/irqshift .

build-arm64:
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -trimpath -o $(ARM64_BIN) .

test: test-host

test-host:
	$(GO) test -count=1 ./...

clean:
	rm -rf $(BIN)

-include tests/vm/vm.mk
