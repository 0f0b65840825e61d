#!/usr/bin/env bash
# Compaction of many small segments of one partition, as minute-by-minute deliveries leave them:
# SEGMENTS runs of LINES generated JSON events each (one small segment per run, each sorted on
# its own), then `compactor compact` into segments of the target size. Prints the segments and
# bytes before and after (the ratio the global re-sort gains), wall time, MB/s (of the raw JSON
# the rows came from, and of the segments read), peak RSS (/usr/bin/time -v) against --memory,
# and `verify` of the result. The peer, in the same run: DuckDB (from the venv that
# ../shared/bench/setup-peers.sh makes, when that folder exists) reading the same 1,000 segments and writing them deduplicated and sorted by the
# same key into one zstd Parquet file, under the same memory limit and threads.
#
#   benches/compact.sh                                   # 1000 x 2000 events, --memory 512MiB
#   SEGMENTS=200 LINES=5000 MEMORY=256MiB benches/compact.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SEGMENTS=${SEGMENTS:-1000}
LINES=${LINES:-2000}
MEMORY=${MEMORY:-512MiB}
THREADS=${THREADS:-$(nproc)}
W=${WORK:-target/compact-bench}
cargo build --release -q -p compactor
B=$PWD/target/release/compactor
# the peer's venv (../shared/bench/setup-peers.sh), if that folder exists
PY=${PEER_PYTHON:-}
if [[ -z $PY && -f ../shared/bench/setup-peers.sh ]]; then
  PY=$(bash ../shared/bench/setup-peers.sh | tail -1) || PY=
fi
rm -rf "$W"
mkdir -p "$W/in" "$W/cur"
"$B" gen --format json --lines $((SEGMENTS * LINES)) --seed 11 --output "$W/all.jsonl"
raw=$(stat -c %s "$W/all.jsonl")
split -l "$LINES" -d -a 5 "$W/all.jsonl" "$W/in/f"
cat > "$W/job.toml" <<'TOML'
[input]
paths = ["cur"]
format = "json"
[output]
path = "table"
sort_by = ["user_id", "ts"]
TOML
start=$(date +%s.%N)
for f in "$W"/in/f*; do
  mv "$f" "$W/cur/"
  "$B" run "$W/job.toml" --threads "$THREADS" --no-progress 2>/dev/null
done
runs_s=$(echo "$(date +%s.%N) - $start" | bc)
find "$W/table" -name '*.parquet' -not -path '*/_delta_log/*' | sort > "$W/before.txt"
/usr/bin/time -v "$B" compact "$W/table" --policy all --threads "$THREADS" --memory "$MEMORY" \
  --report "$W/compact.json" 2> "$W/compact.time" >/dev/null || { cat "$W/compact.time"; exit 1; }
"$B" verify "$W/table" > "$W/verify.txt" || { cat "$W/verify.txt"; exit 1; }
if [[ -x $PY ]]; then
  /usr/bin/time -v "$PY" - "$W" "$THREADS" "$MEMORY" 2> "$W/duckdb.time" <<'PY' || { cat "$W/duckdb.time"; exit 1; }
import duckdb, sys
w, threads, mem = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = [l.strip() for l in open(f"{w}/before.txt")]
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute(f"SET memory_limit='{mem.replace('iB', 'B')}'")
con.execute(f"SET temp_directory='{w}/duck_tmp'")
con.execute(f"COPY (SELECT DISTINCT * FROM read_parquet({files!r}) ORDER BY user_id, ts) "
            f"TO '{w}/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)")
print(con.execute(f"SELECT count(*) FROM read_parquet('{w}/duckdb.parquet')").fetchone()[0])
PY
fi
python3 - "$W/compact.json" "$W/compact.time" "$MEMORY" "$raw" "$runs_s" "$W/verify.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1])); t = open(sys.argv[2]).read()
raw = int(sys.argv[4]); runs_s = float(sys.argv[5])
wall = sum(g["seconds"] for g in r["groups"])
m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t).group(1).split(":")
wall_total = sum(float(x) * 60 ** i for i, x in enumerate(reversed(m)))
rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
g = r["groups"][0]
print(f"runs: {g['segments_in']} segments written in {runs_s:.1f} s")
print(f"before: {g['segments_in']} segments, {g['rows_in']} rows, {g['bytes_in']:,} bytes")
print(f"after:  {g['segments_out']} segments, {g['rows_out']} rows, {g['bytes_out']:,} bytes "
      f"({g['duplicates']} duplicates dropped)")
print(f"ratio gained by the global re-sort: {g['bytes_in'] / g['bytes_out']:.2f}x "
      f"(raw JSON {raw:,} bytes: {raw / g['bytes_in']:.1f}x before, {raw / g['bytes_out']:.1f}x after)")
print(f"compact: {wall_total:.2f} s wall, {raw / wall_total / 1e6:.1f} MB/s of raw JSON, "
      f"{g['bytes_in'] / wall_total / 1e6:.2f} MB/s of segments read, {g['rows_in'] / wall_total / 1e6:.2f} M rows/s")
print(f"peak RSS {rss / 2**20:.0f} MiB with --memory {sys.argv[3]} "
      f"(peak reserved {g['peak_reserved_bytes'] / 2**20:.0f} MiB, spilled rows {g['spilled_rows']})")
print("verify:", open(sys.argv[6]).read().strip().splitlines()[-1])
import os
w = os.path.dirname(sys.argv[1])
if os.path.exists(f"{w}/duckdb.time"):
    d = open(f"{w}/duckdb.time").read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", d).group(1).split(":")
    dw = sum(float(x) * 60 ** i for i, x in enumerate(reversed(m)))
    drss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", d).group(1)) * 1024
    db = os.path.getsize(f"{w}/duckdb.parquet")
    print(f"DuckDB, same segments, SELECT DISTINCT * ORDER BY user_id, ts to zstd Parquet: "
          f"{dw:.2f} s wall, {raw / dw / 1e6:.1f} MB/s of raw JSON, peak RSS {drss / 2**20:.0f} MiB, "
          f"{db:,} bytes ({db / g['bytes_out']:.2f}x compactor's)")
    print(f"compactor compact / DuckDB: {dw / wall_total:.2f}x the speed, {drss / rss:.2f}x less peak RSS")
PY
