#!/usr/bin/env bash
# One command to run every test: installs what is missing, makes sure PostgreSQL and Redis are up,
# then runs the whole workspace suite (SQLite + memory and PostgreSQL + Redis).
# Set CI=true to make the PostgreSQL and Redis tests mandatory instead of skippable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/services.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
cargo test --workspace --locked "$@"
