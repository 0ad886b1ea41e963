#!/usr/bin/env bash
# The side-by-side benchmark (docs/performance.md): Latchkey on PostgreSQL + Redis and on the
# embedded default (SQLite + in-process sessions), node-oidc-provider (bench/peer/) and a bare
# actix + aws-lc-rs ceiling (bench/ceiling/), loaded by wrk in interleaved rounds: every round
# runs each case against each target in turn, so all of them see the same background load, and
# ratios are taken per round (median over rounds).
#
# Usage: bash bench/run.sh            default run (release build; under 15 minutes; about 3 more
#                                     with BENCH_BASELINE)
#        bash bench/run.sh --smoke    keeps the scripts working (CI): 1 s per case, one round, the
#                                     debug binary if built; fails on any non-2xx or socket error
#        bash bench/run.sh --scale    (or bench/scale.sh) the token and sign-in cases on a small
#                                     database and on one with 1 M users in 10 k tenants, side by side
#
# Writes bench/results/YYYY-MM-DD.md and .jsonl (scale: YYYY-MM-DD-scale.*; smoke: only printed,
# unless BENCH_RESULTS=DIR). Settings (environment):
#   BENCH_SECONDS (5; smoke 1)  seconds per case and target in a round
#   BENCH_ROUNDS (3; smoke 1)   measured rounds, after one untimed warm-up round (none in smoke)
#   BENCH_CONNS (32)            wrk connections;   BENCH_THREADS (1) wrk threads
#   BENCH_FLOW_CONC (16; smoke 4) concurrent browsers in the code-flow and sign-in cases
#   BENCH_PORT_BASE (18180)     ports BASE+1 .. BASE+6 on 127.0.0.1
#   BENCH_PG_URL (postgres://root@127.0.0.1:5432)  PostgreSQL server; databases latchkey_bench
#                               (latchkey_bench_base, latchkey_bench_scale) are created and dropped
#   BENCH_REDIS_URL (redis://127.0.0.1:6379)  Redis; databases 11 (12, 13) are flushed
#   BENCH_BASELINE (unset)      default mode only: a git revision (e.g. 59ee5f8) run as one more
#                               target, lk-base (PostgreSQL + Redis, database latchkey_bench_base,
#                               Redis 13), in the cases cc_jwt, cc_opaque, introspect, refresh and
#                               userinfo: before/after figures from the same run. Its release binary
#                               is built from `git archive REV` (same BENCH_TARGET_DIR, before the
#                               current tree's) and cached as BENCH_TARGET_DIR/baseline-SHA/latchkey
#   BENCH_TARGET_DIR ($HOME/.cache/latchkey-bench-target)  release builds (Latchkey, ceiling)
#   CARGO_TARGET_DIR ($HOME/.cache/latchkey-target)  where --smoke looks for debug/latchkey
#   BENCH_SRC (this checkout)   the Latchkey source tree to build (e.g. a `git archive` of a commit;
#                               BENCH_SRC_LABEL names it in the report)
#   BENCH_KEEP=1                keep the work directory (logs, pools, raw wrk output)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
MODE=default
for arg in "$@"; do
  case "$arg" in
    --smoke) MODE=smoke ;;
    --scale) MODE=scale ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $arg (try --help)" >&2; exit 2 ;;
  esac
