"""Runs the checkdmarc command line against the stsward lab.

checkdmarc sends its own DNS queries to the server given with --nameserver, but it opens
its HTTPS (requests) and SMTP (smtplib) connections through the operating system's
resolver, which knows nothing of the lab's `.test` names. This wrapper makes the process
resolve `.test` names through the lab's DNS server too, as a machine whose system resolver
pointed at the lab would, and leaves every other name to the operating system. Nothing
else of checkdmarc is changed.

    python checkdmarc-lab.py LAB_DNS_IP  [checkdmarc arguments...]
"""

import socket
import sys

import dns.exception
import dns.resolver

from checkdmarc._cli import _main

LAB_SUFFIX = ".test"


def lab_resolver(ip: str) -> dns.resolver.Resolver:
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [ip]
    resolver.lifetime = 5.0
    return resolver


def patch_getaddrinfo(resolver: dns.resolver.Resolver) -> None:
    original = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.rstrip(".").lower().endswith(LAB_SUFFIX):
            try:
                answer = resolver.resolve(name, "A")
            except dns.exception.DNSException as error:
                raise socket.gaierror(socket.EAI_NONAME, str(error)) from error
            found = []
            for record in answer:
                found += original(record.address, port, socket.AF_INET, type, proto, flags)
            return found
        return original(host, port, family, type, proto, flags)

    socket.getaddrinfo = getaddrinfo


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: checkdmarc-lab.py LAB_DNS_IP [checkdmarc arguments...]")
    patch_getaddrinfo(lab_resolver(sys.argv[1]))
    sys.argv = ["checkdmarc"] + sys.argv[2:]
    _main()
