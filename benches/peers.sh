#!/usr/bin/env bash
# Side-by-side whole-command comparison: compactor vs DuckDB (and optionally Polars, chDB) on
# generated logs of ~500 MB, same rows, same sort key, measured in one run on one machine.
#
#   benches/peers.sh                # json + combined, compactor and duckdb
#   PEERS="duckdb polars chdb" benches/peers.sh
#
# Prints, per data set and engine: seconds (median of RUNS rounds), MB/s of raw input, peak RSS
# (median), output bytes and ratio (raw bytes / output bytes). compactor runs three ways: all
# threads, one thread (for the scaling ratio) and under --memory 512MiB (spilling). Last, the
# speed ratios: 1 thread vs all, and each peer vs compactor, each the median of the ratios
# taken within a round (see `timed` below for why rounds).
# Needs ../shared/bench (peer scripts) next to the checkout and GNU time.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
PEERS=${PEERS:-duckdb}
W=${WORK:-target/peers}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$W"
cargo build --release -q -p compactor
B=$PWD/target/release/compactor
PY=$(bash ../shared/bench/setup-peers.sh | tail -1)
[[ -s $W/events.jsonl ]] || "$B" gen --format json --lines "${LINES_JSON:-1162000}" --seed 42 --output "$W/events.jsonl"
[[ -s $W/access.log ]] || "$B" gen --format combined --lines "${LINES_ACCESS:-2300000}" --seed 7 --output "$W/access.log"

cat > "$W/json.toml" <<TOML
[input]
paths = ["events.jsonl"]
format = "json"
[output]
path = "out/json"
sort_by = ["event", "country", "ts"]
TOML
cat > "$W/combined.toml" <<TOML
[input]
paths = ["access.log"]
format = "combined"
extra_columns = ["request_time"]
[output]
path = "out/combined"
sort_by = ["status", "method", "user_agent", "referer", "path", "ts"]
TOML

size() { find "$1" -name '*.parquet' -printf '%s\n' | awk '{s += $1} END {print s}'; }

# Rounds, not back-to-back repetitions: each round runs every engine once, in turn, so a drift
# in the host's load (these are shared 2-core VMs; it moves by 20% within minutes) hits every
# engine alike, and each ratio is taken within a round. GNU time gives wall seconds and peak
# RSS of the same run. Results: $W/times.tsv (data, round, engine, seconds, peak KiB).
printf 'data\tround\tengine\tseconds\trss_kib\n' > "$W/times.tsv"
timed() {  # timed DATA ROUND ENGINE CMD...
  local d=$1 r=$2 e=$3; shift 3
  /usr/bin/time -f '%e %M' -o "$W/time.txt" "$@" > /dev/null 2> "$W/$d-$e.log" || { cat "$W/$d-$e.log"; exit 1; }
  read -r secs kib < "$W/time.txt"
  printf '%s\t%s\t%s\t%s\t%s\n' "$d" "$r" "$e" "$secs" "$kib" >> "$W/times.tsv"
}
for data in json combined; do
  if [[ $data == json ]]; then in=$W/events.jsonl; psort="event,country,ts"; else in=$W/access.log; psort="status,method,ua,referer,path,ts"; fi
  cat "$in" > /dev/null  # the input in the page cache for every engine alike
  for round in $(seq "$RUNS"); do
    # compactor: a fresh table per run; all threads, one thread (scaling), the 512 MiB budget
    for cfg in "compactor:$THREADS:" "compactor-1t:1:" "compactor-512M:$THREADS:--memory ${SMALL_MEMORY:-512MiB}"; do
      IFS=: read -r name th extra <<< "$cfg"
      [[ $name == compactor-1t && $THREADS == 1 ]] && continue
      rm -rf "$W/out/$data"
      timed "$data" "$round" "$name" "$B" run "$W/$data.toml" --threads "$th" --no-progress $extra --report "$W/$data-$name-report.json"
      size "$W/out/$data" > "$W/$data-$name.bytes"
    done
    for p in $PEERS; do
      timed "$data" "$round" "$p" "$PY" ../shared/bench/peer.py "$p" "$data" "$in" "$W/$data-$p.parquet" --sort "$psort" --threads "$THREADS"
      stat -c %s "$W/$data-$p.parquet" > "$W/$data-$p.bytes"
    done
  done
done
python3 - "$W" "$PEERS" "$(stat -c %s "$W/events.jsonl")" "$(stat -c %s "$W/access.log")" <<'PY'
import csv, statistics, sys
w, peers = sys.argv[1], sys.argv[2].split()
raw = {"json": int(sys.argv[3]), "combined": int(sys.argv[4])}
runs = {}
for r in csv.DictReader(open(f"{w}/times.tsv"), delimiter="\t"):
    runs.setdefault((r["data"], r["engine"]), {})[r["round"]] = (float(r["seconds"]), int(r["rss_kib"]))
med = statistics.median
print(f"{'data':9} {'engine':14} {'seconds':>8} {'MB/s':>8} {'peakRSS_MB':>10} {'out_bytes':>12} {'ratio':>7}")
for (d, e), rounds in runs.items():
    t = med(s for s, _ in rounds.values())
    rss = med(k for _, k in rounds.values()) / 1024
    out = int(open(f"{w}/{d}-{e}.bytes").read())
    print(f"{d:9} {e:14} {t:8.2f} {raw[d] / 1e6 / t:8.0f} {rss:10.0f} {out:12d} {raw[d] / out:7.1f}")
def ratio(d, a, b):  # median over rounds of a's seconds / b's seconds
    ra, rb = runs.get((d, a)), runs.get((d, b))
    if not ra or not rb:
        return None
    return med(ra[k][0] / rb[k][0] for k in ra if k in rb)
for d in raw:
    parts = []
    if (x := ratio(d, "compactor-1t", "compactor")) is not None:
        parts.append(f"1 thread / all threads = {x:.2f}x")
    for p in peers:
        if (x := ratio(d, p, "compactor")) is not None:
            parts.append(f"{p} / compactor = {x:.2f}x")
    print(f"{d}: " + "; ".join(parts) + " (medians of per-round ratios)")
PY
echo "reports: $W/*-report.json (rows, duplicates, rejected, phases)"