done
started=$(date +%s)
say() { printf '[bench %3ss] %s\n' "$(( $(date +%s) - started ))" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

if [ "$MODE" = smoke ]; then
  SECONDS_PER=${BENCH_SECONDS:-1}; ROUNDS=${BENCH_ROUNDS:-1}
else
  SECONDS_PER=${BENCH_SECONDS:-5}; ROUNDS=${BENCH_ROUNDS:-3}
fi
CONNS=${BENCH_CONNS:-32}
THREADS=${BENCH_THREADS:-1}
FLOW_CONC=${BENCH_FLOW_CONC:-$([ "$MODE" = smoke ] && echo 4 || echo 16)}
PORT_BASE=${BENCH_PORT_BASE:-18180}
PG_URL=${BENCH_PG_URL:-postgres://root@127.0.0.1:5432}
export PGOPTIONS="-c client_min_messages=warning"
REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379}
BENCH_TARGET_DIR=${BENCH_TARGET_DIR:-$HOME/.cache/latchkey-bench-target}
SRC=${BENCH_SRC:-$ROOT}
BASELINE_REV=${BENCH_BASELINE:-}
if [ -n "$BASELINE_REV" ] && [ "$MODE" != default ]; then
  printf 'run.sh: BENCH_BASELINE is for the default mode only; ignored with --%s\n' "$MODE" >&2
  BASELINE_REV=""
fi
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/latchkey-target}"
[ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
PASSWORD="tulip-gravel-orbit-42"
REDIRECT="http://127.0.0.1:$((PORT_BASE + 9))/cb" # never contacted: the driver reads the redirect
DAY=$(date -u +%Y-%m-%d)

WORK=$(mktemp -d "${TMPDIR:-/tmp}/latchkey-bench.XXXXXX")
PIDS=()
DBS=()
REDIS_DBS=()
cleanup() {
  local rc=$?
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for db in "${DBS[@]}"; do psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true; done
  for n in "${REDIS_DBS[@]}"; do redis-cli -u "$REDIS_URL/$n" FLUSHDB >/dev/null 2>&1 || true; done
  if [ "${BENCH_KEEP:-}" = 1 ] || { [ "$rc" != 0 ] && [ "$MODE" = smoke ]; }; then
    say "work directory kept: $WORK"
  else
    rm -rf "$WORK"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------------------------
# Tools, installed only when missing (idempotent).
need_apt=()
command -v wrk >/dev/null 2>&1 || need_apt+=(wrk)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v psql >/dev/null 2>&1 || need_apt+=(postgresql-client)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
if ((${#need_apt[@]})); then
  say "installing ${need_apt[*]} (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# The ceiling builds in the background while the peer's packages install and Latchkey builds and
# starts (on a fresh clone that overlap keeps --smoke under a minute); waited for before it runs.
CEILING_BIN=""
CEILING_BUILD=""
if [ "$MODE" != scale ]; then
  say "building the ceiling (bench/ceiling, release) in the background"
  CARGO_TARGET_DIR="$BENCH_TARGET_DIR/ceiling" nice -n 10 cargo build --release --locked --quiet \
    --manifest-path bench/ceiling/Cargo.toml >"$WORK/ceiling-build.log" 2>&1 &
  CEILING_BUILD=$!; PIDS+=("$CEILING_BUILD")
  CEILING_BIN="$BENCH_TARGET_DIR/ceiling/release/latchkey-bench-ceiling"
fi
if ! cmp -s bench/peer/package-lock.json bench/peer/node_modules/.bench-lock 2>/dev/null; then
  say "npm ci (bench/peer)"
  (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error >/dev/null 2>"$WORK/npm.log") || { cat "$WORK/npm.log" >&2; die "npm ci"; }
  cp bench/peer/package-lock.json bench/peer/node_modules/.bench-lock
fi
psql -qAt "$PG_URL/postgres" -c 'SELECT 1' >/dev/null 2>&1 || die "PostgreSQL does not answer at $PG_URL"
redis-cli -u "$REDIS_URL" PING >/dev/null 2>&1 || die "Redis does not answer at $REDIS_URL"

# ---------------------------------------------------------------------------------------------
# Builds.
BASE_BIN="" # BENCH_BASELINE's binary
if [ "$MODE" = smoke ]; then
  LK_BIN="$CARGO_TARGET_DIR/debug/latchkey"
  if [ ! -x "$LK_BIN" ]; then
    say "building debug latchkey (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    nice -n 10 cargo build --locked --quiet -p latchkey --manifest-path "$SRC/Cargo.toml"
  fi
  BUILD="debug"
else
  if [ -n "$BASELINE_REV" ]; then
    # The baseline first: the current tree's build below then overwrites release/latchkey, and
    # both share the compiled dependencies of the one target directory.
    BASE_SHA=$(git -C "$ROOT" rev-parse --verify --quiet "$BASELINE_REV^{commit}") \
      || die "BENCH_BASELINE=$BASELINE_REV is not a commit of $ROOT"
    BASE_SHORT=$(git -C "$ROOT" rev-parse --short "$BASE_SHA")
    BASE_BIN="$BENCH_TARGET_DIR/baseline-$BASE_SHA/latchkey"
    if [ -x "$BASE_BIN" ]; then
      say "baseline $BASE_SHORT: cached $BASE_BIN"
    else
      # Both trees' workspace crates map to the same artifacts (cargo hashes path packages relative
      # to the workspace root) and cargo judges them fresh by file times, so each tree could be
      # handed the other's build: the baseline's files get the time of extraction (tar -m, newer
      # than any artifact), and the workspace crates' artifacts are removed after its build. The
      # binary is cached only after that, so an interrupted run leaves nothing half done.
      say "building release latchkey of baseline $BASE_SHORT (CARGO_TARGET_DIR=$BENCH_TARGET_DIR)"
      mkdir -p "$WORK/baseline-src"
      git -C "$ROOT" archive "$BASE_SHA" | tar -x -m -C "$WORK/baseline-src"
      CARGO_TARGET_DIR="$BENCH_TARGET_DIR" nice -n 10 cargo build --release --locked --quiet -p latchkey \
        --manifest-path "$WORK/baseline-src/Cargo.toml"
      mkdir -p "${BASE_BIN%/*}"
      cp "$BENCH_TARGET_DIR/release/latchkey" "$BASE_BIN.tmp"
      members=$(cargo metadata --no-deps --format-version 1 --manifest-path "$SRC/Cargo.toml" \
        | node -e 'let s="";process.stdin.on("data",(d)=>s+=d).on("end",()=>console.log(JSON.parse(s).packages.map((p)=>`-p ${p.name}`).join(" ")))')
      # shellcheck disable=SC2086 # one word per -p and name
      CARGO_TARGET_DIR="$BENCH_TARGET_DIR" cargo clean --release --quiet --manifest-path "$SRC/Cargo.toml" $members
      mv "$BASE_BIN.tmp" "$BASE_BIN"
    fi
  fi
  say "building release latchkey (CARGO_TARGET_DIR=$BENCH_TARGET_DIR)"
  CARGO_TARGET_DIR="$BENCH_TARGET_DIR" nice -n 10 cargo build --release --locked --quiet -p latchkey \
    --manifest-path "$SRC/Cargo.toml"
  LK_BIN="$BENCH_TARGET_DIR/release/latchkey"
  BUILD="release"
fi
SIGNIN_BENCH=""
if [ "$MODE" = default ]; then
  say "building signin-bench (the argon2id bound, release)"
  CARGO_TARGET_DIR="$BENCH_TARGET_DIR" nice -n 10 cargo build --release --locked --quiet -p latchkey-tests \
    --bin signin-bench --manifest-path "$SRC/Cargo.toml"
  SIGNIN_BENCH="$BENCH_TARGET_DIR/release/signin-bench"
fi

# ---------------------------------------------------------------------------------------------
# Helpers.
CLK_TCK=$(getconf CLK_TCK)
json() { node -e 'let v=JSON.parse(process.argv[1]);for(const k of process.argv[2].split(".")) v=v?.[k];process.stdout.write(String(v??""))' "$1" "$2"; }
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
status_kib() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
now_ms() { date +%s%3N; }
b64() { printf '%s' "$1" | base64 -w0; }

# A Latchkey instance: lk_define NAME PORT DATABASE_URL SESSION_STORE [BINARY (default $LK_BIN)]
declare -A LK_PORT LK_DB LK_SESS LK_PID LK_DIR LK_BINOF
lk_define() {
  LK_PORT[$1]=$2; LK_DB[$1]=$3; LK_SESS[$1]=$4; LK_DIR[$1]="$WORK/$1"; LK_BINOF[$1]=${5:-$LK_BIN}
  mkdir -p "${LK_DIR[$1]}"
}
lk() { # lk NAME ARGS... : the CLI with instance NAME's settings
  local n=$1; shift
  (cd "${LK_DIR[$n]}" && env LATCHKEY_DATABASE_URL="${LK_DB[$n]}" LATCHKEY_SESSION_STORE="${LK_SESS[$n]}" \
    LATCHKEY_KEYS_DIR="${LK_DIR[$n]}/keys" LATCHKEY_LISTEN="127.0.0.1:${LK_PORT[$n]}" \
    LATCHKEY_PUBLIC_URL="http://127.0.0.1:${LK_PORT[$n]}" LATCHKEY_LOG=warn "${LK_BINOF[$n]}" "$@" 2>>"${LK_DIR[$n]}/cli.log") \
    || { cat "${LK_DIR[$n]}/cli.log" >&2; die "latchkey $*"; }
}
wait_ready() { # wait_ready PID URL LOG : milliseconds polled until URL answers 200
  local pid=$1 url=$2 log=$3 i
  for i in $(seq 1 3000); do
    curl -fs -o /dev/null "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "server exited before $url answered"; }
    sleep 0.005
  done
  cat "$log" >&2; die "$url did not answer within 15 s"
}
START_MS=0
lk_start() { # lk_start NAME : serve; sets LK_PID[NAME] and START_MS (exec → /readyz 200)
  local n=$1 t0 pid
  t0=$(now_ms)
  (cd "${LK_DIR[$n]}" && exec env LATCHKEY_DATABASE_URL="${LK_DB[$n]}" LATCHKEY_SESSION_STORE="${LK_SESS[$n]}" \
    LATCHKEY_KEYS_DIR="${LK_DIR[$n]}/keys" LATCHKEY_LISTEN="127.0.0.1:${LK_PORT[$n]}" \
    LATCHKEY_PUBLIC_URL="http://127.0.0.1:${LK_PORT[$n]}" LATCHKEY_LOG=warn LATCHKEY_LOG_FORMAT=json \
    LATCHKEY_TRUSTED_PROXIES=127.0.0.1/32 "${LK_BINOF[$n]}" serve) >>"${LK_DIR[$n]}/serve.log" 2>&1 &
  pid=$!
  PIDS+=("$pid"); LK_PID[$n]=$pid
  wait_ready "$pid" "http://127.0.0.1:${LK_PORT[$n]}/readyz" "${LK_DIR[$n]}/serve.log"
  START_MS=$(( $(now_ms) - t0 ))
}
lk_stop() {
  local n=$1
  kill -TERM "${LK_PID[$n]}"; wait "${LK_PID[$n]}" 2>/dev/null || true
}
pg_fresh() { # pg_fresh DB : a new, empty database (dropped on exit)
  psql -q "$PG_URL/postgres" -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null
  DBS+=("$1")
}
redis_fresh() { redis-cli -u "$REDIS_URL/$1" FLUSHDB >/dev/null; REDIS_DBS+=("$1"); }

# Provisions tenant bench on instance NAME; writes $WORK/NAME/ids.json. With --claims (the current
# binary only: a baseline may predate these commands) also the authorization data of the
# refresh_claims case: user bench in group backend (nested in engineering), tenant roles through
# the user and a group, a client role of the "web claims" client (the web client plus the roles
# and groups scopes) and attributes org and region, which its claims config maps into the ID
# token, access token and userinfo, with one static value (tier).
lk_provision() {
  local n=$1 tenant jwt opaque web webclaims='null'
  tenant=$(lk "$n" tenant create bench --display-name "Bench" --json)
  lk "$n" tenant update bench --access-token-ttl 3600 --json >/dev/null
  jwt=$(lk "$n" client create --tenant bench --name "cc jwt" --grant client_credentials \
    --scope reports.read --access-token-format jwt --json)
  opaque=$(lk "$n" client create --tenant bench --name "cc opaque" --grant client_credentials \
    --scope reports.read --access-token-format opaque --json)
  web=$(lk "$n" client create --tenant bench --name "web" --redirect-uri "$REDIRECT" \
    --grant authorization_code --grant refresh_token --scope openid --scope email --scope profile \
    --scope offline_access --first-party --id-token-alg ES256 --json)
  printf '%s\n' "$PASSWORD" | lk "$n" user create --tenant bench --username bench \
    --email bench@bench.test --password-stdin --json >/dev/null
  if [ "${2:-}" = --claims ]; then
    webclaims=$(lk "$n" client create --tenant bench --name "web claims" --redirect-uri "$REDIRECT" \
      --grant authorization_code --grant refresh_token --scope openid --scope email --scope profile \
      --scope offline_access --scope roles --scope groups --first-party --id-token-alg ES256 --json)
    local wc_id; wc_id=$(json "$webclaims" client_id)
    lk "$n" group create --tenant bench engineering --json >/dev/null
    lk "$n" group create --tenant bench backend --json >/dev/null
    lk "$n" group add-member --tenant bench engineering --group backend --json >/dev/null
    lk "$n" group add-member --tenant bench backend --user bench --json >/dev/null
    lk "$n" role create --tenant bench employee --json >/dev/null
    lk "$n" role create --tenant bench oncall --json >/dev/null
    lk "$n" role create --tenant bench --client "$wc_id" reports:read --json >/dev/null
    lk "$n" role assign --tenant bench employee --group engineering --json >/dev/null
    lk "$n" role assign --tenant bench oncall --user bench --json >/dev/null
    lk "$n" role assign --tenant bench reports:read --client "$wc_id" --group backend --json >/dev/null
    lk "$n" attribute define --tenant bench org --type string --json >/dev/null
    lk "$n" attribute define --tenant bench region --type string --json >/dev/null
    lk "$n" attribute set --tenant bench bench org=acme-emea region=eu --json >/dev/null
    printf '%s\n' '{"mappers":[
      {"claim":"org","source":{"attribute":"org"},"tokens":["id_token","access_token","userinfo"]},
      {"claim":"region","source":{"attribute":"region"},"tokens":["id_token","access_token","userinfo"]},
      {"claim":"tier","source":{"value":"gold"},"tokens":["id_token","access_token","userinfo"]}]}' \
      > "${LK_DIR[$n]}/claims.json"
    lk "$n" client claims --tenant bench "$wc_id" --set "${LK_DIR[$n]}/claims.json" --json >/dev/null
  fi
  node -e 'const [t,j,o,w,wc,r,p]=process.argv.slice(1).map((s,i)=>i<5?JSON.parse(s):s);
    const c=(x)=>({id:x.client_id,secret:x.client_secret});
    const clients={jwt:c(j),opaque:c(o),web:{...c(w),redirect_uri:r}};
    if(wc) clients.webclaims={...c(wc),redirect_uri:r};
    console.log(JSON.stringify({tenant_id:t.id,clients,user:{username:"bench",password:p,email:"bench@bench.test"}}))' \
    "$tenant" "$jwt" "$opaque" "$web" "$webclaims" "$REDIRECT" "$PASSWORD" > "${LK_DIR[$n]}/ids.json"
}

# ---------------------------------------------------------------------------------------------
# Targets.
declare -A BASE PID IDS TITLE
TARGETS=()
META="$WORK/meta.json"
echo '{}' > "$META"
meta() { # meta KEY JSON-VALUE : records a fact for the report
  node -e 'const fs=require("fs");const m=JSON.parse(fs.readFileSync(process.argv[1]));
    const ks=process.argv[2].split(".");let o=m;for(const k of ks.slice(0,-1)) o=o[k]??={};
    o[ks.at(-1)]=JSON.parse(process.argv[3]);fs.writeFileSync(process.argv[1],JSON.stringify(m))' "$META" "$1" "$2"
}
meta mode "\"$MODE\""; meta build "\"$BUILD\""; meta seconds "$SECONDS_PER"; meta rounds "$ROUNDS"
meta conns "$CONNS"; meta threads "$THREADS"; meta flow_conc "$FLOW_CONC"; meta cores "$(nproc)"
meta date "\"$(date -u +%Y-%m-%dT%H:%MZ)\""
if [ "$SRC" = "$ROOT" ]; then
  meta commit "\"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates migrations 2>/dev/null || echo +dirty)\""
else
  meta commit "\"${BENCH_SRC_LABEL:-source tree $SRC}\""
fi
meta node_version "\"$(node --version)\""
meta peer_version "\"$(node -p 'require("./bench/peer/node_modules/oidc-provider/package.json").version')\""
meta wrk_version "\"$(wrk -v 2>&1 | head -1 | awk '{print $2}')\""
meta cpu "\"$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)\""

add_target() { # add_target KEY TITLE BASE PID IDS-FILE
  TARGETS+=("$1"); TITLE[$1]=$2; BASE[$1]=$3; PID[$1]=$4; IDS[$1]=$5
  meta "targets.$1.title" "\"$2\""
}

if [ "$MODE" = scale ]; then
  lk_define small $((PORT_BASE + 1)) "$PG_URL/latchkey_bench" "$REDIS_URL/11"
  lk_define scale $((PORT_BASE + 5)) "$PG_URL/latchkey_bench_scale" "$REDIS_URL/12"
  pg_fresh latchkey_bench; pg_fresh latchkey_bench_scale; redis_fresh 11; redis_fresh 12
  say "provisioning both databases"
  lk_provision small; lk_provision scale
  say "loading 1 M users in 10 k tenants into latchkey_bench_scale"
  t0=$(now_ms)
  node bench/scale/load.mjs --db "$PG_URL/latchkey_bench_scale" --master-key "${LK_DIR[scale]}/keys/master.key" \
    --tenants "${BENCH_SCALE_TENANTS:-10000}" --users "${BENCH_SCALE_USERS:-1000000}" --spread "$WORK/spread-ids.txt" \
    >"$WORK/load.json" 2>"$WORK/load.log" \
    || { cat "$WORK/load.log" >&2; die "scale load"; }
  meta load "$(cat "$WORK/load.json")"
  meta load.ms "$(( $(now_ms) - t0 ))"
  say "loaded in $(( ($(now_ms) - t0) / 1000 )) s: $(cat "$WORK/load.json")"
  for n in small scale; do lk_start "$n"; done
  add_target lk-small "Latchkey PG+Redis, small DB" "http://127.0.0.1:${LK_PORT[small]}/t/bench" "${LK_PID[small]}" "${LK_DIR[small]}/ids.json"
  add_target lk-scale "Latchkey PG+Redis, $(json "$(cat "$WORK/load.json")" users) users in $(json "$(cat "$WORK/load.json")" tenants) tenants" "http://127.0.0.1:${LK_PORT[scale]}/t/bench" "${LK_PID[scale]}" "${LK_DIR[scale]}/ids.json"
else
  lk_define pg $((PORT_BASE + 1)) "$PG_URL/latchkey_bench" "$REDIS_URL/11"
  lk_define emb $((PORT_BASE + 2)) "sqlite://$WORK/emb/latchkey.db" memory
  pg_fresh latchkey_bench; redis_fresh 11
  if [ -n "$BASE_BIN" ]; then
    lk_define base $((PORT_BASE + 6)) "$PG_URL/latchkey_bench_base" "$REDIS_URL/13" "$BASE_BIN"
    pg_fresh latchkey_bench_base; redis_fresh 13
  fi
  # Start-up on the embedded default: exec → first /readyz 200. Fresh database first (migrations,
  # new master key), then with the provisioned tenant.
  lk_start emb; fresh=$START_MS; lk_stop emb
  say "start-up, fresh database: $fresh ms"
  say "provisioning (latchkey CLI)"
  lk_provision emb --claims; lk_provision pg --claims
  [ -z "$BASE_BIN" ] || lk_provision base
  starts=()
  for _ in $([ "$MODE" = smoke ] && echo 1 || echo 1 2 3 4); do lk_start emb; starts+=("$START_MS"); lk_stop emb; done
  meta startup "{\"fresh_ms\":$fresh,\"existing_ms\":[$(IFS=,; echo "${starts[*]}")]}"
  say "start-up, existing database: ${starts[*]} ms"
  lk_start pg
  lk_start emb
  add_target lk-pg "Latchkey, PostgreSQL + Redis" "http://127.0.0.1:${LK_PORT[pg]}/t/bench" "${LK_PID[pg]}" "${LK_DIR[pg]}/ids.json"
  add_target lk-emb "Latchkey, embedded (SQLite + memory)" "http://127.0.0.1:${LK_PORT[emb]}/t/bench" "${LK_PID[emb]}" "${LK_DIR[emb]}/ids.json"
  if [ -n "$BASE_BIN" ]; then
    lk_start base
    add_target lk-base "Latchkey $BASE_SHORT (baseline), PostgreSQL + Redis" "http://127.0.0.1:${LK_PORT[base]}/t/bench" "${LK_PID[base]}" "${LK_DIR[base]}/ids.json"
    meta targets.lk-base.baseline "\"$BASE_SHA\""
  fi

  # node-oidc-provider with the PostgreSQL instance's client ids and secrets.
  port=$((PORT_BASE + 3))
  (cd bench/peer && exec env NODE_ENV=production PEER_PORT=$port PEER_CONFIG="${LK_DIR[pg]}/ids.json" \
    node server.mjs) >"$WORK/peer.log" 2>&1 &
  PIDS+=("$!"); node_pid=$!
  wait_ready "$node_pid" "http://127.0.0.1:$port/.well-known/openid-configuration" "$WORK/peer.log"
  add_target node "node-oidc-provider $(node -p 'require("./bench/peer/node_modules/oidc-provider/package.json").version') (Node $(node --version))" \
    "http://127.0.0.1:$port" "$node_pid" "${LK_DIR[pg]}/ids.json"

  # The ceiling serves Latchkey's own discovery document and JWKS bytes.
  wait "$CEILING_BUILD" || { cat "$WORK/ceiling-build.log" >&2; die "building the ceiling"; }
  port=$((PORT_BASE + 4))
  curl -fsS "${BASE[lk-emb]}/.well-known/openid-configuration" -o "$WORK/discovery.json"
  curl -fsS "${BASE[lk-emb]}/jwks" -o "$WORK/jwks.json"
  CEILING_LISTEN="127.0.0.1:$port" CEILING_WORKERS=2 CEILING_DISCOVERY_FILE="$WORK/discovery.json" \
    CEILING_JWKS_FILE="$WORK/jwks.json" "$CEILING_BIN" >"$WORK/ceiling.log" 2>&1 &
  PIDS+=("$!"); ceiling_pid=$!
  wait_ready "$ceiling_pid" "http://127.0.0.1:$port/healthz" "$WORK/ceiling.log"
  add_target ceiling "bare actix-web + aws-lc-rs (2 workers)" "http://127.0.0.1:$port" "$ceiling_pid" "${LK_DIR[pg]}/ids.json"
fi

if [ "$MODE" = scale ]; then
  # cc_jwt_spread: the small database has one tenant, the large one 10 k (same secret everywhere).
  secret=$(json "$(cat "${IDS[lk-scale]}")" clients.jwt.secret)
  node -e 'const fs=require("fs");const [src,dst,secret]=process.argv.slice(1);
    fs.writeFileSync(dst, fs.readFileSync(src,"utf8").split("\n").filter(Boolean).map((l)=>{const [slug,id]=l.split(" ");
      return `/t/${slug}/token Basic ${Buffer.from(`${id}:${secret}`).toString("base64")}`}).join("\n")+"\n")' \
    "$WORK/spread-ids.txt" "$WORK/spread-lk-scale.txt" "$secret"
  echo "/t/bench/token Basic $(b64 "$(json "$(cat "${IDS[lk-small]}")" clients.jwt.id):$(json "$(cat "${IDS[lk-small]}")" clients.jwt.secret)")" \
    > "$WORK/spread-lk-small.txt"
  # A loaded tenant issues tokens like a provisioned one.
  sample=$(head -1 "$WORK/spread-lk-scale.txt")
  code=$(curl -sS -o "$WORK/check.out" -w '%{http_code}' -H "Authorization: ${sample#* }" \
    -d grant_type=client_credentials -d scope=reports.read "http://127.0.0.1:${LK_PORT[scale]}${sample%% *}")
  [ "$code" = 200 ] || die "a loaded tenant's token endpoint answered $code: $(head -c 300 "$WORK/check.out")"
  slug=${sample#/t/}; slug=${slug%%/*}
  lk scale audit verify --tenant "$slug" >/dev/null # its audit chain (where the key lock lives) is sound
fi

sleep "$([ "$MODE" = smoke ] && echo 1 || echo 2)" # settle before the idle figures
for t in "${TARGETS[@]}"; do
  meta "targets.$t.idle_rss_kib" "$(status_kib "${PID[$t]}" VmRSS)"
done

# ---------------------------------------------------------------------------------------------
# Cases. case_targets CASE: the targets it applies to.
if [ "$MODE" = scale ]; then
  CASES=(cc_jwt cc_jwt_spread cc_opaque introspect refresh userinfo signin codeflow)
else
  CASES=(discovery jwks cc_jwt cc_opaque introspect refresh refresh_claims userinfo signin codeflow)
fi
case_targets() {
  local t
  for t in "${TARGETS[@]}"; do
    case "$1:$t" in
      cc_jwt:lk-base|cc_opaque:lk-base|introspect:lk-base|refresh:lk-base|userinfo:lk-base) echo "$t" ;;
      *:lk-base) ;; # the baseline: only what the before/after comparison needs
      refresh_claims:lk-pg|refresh_claims:lk-emb) echo "$t" ;;
      refresh_claims:*) ;;
      discovery:*|jwks:*|cc_jwt:*) echo "$t" ;;
      cc_jwt_spread:lk-small|cc_jwt_spread:lk-scale) echo "$t" ;;
      cc_jwt_spread:*) ;;
      signin:lk-*) echo "$t" ;;
      signin:*) ;;
      *:ceiling) ;;
      *) echo "$t" ;;
    esac
  done
}
declare -A AUTH FLOWENV
CLAIMS_SCOPE="openid email profile offline_access roles groups"
for t in "${TARGETS[@]}"; do # Authorization values and driver settings, once per target
  IFS=$'\t' read -r AUTH[$t.jwt] AUTH[$t.opaque] AUTH[$t.web] web_id web_secret AUTH[$t.webclaims] wc_id wc_secret < <(node -e '
    const c = JSON.parse(require("fs").readFileSync(process.argv[1])).clients;
    const basic = (x) => `Basic ${Buffer.from(`${x.id}:${x.secret}`).toString("base64")}`;
    const wc = c.webclaims ? [basic(c.webclaims), c.webclaims.id, c.webclaims.secret] : ["-", "-", "-"];
    console.log([basic(c.jwt), basic(c.opaque), basic(c.web), c.web.id, c.web.secret, ...wc].join("\t"))' "${IDS[$t]}")
  FLOWENV[$t]="FLOW_CLIENT_ID=$web_id FLOW_CLIENT_SECRET=$web_secret FLOW_REDIRECT_URI=$REDIRECT"
  FLOWENV[$t]+=" FLOW_USERNAME=bench FLOW_PASSWORD=$PASSWORD FLOW_XFF=1"
  # refresh_claims: the same flow with the client that maps claims, asking for roles and groups.
  FLOWENV[$t.claims]="FLOW_CLIENT_ID=$wc_id FLOW_CLIENT_SECRET=$wc_secret FLOW_REDIRECT_URI=$REDIRECT"
  FLOWENV[$t.claims]+=" FLOW_USERNAME=bench FLOW_PASSWORD=$PASSWORD FLOW_XFF=1"
done

# Refresh-token pools and userinfo tokens, made by real code flows (sign in once, then one
# authorization per token in that session). Each round takes its own slice of the pool.
POOL_PER_RUN=$(( CONNS + 4 * THREADS + 4 ))
WARM=$([ "$MODE" = smoke ] && echo 0 || echo 1)
declare -A USERINFO_AT POOL_JOBS
POOL_SIZE=$(( (ROUNDS + WARM) * POOL_PER_RUN ))
say "refresh-token pools: $POOL_SIZE code flows per target and refresh case"
for t in $(case_targets refresh); do
  env ${FLOWENV[$t]} node bench/peer/codeflow.mjs pool "${BASE[$t]}" --count "$POOL_SIZE" \
    --concurrency 4 --out "$WORK/pool-$t.txt" >"$WORK/pool-$t.json" 2>&1 &
  POOL_JOBS[$t]=$!; PIDS+=("$!")
done
# refresh_claims: one token more than the rounds use, the last, for the check below.
for t in $(case_targets refresh_claims); do
  FLOW_SCOPE="$CLAIMS_SCOPE" env ${FLOWENV[$t.claims]} node bench/peer/codeflow.mjs pool "${BASE[$t]}" \
    --count $(( POOL_SIZE + 1 )) --concurrency 4 --out "$WORK/pool-$t-claims.txt" >"$WORK/pool-$t-claims.json" 2>&1 &
  POOL_JOBS[$t.claims]=$!; PIDS+=("$!")
done
for t in $(case_targets refresh); do
  wait "${POOL_JOBS[$t]}" || die "pool for $t: $(cat "$WORK/pool-$t.json")"
  USERINFO_AT[$t]=$(json "$(cat "$WORK/pool-$t.json")" access_token)
done
for t in $(case_targets refresh_claims); do
  wait "${POOL_JOBS[$t.claims]}" || die "refresh_claims pool for $t: $(cat "$WORK/pool-$t-claims.json")"
done

# The opaque token to introspect, made by the opaque client itself.
declare -A INTROSPECT_TOKEN
for t in $(case_targets introspect); do
  tok=$(curl -fsS -H "Authorization: ${AUTH[$t.opaque]}" \
    -d grant_type=client_credentials -d scope=reports.read "${BASE[$t]}/token") || die "opaque token from $t"
  INTROSPECT_TOKEN[$t]=$(json "$tok" access_token)
done

# request_of CASE TARGET: prints METHOD|PATH|BODY|AUTH for the fixed-request cases.
request_of() {
  case "$1" in
    discovery) echo "GET|/.well-known/openid-configuration||" ;;
    jwks) echo "GET|/jwks||" ;;
    cc_jwt) echo "POST|/token|grant_type=client_credentials&scope=reports.read|${AUTH[$2.jwt]}" ;;
    cc_opaque) echo "POST|/token|grant_type=client_credentials&scope=reports.read|${AUTH[$2.opaque]}" ;;
    introspect) echo "POST|/introspect|token=${INTROSPECT_TOKEN[$2]}&token_type_hint=access_token|${AUTH[$2.opaque]}" ;;
    userinfo) echo "GET|/userinfo||Bearer ${USERINFO_AT[$2]}" ;;
  esac
}

