#!/usr/bin/env bash
# End-to-end on a real cluster (kind, k3d or ACK): applies deploy/ and a small CPU revision, sends
# traffic through swell-gateway and checks 0 -> N -> 0. Uses the current kubectl context.
#   SWELL_IMAGE=ghcr.io/swell-dev/swell:dev tests/e2e/kube.sh
# kind: build the image, `kind load docker-image "$SWELL_IMAGE"` first. Needs kubectl and curl.
set -euo pipefail
cd "$(dirname "$0")/../.."
image="${SWELL_IMAGE:-ghcr.io/swell-dev/swell:0.1.0}"
ns=swell-e2e
work="$(mktemp -d)"
trap 'rm -rf "$work"; kill "${pf:-0}" 2>/dev/null || true' EXIT

say() { echo "== $*"; }
wait_for() { # wait_for DESCRIPTION SECONDS COMMAND...
  local what=$1 secs=$2; shift 2
  for _ in $(seq "$secs"); do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
  echo "timed out after ${secs}s: $what" >&2; exit 1
}
replicas() { kubectl -n "$ns" get deployment e2e-v1 -o jsonpath='{.spec.replicas}'; }

say "install Swell ($image)"
# The control token Secret is created at install, outside deploy/ (deploy/README.md); kept across reruns.
kubectl create namespace swell-system --dry-run=client -o yaml | kubectl apply -f -
kubectl -n swell-system get secret swell-control-token >/dev/null 2>&1 ||
  kubectl -n swell-system create secret generic swell-control-token --from-literal=token="$(head -c 32 /dev/urandom | base64)"
cp -r deploy "$work/"
(cd "$work/deploy" && kubectl kustomize . | sed "s|image: ghcr.io/swell-dev/swell:0.1.0|image: $image|") | kubectl apply -f -
kubectl -n swell-system rollout status deployment/swell-control --timeout=180s
kubectl -n swell-system rollout status deployment/swell-gateway --timeout=180s

say "a revision at zero (python http.server, 30 s stable window)"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f -
kubectl -n swell-system patch configmap swell-autoscaler --type merge \
  -p '{"data":{"stable-window":"30s","scale-to-zero-grace-period":"10s","allow-zero-initial-scale":"true"}}'
kubectl -n "$ns" apply -f - <<'YAML'
apiVersion: serving.swell.dev/v1alpha1
kind: Revision
metadata: {name: e2e-v1}
spec:
  port: 8000
  readinessPath: /
  scaling: {metric: concurrency, target: 1, minScale: 0, maxScale: 5, initialScale: 0}
  template:
    spec:
      containers:
        - {name: web, image: python:3.12-alpine, args: [python, -m, http.server, "8000"], ports: [{containerPort: 8000}]}
---
apiVersion: serving.swell.dev/v1alpha1
kind: Route
metadata: {name: e2e}
spec:
  pathPrefix: /
  traffic: [{revisionName: e2e-v1, percent: 100}]
YAML
wait_for "Revision Ready" 60 bash -c "kubectl -n $ns get revision e2e-v1 -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
[ "$(replicas)" = 0 ] || { echo "expected 0 replicas, got $(replicas)"; exit 1; }

say "traffic: 0 -> N"
kubectl -n swell-system port-forward service/swell-gateway 18080:80 >/dev/null & pf=$!
wait_for "port-forward" 20 curl -s -o /dev/null localhost:18080/
seq 200 | xargs -P 8 -I{} curl -s -o /dev/null -w '%{http_code}\n' localhost:18080/ | sort | uniq -c
wait_for "scale out to >1" 120 bash -c "[ \"\$(kubectl -n $ns get deployment e2e-v1 -o jsonpath='{.spec.replicas}')\" -gt 1 ]"

say "idle: N -> 0"
wait_for "scale to zero" 180 bash -c "[ \"\$(kubectl -n $ns get deployment e2e-v1 -o jsonpath='{.spec.replicas}')\" = 0 ]"
kubectl -n "$ns" get revisions,routes
say "ok"
