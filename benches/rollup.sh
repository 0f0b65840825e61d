#!/usr/bin/env bash
# Rollups (issue 7): SIZE of generated JSON events (no re-deliveries, so that both engines see
# the same rows), an hourly rollup over 3 dimensions (event, country, device.os) with count,
# count_distinct(user_id) (HLL), quantiles(playback.bitrate_kbps) (t-digest) and
# sum(playback.bitrate_kbps), under --memory (default 512MiB) and /usr/bin/time -v. Two
# compactor runs: the rollup alone (`[output] detailed = false`, `[dedup] mode = "none"`: the
# same work as the peer's query) and, unless DETAILED=0, the rollup written in the same pass as
# the detailed table (sorted, deduplicated, its bytes printed too). The peer, in the same run: DuckDB (from the venv that ../shared/bench/setup-peers.sh
# makes) doing the same GROUP BY with approx_count_distinct and approx_quantile over read_json,
# written to zstd Parquet, with the same memory limit and threads. Prints seconds, MB/s of raw
# input, peak RSS and output bytes of both, the ratio DuckDB s / compactor s, and checks that
# the two agree: the same groups with the same counts and sums, distinct estimates within 2%.
#
#   benches/rollup.sh                           # 10 GB of events (generated once, then reused)
#   SIZE=50MB benches/rollup.sh                 # a smoke run
#   SIZE=2GiB MEMORY=1GiB THREADS=4 WORK=/data/rb benches/rollup.sh
#   PEER_PYTHON=/path/to/python benches/rollup.sh   # a python with duckdb (and pyarrow)
#   SKIP_DUCKDB=1 / SKIP_COMPACTOR=1            # run one side only
#   DETAILED=0                                  # skip the run that also writes the detailed table
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE=${SIZE:-10GB}
MEMORY=${MEMORY:-512MiB}
THREADS=${THREADS:-$(nproc)}
SEED=${SEED:-7}
W=${WORK:-target/rollup-bench}
W=$(mkdir -p "$W" && cd "$W" && pwd)

# SIZE in bytes: 10GB, 500MB (powers of 10), 2GiB, 512MiB (powers of 2), or plain bytes
bytes=$(python3 -c '
import re, sys
m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGT]?)(i?)B?\s*", sys.argv[1], re.I)
if not m:
    sys.exit(f"SIZE={sys.argv[1]!r}: want e.g. 10GB, 512MiB or a byte count")
base = 1024 if m.group(3) else 1000
print(int(float(m.group(1)) * base ** " KMGT".index((m.group(2) or " ").upper())))
' "$SIZE")
# about 440 bytes a line
LINES=$(( bytes / 440 ))
(( LINES > 0 )) || { echo "SIZE=$SIZE is too small" >&2; exit 2; }

if [[ -z ${SKIP_COMPACTOR:-} || ! -x target/release/compactor ]]; then
  cargo build --release -q -p compactor
fi
B=$PWD/target/release/compactor

# the peer's venv (../shared/bench/setup-peers.sh), if that folder exists
PY=${PEER_PYTHON:-}
if [[ -z $PY && -f ../shared/bench/setup-peers.sh ]]; then
  PY=$(bash ../shared/bench/setup-peers.sh | tail -1) || PY=
fi

# the input: generated once per (lines, seed), then reused
DATA=$W/data/events.jsonl
META="lines=$LINES seed=$SEED duplicates=0"
if [[ ! -f $DATA || "$(cat "$W/data.meta" 2>/dev/null)" != "$META" ]]; then
  rm -rf "$W/data" "$W/data.meta"
  mkdir -p "$W/data"
  echo "generating $LINES lines ($SIZE) into $DATA" >&2
  "$B" gen --format json --lines "$LINES" --seed "$SEED" --duplicates 0 --output "$DATA" 2>/dev/null
  echo "$META" > "$W/data.meta"
fi
raw=$(stat -c %s "$DATA")

cat > "$W/job.toml" <<'TOML'
[input]
paths = ["data/events.jsonl"]
format = "json"

[output]
path = "table"
sort_by = ["event", "country", "ts"]

[[rollup]]
name = "hourly"
time = "ts"
bucket = "hour"
dimensions = ["event", "country", "device.os"]
aggregates = [
  { name = "events", fn = "count" },
  { name = "users", fn = "count_distinct", column = "user_id" },
  { name = "bitrate", fn = "quantiles", column = "playback.bitrate_kbps" },
  { name = "bitrate_sum", fn = "sum", column = "playback.bitrate_kbps" },
]
TOML

# the same rollup alone: no detailed rows, no dedup (the data has no re-deliveries)
sed -e 's/^path = "table"$/path = "ro_table"\ndetailed = false/' -e '/^sort_by/d' "$W/job.toml" \
  > "$W/ro_job.toml"
