#!/usr/bin/env bash
# Schemathesis against the admin API, driven by the OpenAPI document Latchkey serves
# (GET /admin/openapi.json), on both backends: SQLite + memory and PostgreSQL + Redis.
# A fresh instance per backend gets a tenant with one user, group, role and client and a
# tenant-admin token; Schemathesis then sends generated requests to every operation, valid ones
# and (negative mode) ones the schema forbids, and fails on any 5xx, a response that breaks its
# schema (the schemas are derived from the handlers' types), an undocumented status code, or a
# request the schema forbids that the server accepts.
#   bash scripts/api-fuzz.sh [MAX_EXAMPLES]   (default 25 per operation)
set -euo pipefail
cd "$(dirname "$0")/.."
MAX=${1:-25}
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
command -v schemathesis >/dev/null || python3 -m pip install --quiet 'schemathesis==4.32.5'
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --locked --quiet -p latchkey
BIN="$CARGO_TARGET_DIR/debug/latchkey"
PG_URL=${LATCHKEY_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432}
PG_URL=${PG_URL%/postgres}
REDIS_URL=${LATCHKEY_TEST_REDIS_URL:-redis://127.0.0.1:6379}
WORK=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS latchkey_api_fuzz" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

run_backend() { # run_backend NAME DATABASE_URL SESSION_STORE
  local name=$1 db=$2 sessions=$3 port dir
  port=$(free_port); dir="$WORK/$name"; mkdir -p "$dir"
  lk() {
    (cd "$dir" && env LATCHKEY_DATABASE_URL="$db" LATCHKEY_SESSION_STORE="$sessions" LATCHKEY_KEYS_DIR="$dir/keys" \
      LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_PUBLIC_URL="http://127.0.0.1:$port" LATCHKEY_LOG=warn "$BIN" "$@")
  }
  lk migrate >/dev/null
  lk tenant create acme >/dev/null
  lk user create --tenant acme --username alice --email alice@acme.test >/dev/null
  local token decoy system
  token=$(lk admin-token create --tenant acme --name fuzz --role tenant-admin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  system=$(lk system-token create --name fuzz --role system-admin --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
  # The credential routes get another credential's id: the run's own would be learned from the
  # list (coverage and stateful phases) and revoked, and every later request would be a 401,
  # then a 429.
  decoy=$(lk admin-token create --tenant acme --name decoy --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  (cd "$dir" && exec env LATCHKEY_DATABASE_URL="$db" LATCHKEY_SESSION_STORE="$sessions" LATCHKEY_KEYS_DIR="$dir/keys" \
    LATCHKEY_LISTEN="127.0.0.1:$port" LATCHKEY_PUBLIC_URL="http://127.0.0.1:$port" LATCHKEY_LOG=warn "$BIN" serve) \
    >"$dir/serve.log" 2>&1 &
  PID=$!
  for _ in $(seq 1 300); do curl -fs -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.1; done
  echo "== schemathesis ($name, $MAX examples per operation)"
  # The path's tenant is fixed to the token's; everything else is generated. Failed-auth
  # throttling is a feature under test elsewhere; here every request carries a valid token.
  local rc=0
  # The bearer scheme gets the token; no generated credentials, since every failed
  # authentication counts towards the per-address throttle and would turn the run into 429s.
  # A request the schema forbids must be refused: besides Schemathesis' list, 412 (an If-Match
  # that names no version is refused before the body is read) and 413 count as refusals.
  printf '[parameters]\n"path.tenant" = "acme"\n\n[generation]\nwith-security-parameters = false\n\n[auth.openapi.bearer]\nbearer = "%s"\n\n[auth.openapi.system]\nbearer = "%s"\n\n[checks.negative_data_rejection]\nexpected-statuses = ["400", "401", "403", "404", "405", "406", "409", "412", "413", "415", "422", "428", "429"]\n\n[[operations]]\ninclude-path-regex = "/credentials/"\nparameters = { "path.id" = "%s" }\n' "$token" "$system" "$decoy" >"$dir/schemathesis.toml"
  # The tenant's routes first, then the system scope's (which may delete the tenant).
  local scope
  for scope in --exclude-path-regex --include-path-regex; do
    schemathesis --config-file "$dir/schemathesis.toml" run "http://127.0.0.1:$port/admin/openapi.json" \
      --url "http://127.0.0.1:$port" "$scope" '^/admin/system/' \
      --max-examples "$MAX" --workers 1 --seed 1 \
      --mode all \
      --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection \
      --generation-deterministic \
      --no-color || rc=$?
    [ "$rc" = 0 ] || break
  done
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  if [ "$rc" != 0 ]; then
    echo "--- server log ($name)"; tail -50 "$dir/serve.log"
    return "$rc"
  fi
}

run_backend sqlite-memory "sqlite://$WORK/fuzz.db" memory
psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS latchkey_api_fuzz" -c "CREATE DATABASE latchkey_api_fuzz" >/dev/null
redis-cli -u "$REDIS_URL/13" FLUSHDB >/dev/null
run_backend postgres-redis "$PG_URL/latchkey_api_fuzz" "$REDIS_URL/13"
echo "== api fuzz passed on both backends"
