#!/usr/bin/env bash
# Fills the gitignored fuzz/corpus/<target>/ directories that `cargo fuzz run <target>` starts
# from:
#   1. every target's committed seeds (fuzz/seeds/<target>/), always;
#   2. when ../shared/corpus (real third-party logs, NOT committed: their licenses forbid
#      copying them into this repository) is present, small pieces of its files: each piece is
#      the file's header lines (CSV header, Zeek/W3C `#` directives) plus a run of records, at
#      most 4 KiB, with the control bytes the target expects in front (see README.md).
# Usage: fuzz/seed-corpus.sh [CORPUS_DIR]   (default: ../shared/corpus from the repo root)
# Idempotent: pieces are named by content hash.
set -euo pipefail
cd "$(dirname "$0")"
shared="${1:-../../shared/corpus}"

for d in seeds/*/; do
    t=$(basename "$d")
    mkdir -p "corpus/$t"
    cp -n "$d"* "corpus/$t/" 2>/dev/null || true
done

if [ ! -d "$shared" ]; then
    echo "seed-corpus: no $shared; corpus/ holds the seeds only"
    exit 0
fi

python3 - "$shared" <<'PY'
import hashlib, os, sys

src = sys.argv[1]
MAX_PIECE = 4096
PIECES_PER_FILE = 24

def lines_of(path):
    with open(path, "rb") as f:
        data = f.read()
    return data.splitlines(keepends=True)

def pieces(path, header_lines=0, hash_headers=False):
    """Header lines (the first `header_lines`, or every leading `#` line) plus runs of
    records, each piece at most MAX_PIECE bytes, spread over the file."""
    ls = lines_of(path)
    head = []
    if hash_headers:
        while ls and ls[0].startswith(b"#"):
            head.append(ls.pop(0))
    else:
        head, ls = ls[:header_lines], ls[header_lines:]
    head = b"".join(head)
    if not ls:
        return [head] if head else []
    out = []
    step = max(1, len(ls) // PIECES_PER_FILE)
    for start in range(0, len(ls), step):
        buf = head
        for l in ls[start:]:
            if len(buf) + len(l) > MAX_PIECE:
                break
            buf += l
        if buf != head or not out:
            out.append(buf[:MAX_PIECE])
        if len(out) >= PIECES_PER_FILE:
            break
    return out

def files(*dirs):
    for d in dirs:
        p = os.path.join(src, d)
        if os.path.isdir(p):
            for name in sorted(os.listdir(p)):
                yield d, name, os.path.join(p, name)

def put(target, blob):
    d = os.path.join("corpus", target)
    os.makedirs(d, exist_ok=True)
    name = "shared-" + hashlib.sha1(blob).hexdigest()[:16]
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)
    return 1

n = 0
for d, name, path in files("json"):
    for p in pieces(path):
        n += put("parse_json", p)
        n += put("parse_chunk_lines", b"\x00\xff\x07\x0f\x00\x00\x00" + p)
        n += put("detect", p)
        n += put("decode", b"\x41\x80" + p)
for d, name, path in files("access"):
    for p in pieces(path):
        n += put("parse_access", p)
        n += put("parse_chunk_lines", b"\x01\xff\x07\x0f\x00\x00\x00" + p)
        n += put("detect", p)
        n += put("decode", b"\x07\x33" + p)
for d, name, path in files("syslog", "loghub"):
    for p in pieces(path):
        if d == "syslog" or any(k in name for k in ("Linux", "OpenSSH")):
            n += put("parse_syslog", p)
        if "logfmt" in name:
            n += put("parse_logfmt", p)
        # grok: ISO timestamps with multi-line records, syslog layout, user-free built-ins
        n += put("parse_grok", b"\x11" + p)
        n += put("parse_grok", b"\x02" + p)
        n += put("split_records", b"\x01\x40\x80" + p)
        n += put("split_records", b"\x02\x10\x20" + p)
        n += put("detect", p)
for d, name, path in files("logfmt"):
    for p in pieces(path):
        n += put("parse_logfmt", p)
        n += put("detect", p)
for d, name, path in files("csv"):
    for p in pieces(path, header_lines=1):
        n += put("parse_csv", b"\x00" + p)
        n += put("split_records", b"\x04\x80\xff" + p)
        n += put("detect", p)
for d, name, path in files("tsv"):
    for p in pieces(path, hash_headers=True):
        n += put("parse_csv", b"\x01" + p)
        n += put("detect", p)
for d, name, path in files("aws"):
    ctl = {"cloudfront": 0, "application-lb": 1, "elb": 2, "s3": 3}
    which = next((v for k, v in ctl.items() if k in name), None)
    for p in pieces(path, hash_headers=True):
        if which is not None:
            n += put("parse_aws", bytes([which]) + p)
        n += put("detect", p)
print(f"seed-corpus: {n} pieces from {src}")
PY
