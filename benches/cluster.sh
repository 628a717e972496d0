#!/usr/bin/env bash
# Cross-node fan-out beside the single-node figure, in one run: a Redis, three nodes of one
# server binary; subscribers on nodes 1 and 2, publishers on node 3; then the same load on one
# standalone node. Prints one JSON line per run (loadgen's) with a "setup" field, plus the CPU
# seconds the servers and Redis used during each run.
#
#   bash benches/cluster.sh [switchboard|switchboard-mio] [SUBSCRIBERS] [PUBLISHERS] [RATE] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${1:-switchboard}"
SUBS="${2:-1000}"; PUBS="${3:-2}"; RATE="${4:-100}"; SECS="${5:-10}"
case "$BIN" in
    switchboard) PKG=switchboard-server ;;
    switchboard-mio) PKG=switchboard-mio-server ;;
    *) echo "unknown server $BIN" >&2; exit 2 ;;
esac
cargo build -q --release -p "$PKG" -p switchboard-benches --bin "$BIN" --bin loadgen
T=target/release
SECRET=bench-secret
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill -KILL "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_secs() { # utime + stime of a process, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"
}
wait_ok() {
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$1/healthz" | grep -q '"ok"' && return 0; sleep 0.1
    done
    echo "node on $1 never joined" >&2; exit 1
}
start_node() { # port [flags...]
    local port=$1; shift
    "$T/$BIN" --jwt-secret "$SECRET" --listen "127.0.0.1:$port" --max-connections-per-ip 100000 \
        --max-messages-per-sec 100000 "$@" >/dev/null 2>&1 &
    PIDS+=($!)
    wait_ok "$port"
}
fanout() { # setup-name publisher-url subscriber-urls pids...
    local name=$1 pub=$2 subs=$3; shift 3
    local before=() pid
    for pid in "$@"; do before+=("$(cpu_secs "$pid")"); done
    local out
    out=$("$T/loadgen" fanout --url "$pub" --publisher-url "$pub" --subscriber-urls "$subs" \
        --secret "$SECRET" --subscribers "$SUBS" --publishers "$PUBS" --rate "$RATE" \
        --duration "${SECS}s" 2>/dev/null)
    local cpu="" i=0
    for pid in "$@"; do
        cpu+="$(awk -v a="${before[$i]}" -v b="$(cpu_secs "$pid")" 'BEGIN{printf "%.2f", b - a}'),"
        i=$((i + 1))
    done
    echo "{\"setup\":\"$name\",\"cpu_secs\":[${cpu%,}],\"loadgen\":$out}"
}

RPORT=$(free_port)
redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no >/dev/null &
PIDS+=($!); REDIS=${PIDS[-1]}
sleep 0.3
P1=$(free_port); P2=$(free_port); P3=$(free_port)
for p in $P1 $P2 $P3; do
    start_node "$p" --redis "redis://127.0.0.1:$RPORT/" --node-id "n$p" --cluster-ttl 5s
done
N1=${PIDS[1]}; N2=${PIDS[2]}; N3=${PIDS[3]}
fanout "cluster: subscribers on 2 nodes, publishers on a third" "ws://127.0.0.1:$P3/ws" \
    "ws://127.0.0.1:$P1/ws,ws://127.0.0.1:$P2/ws" "$N1" "$N2" "$N3" "$REDIS"
echo "redis: $(redis-cli -p "$RPORT" info memory | grep -E '^used_memory:' | tr -d '\r')"
for p in "${PIDS[@]:1}"; do kill -TERM "$p"; done
sleep 1
PS=$(free_port)
start_node "$PS"
fanout "single node" "ws://127.0.0.1:$PS/ws" "ws://127.0.0.1:$PS/ws" "${PIDS[-1]}"
