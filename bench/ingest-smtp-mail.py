#!/usr/bin/env python3
"""Wrap generated TLS-RPT reports into report e-mails for bench/ingest-smtp.

Every `.json` / `.json.gz` file in IN becomes one RFC 8460 §5.3 report message in OUT
(`NNNNNN.eml`): multipart/report; report-type=tlsrpt, the TLS-Report-Domain and
TLS-Report-Submitter headers, a text part, and the report gzipped as an
application/tlsrpt+gzip attachment (base64). No DKIM signature: the bench runs the
listener with require_dkim = false. Lines end in LF; smtp-source sends them as CRLF.

Usage: ingest-smtp-mail.py --in DIR --out DIR
"""

import argparse
import email.policy
import gzip
import json
import os
import sys
from email.message import EmailMessage


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--in", dest="src", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    names = sorted(n for n in os.listdir(a.src) if n.endswith((".json", ".json.gz")))
    if not names:
        sys.exit(f"ingest-smtp-mail: no reports in {a.src}")
    pol = email.policy.SMTP.clone(linesep="\n")
    for i, name in enumerate(names):
        with open(os.path.join(a.src, name), "rb") as f:
            data = f.read()
        raw = gzip.decompress(data) if name.endswith(".gz") else data
        doc = json.loads(raw.decode("utf-8-sig"))
        domain = "example.net"
        try:
            domain = doc["policies"][0]["policy"]["policy-domain"] or domain
        except (KeyError, IndexError, TypeError):
            pass
        msg = EmailMessage(policy=pol)
        msg["From"] = "tlsrpt-noreply@reporter.test"
        msg["To"] = "tlsrpt@bench.test"
        msg["Subject"] = f"Report Domain: {domain} Submitter: reporter.test Report-ID: <{i}@reporter.test>"
        msg["Date"] = "Thu, 03 Dec 2026 00:00:00 +0000"
        msg["Message-ID"] = f"<bench-{i}@reporter.test>"
        msg["TLS-Report-Domain"] = domain
        msg["TLS-Report-Submitter"] = "reporter.test"
        msg.set_content("This is an aggregate TLS report from reporter.test.\n")
        msg.add_attachment(
            gzip.compress(raw, mtime=0),
            maintype="application",
            subtype="tlsrpt+gzip",
            filename=f"reporter.test!{domain}!{i}.json.gz",
        )
        msg.replace_header("Content-Type", 'multipart/report; report-type="tlsrpt"')
        # set_content/add_attachment chose a boundary; keep it on the new Content-Type.
        with open(os.path.join(a.out, f"{i:06d}.eml"), "wb") as f:
            f.write(msg.as_bytes(policy=pol))


if __name__ == "__main__":
    main()
