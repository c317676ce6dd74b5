#!/usr/bin/env bash
# make e2e-kind: the image, loaded into a kind cluster, the chart and SeaweedFS installed, then the
# tests marked `kind`. Needs docker, kind and a cluster (KIND_CLUSTER, default "kind"): create one
# with `kind create cluster`. Without a reachable cluster it says so and exits 0 (the kind tests
# skip themselves the same way).
set -euo pipefail

IMAGE=${IMAGE:-streamjob:0.1.0}
KIND_CLUSTER=${KIND_CLUSTER:-kind}
NAMESPACE=${NAMESPACE:-streamjob-system}
BIN=${BIN:-.venv/bin}
HELM=${HELM:-$($BIN/python -m tests.deploy.helm)}

if ! command -v kind >/dev/null || ! command -v kubectl >/dev/null \
    || ! kubectl --context "kind-$KIND_CLUSTER" get --raw /readyz >/dev/null 2>&1; then
    echo "e2e-kind: no reachable kind cluster 'kind-$KIND_CLUSTER' (kind create cluster); skipped"
    exit 0
fi
kubectl config use-context "kind-$KIND_CLUSTER"

kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"
"$HELM" upgrade --install streamjob charts/streamjob --namespace "$NAMESPACE" --create-namespace \
    --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" --wait --timeout 3m
# Helm never upgrades CRDs: apply the chart's copy every time (DESIGN.md section 8).
kubectl apply --server-side -f charts/streamjob/crds/streamjob.yaml
kubectl apply -f examples/k8s/seaweedfs.yaml
kubectl wait --for=condition=complete job/seaweedfs-bucket --timeout=3m

STREAMJOB_KIND_CONTEXT="kind-$KIND_CLUSTER" "$BIN/python" -m pytest -q -m kind tests/deploy \
    -p no:cacheprovider
