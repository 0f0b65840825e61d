#!/usr/bin/env bash
# Bounded memory at any input size: runs the whole job on ~10 GB of generated logs with a small
# memory budget and prints wall time, MB/s, peak RSS (/usr/bin/time -v) against the budget plus
# the documented overhead, and the spill figures from the run report.
#
#   benches/memory.sh                         # JSON, 10 GB, --memory 512MiB, all cores
#   FORMAT=combined GB=10 MEMORY=512MiB benches/memory.sh
#
# Needs about GB x 1.4 of free disk (input, spill files, output) under $WORK (target/big).
set -euo pipefail
cd "$(dirname "$0")/.."
FORMAT=${FORMAT:-json}
GB=${GB:-10}
MEMORY=${MEMORY:-512MiB}
THREADS=${THREADS:-$(nproc)}
W=${WORK:-target/big}
mkdir -p "$W"
cargo build --release -q -p compactor
B=$PWD/target/release/compactor
if [[ $FORMAT == json ]]; then
  in=$W/events.jsonl; lines=$((GB * 2324000)); sort='["event", "country", "ts"]'; seed=42
else
  in=$W/access.log; lines=$((GB * 4850000)); sort='["status", "method", "user_agent", "referer", "path", "ts"]'; seed=7
fi
[[ -s $in ]] || "$B" gen --format "$FORMAT" --lines "$lines" --seed "$seed" --output "$in"
cat > "$W/$FORMAT-big.toml" <<TOML
[input]
paths = ["$(basename "$in")"]
format = "$FORMAT"
[output]
path = "out/$FORMAT"
sort_by = $sort
TOML
rm -rf "$W/out/$FORMAT"
/usr/bin/time -v "$B" run "$W/$FORMAT-big.toml" --threads "$THREADS" --memory "$MEMORY" --no-progress \
  --report "$W/$FORMAT-big-report.json" 2> "$W/$FORMAT-big.time" >/dev/null || { cat "$W/$FORMAT-big.time"; exit 1; }
python3 - "$W/$FORMAT-big-report.json" "$W/$FORMAT-big.time" "$MEMORY" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
t = open(sys.argv[2]).read()
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
budget = r["memory_limit_bytes"]
overhead = 128 << 20  # engine::memory::DOCUMENTED_OVERHEAD
print(f"input        {r['bytes_decoded']/1e9:.2f} GB, {r['lines_in']} lines, {r['threads']} threads")
print(f"wall         {r['seconds']:.1f} s, {r['bytes_decoded']/1e6/r['seconds']:.0f} MB/s")
print(f"peak RSS     {rss/2**20:.0f} MiB (budget {budget/2**20:.0f} MiB + overhead {overhead/2**20:.0f} MiB = {(budget+overhead)/2**20:.0f} MiB): {'OK' if rss <= budget + overhead else 'OVER'}")
print(f"reserved     peak {r['peak_reserved_bytes']/2**20:.0f} MiB, at end {r['reserved_at_end']}")
print(f"spill        {r['spilled_runs']} runs, {r['merge_passes']} merge passes, peak {r['spill_peak_bytes']/1e9:.2f} GB on disk")
print(f"output       {r['bytes_out']/1e6:.1f} MB, ratio {r['bytes_decoded']/r['bytes_out']:.1f}x; rows {r['rows_out']} + duplicates {r['duplicates']} + rejected {r['rejected']}")
ph = r["phase_seconds"]; cpu = r["phase_cpu_seconds"]
print("phases       " + ", ".join(f"{k} {ph[k]:.1f} s ({cpu.get(k,0)/max(ph[k],1e-9):.2f} cores)" for k in ph))
sys.exit(0 if rss <= budget + overhead else 1)
PY
