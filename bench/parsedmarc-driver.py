#!/usr/bin/env python3
"""Time parsedmarc's own TLS-RPT parser over a directory of reports, in-process.

For each run, every file under DIR is read, gunzipped in Python when its name ends in `.gz`,
and handed to `parsedmarc.parse_smtp_tls_report_json` (the function parsedmarc itself calls
for a TLS-RPT payload once it has it out of a file or an e-mail). Reading and gunzipping count
in the time; starting Python and importing parsedmarc do not, which favours parsedmarc.

Prints one JSON object on standard output:
  {"version", "files", "accepted", "rejected", "rejected_templates", "runs": [seconds...]}

Usage: parsedmarc-driver.py DIR RUNS
"""

import gzip
import json
import os
import sys
import time

import parsedmarc
from parsedmarc import InvalidSMTPTLSReport, parse_smtp_tls_report_json


def one_run(paths):
    accepted = 0
    rejected = []
    start = time.perf_counter()
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".gz"):
            data = gzip.decompress(data)
        try:
            parse_smtp_tls_report_json(data)
            accepted += 1
        except InvalidSMTPTLSReport:
            rejected.append(path)
    return time.perf_counter() - start, accepted, rejected


def template_of(path):
    # gen-reports.py names files NNNNNN-<template>.json[.gz].
    name = os.path.basename(path)
    return name.split("-", 1)[1].removesuffix(".gz").removesuffix(".json")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[-1])
    root, runs = sys.argv[1], int(sys.argv[2])
    paths = sorted(
        os.path.join(d, name) for d, _, names in os.walk(root) for name in names
    )
    if not paths:
        sys.exit(f"parsedmarc-driver: no files under {root}")
    times = []
    accepted, rejected = 0, []
    for _ in range(runs):
        elapsed, accepted, rejected = one_run(paths)
        times.append(elapsed)
    print(
        json.dumps(
            {
                "version": getattr(parsedmarc, "__version__", "unknown"),
                "files": len(paths),
                "accepted": accepted,
                "rejected": len(rejected),
                "rejected_templates": sorted({template_of(p) for p in rejected}),
                "runs": times,
            }
        )
    )


if __name__ == "__main__":
    main()
