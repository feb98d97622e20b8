#!/usr/bin/env bash
# Builds the pinned Kubernetes control-plane binaries liqo-rs tests against, from Go modules:
#   kube-apiserver, kube-controller-manager, kube-scheduler, kubectl   (k8s.io/kubernetes)
#   etcd, etcdctl                                                     (go.etcd.io/etcd)
#   kwok                                                              (sigs.k8s.io/kwok)
# and what liqo-testenv's real nodes run:
#   kubelet, kube-proxy                                               (k8s.io/kubernetes)
#   coredns                                                           (github.com/coredns/coredns)
#   pause                                                             (hack/pause, the sandbox)
# into ${LIQO_K8S_BIN:-$HOME/.cache/liqo-rs/k8s/<version>/bin}.
#
# Idempotent: a binary that is already there at the pinned version is not rebuilt, so a warm run
# takes seconds. If LIQO_K8S_BIN points at a directory that already holds all the binaries (for
# example official release binaries), nothing is built; they are only checked.
#
# Usage: hack/k8s-binaries.sh [--print-dir]
#   --print-dir   print the binary directory on stdout and exit (no build)
set -euo pipefail

K8S_VERSION=1.36.3          # k8s.io/kubernetes; staging modules are v0.36.3
ETCD_VERSION=3.6.16         # go.etcd.io/etcd/server/v3
KWOK_VERSION=0.8.0          # sigs.k8s.io/kwok
COREDNS_VERSION=1.14.7      # github.com/coredns/coredns
PAUSE_VERSION=1             # hack/pause/main.go (bump when it changes)

CACHE_ROOT="${LIQO_CACHE_DIR:-$HOME/.cache/liqo-rs}/k8s/v${K8S_VERSION}"
BIN_DIR="${LIQO_K8S_BIN:-$CACHE_ROOT/bin}"
SRC_DIR="$CACHE_ROOT/src"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler kubectl etcd etcdctl kwok)
NODE_BINARIES=(kubelet kube-proxy coredns pause)
HACK_DIR="$(cd "$(dirname "$0")" && pwd)"

if [[ "${1:-}" == "--print-dir" ]]; then echo "$BIN_DIR"; exit 0; fi

log() { printf '[k8s-binaries] %s\n' "$*" >&2; }
die() { printf '[k8s-binaries] error: %s\n' "$*" >&2; exit 1; }

# A binary is up to date when it runs and reports the pinned version (a version bump, or a
# truncated or overwritten file, rebuilds it). Stamp files mark the binaries this script built.
reported_version() {
  case "$1" in
    kubectl) "$BIN_DIR/kubectl" version --client 2>/dev/null ;;
    coredns) "$BIN_DIR/coredns" -version 2>/dev/null ;;
    pause) cat "$BIN_DIR/.pause.version" 2>/dev/null ;;
    etcdctl) "$BIN_DIR/etcdctl" version 2>/dev/null ;;
    *) "$BIN_DIR/$1" --version 2>/dev/null ;;
  esac
}
stamp_ok() {
  [[ -x "$BIN_DIR/$1" && -f "$BIN_DIR/.$1.version" ]] || return 1
  local v; v=$(reported_version "$1") || return 1
  [[ "$v" == *"${2#v}"* ]]
}
write_stamp() { echo "$2" >"$BIN_DIR/.$1.version"; }

all_present() { local b; for b in "${BINARIES[@]}" "${NODE_BINARIES[@]}"; do [[ -x "$BIN_DIR/$b" ]] || return 1; done; }

# Binaries supplied by the user (LIQO_K8S_BIN with no stamps): accept them if all are present
# and kube-apiserver runs.
if [[ -n "${LIQO_K8S_BIN:-}" ]] && all_present && [[ ! -f "$BIN_DIR/.kube-apiserver.version" ]]; then
  v=$("$BIN_DIR/kube-apiserver" --version 2>&1) || die "LIQO_K8S_BIN=$BIN_DIR: kube-apiserver does not run: $v"
  log "using binaries in LIQO_K8S_BIN=$BIN_DIR ($v); nothing to build"
  exit 0
fi

need_k8s=0 need_etcd=0 need_kwok=0 need_node=0 need_coredns=0 need_pause=0
for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do stamp_ok "$b" "v$K8S_VERSION" || need_k8s=1; done
for b in etcd etcdctl; do stamp_ok "$b" "v$ETCD_VERSION" || need_etcd=1; done
stamp_ok kwok "v$KWOK_VERSION" || need_kwok=1
for b in kubelet kube-proxy; do stamp_ok "$b" "v$K8S_VERSION" || need_node=1; done
stamp_ok coredns "$COREDNS_VERSION" || need_coredns=1
stamp_ok pause "v$PAUSE_VERSION" || need_pause=1