printf '\n[dedup]\nmode = "none"\n' >> "$W/ro_job.toml"

# Every timed run starts with the input in the page cache (the first run would otherwise pay for
# the disk and the others not).
warm() { cat "$DATA" > /dev/null; }

rm -f "$W"/compactor*.time "$W"/duckdb*.time "$W"/run*.json "$W"/duckdb*.parquet
if [[ -z ${SKIP_COMPACTOR:-} ]]; then
  rm -rf "$W/ro_table" "$W/ro_table_hourly"
  warm
  /usr/bin/time -v "$B" run "$W/ro_job.toml" --threads "$THREADS" --memory "$MEMORY" \
    --report "$W/run_ro.json" --no-progress 2> "$W/compactor_ro.time" >/dev/null \
    || { tail -30 "$W/compactor_ro.time"; exit 1; }
  if [[ ${DETAILED:-1} != 0 ]]; then
    rm -rf "$W/table" "$W/table_hourly"
    warm
    /usr/bin/time -v "$B" run "$W/job.toml" --threads "$THREADS" --memory "$MEMORY" \
      --report "$W/run.json" --no-progress 2> "$W/compactor.time" >/dev/null \
      || { tail -30 "$W/compactor.time"; exit 1; }
  fi
fi

# DuckDB: the same GROUP BY over read_json, under the same memory limit and threads; and the
# same with dedup before aggregation, as compactor's run does ([dedup] mode = "exact"): SELECT
# DISTINCT * first (DUCKDB_DISTINCT=0 skips it). A query that runs out of memory under the
# limit is reported as such and run again with DUCKDB_RETRY_MEMORY (default 4GiB), so that its
# speed is still measured.
cat > "$W/duck.py" <<'PY'
import duckdb, sys
data, w, threads, mem, distinct, out = sys.argv[1:7]
con = duckdb.connect()
con.execute(f"SET threads={threads}")
con.execute(f"SET memory_limit='{mem.replace('iB', 'B')}'")
con.execute(f"SET temp_directory='{w}/duck_tmp'")
con.execute("SET preserve_insertion_order=false")
con.execute("SET TimeZone='UTC'")
src = f"read_json('{data}', format = 'newline_delimited')"
if distinct == "1":
    src = f"(SELECT DISTINCT * FROM {src})"
# read_json infers ts as a timestamp (or a string: the cast covers both)
con.execute(f"""
COPY (
  SELECT time_bucket(INTERVAL 1 hour, CAST(ts AS TIMESTAMP)) AS ts,
         event, country, device.os AS "device.os",
         count(*) AS events,
         approx_count_distinct(user_id) AS users,
         approx_quantile(playback.bitrate_kbps, [0.5, 0.95, 0.99]) AS bitrate,
         sum(playback.bitrate_kbps) AS bitrate_sum
  FROM {src}
  GROUP BY ALL
) TO '{w}/{out}.parquet' (FORMAT parquet, COMPRESSION zstd)""")
PY
duck() { # NAME DISTINCT MEMORY
  rm -rf "$W/duck_tmp"
  warm
  if /usr/bin/time -v "$PY" "$W/duck.py" "$DATA" "$W" "$THREADS" "$3" "$2" "$1" 2> "$W/$1.time"; then
    echo "$3" > "$W/$1.memory"
  else
    grep -o "Out of Memory Error[^(]*" "$W/$1.time" | head -1 > "$W/$1.failed" || true
    [[ -s $W/$1.failed ]] || { tail -30 "$W/$1.time"; exit 1; }
    echo "$1 under $3: $(cat "$W/$1.failed"); again with ${DUCKDB_RETRY_MEMORY:-4GiB}" >&2
    rm -rf "$W/duck_tmp"
    warm
    /usr/bin/time -v "$PY" "$W/duck.py" "$DATA" "$W" "$THREADS" "${DUCKDB_RETRY_MEMORY:-4GiB}" "$2" "$1" \
      2> "$W/$1.time" || { tail -30 "$W/$1.time"; exit 1; }
    echo "${DUCKDB_RETRY_MEMORY:-4GiB}" > "$W/$1.memory"
  fi
}
rm -f "$W"/duckdb*.failed "$W"/duckdb*.memory
if [[ -z ${SKIP_DUCKDB:-} ]]; then
  if [[ -x $PY ]]; then
    duck duckdb 0 "$MEMORY"
    [[ ${DUCKDB_DISTINCT:-1} == 0 ]] || duck duckdb_distinct 1 "$MEMORY"
  else
    echo "no peer python (../shared/bench/setup-peers.sh): DuckDB skipped" >&2
  fi
