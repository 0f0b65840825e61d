#!/usr/bin/env python3
"""Helper of benches/reduction.sh (run with the peer venv's python: duckdb, pyarrow, zstandard).

  reduction.py zstd19 FILE                  bytes of FILE compressed by python zstandard, level 19,
                                            all threads (when the zstd CLI is missing)
  reduction.py rewrite OUT KEY FILE...      DuckDB: the rows of compactor's Parquet FILEs, ORDER BY
                                            KEY (comma-separated), one zstd Parquet file OUT;
                                            prints "rows bytes"
  reduction.py rows FILE...                 rows in Parquet FILEs
  reduction.py report-key REPORT.json       the sort key compactor chose, comma-separated
                                            (report field `sort_key`, else any field naming a sort)
  reduction.py table TSV MD [NOTE...]       prints the results table and writes it as markdown to
                                            MD, after the NOTE lines
"""
import json
import os
import sys


def quote(col):
    return '"' + col.replace('"', '""') + '"'


def zstd19(path):
    import zstandard

    c = zstandard.ZstdCompressor(level=19, threads=-1)
    n = 0
    with open(path, "rb") as f:
        with c.stream_reader(f, size=os.path.getsize(path)) as r:
            while True:
                b = r.read(1 << 20)
                if not b:
                    break
                n += len(b)
    print(n)


def rewrite(out, key, files):
    import duckdb

    con = duckdb.connect()
    order = ", ".join(quote(c.strip()) for c in key.split(",") if c.strip())
    lst = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    q = f"SELECT * FROM read_parquet([{lst}], union_by_name = true)"
    if order:
        q += f" ORDER BY {order}"
    con.execute(f"COPY ({q}) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    rows = con.execute(f"SELECT count(*) FROM read_parquet('{out}')").fetchone()[0]
    print(rows, os.path.getsize(out))


def rows(files):
    import pyarrow.parquet as pq

    print(sum(pq.ParquetFile(f).metadata.num_rows for f in files))


def report_key(path):
    r = json.load(open(path))
    v = r.get("sort_key")
    if v is None:
        for k, x in r.items():
            if "sort" in k and isinstance(x, (list, str)):
                v = x
                break
    if v is None:
        print("?")
    elif isinstance(v, list):
        print(",".join(str(x) for x in v))
    else:
        print(v)


COLS = "data raw zstd19 gzip6 duck duck_rows same same_rows auto auto_rows same_key auto_key".split()


def table(tsv, md, preamble):
    rows = []
    for line in open(tsv):
        f = line.rstrip("\n").split("\t")
        if f[0] == "data":
            continue
        rows.append(dict(zip(COLS, f)))

    def num(r, k):
        return int(r[k]) if r.get(k, "").isdigit() else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "n/a"

    head = [
        "data", "raw", "zstd -19", "gzip -6", "DuckDB", "compactor", "compactor auto",
        "raw/zstd19", "raw/gzip6", "raw/DuckDB", "raw/compactor", "raw/auto",
        "DuckDB/compactor", "zstd19/auto", "DuckDB/auto", "same key", "auto key",
    ]
    body, notes = [], []
    for r in rows:
        raw, z, g, d, s, a = (num(r, k) for k in ("raw", "zstd19", "gzip6", "duck", "same", "auto"))
        body.append([
            r["data"], *(str(x) if x else "n/a" for x in (raw, z, g, d, s, a)),
            ratio(raw, z), ratio(raw, g), ratio(raw, d), ratio(raw, s), ratio(raw, a),
            ratio(d, s), ratio(z, a), ratio(d, a), r["same_key"], r["auto_key"] or "(none)",
        ])
        counts = {k: r[k] for k in ("duck_rows", "same_rows", "auto_rows") if r.get(k)}
        if len(set(counts.values())) > 1:
            notes.append(f"{r['data']}: row counts differ: {counts}")
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    for b in body:
        print("  ".join(x.ljust(w) for x, w in zip(b, widths)))
    for n in notes:
        print("note:", n)
    with open(md, "w") as f:
        for p in preamble:
            f.write(p + "\n\n")
        f.write("| " + " | ".join(head) + " |\n")
        f.write("|" + "---|" * len(head) + "\n")
        for b in body:
            f.write("| " + " | ".join(x.replace("|", "\\|") for x in b) + " |\n")
        for n in notes:
            f.write(f"\n{n}\n")


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "zstd19":
        zstd19(args[0])
    elif cmd == "rewrite":
        rewrite(args[0], args[1], args[2:])
    elif cmd == "rows":
        rows(args)
    elif cmd == "report-key":
        report_key(args[0])
    elif cmd == "table":
        table(args[0], args[1], args[2:])
    else:
        sys.exit(__doc__)


main()
