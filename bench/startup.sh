#!/usr/bin/env bash
# Start-up time and idle memory of `latchkey serve` on the embedded default (SQLite + memory).
# Measures, per run: milliseconds from exec to the first `/readyz` 200, and VmRSS two seconds
# after that. Run 1 starts on a fresh database (migrations run, master key generated, the demo
# tenant's keys made); later runs reuse it.
# Usage: bash bench/startup.sh [runs]   (writes bench/results/startup.md)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-5}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
cargo build --release --locked --quiet -p latchkey
bin="$CARGO_TARGET_DIR/release/latchkey"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=18080
now_ms() { date +%s%3N; }
export LATCHKEY_DATABASE_URL="sqlite://$work/latchkey.db" LATCHKEY_KEYS_DIR="$work/keys" LATCHKEY_LOG=warn
rows=""
for i in $(seq 1 "$runs"); do
  start=$(now_ms)
  LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_PUBLIC_URL="http://localhost:$port" \
    "$bin" serve >"$work/serve.log" 2>&1 &
  pid=$!
  until curl -fs -o /dev/null "http://127.0.0.1:$port/readyz"; do
    kill -0 "$pid" 2>/dev/null || { cat "$work/serve.log"; exit 1; }
    sleep 0.005
  done
  ready=$(( $(now_ms) - start ))
  sleep 2
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  kill -TERM "$pid"; wait "$pid" || true
  # After the fresh start, add a tenant (with its signing keys) for the later runs.
  [ "$i" = 1 ] && "$bin" tenant create demo >/dev/null
  rows+="| $i | $([ "$i" = 1 ] && echo "fresh (migrations, new master key)" || echo "existing, 1 tenant with keys") | $ready | $(( rss / 1024 )).$(( (rss % 1024) * 10 / 1024 )) |"$'\n'
done
mkdir -p bench/results
{
  echo "# latchkey serve: start-up and idle memory"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m), release build, embedded default (SQLite + in-process sessions), $(nproc) HTTP workers."
  echo
  echo "| run | database | exec → /readyz 200 (ms) | idle RSS (MiB) |"
  echo "|---|---|---|---|"
  printf '%s' "$rows"
} > bench/results/startup.md
cat bench/results/startup.md
