#!/usr/bin/env bash
# Size reduction (issue 5): compactor's Parquet against `zstd -19` and `gzip -6` of the raw text
# and against DuckDB's zstd Parquet of the same rows with the same sort key, on generated logs
# (~500 MB JSON events and ~500 MB access logs, as benches/peers.sh makes them) and on every
# file over 1 MB in ../shared/corpus.
#
#   benches/reduction.sh                      # generated data (minutes) and corpus
#   SKIP_GENERATED=1 benches/reduction.sh     # corpus only (seconds)
#
# Per data set one row: raw bytes, zstd -19 bytes (`zstd -19 -T0`; python `zstandard` from the
# peer venv when the zstd CLI is missing: the output says which), gzip -6 bytes, DuckDB, compactor
# with the same sort key, compactor with `sort_by = "auto"` (and the key it chose, from the run
# report), then the ratios raw/each, DuckDB/compactor (same key), zstd19/compactor-auto and
# DuckDB/compactor-auto. Above 1 a ratio means compactor's output is the smaller one.
#
# DuckDB: for the generated json and combined sets, ../shared/bench/peer.py (parses the raw
# text, SELECT DISTINCT, ORDER BY the key). For corpus files (any format, compactor's `auto`),
# DuckDB reads compactor's own output Parquet (same-key run) and writes it again:
# COPY (SELECT * FROM read_parquet([...]) ORDER BY key) TO ... (FORMAT parquet, COMPRESSION zstd),
# so the rows are the same and only the writer differs.
#
# Results: target/reduction/results.md (markdown) and results.tsv; run logs and reports beside.
# Generated inputs are shared with benches/peers.sh ($PEERS_WORK, default target/peers).
set -euo pipefail
cd "$(dirname "$0")/.."
W=${WORK:-target/reduction}
G=${PEERS_WORK:-target/peers}
CORPUS=${CORPUS:-../shared/corpus}
THREADS=${THREADS:-$(nproc)}
mkdir -p "$W"
rm -rf "$W/out"
cargo build --release -q -p compactor
B=$PWD/target/release/compactor
H=$PWD/benches/reduction.py
PY=$(bash ../shared/bench/setup-peers.sh | tail -1)

if command -v zstd > /dev/null; then
  ZHOW="zstd CLI $(zstd -V | grep -o 'v[0-9][0-9.]*' | head -1)"
  z19() { zstd -19 -T0 -q -c "$1" | wc -c; }
else
  "$PY" -c 'import zstandard' 2> /dev/null || "$PY" -m pip install -q zstandard >&2
  ZHOW="python zstandard $("$PY" -c 'import zstandard; print(zstandard.__version__)') (no zstd CLI)"
  z19() { "$PY" "$H" zstd19 "$1"; }
fi
echo "zstd -19 by: $ZHOW"

# Parquet files of a table (not the _delta_log checkpoints, not compactor's own state).
files() { find "$1" \( -name _delta_log -o -name _compactor \) -prune -o -name '*.parquet' -print | sort; }
size() { files "$1" | xargs -r stat -c %s | awk '{s += $1} END {print s + 0}'; }
jfield() { "$PY" -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }
tomllist() {  # a,b,c -> ["a", "b", "c"]
  local IFS=, out="" c
  for c in $1; do out+="${out:+, }\"$c\""; done
  echo "[$out]"
}

TSV=$W/results.tsv
printf 'data\traw\tzstd19\tgzip6\tduck\tduck_rows\tsame\tsame_rows\tauto\tauto_rows\tsame_key\tauto_key\n' > "$TSV"

# compactor NAME TAG INPUT FORMAT SORT_BY_TOML EXTRA_INPUT_TOML: runs one job into $W/out/NAME-TAG;
# prints "bytes rows", or nothing when the run fails (its log is shown).
compactor_run() {
  local name=$1 tag=$2 in=$3 fmt=$4 sort=$5 extra=$6
  local job=$W/$name-$tag.toml
  cat > "$job" <<TOML
[input]
paths = ["$in"]
format = "$fmt"
$extra
[output]
path = "out/$name-$tag"
sort_by = $sort
TOML
  if "$B" run "$job" --threads "$THREADS" --no-progress --report "$W/$name-$tag-report.json" > "$W/$name-$tag.log" 2>&1; then
    echo "$(size "$W/out/$name-$tag") $(jfield "$W/$name-$tag-report.json" rows_out)"
  else
    echo "  compactor ($tag) failed on $name:" >&2
    tail -3 "$W/$name-$tag.log" | sed 's/^/    /' >&2
  fi
}

