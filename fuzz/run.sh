#!/usr/bin/env bash
# Builds every fuzz target once, replays the saved crash inputs in regressions/<target>/, then
# fuzzes each target for $FUZZ_SECONDS (default 60) from seeds/<target> plus a scratch corpus in
# corpus/<target>. Exits non-zero on the first crash, printing the crashing input's path.
#
#   ./run.sh                       # every target
#   FUZZ_SECONDS=20 ./run.sh tokens handshake
set -euo pipefail
cd "$(dirname "$0")"

FUZZ_SECONDS=${FUZZ_SECONDS:-60}
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(client_frames event_sequences tokens handshake)
fi

cargo +nightly fuzz build -O

status=0
for target in "${TARGETS[@]}"; do
    # 1. Regressions: every saved input must run clean.
    shopt -s nullglob
    regressions=(regressions/"$target"/*)
    shopt -u nullglob
    if [ ${#regressions[@]} -gt 0 ]; then
        echo "== $target: replaying ${#regressions[@]} regression input(s)"
        if ! cargo +nightly fuzz run -O "$target" "${regressions[@]}" -- -runs=0 >"/tmp/fuzz-$target-regressions.log" 2>&1; then
            tail -n 40 "/tmp/fuzz-$target-regressions.log"
            echo "FAILED: a regression input of $target crashes (see above; inputs in regressions/$target/)"
            exit 1
        fi
    fi

    # 2. Fuzzing.
    echo "== $target: fuzzing for ${FUZZ_SECONDS}s"
    mkdir -p "corpus/$target" "artifacts/$target"
    log="artifacts/$target/fuzz.log"
    if cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
        grep -E '^#[0-9]+ +DONE|stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" | sed "s/^/   /" || true
        grep -E 'cov: [0-9]+' "$log" | tail -n 1 | sed "s/^/   last: /" || true
    else
        tail -n 60 "$log"
        crash=$(grep -oE 'Test unit written to [^ ]+' "$log" | tail -n 1 | sed 's/Test unit written to //')
        echo "FAILED: $target crashed; input: ${crash:-see $log}"
        echo "Reproduce: cargo +nightly fuzz run -O $target ${crash:-<input>}"
        echo "Keep it:   cp ${crash:-<input>} regressions/$target/"
        status=1
        break
    fi
done
exit $status
