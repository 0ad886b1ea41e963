#!/usr/bin/env bash
# Renders and validates the deployment files without a cluster or a container engine:
#   - deploy/kubernetes: `kubectl kustomize`, then every object against the Kubernetes 1.37
#     schemas (kubernetes-validate, strict: unknown fields are errors);
#   - deploy/compose/compose.yaml: the Compose Specification's schema (check-jsonschema);
#   - deploy/compose/haproxy.cfg: `haproxy -c` with a throwaway certificate.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.local/bin:$PATH"
if ! command -v kubernetes-validate >/dev/null || ! command -v check-jsonschema >/dev/null; then
    python3 -m pip install --quiet --disable-pip-version-check kubernetes-validate==1.37.0 check-jsonschema==0.39.0
fi
if ! command -v haproxy >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy >/dev/null
fi
command -v kubectl >/dev/null || { echo "kubectl is missing (it renders deploy/kubernetes)" >&2; exit 1; }
echo "== kubernetes: kubectl kustomize | kubernetes-validate --strict"
rendered=$(mktemp)
trap 'rm -f "$rendered"; rm -rf "${tmp:-}"' EXIT
kubectl kustomize deploy/kubernetes > "$rendered"
kubernetes-validate --strict --kubernetes-version 1.37 --quiet "$rendered"
kinds=$(grep -c '^kind:' "$rendered")
for kind in Deployment Service PodDisruptionBudget HorizontalPodAutoscaler Job NetworkPolicy; do
    grep -q "^kind: $kind$" "$rendered" || { echo "deploy/kubernetes renders no $kind" >&2; exit 1; }
done
echo "$kinds objects valid"
echo "== compose: compose-spec schema"
check-jsonschema --builtin-schema vendor.compose-spec deploy/compose/compose.yaml
echo "== haproxy -c"
tmp=$(mktemp -d)
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=localhost \
    -keyout "$tmp/key.pem" -out "$tmp/cert.pem" 2>/dev/null
cat "$tmp/cert.pem" "$tmp/key.pem" > "$tmp/latchkey.pem"
sed "s#/usr/local/etc/haproxy/latchkey.pem#$tmp/latchkey.pem#" deploy/compose/haproxy.cfg > "$tmp/haproxy.cfg"
haproxy -c -q -f "$tmp/haproxy.cfg"
echo "deployment files ok"
