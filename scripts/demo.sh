#!/usr/bin/env bash
# One command to try Latchkey: installs what is missing, builds, and runs `latchkey demo` on the
# embedded default (SQLite under ./latchkey-data, in-process sessions) at http://localhost:8080.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
exec cargo run --locked --quiet -p latchkey -- demo "$@"
