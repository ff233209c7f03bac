#!/usr/bin/env python3
"""Build the report-parse benchmark's input set.

Reads TLS-RPT report templates (bare JSON files and gzip payloads), and writes COUNT reports
into OUT: the templates taken in turn, each copy with a distinct `report-id`, half of them as
`.json` and half as `.json.gz`, every template in both forms.

The id is rewritten in the text, not by re-serialising, so every copy keeps its template's
real-world formatting (minified or pretty-printed, CRLF, BOM-less, no final newline...), which
is what a parser meets in practice. The gzip files carry mtime 0 so that the set is the same
from run to run.

Usage: gen-reports.py --out DIR --count N TEMPLATE...
"""

import argparse
import gzip
import json
import os
import re
import shutil
import sys

# "report-id" : "<JSON string body>"; the body may hold escaped quotes.
REPORT_ID = re.compile(rb'("report-id"\s*:\s*")((?:[^"\\]|\\.)*)(")')


def load_template(path):
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    doc = json.loads(data.decode("utf-8"))
    if not isinstance(doc, dict) or not isinstance(doc.get("report-id"), str):
        raise ValueError("not a JSON object with a string report-id")
    if len(REPORT_ID.findall(data)) != 1:
        raise ValueError("report-id does not occur exactly once as a top-level string")
    return data


def gzipped(i, n_templates):
    # Plain i % 2 would pin each template to one form whenever the template count is even;
    # flipping the parity every round gives every template both forms.
    return (i + i // n_templates) % 2 == 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("templates", nargs="+")
    args = ap.parse_args()

    templates = []
    for path in args.templates:
        try:
            templates.append((os.path.basename(path), load_template(path)))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            print(f"gen-reports: skipping {path}: {e}", file=sys.stderr)
    if not templates:
        sys.exit("gen-reports: no usable template")

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)

    json_files = gz_files = 0
    for i in range(args.count):
        name, data = templates[i % len(templates)]
        stem = name.removesuffix(".gz").removesuffix(".json")
        suffix = f"-bench-{i:06d}".encode()
        report = REPORT_ID.sub(lambda m: m.group(1) + m.group(2) + suffix + m.group(3), data, count=1)
        base = os.path.join(args.out, f"{i:06d}-{stem}.json")
        if not gzipped(i, len(templates)):
            with open(base, "wb") as f:
                f.write(report)
            json_files += 1
        else:
            with open(base + ".gz", "wb") as f:
                f.write(gzip.compress(report, mtime=0))
            gz_files += 1

    # Cheap guard against a regex slip: the first copies must carry the new id.
    for i in range(min(args.count, len(templates))):
        name, data = templates[i % len(templates)]
        stem = name.removesuffix(".gz").removesuffix(".json")
        gz = gzipped(i, len(templates))
        path = os.path.join(args.out, f"{i:06d}-{stem}.json") + (".gz" if gz else "")
        with open(path, "rb") as f:
            raw = f.read()
        doc = json.loads(gzip.decompress(raw) if gz else raw)
        if not doc["report-id"].endswith(f"-bench-{i:06d}"):
            sys.exit(f"gen-reports: report-id not rewritten in {path}")

    print(
        f"gen-reports: {args.count} reports from {len(templates)} templates "
        f"({json_files} .json, {gz_files} .json.gz) in {args.out}",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
