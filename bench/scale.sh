#!/usr/bin/env bash
# Scale: the token and sign-in cases on a small PostgreSQL database and on one loaded with 1 M
# users in 10 k tenants (bench/scale/load.mjs), two Latchkey servers side by side in interleaved
# rounds. Writes bench/results/YYYY-MM-DD-scale.md and .jsonl. Same settings as bench/run.sh,
# plus BENCH_SCALE_TENANTS (10000) and BENCH_SCALE_USERS (1000000).
exec bash "$(dirname "$0")/run.sh" --scale "$@"
