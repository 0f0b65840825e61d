#!/usr/bin/env bash
# Parse throughput per core: compactor's access-log parser next to DuckDB and chDB parsing the
# same generated combined log with the regex of ../shared/bench/peer.py, all on one thread.
#
#   benches/parse_peers.sh            # RUNS=5 rounds, 1 thread, ~200 MB of access log
#
# Each round runs every engine once, in turn (load on these shared VMs drifts within minutes);
# each engine's MB/s is the median over rounds, and each ratio the median of the per-round
# ratios. compactor's figure is `compactor parse --threads 1` (read, split, parse into Arrow
# batches; nothing written); the peers materialise the same fields (benches/parse_peers.py).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
THREADS=${THREADS:-1}
W=${WORK:-target/parse-peers}
mkdir -p "$W"
cargo build --release -q -p compactor
B=$PWD/target/release/compactor
PY=$(bash ../shared/bench/setup-peers.sh | tail -1)
IN=$W/access.log
[[ -s $IN ]] || "$B" gen --format combined --lines "${LINES:-1000000}" --seed 7 --output "$IN"
MB=$(stat -c %s "$IN" | awk '{printf "%.1f", $1 / 1e6}')
cat "$IN" > /dev/null
printf 'round\tengine\tseconds\n' > "$W/times.tsv"
for r in $(seq 1 "$RUNS"); do
  /usr/bin/time -f '%e' -o "$W/time.txt" "$B" parse "$IN" --format combined --threads "$THREADS" > /dev/null 2>&1
  s=$(cat "$W/time.txt")
  printf '%s\tcompactor\t%s\n' "$r" "$s" >> "$W/times.tsv"
  for e in duckdb chdb; do
    s=$("$PY" benches/parse_peers.py "$e" "$IN" --threads "$THREADS" | sed 's/.*seconds=//')
    printf '%s\t%s\t%s\n' "$r" "$e" "$s" >> "$W/times.tsv"
  done
done
"$PY" - "$W/times.tsv" "$MB" "$THREADS" <<'PY'
import sys, statistics, collections
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
mb, threads = float(sys.argv[2]), sys.argv[3]
by = collections.defaultdict(dict)
for r, e, s in rows:
    by[r][e] = float(s)
print(f"access log {mb} MB, {threads} thread(s), {len(by)} rounds (medians)")
for e in ["compactor", "duckdb", "chdb"]:
    t = statistics.median(v[e] for v in by.values())
    print(f"  {e:<10} {t:7.2f} s {mb / t:8.1f} MB/s")
for e in ["duckdb", "chdb"]:
    print(f"  compactor vs {e}: {statistics.median(v[e] / v['compactor'] for v in by.values()):.1f}x faster")
PY
