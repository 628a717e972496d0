#!/usr/bin/env bash
# Smoke test of the load generator against the reference server, for CI.
#
# Builds the release server (`switchboard`, or the one named as the first argument) and `loadgen`,
# starts the server on a free loopback port, runs idle / fanout / churn / recover briefly, and
# checks that each printed a JSON line with non-zero figures, no lost messages, and (recover)
# every client recovered without error. Exits non-zero on any failure; the server is always
# stopped (trap EXIT). Needs only bash, cargo and coreutils.
set -euo pipefail

cd "$(dirname "$0")/.."
SECRET="ci-smoke-secret"
LOG="$(mktemp -t switchboard-smoke.XXXXXX)"
SERVER_PID=""

cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        # The server drains for up to --drain-timeout; do not wait longer than that.
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 ]]; then
        echo "ci-smoke: FAILED (status $status); server log tail:" >&2
        tail -n 20 "$LOG" >&2 || true
    fi
    rm -f "$LOG"
    exit "$status"
}
trap cleanup EXIT

fail() { echo "ci-smoke: $*" >&2; exit 1; }

# The server under test: `switchboard` (tokio, the default) or `switchboard-mio`.
SERVER_BIN="${1:-switchboard}"
case "$SERVER_BIN" in
    switchboard) SERVER_PKG=switchboard-server ;;
    switchboard-mio) SERVER_PKG=switchboard-mio-server ;;
    *) fail "unknown server $SERVER_BIN (switchboard or switchboard-mio)" ;;
esac
cargo build --release -p "$SERVER_PKG" --bin "$SERVER_BIN" -p switchboard-benches --bin loadgen
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
SERVER="$TARGET_DIR/release/$SERVER_BIN"
LOADGEN="$TARGET_DIR/release/loadgen"

# A free port: nothing answers on it right now.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
PORT=""
for _ in $(seq 1 50); do
    candidate=$((20000 + RANDOM % 20000))
    if ! port_in_use "$candidate"; then PORT=$candidate; break; fi
done
[[ -n "$PORT" ]] || fail "no free port found"
URL="ws://127.0.0.1:$PORT/ws"

RUST_LOG=warn "$SERVER" --jwt-secret "$SECRET" --api-key ci-smoke-key --listen "127.0.0.1:$PORT" \
    --max-messages-per-sec 0 --max-connections-per-ip 100000 --drain-timeout 2s >"$LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    port_in_use "$PORT" && break
    kill -0 "$SERVER_PID" 2>/dev/null || fail "server exited at start"
    sleep 0.1
done
port_in_use "$PORT" || fail "server not listening on $PORT after 10 s"

# The value of a numeric JSON field (first occurrence) in a loadgen report line.
field() { grep -o "\"$2\":[0-9.]*" <<<"$1" | head -n 1 | cut -d: -f2; }
# Fails unless the field is a number greater than zero.
positive() {
    local v; v="$(field "$1" "$2")"
    [[ -n "$v" ]] || fail "$3: no \"$2\" in: $1"
    awk -v v="$v" 'BEGIN { exit !(v > 0) }' || fail "$3: \"$2\" is $v, expected > 0: $1"
}
zero() {
    local v; v="$(field "$1" "$2")"
    [[ "$v" == "0" ]] || fail "$3: \"$2\" is '${v}', expected 0: $1"
}
run() {
    local out
    out="$("$LOADGEN" "$@" --url "$URL" --secret "$SECRET")" || fail "loadgen $1 exited non-zero: $out"
    out="$(tail -n 1 <<<"$out")"
    [[ "$out" == "{"*"}" ]] || fail "loadgen $1 printed no JSON line: $out"
    echo "$out"
}

idle="$(run idle -n 200 --hold 1s --server-pid "$SERVER_PID")"
echo "idle:   $idle"
positive "$idle" established idle
positive "$idle" server_rss_per_conn_bytes idle
zero "$idle" failed idle
[[ "$(field "$idle" established)" == "200" ]] || fail "idle: not all 200 connections established"

fanout="$(run fanout --subscribers 50 --publishers 2 --rate 50 --duration 2s)"
echo "fanout: $fanout"
positive "$fanout" received fanout
positive "$fanout" delivered_per_sec fanout
positive "$fanout" p99 fanout
zero "$fanout" lost fanout
zero "$fanout" failed fanout

churn="$(run churn --concurrency 10 --duration 2s)"
echo "churn:  $churn"
positive "$churn" cycles churn
positive "$churn" cycles_per_sec churn
zero "$churn" failed churn

recover="$(run recover -n 200 -m 10 --live-subscribers 10 --quiet 500ms --settle 300ms --server-pid "$SERVER_PID")"
echo "recover: $recover"
[[ "$(field "$recover" recovered)" == "200" ]] || fail "recover: not all 200 clients recovered: $recover"
zero "$recover" errors recover
zero "$recover" failed recover
zero "$recover" lost recover

kill -0 "$SERVER_PID" 2>/dev/null || fail "server died during the runs"
echo "ci-smoke: ok ($SERVER_BIN)"
