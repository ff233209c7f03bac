#!/usr/bin/env python3
"""Write TLS-RPT reports spread over domains, organisations and days (bench/ingest, bench/dashboard).

Report number i (FIRST <= i < FIRST + COUNT) is the report organisation i % ORGS sends about
policy domain (i // ORGS) % DOMAINS for day START + (i // (ORGS * DOMAINS)): what a hosted domain
receives when every sending organisation reports on it every day (RFC 8460 §4.1: one report
per policy domain per day). Each report takes the policies and failure details of one of the
TEMPLATES in turn, with its policy domain, organisation, date range and report id replaced;
so the rollups the store builds are as many as a real install of that size would hold.

Usage: ingest-spread.py --out DIR --first N --count N [--domains N] [--orgs N]
                        [--start YYYY-MM-DD] TEMPLATE...
"""

import argparse
import json
import os
import shutil
import sys
from datetime import datetime, timedelta, timezone

ORG_NAMES = [
    "Google Inc.", "Microsoft Corporation", "Yahoo", "Comcast", "Mail.Ru", "GMX",
    "Orange", "Proton AG", "Fastmail", "Zoho", "Apple Inc.", "Yandex", "Tutanota",
    "Mailbox.org", "Posteo", "Seznam", "Web.de", "Free", "SFR", "Telekom",
]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--first", type=int, default=0)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--domains", type=int, default=2000)
    ap.add_argument("--orgs", type=int, default=10)
    ap.add_argument("--start", default="2026-01-01", help="the first report day (UTC)")
    ap.add_argument("templates", nargs="+")
    args = ap.parse_args()
    if not 1 <= args.orgs <= len(ORG_NAMES):
        sys.exit(f"ingest-spread: --orgs must be 1..{len(ORG_NAMES)}")

    templates = []
    for path in args.templates:
        if not path.endswith(".json"):
            continue
        try:
            with open(path, "rb") as f:
                doc = json.loads(f.read().decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError) as e:
            print(f"ingest-spread: skipping {path}: {e}", file=sys.stderr)
            continue
        if isinstance(doc, dict) and isinstance(doc.get("policies"), list) and doc["policies"]:
            templates.append(doc)
    if not templates:
        sys.exit("ingest-spread: no usable template")

    if os.path.isdir(args.out):
        shutil.rmtree(args.out)
    os.makedirs(args.out)
    try:
        day0 = datetime.strptime(args.start, "%Y-%m-%d").replace(tzinfo=timezone.utc)
    except ValueError as e:
        sys.exit(f"ingest-spread: --start: {e}")
    for i in range(args.first, args.first + args.count):
        org = ORG_NAMES[i % args.orgs]
        domain = f"d{(i // args.orgs) % args.domains:05d}.example"
        day = day0 + timedelta(days=i // (args.orgs * args.domains))
        doc = dict(templates[i % len(templates)])
        doc["organization-name"] = org
        doc["report-id"] = f"spread-{i:08d}"
        doc["date-range"] = {
            "start-datetime": day.strftime("%Y-%m-%dT00:00:00Z"),
            "end-datetime": day.strftime("%Y-%m-%dT23:59:59Z"),
        }
        policies = []
        for p in doc["policies"]:
            p = dict(p)
            if isinstance(p.get("policy"), dict):
                p["policy"] = dict(p["policy"], **{"policy-domain": domain})
            policies.append(p)
        doc["policies"] = policies
        with open(os.path.join(args.out, f"{i:08d}.json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
