#!/usr/bin/env bash
# End to end on a real Kubernetes: a kind cluster, the image built from the Dockerfile, MinIO as the
# vault's S3 store, the Helm chart, then the tests marked `kind` (tests/kind) against all of it.
#
#   hack/e2e-kind.sh [pytest arguments...]        e.g.  hack/e2e-kind.sh -x -k restore
#
# Needs kind, docker (with a running daemon), kubectl and helm on PATH, and pytest with the test
# dependencies (pip install -e '.[test]') in the Python that runs it.
#
# Environment:
#   TK_KIND_CLUSTER             the cluster's name (default tablekeeper-e2e); one that exists is reused
#   TK_KIND_KEEP=1              keep the cluster afterwards (and the tests' namespace); else a
#                               cluster this run created is deleted (a reused one is always kept)
#   TK_KIND_NAMESPACE           where MinIO and its Secrets live (default tablekeeper-e2e)
#   TK_KIND_OPERATOR_NAMESPACE  the chart's namespace (default tablekeeper-system)
#   TK_MINIO_IMAGE              the MinIO image, pulled by the cluster at run time
#   PYTEST                      the pytest command (default: pytest)
#
# The tests use only the context kind-$TK_KIND_CLUSTER of a kubeconfig written for this run; the
# current context of ~/.kube/config is never touched.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cluster="${TK_KIND_CLUSTER:-tablekeeper-e2e}"
store_ns="${TK_KIND_NAMESPACE:-tablekeeper-e2e}"
operator_ns="${TK_KIND_OPERATOR_NAMESPACE:-tablekeeper-system}"
minio_image="${TK_MINIO_IMAGE:-quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z}"
image="tablekeeper:e2e"
release="tablekeeper"
read -r -a pytest <<< "${PYTEST:-pytest}"

say() { printf '==> %s\n' "$*" >&2; }

# --- what this needs ----------------------------------------------------------------------------

missing=()
for tool in kind docker kubectl helm; do
    command -v "$tool" > /dev/null 2>&1 || missing+=("$tool")
