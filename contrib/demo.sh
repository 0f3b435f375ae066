#!/bin/sh
# demo.sh - the whole picture on one machine, for trying mlistd out
# (Debian 12, as root): installs what is missing, builds, creates a demo
# database (the club of sql/example.sql), starts a private Postfix
# instance on 127.0.0.1:2525 (your system Postfix, if any, is not
# touched) and runs mlistd in the foreground for lists.example.org.
#
#   internet side:  swaks --server 127.0.0.1:2525 ...  -> private Postfix
#   Postfix -> mlistd 127.0.0.1:20381 -> Postfix's reinjection smtpd
#   127.0.0.1:20382 (signed by OpenDKIM, 127.0.0.1:8891) -> members' Maildir
#
# The reinjection smtpd signs every copy with d=lists.example.org, as
# contrib/opendkim and the README's "Signing list mail with DKIM" say,
# with a key made in $DEMO/opendkim/keys (the record you would publish
# in DNS is $DEMO/opendkim/keys/mlistd.txt).
# Members' mail (example.org) is delivered into $DEMO/mail/members/new/;
# mail for any other domain (a DSN to a refused poster, say) goes into
# $DEMO/mail/outside/new/, never to the internet.
# Ctrl-C stops mlistd and the private Postfix.
set -eu
cd "$(dirname "$0")/.."
DEMO=${DEMO:-/tmp/mlistd-demo}
PFPORT=${PFPORT:-2525}
MLPORT=${MLPORT:-20381}
RIPORT=${RIPORT:-20382}
DKPORT=${DKPORT:-8891}
# RESOLVER=ADDRESS:PORT: the DNS resolver mlistd asks for DMARC records
# (default: /etc/resolv.conf's)
RESOLVER=${RESOLVER:-}

command -v sqlite3 >/dev/null 2>&1 && command -v postfix >/dev/null 2>&1 \
	&& [ -f /usr/include/mailutils/smtp.h ] && [ -x /usr/sbin/opendkim ] \
	&& [ -x /usr/sbin/opendkim-genkey ] && command -v ss >/dev/null 2>&1 \
	|| sh contrib/install-deps.sh
[ -x src/mlistd ] || { autoreconf -fi && ./configure && make; }

# Sessions never run as root: the workers become the mlistd user.
id mlistd >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
	--home-dir /nonexistent --shell /usr/sbin/nologin mlistd

PF=$DEMO/postfix
[ -f "$PF/queue/pid/master.pid" ] && postfix -c "$PF/conf" abort 2>/dev/null || true
mkdir -p "$DEMO" "$PF/conf" "$PF/queue" "$PF/data" "$DEMO/mail"
chown postfix "$PF/data"
chown mlistd:mlistd "$DEMO/mail"
cat > "$PF/conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
mail_owner = postfix
myhostname = mx.lists.example.org
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
alias_maps =
local_recipient_maps =
maillog_file = $PF/maillog
maillog_file_prefixes = $PF
# The list domain goes to mlistd (as contrib/postfix/main.cf).
relay_domains = lists.example.org
transport_maps = texthash:$PF/conf/transport
mlistd_destination_recipient_limit = 1
smtpd_forbid_bare_newline = normalize
smtpd_forbid_bare_newline_exclusions =
# The members' domain is delivered here, into one demo Maildir.
virtual_mailbox_domains = example.org
virtual_mailbox_base = $DEMO/mail
virtual_mailbox_maps = static:members/
virtual_uid_maps = static:$(id -u mlistd)
virtual_gid_maps = static:$(id -g mlistd)
EOF
# Every domain but the two of the demo stays on this machine too.
cat > "$PF/conf/transport" <<EOF
lists.example.org mlistd:[127.0.0.1]:$MLPORT
example.org virtual:
* outside:
EOF
cat > "$PF/conf/master.cf" <<EOF
127.0.0.1:$PFPORT inet n - n - - smtpd
EOF
grep -v '^#' contrib/postfix/private-master.cf >> "$PF/conf/master.cf"
cat >> "$PF/conf/master.cf" <<EOF
mlistd unix - - n - 4 smtp -o syslog_name=postfix/mlistd
outside unix - n n - - virtual -o virtual_mailbox_maps=static:outside/
EOF
# contrib's reinjection smtpd, where mlistd hands the copies back, with
# OpenDKIM as its milter as contrib/postfix/master.cf's commented lines
# say: no_milters goes, smtpd_milters and milter_default_action come.
awk -v listen="127.0.0.1:$RIPORT" -v milter="inet:127.0.0.1:$DKPORT" '
	/^127\.0\.0\.1:20382 / { p = 1; sub(/^127\.0\.0\.1:20382/, listen); print; next }
	p && /receive_override_options=no_header_body_checks,no_milters/ {
		print "    -o receive_override_options=no_header_body_checks"
		print "    -o smtpd_milters=" milter
		print "    -o milter_default_action=tempfail"
		next
	}
	p && /^[ \t]/ { print; next }
	{ p = 0 }' contrib/postfix/master.cf >> "$PF/conf/master.cf"