# Before any load: each request once, its exact status and what the answer must say.
say "checking every case once"
# refresh_claims: one refresh with the pool's spare token; its access token (a JWT: the client's
# default format) and ID token must carry the roles, groups, mapped attributes and static claim.
for t in $(case_targets refresh_claims); do
  code=$(curl -sS -o "$WORK/check.out" -w '%{http_code}' -H "Authorization: ${AUTH[$t.webclaims]}" \
    --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$(tail -n 1 "$WORK/pool-$t-claims.txt")" \
    "${BASE[$t]}/token")
  [ "$code" = 200 ] || die "refresh_claims on $t answered $code: $(head -c 300 "$WORK/check.out")"
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1]));
    const want = { roles: ["employee", "oncall", "reports:read"], groups: ["backend", "engineering"],
      org: "acme-emea", region: "eu", tier: "gold" };
    const payload = (jwt, what) => {
      if (typeof jwt !== "string" || jwt.split(".").length !== 3) throw new Error(`${what} is not a JWT: ${jwt}`);
      return JSON.parse(Buffer.from(jwt.split(".")[1], "base64url"));
    };
    for (const [what, jwt] of [["access token", r.access_token], ["ID token", r.id_token]]) {
      const p = payload(jwt, what);
      for (const [k, v] of Object.entries(want)) {
        const got = Array.isArray(p[k]) ? [...p[k]].sort() : p[k];
        if (JSON.stringify(got) !== JSON.stringify(v)) {
          console.error(`${what}: ${k} is ${JSON.stringify(p[k])}, want ${JSON.stringify(v)}`); process.exit(1);
        }
      }
    }' "$WORK/check.out" || die "refresh_claims on $t: the refreshed tokens lack mapped claims"
