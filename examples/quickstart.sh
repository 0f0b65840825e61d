#!/usr/bin/env bash
# Runs examples/quickstart.toml, generating its input on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p compactor
bin=target/release/compactor
if ! ls examples/data/*.jsonl >/dev/null 2>&1; then
  mkdir -p examples/data
  "$bin" gen --format json --lines 200000 --seed 42 --output examples/data/events-0001.jsonl
fi
"$bin" run examples/quickstart.toml --report examples/warehouse/last-report.json "$@"
echo "table: examples/warehouse/events   rollup: examples/warehouse/events_hourly   report: examples/warehouse/last-report.json"
