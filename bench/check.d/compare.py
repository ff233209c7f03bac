"""Side-by-side verdicts of stsward and checkdmarc, per domain and per check area.

    python compare.py STSWARD.jsonl CHECKDMARC.json

STSWARD.jsonl is the output of `stsward check --from FILE --json` (one object per domain,
then a summary line); CHECKDMARC.json is the output of `checkdmarc --check-mx-tls DOMAIN...`
(a JSON list, or one object for a single domain).

Both tools are reduced to the same four areas, each `pass`, `warn` or `fail`:

    record   the `_mta-sts` TXT record                          (RFC 8461 §3.1)
    policy   the policy fetch, its content, and MX coverage     (RFC 8461 §3.2, §3.3, §4.1)
    mx-tls   STARTTLS, TLS and certificate of every MX host     (RFC 8461 §4.2, RFC 3207)
    tls-rpt  the `_smtp._tls` TXT record                        (RFC 8460 §3)

plus `dane` (RFC 7672), which only stsward checks. `-` means the tool saw nothing to judge
in that area (e.g. no MX hosts); `n/c` means it did not get that far (checkdmarc stops at a
bad record before it fetches the policy), and is never counted as a disagreement.

Marks: `*` one tool passes where the other warns or fails; `~` both flag the area, one as
a warning and the other as a failure.
"""

import json
import re
import sys

AREAS = ["record", "policy", "mx-tls", "tls-rpt"]
RANK = {"pass": 0, "-": 0, "warn": 1, "fail": 2}
SEVERITY = {"ok": "pass", "info": "pass", "warning": "warn", "error": "fail"}


def worst(verdicts):
    verdicts = [v for v in verdicts if v in RANK]
    if not verdicts:
        return "-"
    return max(verdicts, key=lambda v: RANK[v])


# ---- stsward: the area is the code's prefix ----


def stsward_area(code):
    if code.startswith("sts.txt."):
        return "record"
    if code.startswith(("sts.policy.", "sts.mx.", "sts.id.")):
        return "policy"
    if code.startswith("mx."):
        return "mx-tls"
    if code.startswith("tlsrpt."):
        return "tls-rpt"
    if code.startswith("dane."):
        return "dane"
    return None


def stsward_row(obj):
    if "findings" not in obj:
        return {a: "n/r" for a in AREAS + ["dane"]}, {}
    verdicts, codes = {}, {}
    for f in obj["findings"]:
        area = stsward_area(f.get("code", ""))
        if area is None:
            continue
        verdicts.setdefault(area, []).append(SEVERITY.get(f.get("severity"), "fail"))
        if f.get("severity") not in ("ok",):
            codes.setdefault(area, set()).add(f["code"])
    return (
        {a: worst(verdicts.get(a, [])) for a in AREAS + ["dane"]},
        {a: sorted(c) for a, c in codes.items()},
    )


# ---- checkdmarc: one `mta_sts` section for record and policy, `mx` warnings ----

# Messages of the exceptions checkdmarc raises after the record was accepted: the download
# (MTASTSPolicyDownloadError, requests errors) and the policy parser (MTASTSPolicySyntaxError).
POLICY_ERROR = re.compile(
    r"policy|HTTP|^Line \d+|Missing required key|mode requires|carriage return|Content-Type"
)
POLICY_WARNING = re.compile(r"^Line \d+|Content-Type")
NOT_COVERED = re.compile(r" is not included in the MTA-STS policy$")
NO_MX = re.compile(r" has no MX records")
# Per-host failures of the STARTTLS probe and the address lookup before it.
MX_TLS_WARNING = re.compile(
    r"STARTTLS is not supported|SSL/TLS is not supported|^\S+: |does not have any A or AAAA"
)