done
for c in "${CASES[@]}"; do
  case "$c" in refresh|refresh_claims|signin|codeflow|cc_jwt_spread) continue ;; esac
  for t in $(case_targets "$c"); do
    IFS='|' read -r method path body auth <<<"$(request_of "$c" "$t")"
    args=(-sS -o "$WORK/check.out" -w '%{http_code}' -X "$method")
    [ -n "$body" ] && args+=(-H 'Content-Type: application/x-www-form-urlencoded' --data-raw "$body")
    [ -n "$auth" ] && args+=(-H "Authorization: $auth")
    code=$(curl "${args[@]}" "${BASE[$t]}$path")
    [ "$code" = 200 ] || die "$c on $t answered $code: $(head -c 300 "$WORK/check.out")"
    case "$c" in
      cc_jwt) node -e 'const t=JSON.parse(require("fs").readFileSync(process.argv[1])).access_token;
          const h=JSON.parse(Buffer.from(t.split(".")[0],"base64url"));
          if(h.alg!=="ES256") {console.error("not an ES256 JWT:",h);process.exit(1)}' "$WORK/check.out" || die "$c on $t" ;;
      cc_opaque) node -e 'const t=JSON.parse(require("fs").readFileSync(process.argv[1])).access_token;
          if(t.split(".").length===3) {console.error("a JWT, not opaque");process.exit(1)}' "$WORK/check.out" || die "$c on $t" ;;
      introspect) grep -q '"active":true' "$WORK/check.out" || die "introspection on $t: $(cat "$WORK/check.out")" ;;
    esac
  done
