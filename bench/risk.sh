#!/usr/bin/env bash
# What risk scoring adds to a sign-in (criterion, release profile): the user's full history
# parsed, signals derived, scored, decided, recorded and serialized again; and opening and
# re-sealing that history with AES-256-GCM. Writes bench/results/risk.md. Usage: bash bench/risk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
cargo bench --locked -p latchkey-risk --bench assess -- --warm-up-time 1 --measurement-time 4 >/dev/null
mkdir -p bench/results
python3 - "$CARGO_TARGET_DIR/criterion" > bench/results/risk.md <<'PY'
import json, os, sys, datetime
root = sys.argv[1]
def mean(name):
    with open(os.path.join(root, f"risk_{name}", "new", "estimates.json")) as f:
        e = json.load(f)["mean"]
    return e["point_estimate"] / 1000, e["confidence_interval"]["lower_bound"] / 1000, e["confidence_interval"]["upper_bound"] / 1000
print("# Risk scoring cost per sign-in")
print()
print(f"{datetime.datetime.utcnow():%Y-%m-%dT%H:%MZ}, {os.cpu_count()} cores, criterion mean (95% CI), release profile.")
print("The history is full (10 devices, 20 networks, 10 AS, a place, hours). The database read and")
print("write of the sealed row are the store's and come on top (one primary-key read, one update).")
print()
print("| step | µs |")
print("|---|---|")
total = 0
for name, label in [("score_with_history", "parse history, derive signals, score, decide, record, serialize"),
                    ("open_and_seal_history", "open and re-seal the history (AES-256-GCM)")]:
    m, lo, hi = mean(name)
    total += m
    print(f"| {label} | {m:.2f} ({lo:.2f}–{hi:.2f}) |")
print(f"| **total** | **{total:.2f}** (target ≤ 1000) |")
PY
cat bench/results/risk.md
