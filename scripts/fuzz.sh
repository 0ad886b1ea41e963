#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for SECONDS each, one after another, on its
# committed corpus (fuzz/corpus/TARGET), and reports executions, coverage and crashes.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET…]     (default 60 s, every target)
#   bash scripts/fuzz.sh --merge [SECONDS] […]   also minimize the committed corpus plus what the
#                                                run found into $FUZZ_WORK/TARGET.merged
#                                                (libFuzzer -merge=1), to pick new seeds from
#
# cargo-fuzz/libFuzzer on the stable toolchain: with `--sanitizer none` cargo-fuzz passes only
# stable `-C` flags (sanitizer-coverage passes), so no nightly and no RUSTC_BOOTSTRAP; safe Rust
# needs no AddressSanitizer. Debug assertions are on, so an arithmetic overflow is a crash.
# New inputs go to a scratch directory, never into the repository.
# A crash leaves its input in fuzz/artifacts/TARGET/ and makes the script exit 1.
#   CARGO_TARGET_DIR ($HOME/.cache/lk-target-fuzz)   the fuzz build, kept warm between runs
#   FUZZ_WORK (/tmp/latchkey-fuzz)                    scratch corpora and logs
set -euo pipefail
cd "$(dirname "$0")/.."
merge=false
if [ "${1:-}" = "--merge" ]; then
  merge=true
  shift
fi
seconds="${1:-60}"
shift || true
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/install-deps.sh --fuzz >/dev/null
export PATH="$HOME/.cache/latchkey-tools/cargo-fuzz-0.13.1/bin:$PATH"
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-$HOME/.cache/lk-target-fuzz}"
work="${FUZZ_WORK:-/tmp/latchkey-fuzz}"
flags=(--sanitizer none --debug-assertions --codegen-units 16 --fuzz-dir fuzz)

targets=("$@")
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(cargo fuzz list --fuzz-dir fuzz)
fi
started=$(date +%s)
cargo fuzz build "${flags[@]}" >"$work.build.log" 2>&1 || {
  cat "$work.build.log"
  exit 1
}
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - started)) s"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  log="$work/$t.log"
  # -rss_limit_mb and -timeout make a memory blow-up or a slow input a finding too.
  if cargo fuzz run "${flags[@]}" "$t" "$work/$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    status=ok
  else
    status=CRASH
    failed+=("$t")
  fi
  stats=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^#([0-9]+)[[:space:]]+[A-Z]+[[:space:]]+/\1 execs, /')
  corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
  printf 'fuzz: %-17s %s  %s s  %s  (committed corpus %s files)\n' "$t" "$status" "$seconds" "$stats" "$corpus"
  if [ "$status" = CRASH ]; then
    grep -E 'panicked|ERROR: libFuzzer|Test unit written|SUMMARY' "$log" | head -8 | sed 's/^/    /'
  fi
  if $merge; then
    merged="$work/$t.merged"
    rm -rf "$merged" && mkdir -p "$merged"
    cargo fuzz run "${flags[@]}" "$t" "$merged" "fuzz/corpus/$t" "$work/$t" -- -merge=1 \
      -timeout=10 >"$work/$t.merge.log" 2>&1
    echo "    merged: $(find "$merged" -type f | wc -l) files in $merged"
  fi
done
echo "fuzz: ${#targets[@]} targets, $seconds s each, $((${#targets[@]} - ${#failed[@]})) clean, crashes in: ${failed[*]:-none} ($(($(date +%s) - started)) s)"
((${#failed[@]} == 0))