done

# ---------------------------------------------------------------------------------------------
# The rounds.
RAW="$WORK/raw.jsonl"
: > "$RAW"
FAILURES=0
run_one() { # run_one ROUND CASE TARGET SECONDS
  local round=$1 c=$2 t=$3 secs=$4 pid=${PID[$3]} out="$WORK/out.json" cpu0 cpu1 w0 w1
  rm -f "$out"
  cpu0=$(cpu_ticks "$pid"); w0=$(now_ms)
  case "$c" in
    signin|codeflow)
      local mode=flow; [ "$c" = signin ] && mode=signin
      env ${FLOWENV[$t]} node bench/peer/codeflow.mjs "$mode" "${BASE[$t]}" --seconds "$secs" \
        --concurrency "$FLOW_CONC" >"$out" 2>"$WORK/driver.err" || true
      ;;
    cc_jwt_spread)
      BENCH_OUT="$out" BENCH_SPREAD="$WORK/spread-$t.txt" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s -s "$ROOT/bench/wrk/spread.lua" "${BASE[$t]%/t/bench}" >/dev/null 2>"$WORK/wrk.err" || true
      ;;
    refresh|refresh_claims)
      local slice=$(( WARM == 1 ? round : round - 1 ))
      local from=$(( slice * POOL_PER_RUN + 1 )) pool="$WORK/pool-$t.txt" auth="${AUTH[$t.web]}"
      [ "$c" = refresh_claims ] && { pool="$WORK/pool-$t-claims.txt"; auth="${AUTH[$t.webclaims]}"; }
      BENCH_OUT="$out" BENCH_POOL="$pool" BENCH_POOL_FROM=$from BENCH_POOL_COUNT=$POOL_PER_RUN \
        BENCH_THREADS=$THREADS BENCH_AUTH="$auth" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s -s "$ROOT/bench/wrk/refresh.lua" "${BASE[$t]}/token" >/dev/null 2>"$WORK/wrk.err" || true
      ;;
    *)
      local method path body auth
      IFS='|' read -r method path body auth <<<"$(request_of "$c" "$t")"
      BENCH_OUT="$out" BENCH_METHOD="$method" BENCH_BODY="$body" BENCH_AUTH="$auth" \
        wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --timeout 10s -s "$ROOT/bench/wrk/request.lua" "${BASE[$t]}$path" >/dev/null 2>"$WORK/wrk.err" || true
      ;;
  esac
  w1=$(now_ms); cpu1=$(cpu_ticks "$pid")
  [ -s "$out" ] || { cat "$WORK/wrk.err" "$WORK/driver.err" >&2 2>/dev/null; echo '{"requests":0,"duration_us":1,"failed":1}' > "$out"; }
  local rc=0
  node -e '
    const [raw, round, c, t, cpu, wall, tck, hwm] = process.argv.slice(1);
    const r = JSON.parse(raw);
    const flow = "ok" in r;
    const requests = flow ? r.ok : r.requests;
    const secs = flow ? r.seconds : r.duration_us / 1e6;
    const cpuS = Number(cpu) / Number(tck);
    const row = {
      round: Number(round), case: c, target: t, requests,
      rps: requests / secs,
      p50_ms: flow ? r.p50_ms : r.p50_us / 1000, p99_ms: flow ? r.p99_ms : r.p99_us / 1000,
      non2xx: flow ? r.failed : r.non2xx,
      socket_errors: flow ? 0 : r.connect_errors + r.read_errors + r.write_errors + r.timeout_errors,
      cpu_us_per_req: requests ? cpuS * 1e6 / requests : null,
      cores_busy: cpuS / (Number(wall) / 1000),
      rss_hwm_kib: Number(hwm),
    };
    if (flow) { row.http_requests = r.requests; row.errors = r.errors; }
    if ("empty" in r) Object.assign(row, { drawn: r.drawn, rotated: r.rotated, empty: r.empty });
    if (row.round > 0) console.log(JSON.stringify(row));
    const bad = row.non2xx + row.socket_errors + (requests ? 0 : 1);
    console.error(`  r${round} ${c.padEnd(14)} ${t.padEnd(8)} ${row.rps.toFixed(0).padStart(7)} req/s  p50 ${row.p50_ms.toFixed(2)} ms  p99 ${row.p99_ms.toFixed(2)} ms  cpu ${(row.cpu_us_per_req ?? 0).toFixed(0)} µs/req${bad ? `  ERRORS non2xx=${row.non2xx} socket=${row.socket_errors} ${JSON.stringify(row.errors ?? "")}` : ""}`);
    process.exit(bad ? 1 : 0);' "$(cat "$out")" "$round" "$c" "$t" "$(( cpu1 - cpu0 ))" "$(( w1 - w0 ))" "$CLK_TCK" "$(status_kib "$pid" VmHWM)" >> "$RAW" || rc=1
  [ "$rc" = 0 ] || FAILURES=$((FAILURES + 1))
}

