#!/usr/bin/env bash
# Backup and restore times for a tenant of N users (default 100000): PostgreSQL → backup file →
# a fresh PostgreSQL database and a fresh SQLite file, each restore checked with `audit verify`.
# The users are inserted with SQL (one real argon2id hash copied to all: hashing 100k passwords
# would measure argon2, not the backup). Usage: bash bench/backup.sh [users] [binary]
# (writes bench/results/backup.md; the binary defaults to a release build).
set -euo pipefail
cd "$(dirname "$0")/.."
users=${1:-100000}
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
bin=${2:-}
if [ -z "$bin" ]; then
  cargo build --release --locked --quiet -p latchkey
  bin="$CARGO_TARGET_DIR/release/latchkey"
fi
work=$(mktemp -d)
admin=${LATCHKEY_TEST_POSTGRES_ADMIN:-postgres://postgres@127.0.0.1:5432/postgres}
base=${admin%/*}
src=lk_bench_backup_src; dst=lk_bench_backup_dst
cleanup() { rm -rf "$work"; for d in $src $dst; do psql -q "$admin" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true; done; }
trap cleanup EXIT
for d in $src $dst; do psql -q "$admin" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" -c "CREATE DATABASE $d" >/dev/null; done
export LATCHKEY_MASTER_KEY=$(openssl rand -base64 32) LATCHKEY_LOG=warn
lk() { LATCHKEY_DATABASE_URL="$1" "$bin" "${@:2}"; }
lk "$base/$src" tenant create acme >/dev/null
printf 'tulip-gravel-orbit-42' | lk "$base/$src" user create --tenant acme --username seed --password-stdin >/dev/null
psql -q "$base/$src" <<SQL
INSERT INTO users (id, tenant_id, username, email, display_name, status, password_hash, password_changed_at,
                   created_at, updated_at, email_verified)
SELECT gen_random_uuid()::text, u.tenant_id, 'user' || g, 'user' || g || '@acme.test', 'User ' || g, 'active',
       u.password_hash, u.password_changed_at, u.created_at, u.updated_at, true
FROM users u, generate_series(1, $users) g WHERE u.username = 'seed';
SQL
ms() { date +%s%3N; }
t=$(ms); lk "$base/$src" backup -o "$work/b" >/dev/null; backup_ms=$(( $(ms) - t ))
size=$(stat -c %s "$work/b")
t=$(ms); lk "$base/$dst" restore -i "$work/b" >/dev/null; pg_ms=$(( $(ms) - t ))
lk "$base/$dst" audit verify --tenant acme >/dev/null
t=$(ms); lk "sqlite://$work/restored.db" restore -i "$work/b" >/dev/null; lite_ms=$(( $(ms) - t ))
lk "sqlite://$work/restored.db" audit verify --tenant acme >/dev/null
count=$(psql -tA "$base/$dst" -c "SELECT count(*) FROM users")
out=bench/results/backup.md
{
  echo "# Backup and restore, $(( users + 1 )) users"
  echo
  echo "$(date -u +%Y-%m-%dT%H:%MZ), commit $(git rev-parse --short HEAD), $(nproc) cores, binary: ${bin#"$CARGO_TARGET_DIR"/}."
  echo
  echo "| step | time | |"
  echo "|---|---|---|"
  echo "| backup from PostgreSQL | $(( backup_ms )) ms | file $(( size / 1048576 )) MiB |"
  echo "| restore into a fresh PostgreSQL | $(( pg_ms )) ms | $count users, audit verify ok |"
  echo "| restore into a fresh SQLite file | $(( lite_ms )) ms | audit verify ok |"
} > "$out"
cat "$out"
