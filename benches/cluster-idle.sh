#!/usr/bin/env bash
# Many idle connections over one cluster: a Redis and NODES nodes of one server binary, one
# loadgen process per node holding TOTAL/NODES authenticated connections, each subscribed to one
# topic. Once all are up it checks, through node 1 only, that the cluster sees them all: `nodes`
# in /api/stats, a user of the last node in /api/presence with that node's nodeId, and one publish
# reaching every connection on every node (each loadgen reports `messages_received`). Prints
# Redis's memory and CPU per 10,000 connections.
#
#   bash benches/cluster-idle.sh [switchboard|switchboard-mio] [TOTAL] [NODES]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-switchboard-mio}"; TOTAL="${2:-100000}"; NODES="${3:-6}"
case "$BIN" in
    switchboard) PKG=switchboard-server ;;
    switchboard-mio) PKG=switchboard-mio-server ;;
    *) echo "unknown server $BIN" >&2; exit 2 ;;
esac
cargo build -q --release -p "$PKG" -p switchboard-benches --bin "$BIN" --bin loadgen
T=target/release; SECRET=bench-secret; KEY=bench-key; PER=$((TOTAL / NODES)); HOLD=90
PIDS=(); LG=(); OUT=$(mktemp -d)
cleanup() {
    for p in "${PIDS[@]}" "${LG[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$OUT"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
api() { curl -sf -H "Authorization: apikey $KEY" "$@"; }

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
REDIS=$!; PIDS+=($REDIS); sleep 0.3
REDIS_MEM0=$(redis-cli -p "$RPORT" info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
REDIS_CPU0=$(cpu_secs "$REDIS")
PORTS=()
for i in $(seq 1 "$NODES"); do
    p=$(free_port); PORTS+=("$p")
    "$T/$BIN" --jwt-secret "$SECRET" --api-key "$KEY" --listen "127.0.0.1:$p" --node-id "node-$i" \
        --redis "redis://127.0.0.1:$RPORT/" --max-connections-per-ip 1000000 --ping-interval 30s \
        >"$OUT/node-$i.log" 2>&1 &
    PIDS+=($!)
done
for p in "${PORTS[@]}"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$p/healthz" | grep -q '"ok"' && break; sleep 0.1; done
done
START=$(date +%s.%N)
for i in $(seq 1 "$NODES"); do
    "$T/loadgen" idle --url "ws://127.0.0.1:${PORTS[$((i - 1))]}/ws" --secret "$SECRET" -n "$PER" \
        --shard "$i" --topic bench.all --hold "${HOLD}s" --ramp-concurrency 128 \
        >"$OUT/lg-$i.json" 2>"$OUT/lg-$i.err" &
    LG+=($!)
done
# Ramped when node 1 sees every connection of the cluster online (its presence is cluster-wide).
LAST_USER="lg${NODES}-idle-$((PER - 1))"
for _ in $(seq 1 600); do
    n=$(api "http://127.0.0.1:${PORTS[0]}/api/presence/$LAST_USER" | grep -o '"nodeId":"[^"]*"' || true)
    [[ -n "$n" ]] && break; sleep 0.5
done
sleep 3
RAMP=$(awk -v a="$START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')
echo "stats via node 1: $(api "http://127.0.0.1:${PORTS[0]}/api/stats")"
echo "presence of $LAST_USER via node 1: $(api "http://127.0.0.1:${PORTS[0]}/api/presence/$LAST_USER")"
total=0
for p in "${PORTS[@]}"; do
    a=$(api "http://127.0.0.1:$p/api/stats" | grep -o '"authenticated":[0-9]*' | cut -d: -f2); total=$((total + a))
done
echo "authenticated over all nodes: $total of $TOTAL (ramp and announcements: ${RAMP}s)"
echo "publish via node 1: $(api -d '{"topic":"bench.all","data":1}' "http://127.0.0.1:${PORTS[0]}/api/publish") (this node's count)"
REDIS_MEM1=$(redis-cli -p "$RPORT" info memory | awk -F: '/^used_memory:/{print $2}' | tr -d '\r')
REDIS_CPU1=$(cpu_secs "$REDIS")
awk -v m0="$REDIS_MEM0" -v m1="$REDIS_MEM1" -v c0="$REDIS_CPU0" -v c1="$REDIS_CPU1" -v n="$total" \
    'BEGIN{printf "redis: %.0f bytes and %.3f CPU s per 10,000 connections (ramp included)\n", (m1-m0)*10000/n, (c1-c0)*10000/n}'
for l in "${LG[@]}"; do wait "$l" || true; done
received=0
for i in $(seq 1 "$NODES"); do
    r=$(grep -o '"messages_received":[0-9]*' "$OUT/lg-$i.json" | cut -d: -f2); received=$((received + ${r:-0}))
done
echo "the one publish reached $received connections (loadgen's count over all nodes)"
