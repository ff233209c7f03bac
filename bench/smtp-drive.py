#!/usr/bin/env python3
"""smtp-drive — send many distinct e-mails over a few persistent SMTP sessions.

Usage: smtp-drive.py --port P [--host 127.0.0.1] [--sessions 20] [--from A] [--to B] FILE|DIR...

Postfix's smtp-source sends one file's content for every message, so distinct reports cost
one smtp-source process each, and on a small machine process start-up, not the server, sets
the rate. This driver (standard library only) keeps SESSIONS connections open and sends
every FILE once, as its own transaction (MAIL, RCPT, DATA) on whichever session is free, so
the figure it prints is the server's. A DIR stands for its `*.eml` files, sorted. Each file is sent as-is with CRLF line ends and
dot-stuffing (RFC 5321 §4.5.2). Prints one JSON line: files, acknowledged (2xx after DATA),
refused (anything else, with the first few replies), seconds.
"""

import argparse
import asyncio
import json
import os
import sys
import time


async def reply(reader):
    """One SMTP reply (possibly multi-line): (code, text)."""
    lines = []
    while True:
        line = await reader.readline()
        if not line:
            raise ConnectionError("the server closed the connection")
        lines.append(line.decode("utf-8", "replace").rstrip("\r\n"))
        if len(line) < 4 or line[3:4] != b"-":
            break
    return int(lines[-1][:3]), "\n".join(lines)


def wire(data):
    """The DATA payload: CRLF line ends, leading dots doubled, the final dot line."""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines)
    return out + b"\r\n.\r\n"


async def session(args, queue, stats):
    reader, writer = await asyncio.open_connection(args.host, args.port)
    try:
        code, text = await reply(reader)
        if code != 220:
            raise ConnectionError(f"greeting: {text}")
        writer.write(b"EHLO client.bench.test\r\n")
        code, text = await reply(reader)
        if code != 250:
            raise ConnectionError(f"EHLO: {text}")
        while True:
            try:
                payload = queue.get_nowait()
            except asyncio.QueueEmpty:
                break
            steps = [
                f"MAIL FROM:<{args.sender}>\r\n".encode(),
                f"RCPT TO:<{args.rcpt}>\r\n".encode(),
                b"DATA\r\n",
            ]
            ok = True
            for cmd, want in zip(steps, (250, 250, 354)):
                writer.write(cmd)
                code, text = await reply(reader)
                if code != want:
                    ok = False
                    break
            if ok:
                writer.write(payload)
                code, text = await reply(reader)
                ok = 200 <= code < 300
            if ok:
                stats["acknowledged"] += 1
            else:
                stats["refused"] += 1
                if len(stats["replies"]) < 5:
                    stats["replies"].append(text)
                writer.write(b"RSET\r\n")
                await reply(reader)
        writer.write(b"QUIT\r\n")
        await reply(reader)
    finally:
        writer.close()


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--sessions", type=int, default=20)
    p.add_argument("--from", dest="sender", default="tlsrpt-noreply@reporter.test")
    p.add_argument("--to", dest="rcpt", default="tlsrpt@bench.test")
    p.add_argument("files", nargs="+")
    args = p.parse_args()
    names = []
    for name in args.files:
        if os.path.isdir(name):
            names += sorted(os.path.join(name, n) for n in os.listdir(name) if n.endswith(".eml"))
        else:
            names.append(name)
    queue = asyncio.Queue()
    for name in names:
        with open(name, "rb") as f:
            queue.put_nowait(wire(f.read()))
    stats = {"files": len(names), "acknowledged": 0, "refused": 0, "replies": []}
    t0 = time.monotonic()
    results = await asyncio.gather(
        *(session(args, queue, stats) for _ in range(args.sessions)), return_exceptions=True
    )
    stats["seconds"] = round(time.monotonic() - t0, 3)
    errors = [str(r) for r in results if isinstance(r, BaseException)]
    stats["session_errors"] = errors
    print(json.dumps(stats))
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
