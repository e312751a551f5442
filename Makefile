# irqshift: build, test, lint, benchmark and demo.
#   make test          every test: host tests (unit, fuzz seeds, end-to-end; the core packages
#                      again under the race detector), the unit, the Debian packages (lintian) and
#                      the arm64 VM tests (kernels 7.x, 6.12, 6.1)
#   make test-systemd  the package and its unit under a real systemd in the arm64 VM (.ci/run)
#   make demo          boots an arm64 VM and shows the main job end to end
#   make image         the DaemonSet's multi-arch OCI image (bin/image/irqshift-oci); make test-image checks it (.ci/run)
GO ?= go
BIN := bin
ARM64_BIN := $(BIN)/irqshift-linux-arm64
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
TOOLS := $(CURDIR)/$(BIN)/tools
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
# promtool, from Debian's prometheus package (deploy/promtool.sh: apt-get download, only promtool
# unpacked, nothing installed or started), for the tests of deploy/prometheus. Remove
# $(TOOLS)/prometheus to fetch the current package again.
PROMTOOL := $(TOOLS)/prometheus/usr/bin/promtool

PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
DOCDIR ?= $(PREFIX)/share/doc/irqshift
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d

.PHONY: all build build-arm64 test test-host test-race test-unit lint bench fuzz install clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/irqshift .

build-arm64:
	CGO_ENABLED=0 GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(ARM64_BIN) .

# The image deploy/kubernetes/irqshift.yaml names, irqshift/irqshift:$(IMAGE_VERSION), for
# linux/amd64 and linux/arm64/v8: FROM scratch with only the static binary, /usr/bin/irqshift.
# tools/image (a Go module of its own, for go-containerregistry) writes it with no container
# daemon, registry or base image as the OCI image layout $(IMAGE_DIR) (one index, tagged) and
# the oci-archive $(IMAGE_DIR).tar; docs/FLEET.md#image says how to push it. IMAGE_VERSION is
# the newest entry of packaging/debian/changelog, as for make deb, not git describe: the tag
# the DaemonSet names (test-image fails when they differ) and the binaries' version. Time
# stamps are SOURCE_DATE_EPOCH, else the changelog's date: the same binaries, the same digests.
# (Braces: make would count the sed script's parentheses.)
IMAGE_VERSION ?= ${shell sed -n '1s/^irqshift (\([^)]*\)) .*/\1/p' packaging/debian/changelog}
IMAGE_DIR := $(BIN)/image/irqshift-oci
.PHONY: image image-bins test-image
image: image-bins
	cd tools/image && $(GO) run . -version '$(IMAGE_VERSION)' -changelog $(CURDIR)/packaging/debian/changelog \
		-out $(CURDIR)/$(IMAGE_DIR) -archive $(CURDIR)/$(IMAGE_DIR).tar \
		amd64=$(CURDIR)/$(BIN)/irqshift-linux-amd64 arm64=$(CURDIR)/$(BIN)/irqshift-linux-arm64

# Static, with build's flags and ldflags but the image's version.
image-bins:
	@test -n '$(IMAGE_VERSION)' || { echo "image: no version in packaging/debian/changelog"; exit 1; }
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '-X main.version=$(IMAGE_VERSION)' -o $(BIN)/irqshift-linux-amd64 .
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '-X main.version=$(IMAGE_VERSION)' -o $(BIN)/irqshift-linux-arm64 .

# tools/image's test, which `go test ./...` here does not reach (another module), on what make
# image built: the layout read back (platforms, config, the layer's one static binary), a
# rebuild that must match it byte for byte, and the DaemonSet's command and args run with the
# image's binary against a fixture tree. .ci/run runs it after make test, outside it: its cold
# build of go-containerregistry (~40 s) took make test from a fresh clone to 906 s once.
test-image: image
	cd tools/image && IRQSHIFT_IMAGE_BINARIES=$(CURDIR)/$(BIN) IRQSHIFT_IMAGE_LAYOUT=$(CURDIR)/$(IMAGE_DIR) \
		$(GO) test -count=1 ./...

test: test-host test-race test-unit test-deb vm-test

# The packaged unit under a real systemd in the arm64 VM (tests/vm/vm.mk, vm-test-systemd). Not in
# `make test`: a fresh machine first builds the VM's Debian root file system (~13 min under TCG);
# .ci/run runs it after `make test`.
.PHONY: test-systemd
test-systemd: vm-test-systemd

# Host tests; fuzz targets run their seed corpora here. PROMTOOL makes deploy/'s promtool tests
# run for real: they fail if it is missing, rather than skip.
test-host: $(PROMTOOL)
	PROMTOOL=$(PROMTOOL) $(GO) test -count=1 ./...

# `make promtool` fetches it alone.
.PHONY: promtool
promtool: $(PROMTOOL)
$(PROMTOOL):
	bash deploy/promtool.sh $(TOOLS)/prometheus

