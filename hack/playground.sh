#!/usr/bin/env bash
# The liqo-rs playground: two local clusters (rome and milan, real control planes from
# liqo-testenv), the Liqo CRDs, one liqo-controller-manager per cluster, rome peered to milan
# with liqoctl, then `liqoctl info`. Everything stays up until Ctrl-C.
#
#   make playground                          # as root: with the network (gateways started
#                                            # by the controller-managers in network namespaces)
#   PLAYGROUND_NETWORKING=0 make playground  # control-plane peering only (any user)
#   PLAYGROUND_EXIT=1 make playground        # set everything up, print it, and stop (tests)
#   REAL_NODES=1 make playground             # as root: each cluster also gets real nodes
set -euo pipefail
cd "$(dirname "$0")/.."
TARGET="${CARGO_TARGET_DIR:-target}/debug"
if [[ -z "${PLAYGROUND_NETWORKING:-}" ]]; then
    PLAYGROUND_NETWORKING=0
    [[ "$(id -u)" == 0 ]] && PLAYGROUND_NETWORKING=1
fi
if [[ "$PLAYGROUND_NETWORKING" == 1 && "$(id -u)" != 0 ]]; then
    echo "PLAYGROUND_NETWORKING=1 needs root (gateways run in network namespaces)" >&2
    exit 1
fi

BIN_DIR="${LIQO_K8S_BIN:-$HOME/.cache/liqo-rs/k8s/v1.36.3/bin}"
KUBECTL="$(command -v kubectl || echo "$BIN_DIR/kubectl")"
STATE="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$STATE"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ "${REAL_NODES:-0}" != 0 ]]; then
    [[ "$(id -u)" == 0 ]] || { echo "REAL_NODES needs root (real kubelets and containers)" >&2; exit 1; }
    # What real nodes run: Debian's container runtime and CNI plugins, the node binaries.
    missing=()
    command -v containerd >/dev/null 2>&1 || missing+=(containerd)
    [[ -x /usr/sbin/runc ]] || missing+=(runc)
    [[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
    [[ -x /bin/busybox ]] || missing+=(busybox-static)
    if ((${#missing[@]})); then
        echo "installing ${missing[*]}"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
            --no-install-recommends "${missing[@]}" >/dev/null
    fi
    hack/k8s-binaries.sh
fi
cargo build -q -p liqo-testenv -p liqo-controller-manager -p liqoctl -p liqo-virtual-kubelet \
    -p liqo-gateway
"$TARGET/liqo-testenv" up --names rome,milan --real-nodes "${REAL_NODES:-0}" --env-file "$STATE/env" &
PIDS+=($!)
for _ in $(seq 1 240); do
    [[ -s "$STATE/env" ]] && break
    kill -0 "${PIDS[0]}" 2>/dev/null || { echo "liqo-testenv exited" >&2; exit 1; }
    sleep 0.5
done
[[ -s "$STATE/env" ]] || { echo "clusters did not start in 2 minutes" >&2; exit 1; }
declare -A KC
while IFS='=' read -r name path; do KC[$name]="$path"; done < "$STATE/env"

for name in rome milan; do
    "$KUBECTL" --kubeconfig "${KC[$name]}" apply --server-side -f deployments/crds >/dev/null
    # Logs next to the cluster's own (liqo-testenv's directory of the cluster).
    logs="$(dirname "${KC[$name]}")"
    log="$logs/liqo-controller-manager.log"
    GW=()
    [[ "$PLAYGROUND_NETWORKING" == 1 ]] &&
        GW=(--gateway-launcher netns --gateway-log-dir "$logs")
    # The pod and service CIDRs are detected (kube-system/kubeadm-config).
    "$TARGET/liqo-controller-manager" --kubeconfig "${KC[$name]}" --cluster-id "$name" \
        --virtual-kubelet-log-dir "$logs" "${GW[@]}" >"$log" 2>&1 &
    PIDS+=($!)
    echo "liqo-controller-manager for $name running (log: $log)"
done

NET=(--skip-networking)
[[ "$PLAYGROUND_NETWORKING" == 1 ]] && NET=()
# The managers write their cluster id at start; liqoctl needs it.
for _ in $(seq 1 60); do
    "$TARGET/liqoctl" --kubeconfig "${KC[rome]}" version >/dev/null 2>&1 &&
        "$TARGET/liqoctl" --kubeconfig "${KC[milan]}" version >/dev/null 2>&1 && break
    sleep 0.5
done
"$TARGET/liqoctl" --kubeconfig "${KC[rome]}" peer --remote-kubeconfig "${KC[milan]}" "${NET[@]}"
echo
"$TARGET/liqoctl" --kubeconfig "${KC[rome]}" info
echo
"$TARGET/liqoctl" --kubeconfig "${KC[milan]}" info

# Offloading: liqo-demo extended to milan, one pod kept local, one sent to the virtual node.
echo
"$KUBECTL" --kubeconfig "${KC[rome]}" create namespace liqo-demo --dry-run=client -o yaml |
    "$KUBECTL" --kubeconfig "${KC[rome]}" apply -f - >/dev/null
"$TARGET/liqoctl" --kubeconfig "${KC[rome]}" offload namespace liqo-demo \
    --namespace-mapping-strategy EnforceSameName
"$KUBECTL" --kubeconfig "${KC[rome]}" -n liqo-demo apply -f - >/dev/null <<'YAML'
apiVersion: v1
kind: Pod
metadata: {name: nginx-local}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: liqo.io/type, operator: NotIn, values: [virtual-node]}]
  containers: [{name: nginx, image: nginx}]
---
apiVersion: v1
kind: Pod
metadata: {name: nginx-remote}
spec:
  affinity:
    nodeAffinity:
      requiredDuringSchedulingIgnoredDuringExecution:
        nodeSelectorTerms:
        - matchExpressions: [{key: liqo.io/type, operator: In, values: [virtual-node]}]
  containers: [{name: nginx, image: nginx}]
YAML
for _ in $(seq 1 120); do
    phases=$("$KUBECTL" --kubeconfig "${KC[rome]}" -n liqo-demo get pods \
        -o jsonpath='{.items[*].status.phase}' 2>/dev/null || true)
    [[ "$phases" == "Running Running" ]] && break
    sleep 0.5
done
"$KUBECTL" --kubeconfig "${KC[rome]}" -n liqo-demo get pods -o wide
cat <<MSG

Try:
  $TARGET/liqoctl --kubeconfig ${KC[rome]} info peer milan
  $KUBECTL --kubeconfig ${KC[rome]} get foreignclusters,virtualnodes -A
  $KUBECTL --kubeconfig ${KC[milan]} get tenants.authentication.liqo.io,resourceslices.authentication.liqo.io,quotas.offloading.liqo.io -A
  $KUBECTL --kubeconfig ${KC[milan]} -n liqo-demo get pods -o wide   # the offloaded twin

Press Ctrl-C to stop everything.
MSG
[[ "${PLAYGROUND_EXIT:-0}" == 1 ]] && exit 0
wait "${PIDS[0]}"