if (( need_k8s + need_etcd + need_kwok + need_node + need_coredns + need_pause == 0 )); then
  log "all binaries present in $BIN_DIR (kubernetes v$K8S_VERSION, etcd v$ETCD_VERSION, kwok v$KWOK_VERSION, coredns v$COREDNS_VERSION)"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is not installed (needed to build Kubernetes v$K8S_VERSION from source).
  Install Go >= 1.26 (https://go.dev/doc/install), or set LIQO_K8S_BIN to a directory that holds
  ${BINARIES[*]}."
mkdir -p "$BIN_DIR" "$SRC_DIR" || die "cannot create $BIN_DIR"
export CGO_ENABLED=0 GOFLAGS="${GOFLAGS:-} -mod=mod" GOTOOLCHAIN=local
BUILD_LOG="$CACHE_ROOT/build.log"
: >"$BUILD_LOG"
STAGE="$BIN_DIR/.staging"
# Builds land in $STAGE first and are moved into place once complete, so an interrupted build
# never leaves a half-written binary behind.
install_built() { local b; for b in "$@"; do mv -f "$STAGE/$b" "$BIN_DIR/$b"; done; }
run() { # run a build step, keeping its output in the build log
  if ! "$@" >>"$BUILD_LOG" 2>&1; then
    tail -n 30 "$BUILD_LOG" >&2
    die "build step failed: $*
  full log: $BUILD_LOG"
  fi
}

# The Go module that builds Kubernetes commands $@ (k8s.io/kubernetes pinned, its staging
# modules replaced by their tags), in $SRC_DIR/$1; sets $ld to the version flags.
k8s_module() {
  local dir=$1; shift
  d="$SRC_DIR/$dir"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  run go mod init "liqo.local/$dir"
  run go mod edit -go=1.26.0 -godebug=default=go1.24 "-require=k8s.io/kubernetes@v$K8S_VERSION"
  staging="api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider cluster-bootstrap
    code-generator component-base component-helpers controller-manager cri-api cri-client csi-translation-lib
    dynamic-resource-allocation endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
    kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission sample-apiserver sample-cli-plugin
    sample-controller cri-streaming streaming"
  s="0.${K8S_VERSION#1.}"
  for m in $staging; do run go mod edit "-replace=k8s.io/$m=k8s.io/$m@v$s"; done
  run go get -tool "${@/%/@v$K8S_VERSION}"
  minor="${K8S_VERSION#1.}"; minor="${minor%%.*}"
  ld="-s -w"
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $p.gitVersion=v$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld="$ld -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=1970-01-01T00:00:00Z"
  done
}

if (( need_k8s )); then
  t0=$SECONDS
  log "building kubernetes v$K8S_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler, kubectl); cold, this takes about 10 minutes on 2 cores"
  pkgs=(k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
        k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl)
  k8s_module kubernetes "${pkgs[@]}"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  run go build -trimpath -ldflags "$ld" -o "$STAGE/" "${pkgs[@]}"
  install_built kube-apiserver kube-controller-manager kube-scheduler kubectl
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl; do write_stamp "$b" "v$K8S_VERSION"; done
  log "kubernetes built in $((SECONDS - t0)) s"
fi

if (( need_node )); then
  t0=$SECONDS
  log "building kubelet and kube-proxy v$K8S_VERSION (for real nodes); a few minutes once the control plane is built"
  pkgs=(k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy)
  k8s_module kubernetes-node "${pkgs[@]}"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  run go build -trimpath -ldflags "$ld" -o "$STAGE/" "${pkgs[@]}"
  install_built kubelet kube-proxy
  for b in kubelet kube-proxy; do write_stamp "$b" "v$K8S_VERSION"; done
  log "kubelet and kube-proxy built in $((SECONDS - t0)) s"
fi

if (( need_coredns )); then
  t0=$SECONDS
  log "building coredns v$COREDNS_VERSION"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  run env GOBIN="$STAGE" GOFLAGS= go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@v$COREDNS_VERSION"
  install_built coredns
  write_stamp coredns "$COREDNS_VERSION"
  log "coredns built in $((SECONDS - t0)) s"
fi

if (( need_pause )); then
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  (cd "$HACK_DIR/pause" && run env GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$STAGE/pause" main.go)
  install_built pause
  write_stamp pause "v$PAUSE_VERSION"
  log "pause built"
fi

if (( need_etcd )); then
  t0=$SECONDS
  log "building etcd v$ETCD_VERSION"
  d="$SRC_DIR/etcd"; rm -rf "$d"; mkdir -p "$d"; cd "$d"
  run go mod init liqo.local/etcdbin
  run go get -tool "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" "go.etcd.io/etcd/etcdctl/v3@v$ETCD_VERSION"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  run go build -trimpath -ldflags "-s -w" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3
  run go build -trimpath -ldflags "-s -w" -o "$STAGE/etcdctl" go.etcd.io/etcd/etcdctl/v3
  install_built etcd etcdctl
  for b in etcd etcdctl; do write_stamp "$b" "v$ETCD_VERSION"; done
  log "etcd built in $((SECONDS - t0)) s"
fi

if (( need_kwok )); then
  t0=$SECONDS
  log "building kwok v$KWOK_VERSION"
  rm -rf "$STAGE"; mkdir -p "$STAGE"
  run env GOBIN="$STAGE" GOFLAGS= go install -trimpath -ldflags "-s -w" "sigs.k8s.io/kwok/cmd/kwok@v$KWOK_VERSION"
  install_built kwok
  write_stamp kwok "v$KWOK_VERSION"
  log "kwok built in $((SECONDS - t0)) s"
fi

rm -rf "$STAGE"
all_present || die "some binaries are still missing from $BIN_DIR; see $BUILD_LOG"
log "binaries ready in $BIN_DIR"
