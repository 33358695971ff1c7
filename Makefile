# glusterkube — see README.md.
GO        ?= go
export GOFLAGS := -buildvcs=false
TEST_FLAGS ?= -count=1 -timeout 30m
BENCH_PKGS ?= ./topology/ ./provisioner/ ./csi/ ./migrate/

VERSION   ?= v0.1.0-dev
IMAGE     ?= ghcr.io/glusterkube/glusterkube:$(VERSION)

STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: all build deps binaries test unit race vet lint demo bench fmt clean image

all: build

build:
	$(GO) build -ldflags "-X github.com/glusterkube/glusterkube/cmd/glusterkube/app.Version=$(VERSION)" -o bin/glusterkube ./cmd/glusterkube

# The container image the examples name (needs docker).
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMAGE) .

deps:
	@hack/deps.sh

# Build (once; cached in ~/.cache/glusterkube) heketi, the control plane and the kubelet, kwok and pause.
binaries: deps
	$(GO) run ./hack/envctl build

vet:
	$(GO) vet ./...

lint:
	$(STATICCHECK) ./...

# Everything: vet, staticcheck, unit and integration tests on the real stack.
test: binaries vet lint
	GLUSTERKUBE_INTEGRATION=1 $(GO) test $(TEST_FLAGS) ./...

# The integration tests under the race detector. The provisioner package is
# left out: its tests build several provisioners in one process, and the
# provision library writes client-go's global scheme each time (a deployed
# process builds one, before anything reads the scheme).
RACE_PKGS ?= $$($(GO) list ./... | grep -v '/provisioner$$')
race: binaries
	GLUSTERKUBE_INTEGRATION=1 $(GO) test -race $(TEST_FLAGS) $(RACE_PKGS)

# Unit tests only (integration tests skip).
unit:
	$(GO) test ./...

# The main job on embedded defaults: a local heketi and control plane.
demo: binaries
	$(GO) run ./hack/demo $(if $(KEEP),-keep)

bench: binaries
	GLUSTERKUBE_INTEGRATION=1 $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m $(BENCH_PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

clean:
	rm -rf bin
