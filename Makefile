# liqo-rs developer entry points. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help
CLUSTERS ?= 2

.PHONY: bench-net help test playground k8s-binaries crds fmt clippy clean-testenv

help: ## Show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

test: ## Install prerequisites, then run every check and test (what CI runs)
	@hack/test.sh

playground: k8s-binaries ## Bring up rome and milan, peer rome to milan, print liqoctl info; until Ctrl-C
	@exec hack/playground.sh

k8s-binaries: ## Build the pinned Kubernetes, etcd and kwok binaries (cached)
	@hack/k8s-binaries.sh

crds: ## Regenerate deployments/crds from the Rust types
	@cargo run -q -p liqo-crdgen

fmt: ## Format the code
	@cargo fmt --all

clippy: ## Lint the code
	@cargo clippy --workspace --all-targets -- -D warnings

clean-testenv: ## Remove logs and data of local test clusters
	@rm -rf target/testenv

bench-net: ## Tunnel benchmark (root): iperf3 + ping pod to pod, tunnels beside plain veth
	@command -v iperf3 >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 >/dev/null; }
	@cargo bench -p liqo-net --bench tunnel
