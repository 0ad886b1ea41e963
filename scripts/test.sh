#!/usr/bin/env bash
# One command to run every test: installs what is missing, makes sure PostgreSQL and Redis are up,
# then runs the whole workspace suite (SQLite + memory and PostgreSQL + Redis) and the browser
# tests (Debian's Chromium).
# Set CI=true to make the PostgreSQL and Redis tests mandatory instead of skippable.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --test
bash scripts/services.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
# playwright-core first: the Rust relying-party suite also has Chromium do the user's part.
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# node-oidc-provider: the benchmark's peer, also an upstream provider in the federation suite.
(cd bench/peer && npm ci --no-audit --no-fund --loglevel=error)
cargo test --workspace --locked "$@"
# The SAML parser budget measures process CPU, so its tests run alone, one after the other.
cargo test --workspace --locked --test saml "$@" parser_budget -- --ignored --test-threads=1
# Browser tests: the sign-in, OIDC and console pages in Debian's Chromium, driven by
# playwright-core, on each backend: the embedded default, then PostgreSQL + Redis.
for backend in embedded postgres; do
  echo "== browser tests on the ${backend} backend"
  (cd tests/browser && LATCHKEY_BROWSER_BACKEND="$backend" \
    CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/../../target}" node --test)
done
