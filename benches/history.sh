#!/usr/bin/env bash
# What history buys and what it costs, for both servers in one run: `loadgen recover` (CLIENTS
# clients drop their connections, MISSED messages are published, all reconnect at once with
# `since`), then fanout and idle with history on (the default) beside `--history-size 0` (off),
# on and off alternating. Every run gets a fresh server pinned to CPU 0, loadgen on CPU 1.
# Prints each run's JSON line (loadgen's, with the server's CPU seconds around it), then a summary.
#
#   bash benches/history.sh [CLIENTS] [MISSED]
#   SERVERS="switchboard switchboard-mio" FANOUT="1000 2 200 10" IDLE=10000 bash benches/history.sh
#
# FANOUT: subscribers, publishers, msg/s per publisher, seconds. IDLE: idle connections held 5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${1:-5000}"; MISSED="${2:-50}"
SERVERS="${SERVERS:-switchboard switchboard-mio}"
read -r SUBS PUBS RATE SECS <<<"${FANOUT:-1000 2 200 10}"
IDLE="${IDLE:-10000}"
cargo build -q --release -p switchboard-server -p switchboard-mio-server -p switchboard-benches \
    --bin switchboard --bin switchboard-mio --bin loadgen
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)"
T="$TARGET_DIR/release"
SECRET=bench-secret
OUT=$(mktemp -d)
SERVER=""; PORT=""
stop_server() {
    if [[ -n "$SERVER" ]]; then
        kill -KILL "$SERVER" 2>/dev/null || true
        wait "$SERVER" 2>/dev/null || true
    fi
    SERVER=""
}
cleanup() { stop_server; rm -rf "$OUT"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$1/stat"; }
start_server() { # binary [flags...]
    local bin=$1; shift
    PORT=$(free_port)
    RUST_LOG=warn taskset -c 0 "$T/$bin" --jwt-secret "$SECRET" --api-key bench-key \
        --listen "127.0.0.1:$PORT" --max-messages-per-sec 0 --max-connections-per-ip 100000 "$@" \
        >"$OUT/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$PORT/healthz" | grep -q '"ok"' && return 0; sleep 0.1
    done
    echo "$bin did not start:" >&2; cat "$OUT/server.log" >&2; exit 1
}
run() { # server history(on|off) scenario [loadgen args...]: one JSON line into results
    local bin=$1 history=$2 scenario=$3; shift 3
    local flags=()
    [[ "$history" == off ]] && flags=(--history-size 0)
    start_server "$bin" "${flags[@]}"
    local cpu0 cpu1 out
    cpu0=$(cpu_secs "$SERVER")
    out=$(taskset -c 1 "$T/loadgen" "$scenario" --url "ws://127.0.0.1:$PORT/ws" --secret "$SECRET" \
        --server-pid "$SERVER" "$@" 2>>"$OUT/loadgen.err" | tail -n 1) || true
    cpu1=$(cpu_secs "$SERVER")
    stop_server
    [[ "$out" == "{"*"}" ]] || out="{\"error\":\"loadgen printed no JSON line\"}"
    local line="{\"server\":\"$bin\",\"history\":\"$history\",\"scenario\":\"$scenario\",\"server_cpu_secs\":$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN{printf "%.2f", b - a}'),\"loadgen\":$out}"
    echo "$line" | tee -a "$OUT/results.jsonl"
}

for bin in $SERVERS; do
    run "$bin" on recover -n "$CLIENTS" -m "$MISSED"
    # On, off, off, on: an order effect (the machine warming, a neighbour's build) cancels out.
    for history in on off off on; do
        run "$bin" "$history" fanout --subscribers "$SUBS" --publishers "$PUBS" --rate "$RATE" \
            --duration "${SECS}s"
    done
    for history in off on; do
        run "$bin" "$history" idle -n "$IDLE" --hold 5s
    done
done

python3 - "$OUT/results.jsonl" "$CLIENTS" "$MISSED" "$SUBS" "$PUBS" "$RATE" <<'PY'
import json
import sys

path, clients, missed, subs, pubs, rate = sys.argv[1:]
runs = {}
servers = []
for line in open(path):
    r = json.loads(line)
    if r["server"] not in servers:
        servers.append(r["server"])
    runs.setdefault((r["server"], r["scenario"], r["history"]), []).append(r)


def one(v, keys):
    for k in keys:
        if not isinstance(v, dict) or v.get(k) is None:
            return None
        v = v[k]
    return v


def get(server, scenario, history, *keys):
    """The mean over the runs of that setting (fanout runs twice each)."""
    vs = [one(r, ("loadgen",) + keys) for r in runs.get((server, scenario, history), [])]
    vs = [v for v in vs if isinstance(v, (int, float))]
    return sum(vs) / len(vs) if vs else None


def fmt(v, spec="{:,.0f}"):
    return "-" if v is None else spec.format(v)


def ratio(on, off):
    return "-" if on is None or not off else f"{on / off:.2f}"


def cpu_per_delivery(server, history):
    rs = runs.get((server, "fanout", history), [])
    received = sum(one(r, ("loadgen", "received")) or 0 for r in rs)
    return sum(r["server_cpu_secs"] for r in rs) * 1e6 / received if received else None


def mib(kib):
    return None if kib is None else kib / 1024


rows = []
for s in servers:
    g = lambda *k: get(s, "recover", "on", *k)
    rows.append((s, [
        (f"recover {clients} x {missed}: recovered, errors",
         f"{fmt(g('recovered'))} of {fmt(g('clients'))}, {fmt(g('errors'))} errors"),
        ("time until all recovered", fmt(g("storm_secs"), "{:.2f} s")
         + f" (p50 {fmt(g('recovered_after_us', 'p50'), '{:,.0f}')} us), listen overflows "
         + fmt(g("listen_overflows"))),
        ("server RSS: start / before the storm / after",
         " / ".join(fmt(mib(g(k)), "{:.1f}") for k in
                    ("server_rss_start_kib", "server_rss_before_storm_kib",
                     "server_rss_after_storm_kib")) + " MiB"),
        ("server CPU per recovering client", fmt(g("server_cpu_per_client_us"), "{:.0f} us")),
        ("live p50 / p99 quiet -> during the storm",
         f"{fmt(g('live', 'quiet_latency_us', 'p50'), '{:,.0f}')} / "
         f"{fmt(g('live', 'quiet_latency_us', 'p99'), '{:,.0f}')} -> "
         f"{fmt(g('live', 'storm_latency_us', 'p50'), '{:,.0f}')} / "
         f"{fmt(g('live', 'storm_latency_us', 'p99'), '{:,.0f}')} us, lost {fmt(g('live', 'lost'))}"),
    ]))
    on, off = cpu_per_delivery(s, "on"), cpu_per_delivery(s, "off")
    rows[-1][1].append((f"fanout {subs} x {pubs} x {rate}/s (2 runs each): server CPU per delivery on / off",
                        f"{fmt(on, '{:.2f}')} / {fmt(off, '{:.2f}')} us, ratio {ratio(on, off)}"))
    d_on, d_off = (get(s, "fanout", h, "delivered_per_sec") for h in ("on", "off"))
    rows[-1][1].append(("fanout delivered/s on / off",
                        f"{fmt(d_on)} / {fmt(d_off)}, ratio {ratio(d_on, d_off)}"))
    p_on, p_off = (get(s, "fanout", h, "latency_us", "p99") for h in ("on", "off"))
    l_on, l_off = (get(s, "fanout", h, "lost") for h in ("on", "off"))
    r_on, r_off = (get(s, "fanout", h, "server_rss_kib") for h in ("on", "off"))
    rows[-1][1].append(("fanout p99 on / off, lost on / off",
                        f"{fmt(p_on, '{:,.0f}')} / {fmt(p_off, '{:,.0f}')} us, ratio {ratio(p_on, p_off)};"
                        f" lost {fmt(l_on)} / {fmt(l_off)}"))
    rows[-1][1].append(("fanout: server RSS at the end on / off",
                        f"{fmt(mib(r_on), '{:.1f}')} / {fmt(mib(r_off), '{:.1f}')} MiB"))
    i_on, i_off = (get(s, "idle", h, "server_rss_per_conn_bytes") for h in ("on", "off"))
    rows[-1][1].append(("idle: server RSS per connection on / off",
                        f"{fmt(i_on)} / {fmt(i_off)} B, ratio {ratio(i_on, i_off)}"))

print()
print("| run | " + " | ".join(s for s, _ in rows) + " |")
print("| --- |" + " --- |" * len(rows))
for i, (label, _) in enumerate(rows[0][1]):
    print(f"| {label} | " + " | ".join(cells[i][1] for _, cells in rows) + " |")
PY
