#!/usr/bin/env bash
# Side-by-side whole-command comparison: compactor vs DuckDB (and optionally Polars, chDB) on
# generated logs of ~500 MB, same rows, same sort key, measured in one run on one machine.
#
#   benches/peers.sh                # json + combined, compactor and duckdb
#   PEERS="duckdb polars chdb" benches/peers.sh
#
# Prints, per data set and engine: seconds (median of RUNS via hyperfine), MB/s of raw input,
# peak RSS (/usr/bin/time -v), output bytes and ratio (raw bytes / output bytes). compactor runs
# three ways: all threads, one thread (for the scaling ratio) and under --memory 512MiB (spilling).
# Last, the speed ratios: 1 thread vs all, and each peer vs compactor (wall-time medians).
# Needs ../shared/bench (peer scripts) next to the checkout, hyperfine and GNU time.
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
rss() { /usr/bin/time -v "$@" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/ {print $2}'; }

printf '%-9s %-14s %8s %8s %10s %12s %7s\n' data engine seconds MB/s peakRSS_MB out_bytes ratio
for data in json combined; do
  if [[ $data == json ]]; then in=$W/events.jsonl; psort="event,country,ts"; else in=$W/access.log; psort="status,method,ua,referer,path,ts"; fi
  raw=$(stat -c %s "$in")
  cat "$in" > /dev/null  # the input in the page cache for every engine alike
  # compactor: a fresh table per run; all threads, then one thread (scaling), then the budget
  for cfg in "$THREADS:" "1:" "$THREADS:--memory ${SMALL_MEMORY:-512MiB}"; do
    th=${cfg%%:*}; extra=${cfg#*:}
    name=compactor; [[ $th == 1 && $THREADS != 1 ]] && name=compactor-1t; [[ -n $extra ]] && name=compactor-512M
    hyperfine --runs "$RUNS" --prepare "rm -rf $W/out/$data" --export-json "$W/$data-$name.json" \
      "$B run $W/$data.toml --threads $th --no-progress $extra" >/dev/null
    rm -rf "$W/out/$data"
    r=$(rss "$B" run "$W/$data.toml" --threads "$th" --no-progress $extra --report "$W/$data-$name-report.json")
    out=$(size "$W/out/$data")
    t=$(python3 -c "import json;print(json.load(open('$W/$data-$name.json'))['results'][0]['median'])")
    printf '%-9s %-14s %8.2f %8.0f %10.0f %12d %7.1f\n' "$data" "$name" "$t" "$(python3 -c "print($raw/1e6/$t)")" "$(python3 -c "print($r/1024)")" "$out" "$(python3 -c "print($raw/$out)")"
  done
  for p in $PEERS; do
    o=$W/$data-$p.parquet
    hyperfine --runs "$RUNS" --export-json "$W/$data-$p.json" "$PY ../shared/bench/peer.py $p $data $in $o --sort '$psort' --threads $THREADS" >/dev/null
    r=$(rss "$PY" ../shared/bench/peer.py "$p" "$data" "$in" "$o" --sort "$psort" --threads "$THREADS")
    out=$(stat -c %s "$o")
    t=$(python3 -c "import json;print(json.load(open('$W/$data-$p.json'))['results'][0]['median'])")
    printf '%-9s %-14s %8.2f %8.0f %10.0f %12d %7.1f\n' "$data" "$p" "$t" "$(python3 -c "print($raw/1e6/$t)")" "$(python3 -c "print($r/1024)")" "$out" "$(python3 -c "print($raw/$out)")"
  done
done
python3 - "$W" "$PEERS" <<'PY'
import json, sys
w, peers = sys.argv[1], sys.argv[2].split()
med = lambda d, n: json.load(open(f"{w}/{d}-{n}.json"))["results"][0]["median"]
for d in ("json", "combined"):
    c = med(d, "compactor")
    line = f"{d}: 1 thread / all threads = {med(d, 'compactor-1t') / c:.2f}x"
    for p in peers:
        line += f"; {p} / compactor = {med(d, p) / c:.2f}x"
    print(line)
PY
echo "reports: $W/*-report.json (rows, duplicates, rejected, phases)"
