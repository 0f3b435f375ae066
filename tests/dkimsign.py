#!/usr/bin/python3
"""dkimsign.py - sign a test message with a real RSA key (python3-dkim).

  dkimsign.py genkey KEYFILE SELECTOR DOMAIN
      make a 2048-bit RSA key in KEYFILE (PKCS#1 PEM, by openssl) unless it
      exists,
      and print the key record as libopendkim's file query method reads
      it: "SELECTOR._domainkey.DOMAIN v=DKIM1; k=rsa; p=..."
  dkimsign.py sign KEYFILE SELECTOR DOMAIN H < MESSAGE > SIGNED
      sign MESSAGE (CRLF line ends) with d=DOMAIN, s=SELECTOR and
      h=H (colon-separated field names, signed as given: a name the
      message lacks is signed as absent), relaxed/relaxed, and print the
      DKIM-Signature field followed by the message.
"""
import base64
import os
import subprocess
import sys

# tests/dkim.py, beside this script, would hide the dkim module.
sys.path = [p for p in sys.path
            if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
import dkim  # noqa: E402


def genkey(path, selector, domain):
    # openssl (Debian: openssl, under ca-certificates): PKCS#1, as dkimpy reads it
    if not os.path.exists(path):
        subprocess.run(["openssl", "genrsa", "-traditional", "-out", path + ".tmp",
                        "2048"], check=True, stderr=subprocess.DEVNULL)
        os.rename(path + ".tmp", path)
    der = subprocess.run(["openssl", "rsa", "-in", path, "-pubout", "-outform", "DER"],
                         check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL).stdout
    print("%s._domainkey.%s v=DKIM1; k=rsa; p=%s"
          % (selector, domain, base64.b64encode(der).decode()))


def sign(path, selector, domain, hlist):
    msg = sys.stdin.buffer.read()
    with open(path, "rb") as f:
        key = f.read()
    names = [h.encode() for h in hlist.split(":") if h]
    signer = dkim.DKIM(msg)
    signer.should_not_sign = set()  # sign what real signers sign, Bcc too
    sig = signer.sign(selector.encode(), domain.encode(), key,
                      canonicalize=(b"relaxed", b"relaxed"),
                      include_headers=names)
    sys.stdout.buffer.write(sig + msg)


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "genkey":
        genkey(*sys.argv[2:5])
    elif len(sys.argv) == 6 and sys.argv[1] == "sign":
        sign(*sys.argv[2:6])
    else:
        sys.stderr.write(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main()
