#!/usr/bin/env bash
# Sign-in throughput (HTTP end to end) next to raw argon2id verifications per second, in one
# run. Writes bench/results/signin.md. Usage: bash bench/signin.sh [seconds-per-phase]
# (BENCH_CLIENTS=N sets the concurrent clients; default 8 per core)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
cargo run --release --locked --quiet -p latchkey-tests --bin signin-bench -- "${1:-10}"