def checkdmarc_row(obj):
    notes = {}
    sts = obj.get("mta_sts", {})
    record_warnings = [w for w in sts.get("warnings", []) if not POLICY_WARNING.search(w)]
    policy_warnings = [w for w in sts.get("warnings", []) if POLICY_WARNING.search(w)]
    if sts.get("valid"):
        record = "warn" if record_warnings else "pass"
        policy = "warn" if policy_warnings else "pass"
    elif POLICY_ERROR.search(sts.get("error", "")):
        record = "warn" if record_warnings else "pass"
        policy = "fail"
        notes["policy"] = sts.get("error", "")
    else:
        record, policy = "fail", "n/c"
        notes["record"] = sts.get("error", "")
    if record_warnings and "record" not in notes:
        notes["record"] = record_warnings[0]
    if policy_warnings and "policy" not in notes:
        notes["policy"] = "; ".join(policy_warnings[:2]) + (
            f" (+{len(policy_warnings) - 2} more)" if len(policy_warnings) > 2 else ""
        )

    mx = obj.get("mx", {})
    mx_warnings = mx.get("warnings", [])
    coverage = [w for w in mx_warnings if NOT_COVERED.search(w) or NO_MX.search(w)]
    if coverage and policy != "n/c":
        policy = worst([policy, "warn"])
        notes.setdefault("policy", coverage[0])
    tls_warnings = [w for w in mx_warnings if MX_TLS_WARNING.search(w)]
    hosts = mx.get("hosts", [])
    if "error" in mx:
        mx_tls = "fail"
        notes["mx-tls"] = mx["error"]
    elif not hosts:
        mx_tls = "-"
    elif tls_warnings or any(h.get("starttls") is False for h in hosts):
        mx_tls = "fail"
        notes["mx-tls"] = tls_warnings[0] if tls_warnings else "STARTTLS failed"
    else:
        mx_tls = "pass"

    rpt = obj.get("smtp_tls_reporting", {})
    if rpt.get("valid"):
        tls_rpt = "warn" if rpt.get("warnings") else "pass"
        if rpt.get("warnings"):
            notes["tls-rpt"] = rpt["warnings"][0]
    else:
        tls_rpt = "fail"
        notes["tls-rpt"] = rpt.get("error", "")
    return {"record": record, "policy": policy, "mx-tls": mx_tls, "tls-rpt": tls_rpt}, notes


def mark(a, b):
    if "n/c" in (a, b) or "n/r" in (a, b):
        return " "
    ra, rb = RANK.get(a, 0), RANK.get(b, 0)
    if ra == rb:
        return " "
    if min(ra, rb) == 0:
        return "*"
    return "~"


def load_stsward(path):
    rows = {}
    summary = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            if "summary" in obj:
                summary = obj["summary"]
            elif "domain" in obj:
                rows[obj["domain"].rstrip(".").lower()] = obj
    return rows, summary


def load_checkdmarc(path):
    with open(path) as f:
        data = json.load(f)
    if isinstance(data, dict):
        data = [data]
    return {d["domain"].rstrip(".").lower(): d for d in data}


def short(text, width=90):
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    sw_rows, _ = load_stsward(sys.argv[1])
    cd_rows = load_checkdmarc(sys.argv[2])
    domains = [d for d in sw_rows if d in cd_rows]
    missing = sorted(set(sw_rows) ^ set(cd_rows))

    width = max([len(d) for d in domains] + [6])
    head = f"{'domain':<{width}}  " + "".join(f"{a:<13}" for a in AREAS) + "dane"
    sub = f"{'':<{width}}  " + "".join(f"{'sw   cd':<13}" for _ in AREAS) + "sw"
    print(head)
    print(sub)
    print("-" * len(head))
    disagreements = []
    counts = {a: {"agree": 0, "*": 0, "~": 0, "n/c": 0} for a in AREAS}
    for domain in domains:
        sw, sw_codes = stsward_row(sw_rows[domain])
        cd, cd_notes = checkdmarc_row(cd_rows[domain])
        cells = []
        for area in AREAS:
            m = mark(sw[area], cd[area])
            cells.append(f"{sw[area]:<4} {cd[area]:<4}{m}   ")
            if "n/c" in (sw[area], cd[area]):
                counts[area]["n/c"] += 1
            elif m == " ":
                counts[area]["agree"] += 1
            else:
                counts[area][m] += 1
                disagreements.append(
                    (domain, area, m, sw[area], sw_codes.get(area, []), cd[area],
                     cd_notes.get(area, ""))
                )
        print(f"{domain:<{width}}  " + "".join(cells) + sw["dane"])

    print()
    print("Per area: agree / * (pass vs flagged) / ~ (warn vs fail) / not compared")
    for area in AREAS:
        c = counts[area]
        print(f"  {area:<8} {c['agree']:>3} agree  {c['*']:>3} *  {c['~']:>3} ~  {c['n/c']:>3} n/c")
    print()
    print(f"Disagreements ({len(disagreements)}):")
    for domain, area, m, swv, codes, cdv, note in disagreements:
        print(f"  {m} {domain} [{area}]")
        print(f"      stsward    {swv}: {', '.join(codes) if codes else '(all ok)'}")
        print(f"      checkdmarc {cdv}: {short(note) if note else '(nothing reported)'}")
    if missing:
        print()
        print("Checked by only one tool: " + ", ".join(missing))


if __name__ == "__main__":
    main()
