#!/usr/bin/env bash
# Signing through the key ring vs raw aws-lc-rs (criterion, release profile), side by side in one
# run. Writes bench/results/keys.md. Usage: bash bench/keys.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
cargo bench --locked -p latchkey-keys --bench signing -- --warm-up-time 1 --measurement-time 4 >/dev/null
mkdir -p bench/results
python3 - "$CARGO_TARGET_DIR/criterion" > bench/results/keys.md <<'PY'
import json, os, sys, datetime
root = sys.argv[1]
def mean(alg, kind):
    with open(os.path.join(root, "sign", f"{alg}_{kind}", "new", "estimates.json")) as f:
        e = json.load(f)["mean"]
    return e["point_estimate"] / 1000, e["confidence_interval"]["lower_bound"] / 1000, e["confidence_interval"]["upper_bound"] / 1000
print("# Signing: key ring vs raw aws-lc-rs")
print()
print(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ}, {os.cpu_count()} cores, criterion mean (95% CI) per signature, release profile.")
print("`raw`: aws-lc-rs signs a prepared JWS signing input with a parsed key. `ring`: `KeyRing::sign` builds the JWT")
print("(header, claims, base64url) and signs with the cached active key of the tenant.")
print()
print("| alg | raw (µs) | ring (µs) | ring overhead |")
print("|---|---|---|---|")
for alg in ["ES256", "EdDSA", "RS256"]:
    r, rl, ru = mean(alg, "raw")
    k, kl, ku = mean(alg, "ring")
    print(f"| {alg} | {r:.2f} ({rl:.2f}–{ru:.2f}) | {k:.2f} ({kl:.2f}–{ku:.2f}) | {100 * (k - r) / r:+.1f} % |")
PY
cat bench/results/keys.md