# measure NAME INPUT FORMAT KEY PEER_KEY PEER_FORMAT EXTRA_INPUT_TOML
#   KEY: compactor's sort key, comma-separated; PEER_KEY: the same for DuckDB's column names;
#   PEER_FORMAT: json|combined for peer.py, empty for a rewrite of compactor's output.
measure() {
  local name=$1 in=$2 fmt=$3 key=$4 pkey=$5 pfmt=$6 extra=$7
  in=$(realpath "$in")
  echo "== $name ($(stat -c %s "$in") bytes, key $key)" >&2
  local raw z g same auto auto_key="" duck="" duck_rows=""
  raw=$(stat -c %s "$in")
  z=$(z19 "$in")
  g=$(gzip -6 -c "$in" | wc -c)
  same=$(compactor_run "$name" same "$in" "$fmt" "$(tomllist "$key")" "$extra")
  auto=$(compactor_run "$name" auto "$in" "$fmt" '"auto"' "$extra")
  [[ -n $auto ]] && auto_key=$("$PY" "$H" report-key "$W/$name-auto-report.json")
  if [[ -n $pfmt ]]; then
    local line
    line=$("$PY" ../shared/bench/peer.py duckdb "$pfmt" "$in" "$W/$name-duckdb.parquet" --sort "$pkey" --threads "$THREADS")
    duck=$(stat -c %s "$W/$name-duckdb.parquet")
    duck_rows=$(sed -n 's/.*rows=\([0-9]*\).*/\1/p' <<< "$line")
  else
    local src=$W/out/$name-same
    [[ -n $same ]] || src=$W/out/$name-auto
    if [[ -n $same || -n $auto ]]; then
      local rb
      # shellcheck disable=SC2046 # file names from compactor: no blanks
      rb=$("$PY" "$H" rewrite "$W/$name-duckdb.parquet" "$pkey" $(files "$src"))
      duck_rows=${rb% *} duck=${rb#* }
    fi
  fi
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$raw" "$z" "$g" "$duck" "$duck_rows" \
    "${same% *}" "${same#* }" "${auto% *}" "${auto#* }" "$key" "$auto_key" >> "$TSV"
}

if [[ ${SKIP_GENERATED:-} == 1 ]]; then
  echo "generated data: skipped (SKIP_GENERATED=1)"
else
  mkdir -p "$G"
  [[ -s $G/events.jsonl ]] || "$B" gen --format json --lines "${LINES_JSON:-1162000}" --seed 42 --output "$G/events.jsonl"
  [[ -s $G/access.log ]] || "$B" gen --format combined --lines "${LINES_ACCESS:-2300000}" --seed 7 --output "$G/access.log"
  measure gen-json "$G/events.jsonl" json event,country,ts event,country,ts json ""
  measure gen-combined "$G/access.log" combined status,method,user_agent,referer,path,ts \
    status,method,ua,referer,path,ts combined 'extra_columns = ["request_time"]'
fi

# The key a user would pick per corpus file: low-cardinality columns, then the timestamp.
corpus_key() {
  case $1 in
    access/*) echo status,method,ts ;;
    tsv/zeek_weird.log) echo name,ts ;;
    json/elastic_nginxplus_json_logs.jsonl) echo pid,timestamp ;;
    json/zeek_ssl.json) echo version,cipher,ts ;;
    *)  # unknown file: its timestamp column, if infer finds one
      "$B" infer "$CORPUS/$1" --format auto 2> /dev/null | sed -n 's/^"\{0,1\}\(ts\|timestamp\|time\)"\{0,1\} = "timestamp"$/\1/p' | head -1 ;;
  esac
}
if [[ -d $CORPUS ]]; then
  while read -r f; do
    rel=${f#"$CORPUS"/}
    key=$(corpus_key "$rel")
    measure "$(basename "$rel")" "$f" auto "$key" "$key" "" ""
  done < <(find "$CORPUS" -type f -size +1000000c ! -name '*.md' | sort)
else
  echo "corpus: skipped ($CORPUS is absent)"
fi

echo
"$PY" "$H" table "$TSV" "$W/results.md" \
  "Sizes in bytes of the output (Parquet: sum of the table's data files). zstd -19 by: $ZHOW. Ratios above 1: compactor's output is smaller. DuckDB uses the same key as the \"compactor\" column; \"compactor auto\" uses \`sort_by = \"auto\"\`." \
  "DuckDB: peer.py (SELECT DISTINCT, ORDER BY key) for gen-*; for corpus files, DuckDB rewrites compactor's same-key output rows ORDER BY the same key (zstd Parquet)."
echo "results: $W/results.md, $W/results.tsv; logs and run reports: $W/"
