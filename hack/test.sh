#!/usr/bin/env bash
# The test command of liqo-rs (`make test`, and CI's .ci/run). It installs what it needs, then
# runs every check, printing the time of each phase and, last, one summary line:
#   summary: N passed, N failed, N skipped
#
# Phases: prerequisites (Debian packages, Kubernetes binaries) -> CRD drift check -> cargo fmt
# -> clippy -> unit tests and doc tests -> real-control-plane tests -> data-plane tests (root).
# Set LIQO_TEST_PHASES="fmt clippy" (space separated) to run only some phases.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}
# CI starts from a clean clone every time: keep cargo's build artefacts beside the Kubernetes
# binaries so that only what changed is rebuilt.
if [[ -n "${CI:-}" && -z "${CARGO_TARGET_DIR:-}" ]]; then
  export CARGO_TARGET_DIR="${LIQO_CACHE_DIR:-$HOME/.cache/liqo-rs}/cargo-target"
  # Incremental state is kept per source tree and never reused by the next clone: it only
  # doubles the disk a run takes (and piles up run after run in the shared target dir).
  export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}
fi
export RUST_BACKTRACE=${RUST_BACKTRACE:-1}
LOG_DIR="${CARGO_TARGET_DIR:-$ROOT/target}/test-logs"
mkdir -p "$LOG_DIR"
: >"$LOG_DIR/cargo-test.log"

declare -a PHASE_NAMES=() PHASE_SECS=() PHASE_RESULTS=()
FAILED=0
T_START=$SECONDS

want() { [[ -z "${LIQO_TEST_PHASES:-}" ]] || [[ " $LIQO_TEST_PHASES " == *" $1 "* ]]; }

phase() { # phase NAME command...
  local name=$1; shift
  want "$name" || return 0
  echo
  echo "==> [$name] $(date -u +%H:%M:%S)"
  local t0=$SECONDS rc=0
  "$@" || rc=$?
  local dt=$((SECONDS - t0))
  PHASE_NAMES+=("$name"); PHASE_SECS+=("$dt")
  if ((rc == 0)); then PHASE_RESULTS+=(ok); else PHASE_RESULTS+=("FAILED (exit $rc)"); FAILED=1; fi
  echo "<== [$name] ${PHASE_RESULTS[-1]} in ${dt} s"
}

prerequisites() {
  local pkgs=() p
  # Data-plane tests (liqo-net) drive nftables and iproute2.
  command -v nft >/dev/null 2>&1 || pkgs+=(nftables)
  command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
  command -v python3 >/dev/null 2>&1 || pkgs+=(python3)   # the NAT traffic test's tiny TCP server
  command -v ping >/dev/null 2>&1 || pkgs+=(iputils-ping)  # reachability checks through the tunnels
  # liqo-testenv's real nodes: container runtime, CNI plugins, the workload image's busybox.
  command -v containerd >/dev/null 2>&1 || pkgs+=(containerd)
  command -v runc >/dev/null 2>&1 || [[ -x /usr/sbin/runc ]] || pkgs+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || pkgs+=(containernetworking-plugins)
  [[ -x /bin/busybox ]] || pkgs+=(busybox-static)
  command -v nsenter >/dev/null 2>&1 || pkgs+=(util-linux)
  if ((${#pkgs[@]})); then
    if [[ $(id -u) -eq 0 ]]; then
      echo "installing Debian packages: ${pkgs[*]}"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null || return 1
    else
      echo "warning: missing Debian packages (${pkgs[*]}); data-plane tests need root and will not run"
    fi
  else
    echo "Debian packages present"
  fi
  command -v go >/dev/null 2>&1 || { echo "error: Go is required to build the Kubernetes binaries (or set LIQO_K8S_BIN)"; return 1; }
  hack/k8s-binaries.sh
}

# Runs cargo test with the given arguments, keeping the output for the summary.
cargo_test() {
  cargo test "$@" 2>&1 | tee -a "$LOG_DIR/cargo-test.log"
  return "${PIPESTATUS[0]}"
}

crd_drift() { cargo run -q -p liqo-crdgen -- --check; }
fmt_check() { cargo fmt --all -- --check; }
clippy_check() { cargo clippy --workspace --all-targets -- -D warnings; }
unit_tests() {
  cargo_test --workspace --lib --bins --examples && cargo_test --workspace --doc
}
# Crates whose integration tests drive the data plane (network namespaces, nftables, routes).
# Crates whose integration tests need root (network namespaces, nftables, tunnels).
DATA_PLANE_CRATES=(liqo-net liqo-gateway liqo-fabric)
control_plane_tests() {
  local exclude=() c
  for c in "${DATA_PLANE_CRATES[@]}"; do exclude+=(--exclude "$c"); done
  LIQO_K8S_BIN="${LIQO_K8S_BIN:-$(hack/k8s-binaries.sh --print-dir)}" cargo_test --workspace "${exclude[@]}" --test '*'
}
data_plane_tests() {
  if [[ $(id -u) -ne 0 ]]; then
    if [[ -n "${CI:-}" ]]; then echo "error: data-plane tests must run as root in CI"; return 1; fi
    echo "skipped: data-plane tests need root (run make test as root)"; return 0
  fi
  local pkgs=() c
  for c in "${DATA_PLANE_CRATES[@]}"; do pkgs+=(-p "$c"); done
  LIQO_K8S_BIN="${LIQO_K8S_BIN:-$(hack/k8s-binaries.sh --print-dir)}" cargo_test "${pkgs[@]}" --test '*'
}

phase prerequisites prerequisites
phase crd-drift crd_drift
phase fmt fmt_check
phase clippy clippy_check
phase unit unit_tests
phase control-plane control_plane_tests
phase data-plane data_plane_tests

echo
echo "phase timings:"
for i in "${!PHASE_NAMES[@]}"; do
  printf '  %-15s %5s s  %s\n' "${PHASE_NAMES[$i]}" "${PHASE_SECS[$i]}" "${PHASE_RESULTS[$i]}"
done
printf '  %-15s %5s s\n' total $((SECONDS - T_START))

# Sum cargo's per-binary "test result:" lines into one closing line.
read -r passed failed ignored < <(awk '
  /^test result:/ {
    for (i = 1; i <= NF; i++) {
      if ($(i+1) ~ /^passed;?/)  p += $i
      if ($(i+1) ~ /^failed;?/)  f += $i
      if ($(i+1) ~ /^ignored;?/) s += $i
    }
  }
  END { printf "%d %d %d\n", p, f, s }' "$LOG_DIR/cargo-test.log")
if ((FAILED)) && ((failed == 0)); then failed=1; fi   # a failing non-test phase counts as a failure
echo
echo "summary: $passed passed, $failed failed, $ignored skipped"
exit $FAILED