fi

# the table and the check; the comparison reads both outputs with DuckDB when there is one
python3 - "$W" "$raw" "$MEMORY" "$THREADS" "${PY:-}" <<'PY'
import json, os, re, subprocess, sys
w, raw, mem, threads, py = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]

def timing(path):
    if not os.path.exists(path):
        return None
    t = open(path).read()
    m = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", t)
    if not m:
        return None
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(m.group(1).split(":"))))
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", t).group(1)) * 1024
    return wall, rss

def live_files(table):
    """The live data files of a Delta table, from its log (adds minus removes)."""
    log = os.path.join(table, "_delta_log")
    live = {}
    if not os.path.isdir(log):
        return []
    for name in sorted(os.listdir(log)):
        if not name.endswith(".json"):
            continue
        for line in open(os.path.join(log, name)):
            a = json.loads(line)
            if "add" in a:
                live[a["add"]["path"]] = a["add"]["size"]
            elif "remove" in a:
                live.pop(a["remove"]["path"], None)
    from urllib.parse import unquote
    return [(os.path.join(table, unquote(p)), s) for p, s in sorted(live.items())]

rows = []
c = timing(f"{w}/compactor_ro.time")
cd = timing(f"{w}/compactor.time")
rollup_files = live_files(f"{w}/ro_table_hourly")
if c:
    rep = json.load(open(f"{w}/run_ro.json"))
    roll = next(r for r in rep.get("rollups", []) if r["name"] == "hourly")
    rb = sum(s for _, s in rollup_files)
    rows.append(("compactor run, rollup only", c[0], c[1],
                 f"rollup {rb:,} B, {roll['groups']:,} groups from {rep['rows_rolled_up']:,} rows"))
if cd:
    rep = json.load(open(f"{w}/run.json"))
    roll = next(r for r in rep.get("rollups", []) if r["name"] == "hourly")
    rb = sum(s for _, s in live_files(f"{w}/table_hourly"))
    rows.append(("compactor run (+ detailed table)", cd[0], cd[1],
                 f"rollup {rb:,} B, {roll['groups']:,} groups; detailed table {rep['bytes_out']:,} B, "
                 f"{rep['rows_out']:,} rows"))
def duck(name, label):
    t = timing(f"{w}/{name}.time") if os.path.exists(f"{w}/{name}.memory") else None
    if not t:
        return None
    used = open(f"{w}/{name}.memory").read().strip()
    note = f"{os.path.getsize(f'{w}/{name}.parquet'):,} B"
    if os.path.exists(f"{w}/{name}.failed"):
        note += f"; under {mem}: {open(f'{w}/{name}.failed').read().strip()} (this row: memory_limit {used})"
    rows.append((label, t[0], t[1], note))
    return t
d = duck("duckdb", "DuckDB GROUP BY -> Parquet")
dd = duck("duckdb_distinct", "DuckDB DISTINCT, GROUP BY")

print(f"input: {raw:,} bytes of JSON ({raw / 1e9:.2f} GB), --memory {mem}, {threads} threads")
print(f"{'':34} {'seconds':>9} {'MB/s':>8} {'peak RSS':>11}  output")
for name, s, rss, out in rows:
    print(f"{name:34} {s:9.2f} {raw / s / 1e6:8.1f} {rss / 2**20:7.0f} MiB  {out}")
if c and d:
    print(f"DuckDB GROUP BY s / compactor rollup-only s: {d[0] / c[0]:.2f}x")
if cd and d:
    print(f"DuckDB GROUP BY s / compactor (+ detailed table) s: {d[0] / cd[0]:.2f}x")
if cd and dd:
    print(f"DuckDB (DISTINCT first) s / compactor (+ detailed table, deduplicated) s: {dd[0] / cd[0]:.2f}x")

