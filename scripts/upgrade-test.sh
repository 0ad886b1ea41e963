#!/usr/bin/env bash
# The rolling-upgrade test (issue 23 item 7; docs/operations.md#upgrades): builds the previous
# release (the commit in deploy/PREVIOUS_RELEASE) in its own target directory, checks that the
# migrations added since then only expand the schema, then runs crates/latchkey/tests/upgrade.rs
# with both binaries against one PostgreSQL database.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
previous=$(tr -d '[:space:]' < deploy/PREVIOUS_RELEASE)
git cat-file -e "$previous^{commit}" || { echo "deploy/PREVIOUS_RELEASE names $previous, which this clone lacks" >&2; exit 1; }

echo "== migrations since $previous: expand only"
added=$(git diff --name-only --diff-filter=AM "$previous" -- migrations/postgres | grep '/up.sql$' || true)
bad=0
for f in $added; do
    # Removing or changing what the previous release reads breaks it while both run. Such a
    # statement belongs in a later release, marked with a `-- contract:` comment on its line.
    if grep -nEi 'DROP (TABLE|COLUMN)|RENAME|ALTER COLUMN .* (TYPE|SET NOT NULL)' "$f" | grep -v -- '-- contract:'; then
        echo "^ $f: a contracting change in the release after $previous" >&2
        bad=1
    fi
done
[ "$bad" = 0 ] || exit 1
echo "$(echo "$added" | grep -c . || true) migrations added, none contracting"

src="$HOME/.cache/latchkey-previous-src"
target="$HOME/.cache/latchkey-previous-target"
if [ "$(cat "$src/.commit" 2>/dev/null)" != "$previous" ]; then
    rm -rf "$src" && mkdir -p "$src"
    git archive "$previous" | tar -x -C "$src"
    echo "$previous" > "$src/.commit"
fi
echo "== building the previous release ($previous)"
(cd "$src" && CARGO_TARGET_DIR="$target" cargo build --locked --quiet -p latchkey)
echo "== previous and current side by side"
PREVIOUS_LATCHKEY_BIN="$target/debug/latchkey" CI="${CI:-}" \
    cargo test --locked --quiet -p latchkey --test upgrade -- --nocapture
