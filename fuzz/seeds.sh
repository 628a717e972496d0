#!/usr/bin/env bash
# Regenerates seeds/<target>/ from the inputs listed in src/*.rs (`seeds()`), checking that each
# file decodes back to its input and passes the target's checks. Commit the result.
set -euo pipefail
cd "$(dirname "$0")"
cargo run --quiet --example seeds