# agreement: same groups, same counts and sums; distinct estimates within 2%. Where the two
# estimates are further apart, the exact distinct count (DuckDB's count(DISTINCT), over the raw
# JSON, for those groups only) says which engine is off: compactor must be within 2% (or 1).
if c and d and py:
    check = r"""
import duckdb, json, sys
files, duck, data = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET TimeZone='UTC'")
con.execute(f"CREATE VIEW c AS SELECT * FROM read_parquet({files!r})")
con.execute(f"CREATE VIEW d AS SELECT * FROM read_parquet('{duck}')")
key = ('c.ts = d.ts AND c.event IS NOT DISTINCT FROM d.event AND c.country IS NOT DISTINCT FROM d.country '
       'AND c."device.os" IS NOT DISTINCT FROM d."device.os"')
out = {}
(out["groups"], out["duckdb_groups"]) = con.execute("SELECT (SELECT count(*) FROM c), (SELECT count(*) FROM d)").fetchone()
con.execute(f"CREATE TABLE j AS SELECT c.ts AS cts, d.ts AS dts, c.event, c.country, c.\"device.os\" AS os, "
            f"c.events AS ce, d.events AS de, c.bitrate_sum AS cs, d.bitrate_sum AS ds, c.users AS cu, d.users AS du, "
            f"c.bitrate_p50 AS cp50, d.bitrate[1] AS dp50 FROM c FULL OUTER JOIN d ON {key}")
(out["unmatched"], out["count_differs"], out["sum_differs"], out["users_median_diff"], out["users_max_diff"],
 out["p50_max_diff"]) = con.execute(
    "SELECT count(*) FILTER (WHERE cts IS NULL OR dts IS NULL), count(*) FILTER (WHERE ce <> de), "
    "count(*) FILTER (WHERE cs IS DISTINCT FROM ds), median(abs(cu - du) / greatest(cu, 1)), "
    "max(abs(cu - du) / greatest(cu, 1)), max(abs(cp50 - dp50) / greatest(dp50, 1)) FROM j").fetchone()
con.execute("CREATE TABLE disputed AS SELECT cts AS ts, event, country, os, cu, du FROM j "
            "WHERE abs(cu - du) > greatest(1, 0.02 * cu)")
out["disputed"] = con.execute("SELECT count(*) FROM disputed").fetchone()[0]
out["compactor_off"] = out["duckdb_off"] = 0
out["examples"] = []
if out["disputed"]:
    con.execute(f"CREATE TABLE exact AS SELECT time_bucket(INTERVAL 1 hour, CAST(r.ts AS TIMESTAMP)) AS ts, r.event, "
                f"r.country, r.device.os AS os, count(DISTINCT r.user_id) AS n FROM read_json('{data}', "
                f"format = 'newline_delimited') r SEMI JOIN disputed x ON time_bucket(INTERVAL 1 hour, "
                f"CAST(r.ts AS TIMESTAMP)) = x.ts AND r.event IS NOT DISTINCT FROM x.event AND r.country IS NOT "
                f"DISTINCT FROM x.country AND r.device.os IS NOT DISTINCT FROM x.os GROUP BY ALL")
    q = ("FROM disputed x JOIN exact e ON x.ts = e.ts AND x.event IS NOT DISTINCT FROM e.event AND x.country IS NOT "
         "DISTINCT FROM e.country AND x.os IS NOT DISTINCT FROM e.os")
    (out["compactor_off"], out["duckdb_off"]) = con.execute(
        f"SELECT count(*) FILTER (WHERE abs(cu - n) > greatest(1, 0.02 * n)), "
        f"count(*) FILTER (WHERE abs(du - n) > greatest(1, 0.02 * n)) {q}").fetchone()
    out["examples"] = [list(map(str, r)) for r in con.execute(
        f"SELECT x.event, x.country, x.os, n, cu, du {q} ORDER BY abs(cu - n) DESC, abs(du - n) DESC LIMIT 3").fetchall()]
print(json.dumps(out, default=float))
"""
    out = subprocess.run([py, "-c", check, json.dumps([f for f, _ in rollup_files]),
                          f"{w}/duckdb.parquet", f"{w}/data/events.jsonl"], capture_output=True, text=True)
    if out.returncode != 0:
        print("agreement check failed to run:", out.stderr.strip()[-2000:])
        sys.exit(1)
    a = json.loads(out.stdout.strip().splitlines()[-1])
    ok = (a["groups"] == a["duckdb_groups"] and a["unmatched"] == 0 and a["count_differs"] == 0
          and a["sum_differs"] == 0 and a["compactor_off"] == 0)
    print(f"agreement: {a['groups']:,} groups (DuckDB {a['duckdb_groups']:,}), unmatched {a['unmatched']}, "
          f"count differs in {a['count_differs']}, sum differs in {a['sum_differs']}")
    print(f"  distinct users: median difference {a['users_median_diff']:.4f}, max {a['users_max_diff']:.4f}; "
          f"{a['disputed']} groups more than 2% (or 1) apart, checked against count(DISTINCT): "
          f"compactor off in {a['compactor_off']}, DuckDB off in {a['duckdb_off']} "
          f"(event, country, os, exact, compactor, DuckDB: {a['examples']})")
    print(f"  p50 bitrate: max relative difference {a['p50_max_diff']:.4f} (t-digest vs DuckDB's "
          f"approx_quantile; tiny groups interpolate differently: informative only)")
    print("AGREE" if ok else "DISAGREE")
    sys.exit(0 if ok else 1)
PY