# The core packages again under the race detector (the daemon's goroutines, the hotplug listener and
# watcher, the state lock, the simulator's locking). The race detector needs cgo, hence gcc.
# Measured 2026-12-06 on the shared 2-core machine (load 6-7): 50 s with a warm build cache,
# 2 min 35 s from an empty one (compiling the race-instrumented standard library and
# dependencies), against 49 s for test-host.
RACE_PKGS := ./affinity/ ./daemon/ ./hotplug/ ./ops/ ./state/ ./sysfs/... ./internal/... ./top/ ./rules/
test-race:
	CGO_ENABLED=1 $(GO) test -race -count=1 $(RACE_PKGS)

# The unit as `make install` writes it must pass systemd-analyze verify
# (where systemd-analyze exists); its exposure score is printed.
test-unit: build
	@if command -v systemd-analyze >/dev/null; then \
		tmp=$$(mktemp -d) && \
		$(MAKE) --no-print-directory install DESTDIR=$$tmp PREFIX=/usr >/dev/null && \
		sed 's#^ExecStart=/usr/bin/#ExecStart='"$$tmp"'/usr/bin/#' $$tmp/usr/lib/systemd/system/irqshift.service > $$tmp/irqshift.service && \
		systemd-analyze verify --man=no $$tmp/irqshift.service && \
		systemd-analyze security --offline=true $$tmp/irqshift.service | tail -n 1 && \
		rm -rf $$tmp && echo "test-unit: systemd-analyze verify passed"; \
	else echo "test-unit: skipped: systemd-analyze not installed"; fi

install: build
	install -D -m 0755 $(BIN)/irqshift $(DESTDIR)$(BINDIR)/irqshift
	install -d $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(UNITDIR)
	$(BIN)/irqshift man > $(DESTDIR)$(MANDIR)/man8/irqshift.8
	install -d $(DESTDIR)$(DOCDIR) $(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR) $(DESTDIR)$(FISHCOMPDIR)
	install -m 0644 README.md docs/*.md $(DESTDIR)$(DOCDIR)/
	$(BIN)/irqshift completion bash > $(DESTDIR)$(BASHCOMPDIR)/irqshift
	$(BIN)/irqshift completion zsh > $(DESTDIR)$(ZSHCOMPDIR)/_irqshift
	$(BIN)/irqshift completion fish > $(DESTDIR)$(FISHCOMPDIR)/irqshift.fish
	chmod 0644 $(DESTDIR)$(BASHCOMPDIR)/irqshift $(DESTDIR)$(ZSHCOMPDIR)/_irqshift $(DESTDIR)$(FISHCOMPDIR)/irqshift.fish
	sed 's#@BINDIR@#$(BINDIR)#' systemd/irqshift.service.in > $(DESTDIR)$(UNITDIR)/irqshift.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/irqshift.service
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/default/irqshift ]; then \
		install -D -m 0644 systemd/irqshift.default $(DESTDIR)$(SYSCONFDIR)/default/irqshift; fi
	install -d $(DESTDIR)$(SYSCONFDIR)/irqshift/rules.d
	@if [ ! -e $(DESTDIR)$(SYSCONFDIR)/irqshift/rules.d/50-example.toml ]; then \
		install -m 0644 packaging/rules.d/50-example.toml $(DESTDIR)$(SYSCONFDIR)/irqshift/rules.d/50-example.toml; fi

lint: $(STATICCHECK)
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags vm ./tests/vm/...
	$(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

# Benchmarks behind docs/BENCHMARKS.md.
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./sysfs/ ./affinity/
	$(GO) test -run '^$$' -bench . -benchmem -benchtime 30x ./daemon/

# The daemon's reaction time in the arm64 VM (6.12 GICv3, 6.12 GICv2, 6.1 GICv3): boots the VM,
# runs TestDaemonHotplug with BENCH_VM_CHURN churn steps and prints n, median, p90, max per
# configuration (tests/vm/bench.sh; variables in tests/vm/vm.mk). Not part of `make test`.
.PHONY: bench-vm
bench-vm: vm-testbin vm-irqshift-bin
	BENCH_VM_CONFIGS="$(BENCH_VM_CONFIGS)" BENCH_VM_CHURN="$(BENCH_VM_CHURN)" bash $(VM_DIR)/bench.sh $(VM_TEST_BIN)

# Longer fuzzing than the seed corpora of `make test`.
FUZZTIME ?= 30s
fuzz:
	$(GO) test ./sysfs -run '^$$' -fuzz FuzzParseInterrupts -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cpuset -run '^$$' -fuzz FuzzCPUList -fuzztime $(FUZZTIME)
	$(GO) test ./internal/cpuset -run '^$$' -fuzz FuzzCPUMask -fuzztime $(FUZZTIME)
	$(GO) test ./rules -run '^$$' -fuzz FuzzParse -fuzztime $(FUZZTIME)
	$(GO) test ./sysfs -run '^$$' -fuzz FuzzDirentNumbers -fuzztime $(FUZZTIME)
	$(GO) test ./affinity -run '^$$' -fuzz FuzzGICChipMatchers -fuzztime $(FUZZTIME)
	$(GO) test ./affinity -run '^$$' -fuzz FuzzParseBanFile -fuzztime $(FUZZTIME)
	$(GO) test ./sysfs -run '^$$' -fuzz FuzzParseMountInfo -fuzztime $(FUZZTIME)

clean:
	rm -rf $(BIN)

-include tests/vm/vm.mk
include packaging/deb.mk
-include ebpf/ebpf.mk
