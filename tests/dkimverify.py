#!/usr/bin/python3
"""dkimverify.py - does a copy carry a valid DKIM signature of the list
domain?  For tests/check_e2e (run with /usr/bin/python3, which has
Debian's python3-dkim).

    dkimverify.py TXTFILE DOMAIN MSGFILE FIELD...

TXTFILE is the DNS record opendkim-genkey wrote (SELECTOR.txt, BIND
syntax), the only key the verifier is given; MSGFILE a message, or a
file of tests/mlsink (its envelope lines are skipped).  The first
DKIM-Signature with d=DOMAIN must name every FIELD in h= (FIELD? only
when the message has that field; FIELD alone: it must have it too) and
verify.  Exit 0 when all holds, 1 when not, 2 on wrong use.
"""
import os
import re
import sys

# Never take a module from tests/ (tests/dkim.py): the system's dkim.
sys.path = [p for p in sys.path
            if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import dkim  # noqa: E402


def headers(msg):
    """(name, value) of each header field, unfolded"""
    head = re.split(rb"\r?\n\r?\n", msg, maxsplit=1)[0]
    fields = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1][1] += b" " + line.strip()
        elif b":" in line:
            name, value = line.split(b":", 1)
            fields.append([name.strip().lower(), value.strip()])
    return fields


def tags(value):
    out = {}
    for part in value.split(b";"):
        if b"=" in part:
            k, v = part.split(b"=", 1)
            out[k.strip().decode()] = re.sub(rb"\s+", b"", v).decode()
    return out


def main(argv):
    if len(argv) < 4:
        sys.stderr.write(__doc__)
        return 2
    txtfile, domain, msgfile, want = argv[1], argv[2].lower(), argv[3], argv[4:]
    with open(txtfile, "rb") as f:
        txt = f.read()
    # ( "v=DKIM1; ... " "p=..." ): the quoted strings joined
    record = b"".join(re.findall(rb'"([^"]*)"', txt))
    selector = txt.split()[0].split(b".")[0].decode()
    with open(msgfile, "rb") as f:
        msg = f.read()
    if msg.startswith(b"MAIL FROM:"):
        msg = msg.split(b"\n\n", 1)[1]
    fields = headers(msg)
    present = {name for name, _ in fields}
    sigs = [tags(v) for name, v in fields if name == b"dkim-signature"]
    idx = next((i for i, t in enumerate(sigs) if t.get("d", "").lower() == domain), None)
    if idx is None:
        print("dkim: no signature with d=%s (%d signatures)" % (domain, len(sigs)))
        return 1
    sig = sigs[idx]
    signed = [h.lower() for h in sig.get("h", "").split(":")]
    print("dkim: d=%s s=%s h=%s" % (sig.get("d"), sig.get("s"), sig.get("h")))
    for field in want:
        optional = field.endswith("?")
        field = field.rstrip("?").lower()
        if field.encode() not in present:
            if optional:
                continue
            print("dkim: the message has no %s field" % field)
            return 1
        if field not in signed:
            print("dkim: h= does not cover %s" % field)
            return 1
    name = "%s._domainkey.%s." % (selector, domain)

    def dnsfunc(qname, timeout=5):
        qname = qname.decode() if isinstance(qname, bytes) else qname
        return record if qname.rstrip(".").lower() == name.rstrip(".") else None

    try:
        ok = dkim.DKIM(msg).verify(idx=idx, dnsfunc=dnsfunc)
    except dkim.DKIMException as e:
        print("dkim: %s" % e)
        ok = False
    print("dkim: %s" % ("pass" if ok else "fail"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
