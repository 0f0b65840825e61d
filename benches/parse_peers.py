#!/usr/bin/env python3
"""Parse-only throughput of a peer engine on an access log, with the regex that
../shared/bench/peer.py uses (the way a user of that engine parses combined logs): every line
matched, the fields extracted, the timestamp parsed, status and bytes cast; the result
materialised (DuckDB: an in-memory table; chDB: every column read into the Null output
format). No dedup, sort or Parquet: only what compactor's `parse` command does.

usage: parse_peers.py ENGINE INPUT [--threads N]     (ENGINE: duckdb | chdb)
Prints: ENGINE rows=N seconds=S
"""
import argparse, importlib.util, os, sys, time

spec = importlib.util.spec_from_file_location(
    "peer", os.path.join(os.path.dirname(__file__), "../../shared/bench/peer.py"))
# peer.py runs main() on import; read its RE and NAMES without running it.
src = open(spec.origin).read()
ns = {}
exec(src.split("def main():")[0], ns)
RE, NAMES = ns["RE"], ns["NAMES"]

ap = argparse.ArgumentParser()
ap.add_argument("engine"); ap.add_argument("input"); ap.add_argument("--threads", type=int, default=1)
a = ap.parse_args()
t = time.time()
if a.engine == "duckdb":
    import duckdb
    con = duckdb.connect(); con.execute(f"SET threads={a.threads}")
    lst = ",".join(f"'{n}'" for n in NAMES)
    con.execute(f"""CREATE TEMP TABLE t AS
        WITH raw AS (SELECT line FROM read_csv('{a.input}', columns={{'line':'VARCHAR'}},
                     delim='\\x01', quote='', escape='', header=false)),
             p AS (SELECT regexp_extract(line, '{RE}', [{lst}]) AS s FROM raw WHERE regexp_matches(line, '{RE}'))
        SELECT s.ip AS ip, s.user AS user, strptime(s.time, '%d/%b/%Y:%H:%M:%S %z') AS ts,
               s.method AS method, s.path AS path, s.proto AS proto, TRY_CAST(s.status AS USMALLINT) AS status,
               TRY_CAST(s.bytes AS UBIGINT) AS bytes, s.referer AS referer, s.ua AS ua, s.extra AS extra
        FROM p""")
    secs = time.time() - t
    rows = con.execute("SELECT count(*) FROM t").fetchone()[0]
elif a.engine == "chdb":
    import chdb
    cols = ", ".join(f"{n} String" for n in NAMES)
    re_escaped = RE.replace("\\", "\\\\")
    q = f"""SELECT ip, user, parseDateTime(time, '%d/%b/%Y:%H:%i:%s %z') AS ts, method, path, proto,
                toUInt16OrZero(status) AS status, toUInt64OrZero(bytes) AS bytes, referer, ua, extra
            FROM file('{a.input}', Regexp, '{cols}')
            SETTINGS max_threads={a.threads}, format_regexp='{re_escaped}',
                     format_regexp_escaping_rule='Raw', format_regexp_skip_unmatched=1"""
    chdb.query(q, "Null")
    secs = time.time() - t
    rows = int(str(chdb.query(f"SELECT count() FROM ({q})", "CSV")).strip())
else:
    sys.exit(f"unknown engine {a.engine}")
print(f"{a.engine} rows={rows} seconds={secs:.2f}")