if [ "$WARM" = 1 ]; then
  say "warm-up round (1 s each, not recorded)"
  for c in "${CASES[@]}"; do for t in $(case_targets "$c"); do run_one 0 "$c" "$t" 1; done; done
fi
for round in $(seq 1 "$ROUNDS"); do
  say "round $round of $ROUNDS ($SECONDS_PER s per case and target)"
  for c in "${CASES[@]}"; do
    for t in $(case_targets "$c"); do
      run_one "$round" "$c" "$t" "$SECONDS_PER"
      [ "$MODE" = smoke ] || sleep 0.3
    done
  done
done

for t in "${TARGETS[@]}"; do
  meta "targets.$t.peak_rss_kib" "$(status_kib "${PID[$t]}" VmHWM)"
done
# Stop the servers before the argon2id bound, so it has the cores to itself.
for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
PIDS=()

if [ -n "$SIGNIN_BENCH" ] && [ "$MODE" != scale ]; then
  say "sign-in next to the argon2id bound (signin-bench, 3 s phases)"
  mkdir -p "$WORK/signin"
  (cd "$WORK/signin" && "$SIGNIN_BENCH" "${BENCH_SIGNIN_SECONDS:-3}") > "$WORK/signin.md" 2>"$WORK/signin.err" \
    || { cat "$WORK/signin.err" >&2; die "signin-bench"; }
  node -e '
    const md = require("fs").readFileSync(process.argv[1], "utf8");
    const m = /\| median \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) %/.exec(md);
    const f = /; (\d+) failed round trips/.exec(md);
    console.log(JSON.stringify({ argon2_per_s: +m[1], signins_per_s: +m[2], ratio_pct: +m[3], failed: +(f?.[1] ?? 0) }));' \
    "$WORK/signin.md" > "$WORK/signin.json"
  meta signin_bench "$(cat "$WORK/signin.json")"
fi

# ---------------------------------------------------------------------------------------------
# Report.
if [ "$MODE" = smoke ]; then
  RESULTS=${BENCH_RESULTS:-$WORK/results}
else
  RESULTS=${BENCH_RESULTS:-$ROOT/bench/results}
fi
mkdir -p "$RESULTS"
name=$DAY; [ "$MODE" = scale ] && name="$DAY-scale"; [ "$MODE" = smoke ] && name="$DAY-smoke"
meta duration_s "$(( $(date +%s) - started ))"
node bench/report.mjs "$META" "$RAW" "$RESULTS/$name.md" "$RESULTS/$name.jsonl"
cat "$RESULTS/$name.md"
say "wrote $RESULTS/$name.md and $RESULTS/$name.jsonl in $(( $(date +%s) - started )) s"
if [ "$FAILURES" -gt 0 ]; then
  die "$FAILURES runs had non-2xx answers, socket errors or no requests at all"
fi
