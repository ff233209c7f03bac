#!/usr/bin/env python3
"""Writes one certificate per hosted domain into stsward stores, as `stsward serve`'s ACME
client leaves it (crates/stsward-server/src/certs/order.rs, sealing.rs):

- a fresh ECDSA P-256 key per domain, PKCS#8 PEM, sealed with AES-256-GCM under the
  `keys.secret_file` key, the host name `mta-sts.<domain>` as associated data, a random
  12-byte nonce stored beside the ciphertext (ciphertext || 16-byte tag);
- a leaf for `mta-sts.<domain>` (subjectAltName, serverAuth) signed by the bench's test CA,
  90 days, stored as the chain leaf + CA in PEM, state 'valid'.

The rows go straight into the `certificates` table (one transaction per store) rather than
through ACME: the bench measures serving them, not a CA. The keys and signatures are real,
one per domain, made with OpenSSL (python3-cryptography) on every core.

usage: gen-certs.py SECRET_HEX CA_KEY CA_CERT DOMAINS_FILE STORE[:COUNT] ...
"""

import datetime
import os
import sqlite3
import sys
import time
from multiprocessing import Pool

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CTX = {}


def init(secret_hex, ca_key_path, ca_cert_path):
    with open(ca_key_path, "rb") as f:
        CTX["ca_key"] = serialization.load_pem_private_key(f.read(), None)
    with open(ca_cert_path, "rb") as f:
        ca_pem = f.read()
    CTX["ca_pem"] = ca_pem.decode()
    CTX["ca"] = x509.load_pem_x509_certificate(ca_pem)
    CTX["aead"] = AESGCM(bytes.fromhex(secret_hex))
    now = int(time.time())
    CTX["not_before"] = now - 3600
    CTX["not_after"] = now + 90 * 86400


def make(domain):
    name = "mta-sts." + domain
    key = ec.generate_private_key(ec.SECP256R1())
    nb = datetime.datetime.fromtimestamp(CTX["not_before"], datetime.timezone.utc)
    na = datetime.datetime.fromtimestamp(CTX["not_after"], datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(CTX["ca"].subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(nb)
        .not_valid_after(na)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(CTX["ca_key"], hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    nonce = os.urandom(12)
    sealed = CTX["aead"].encrypt(nonce, key_pem, name.encode())
    chain = cert.public_bytes(serialization.Encoding.PEM).decode() + CTX["ca_pem"]
    return (name, chain, sealed, nonce, CTX["not_before"], CTX["not_after"],
            "valid", None, CTX["not_before"])


def main():
    if len(sys.argv) < 6:
        sys.exit(__doc__)
    secret_hex, ca_key, ca_cert, domains_file = sys.argv[1:5]
    targets = []
    for arg in sys.argv[5:]:
        path, _, count = arg.partition(":")
        targets.append((path, int(count) if count else None))
    with open(domains_file) as f:
        domains = [line.split()[0] for line in f if line.strip() and not line.startswith("#")]
    most = max(c if c is not None else len(domains) for _, c in targets)
    domains = domains[:most]
    started = time.monotonic()
    with Pool(os.cpu_count(), initializer=init, initargs=(secret_hex, ca_key, ca_cert)) as pool:
        rows = pool.map(make, domains, chunksize=256)
    made = time.monotonic() - started
    for path, count in targets:
        db = sqlite3.connect(path)
        with db:
            db.executemany(
                "INSERT INTO certificates (name, chain_pem, key_ciphertext, key_nonce, "
                "not_before, not_after, state, last_error, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows[:count] if count is not None else rows,
            )
        db.close()
    print(f"{len(rows)} certificates (ECDSA P-256, one key each) in {made:.1f} s, "
          f"stored in {time.monotonic() - started - made:.1f} s")


if __name__ == "__main__":
    main()