done
command -v "${pytest[0]}" > /dev/null 2>&1 || missing+=("${pytest[0]} (set PYTEST)")
if ((${#missing[@]})); then
    printf 'e2e-kind: missing on PATH: %s\n' "${missing[*]}" >&2
    printf 'e2e-kind: needs kind, docker, kubectl and helm (https://kind.sigs.k8s.io/)\n' >&2
    exit 2
fi
if ! docker info > /dev/null 2>&1; then
    printf 'e2e-kind: docker is installed but its daemon does not answer (docker info failed)\n' >&2
    exit 2
fi

# --- the cluster, and cleaning up after it --------------------------------------------------------

workdir="$(mktemp -d)"
export KUBECONFIG="${workdir}/kubeconfig"
context="kind-${cluster}"
k() { kubectl --context "$context" "$@"; }

cleanup() {
    local status=$?
    if ((status != 0)) && [[ -s "$KUBECONFIG" ]]; then
        say "failed ($status): the operator's last log lines"
        k -n "$operator_ns" logs -l app.kubernetes.io/component=operator --tail=100 >&2 || true
    fi
    if [[ "${TK_KIND_KEEP:-}" == "1" || "$created" != "1" ]]; then
        say "keeping cluster ${cluster} (made before this run, or TK_KIND_KEEP=1)"
    else
        say "deleting cluster ${cluster} (TK_KIND_KEEP=1 keeps it)"
        kind delete cluster --name "$cluster" || true
    fi
    rm -rf "$workdir"
    exit "$status"
}
created=0  # only a cluster this run made is deleted at the end
trap cleanup EXIT

clusters="$(kind get clusters 2> /dev/null)"
if grep -qx "$cluster" <<< "$clusters"; then
    say "reusing kind cluster ${cluster} (kept afterwards: this run did not make it)"
else
    say "creating kind cluster ${cluster}"
    created=1
    kind create cluster --name "$cluster" --wait 180s
fi
kind get kubeconfig --name "$cluster" > "$KUBECONFIG"
k cluster-info > /dev/null

# --- the image ----------------------------------------------------------------------------------

say "building ${image} from the Dockerfile"
docker build --tag "$image" "$root"
kind load docker-image "$image" --name "$cluster"
# The tag stays the same from run to run: the image id in a pod annotation rolls the operator when
# the image changed (on a reused cluster).
image_id="$(docker image inspect --format '{{.Id}}' "$image")"

# --- MinIO: the vault's S3 store, its credentials and a vault key ----------------------------------

say "deploying MinIO (${minio_image}) in ${store_ns}"
k create namespace "$store_ns" --dry-run=client -o yaml | k apply -f - > /dev/null
# Made once per cluster: MinIO keeps the credentials it started with, and backups need their key.
if ! k -n "$store_ns" get secret minio-credentials > /dev/null 2>&1; then
    k -n "$store_ns" create secret generic minio-credentials \
        --from-literal=AWS_ACCESS_KEY_ID="tablekeeper" \
        --from-literal=AWS_SECRET_ACCESS_KEY="$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')"
fi
if ! k -n "$store_ns" get secret vault-key > /dev/null 2>&1; then
    k -n "$store_ns" create secret generic vault-key \
        --from-literal=vault.key="$(head -c 32 /dev/urandom | base64)"
fi
k -n "$store_ns" apply -f - <<YAML
apiVersion: v1
kind: Service
metadata:
  name: minio
  labels: {app.kubernetes.io/name: minio}
spec:
  selector: {app.kubernetes.io/name: minio}
  ports:
    - {name: s3, port: 9000, targetPort: s3}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: minio
  labels: {app.kubernetes.io/name: minio}
spec:
  replicas: 1
  strategy: {type: Recreate}
  selector:
    matchLabels: {app.kubernetes.io/name: minio}
  template:
    metadata:
      labels: {app.kubernetes.io/name: minio}
    spec:
      containers:
        - name: minio
          image: ${minio_image}
          args: ["server", "/data", "--address", ":9000"]
          env:
            - name: MINIO_ROOT_USER
              valueFrom: {secretKeyRef: {name: minio-credentials, key: AWS_ACCESS_KEY_ID}}
            - name: MINIO_ROOT_PASSWORD
              valueFrom: {secretKeyRef: {name: minio-credentials, key: AWS_SECRET_ACCESS_KEY}}
          ports:
            - {name: s3, containerPort: 9000}
          readinessProbe:
            httpGet: {path: /minio/health/ready, port: s3}
            periodSeconds: 2
          volumeMounts:
            - {name: data, mountPath: /data}
      volumes:
        - name: data
          emptyDir: {}
YAML
k -n "$store_ns" rollout status deployment/minio --timeout=300s

# --- the operator, from the chart -----------------------------------------------------------------

say "installing the chart (release ${release} in ${operator_ns})"
cat > "${workdir}/values.yaml" <<YAML
image:
  repository: ${image%%:*}
  tag: ${image##*:}
  pullPolicy: IfNotPresent
operator:
  # Status refreshes and retries sooner than the defaults: the tests wait on them.
  extraArgs: ["--status-interval", "5", "--retry-delay", "2"]
podAnnotations:
  tablekeeper.io/image-id: "${image_id}"
YAML
helm upgrade --install "$release" "${root}/charts/tablekeeper" \
    --kube-context "$context" --namespace "$operator_ns" --create-namespace \
    --values "${workdir}/values.yaml" --wait --timeout 5m
k wait --for condition=established --timeout=60s \
    crd/tables.tablekeeper.io crd/backupvaults.tablekeeper.io crd/backups.tablekeeper.io \
    crd/backupplans.tablekeeper.io crd/pitrconfigs.tablekeeper.io crd/restores.tablekeeper.io > /dev/null
# The Deployment is named after the release (the chart's fullname when the release is "tablekeeper").
k -n "$operator_ns" rollout status "deployment/${release}" --timeout=180s

# --- the tests ----------------------------------------------------------------------------------

export TK_KIND_CLUSTER="$cluster" TK_KIND_NAMESPACE="$store_ns" TK_KIND_OPERATOR_NAMESPACE="$operator_ns"
say "running the kind tests"
cd "$root"
# -n 0: one process (pyproject's addopts start two xdist workers), so the suite's output streams
# as it runs against the one cluster.
"${pytest[@]}" -n 0 -m kind tests/kind -v "$@"
