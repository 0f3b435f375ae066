#!/usr/bin/python3
"""dkim.py - DKIM for tests/check_moderation (run with /usr/bin/python3,
which has the python3-dkim module).

    dkim.py sign KEYFILE SELECTOR DOMAIN < message > signed
    dkim.py verify DNSFILE < message

sign prepends a DKIM-Signature over From, To, Subject, Date and
Message-ID only (relaxed/simple), so headers a list adds (List-*) leave
it valid.  verify checks the first signature against the key in DNSFILE
(the TXT record dknewkey writes, KEY.dns): exit 0 when it verifies,
1 when not, 2 on wrong use.
"""
import os
import sys

# This file is dkim.py too: take the module from the system, not from here.
sys.path = [p for p in sys.path
            if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import dkim  # noqa: E402

SIGNED = [b"from", b"to", b"subject", b"date", b"message-id"]


def sign(keyfile, selector, domain):
    msg = sys.stdin.buffer.read()
    with open(keyfile, "rb") as f:
        key = f.read()
    sig = dkim.sign(msg, selector.encode(), domain.encode(), key,
                    canonicalize=(b"relaxed", b"simple"),
                    include_headers=SIGNED, linesep=b"\r\n")
    sys.stdout.buffer.write(sig + msg)
    return 0


def verify(dnsfile):
    with open(dnsfile, "rb") as f:
        txt = b"".join(f.read().split())

    def dnsfunc(name, timeout=5):
        return txt

    msg = sys.stdin.buffer.read()
    ok = dkim.verify(msg, dnsfunc=dnsfunc)
    print("dkim: pass" if ok else "dkim: fail")
    return 0 if ok else 1


def main(argv):
    if len(argv) == 5 and argv[1] == "sign":
        return sign(argv[2], argv[3], argv[4])
    if len(argv) == 3 and argv[1] == "verify":
        return verify(argv[2])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