grep -q "^127.0.0.1:$RIPORT " "$PF/conf/master.cf"
grep -q "smtpd_milters=inet:127.0.0.1:$DKPORT" "$PF/conf/master.cf"

# OpenDKIM as contrib/opendkim says, its files in $DK instead of
# /etc/opendkim; the key is made once, as the README makes it.
DK=$DEMO/opendkim
mkdir -p "$DK/keys"
chmod 700 "$DK/keys"
[ -f "$DK/keys/mlistd.private" ] \
	|| /usr/sbin/opendkim-genkey -D "$DK/keys" -d lists.example.org -s mlistd
# No UserID or PidFile: it runs here in the foreground, as the demo does;
# the key lies under /tmp, which OpenDKIM would call unsafe.
for f in KeyTable SigningTable opendkim.conf; do
	sed -e "s|/etc/opendkim/|$DK/|g" -e "s|inet:8891@|inet:$DKPORT@|" \
		-e '/^UserID/d' -e '/^PidFile/d' "contrib/opendkim/$f" > "$DK/$f"
done
printf 'RequireSafeKeys\tfalse\n' >> "$DK/opendkim.conf"

postfix -c "$PF/conf" start
DKPID=
# Stop the private Postfix and OpenDKIM once, whether the demo ends by
# Ctrl-C or not.
stop_postfix() {
	trap - EXIT INT TERM
	postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
	[ -n "$DKPID" ] || return 0
	kill "$DKPID" 2>/dev/null || true
	# OpenDKIM takes a few seconds to finish; the demo ends after it.
	i=0
	while kill -0 "$DKPID" 2>/dev/null && [ "$i" -lt 100 ]; do
		i=$((i + 1))
		sleep 0.1
	done
}
trap stop_postfix EXIT
trap 'stop_postfix; exit 130' INT TERM
/usr/sbin/opendkim -f -x "$DK/opendkim.conf" > "$DK/opendkim.log" 2>&1 &
DKPID=$!
# Wait until it takes connections: until then the reinjection smtpd
# would answer 4xx (milter_default_action=tempfail).
i=0
until ss -Htln "sport = :$DKPORT" | grep -q .; do
	if ! kill -0 "$DKPID" 2>/dev/null || [ "$i" -ge 100 ]; then
		echo "demo: OpenDKIM does not listen on 127.0.0.1:$DKPORT:" >&2
		cat "$DK/opendkim.log" >&2
		exit 1
	fi
	i=$((i + 1))
	sleep 0.1
done

set -- -c /dev/null --domain=lists.example.org --listen=127.0.0.1:$MLPORT \
	--database="$DEMO/state/mlistd.db" --bounce-maildir="$DEMO/state/bounces" \
	--relay=smtp://127.0.0.1:$RIPORT --workers=2 --foreground \
	--dkim-selector=mlistd ${RESOLVER:+--resolver=$RESOLVER}
# mlistd creates its state directory and the schema, owned by its user.
./src/mlistd -t "$@" >/dev/null
sqlite3 "$DEMO/state/mlistd.db" < sql/example.sql
cat <<EOF
demo database: $DEMO/state/mlistd.db     Postfix log: $PF/maillog
post as a member from another terminal:
  swaks --server 127.0.0.1:$PFPORT --from alice@example.org --to group1@lists.example.org
and see the copies for alice and bob arrive in $DEMO/mail/members/new/;
a post from a non-member (--from mallory@example.net) is refused, and
Postfix's DSN to mallory arrives in $DEMO/mail/outside/new/
each copy is signed by OpenDKIM with d=lists.example.org (key and the DNS
record to publish in $DK/keys/); check one with:
  /usr/bin/python3 tests/dkimverify.py $DK/keys/mlistd.txt lists.example.org FILE From List-Id
EOF
./src/mlistd "$@"
