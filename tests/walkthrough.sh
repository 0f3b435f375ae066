#!/bin/bash
# walkthrough.sh - a new administrator's first hour, as the README tells
# it, on this machine (Debian 12, as root; CI runs it from .ci/run).
#
# It INSTALLS mlistd into /usr and /etc as the README says, so run it on
# a scratch machine only.  The commands are read out of the README of a
# fresh clone, never copied here, so the README cannot drift from what
# works:
#   1. clone the repository into a temporary directory;
#   2. run the block of "Installing and running as a service";
#   3. `mlistd -t` on the installed configuration;
#   4. the sqlite3 list example of "Managing lists";
#   5. a private Postfix wired with the blocks of "Wiring Postfix to
#      mlistd" (main.cf, transport with postmap, master.cf), mlistd
#      started by the installed init script, a post through Postfix that
#      reaches the list's member, with postfix/mlistd in the maillog;
#   6. the clean-up query of "Bounces", on bounces the relay really gave;
#   7. the Quick start: contrib/demo.sh, a member's post (its copies
#      signed by the demo's OpenDKIM), a non-member's DSN kept on the
#      machine, and Ctrl-C stopping Postfix once;
#   8. make uninstall: no error, nothing of mlistd's left but the state
#      directory with the lists, which it names.
# Ports are chosen at run time, everything listens on 127.0.0.1 only, and
# every process started here is stopped by pid, also on failure.  At the
# end the installation is removed again (make uninstall, the state
# directory, /etc/mlistd.conf); a machine that already has an mlistd
# configuration or database is refused at the start.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
for path in /etc/mlistd.conf /var/lib/mlistd/mlistd.db /etc/init.d/mlistd; do
	if [ -e "$path" ]; then
		echo "walkthrough: $path exists: not a scratch machine, refusing to install" >&2
		exit 1
	fi
done
work=$(mktemp -d /tmp/mlistd-walk.XXXXXX)
installed=
chmod 755 "$work"	# Postfix's own users walk into it
pfconf=$work/postfix/conf
demo_pgid=
dns_pid=

# fail - say why on both outputs (CI may keep only one), with the tail
# of the private Postfix's log when there is one
fail() {
	echo "walkthrough: FAIL: $*"
	echo "walkthrough: FAIL: $*" >&2
	if [ -f "$work/postfix/maillog" ]; then
		echo "walkthrough: the last lines of $work/postfix/maillog:"
		tail -20 "$work/postfix/maillog"
	fi
	exit 1
}

# A command that fails outside fail(): name it and its line.
trap 'echo "walkthrough: FAIL: line $LINENO: \"$BASH_COMMAND\" exited with $?"' ERR

step() {
	echo "== walkthrough: $*"
}

cleanup() {
	set +e
	if [ -n "$demo_pgid" ] && kill -0 "$demo_pgid" 2>/dev/null; then
		kill -INT -- "-$demo_pgid"
		sleep 3
		kill -TERM -- "-$demo_pgid" 2>/dev/null
	fi
	for pf in "$pfconf" "$work/demo/postfix/conf"; do
		[ -f "$pf/main.cf" ] && postfix -c "$pf" status >/dev/null 2>&1 \
			&& postfix -c "$pf" stop >/dev/null 2>&1
	done
	[ -x /etc/init.d/mlistd ] && /etc/init.d/mlistd stop >/dev/null 2>&1
	[ -n "$dns_pid" ] && kill "$dns_pid" 2>/dev/null
	if [ -n "$installed" ]; then
		make -C "$work/mlistd" uninstall >/dev/null 2>&1
		rm -rf /var/lib/mlistd /etc/mlistd.conf /usr/share/doc/mlistd
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# free_port - a TCP port nothing listens on (loopback)
free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 40000))
		# grep -c reads all of ss's output: no SIGPIPE under pipefail
		if [ "$(ss -Htln "sport = :$port" | grep -c .)" = 0 ]; then
			echo "$port"
			return 0
		fi
	done
	fail "no free port"
}

# start_dns - dnsmasq on a free loopback port ($dnsport, $dns_pid),
# answering every query from local data only: no name exists
start_dns() {
	for _ in 1 2 3 4 5; do
		dnsport=$(free_port)
		/usr/sbin/dnsmasq --no-daemon --conf-file=/dev/null --no-resolv --no-hosts \
			--pid-file= --port="$dnsport" --listen-address=127.0.0.1 \
			--bind-interfaces --local=/#/ > "$work/dnsmasq.log" 2>&1 &
		dns_pid=$!
		for _ in $(seq 1 50); do
			[ "$(ss -Hln "sport = :$dnsport" | grep -c .)" -ge 2 ] && return 0
			kill -0 "$dns_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill "$dns_pid" 2>/dev/null
		wait "$dns_pid" 2>/dev/null || true
		dns_pid=
	done
	cat "$work/dnsmasq.log"
	fail "dnsmasq does not start on loopback"
}

# readme_block SECTION N - the N-th indented block (4 spaces) of the
# README section headed SECTION, without its indentation
readme_block() {
	awk -v sec="$1" -v want="$2" '
		{ line[NR] = $0 }
		END {
			insec = 0; n = 0; inblk = 0
			for (i = 1; i <= NR; i++) {
				if (line[i + 1] ~ /^-+$/ && length(line[i + 1]) >= 3) {
					insec = (line[i] == sec); inblk = 0; i++; continue
				}
				if (!insec)
					continue
				if (line[i] ~ /^    /) {
					if (!inblk) { n++; inblk = 1 }
					if (n == want) print substr(line[i], 5)
				} else if (line[i] != "")
					inblk = 0
			}
		}' README
}

# wait_for TEST SECONDS WHAT - poll a shell test every 0.2 s
wait_for() {
	local i
	for i in $(seq 1 $(($2 * 5))); do
		if eval "$1"; then
			return 0
		fi
		sleep 0.2
	done
	fail "timed out after $2 s waiting for $3"
}

# files_in DIR - how many files DIR holds (0 if it does not exist)
files_in() {
	find "$1" -maxdepth 1 -type f 2>/dev/null | wc -l
}

step "1. clone"
git clone -q "$top" "$work/mlistd"
cd "$work/mlistd"

step "2. install as README says"
readme_block "Installing and running as a service" 1 > "$work/install.sh"
grep -q "make install" "$work/install.sh" || fail "no install block in README"
cat "$work/install.sh"
installed=yes
bash -ex "$work/install.sh" > "$work/install.log" 2>&1 \
	|| { tail -40 "$work/install.log"; fail "README install commands"; }

step "3. mlistd -t on the installed configuration"
mlistd=$(command -v mlistd) || fail "mlistd is not on PATH after make install"
"$mlistd" -t > "$work/t.out" 2> "$work/t.err" || { cat "$work/t.err"; fail "mlistd -t"; }
cat "$work/t.err"
db=$(sed -n 's/^database = //p' "$work/t.out")
[ -n "$db" ] || fail "mlistd -t printed no database"
grep -q "database $db OK" "$work/t.err" || fail "mlistd -t did not say OK"
for page in mlistd.8 mlistd.conf.5; do
	find /usr/share/man -name "$page*" | grep -q . || fail "$page not installed"
done
[ -f /usr/share/doc/mlistd/README ] || fail "README not installed in docdir"

step "4. the README's list example"
readme_block "Managing lists" 1 > "$work/lists.txt"
first=$(head -1 "$work/lists.txt")
case "$first" in
sqlite3\ *) ;;
*) fail "the list example does not start with sqlite3: $first" ;;
esac
[ "${first#sqlite3 }" = "$db" ] || fail "README's database ${first#sqlite3 } is not mlistd -t's $db"
tail -n +2 "$work/lists.txt" | sqlite3 "$db" || fail "README list example"
sqlite3 "$db" "SELECT name FROM groups" | grep -qx board || fail "no list board"
poster=$(sqlite3 "$db" "SELECT address FROM group_members WHERE group_name = 'board' LIMIT 1")
[ -n "$poster" ] || fail "board has no member"
domain=$(sed -n 's/^domain = //p' "$work/t.out")
echo "list board@$domain, member $poster"
# The administrator adds a member whose mailbox is gone, for step 6.
sqlite3 "$db" "INSERT INTO members (address) VALUES ('gone@${poster#*@}');
	INSERT INTO group_members VALUES ('board', 'gone@${poster#*@}');"

step "5. a private Postfix wired as README says"
pfport=$(free_port)
mlport=$(free_port)
riport=$(free_port)
[ "$pfport" != "$mlport" ] && [ "$riport" != "$mlport" ] && [ "$riport" != "$pfport" ] \
	|| fail "port clash, run again"
mkdir -p "$pfconf" "$work/postfix/queue" "$work/postfix/data" "$work/mail"
chown postfix "$work/postfix/data"
chown mlistd:mlistd "$work/mail"
# What a private instance needs, then README's main.cf lines, with the
# paths of /etc/postfix moved into this instance's directory.
cat > "$pfconf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $work/postfix/queue
data_directory = $work/postfix/data
mail_owner = postfix
myhostname = mx.walkthrough.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtp_dns_support_level = disabled
alias_maps =
maillog_file = $work/postfix/maillog
maillog_file_prefixes = $work
# The members' domain: one Maildir, and only $poster has a mailbox.
virtual_mailbox_domains = ${poster#*@}
virtual_mailbox_base = $work/mail
virtual_mailbox_maps = texthash:$pfconf/vmailbox
virtual_uid_maps = static:$(id -u mlistd)
virtual_gid_maps = static:$(id -g mlistd)
EOF
echo "$poster members/" > "$pfconf/vmailbox"
readme_block "Wiring Postfix to mlistd" 1 | sed "s|/etc/postfix/|$pfconf/|g" >> "$pfconf/main.cf"
grep -q "^transport_maps" "$pfconf/main.cf" || fail "README's main.cf block"
readme_block "Wiring Postfix to mlistd" 2 | sed "s|:20381|:$mlport|" > "$pfconf/transport"
grep -q "$domain.*mlistd:\[127.0.0.1\]:$mlport" "$pfconf/transport" \
	|| fail "README's transport line"
postmap -c "$pfconf" "$pfconf/transport"
cat > "$pfconf/master.cf" <<EOF
127.0.0.1:$pfport inet n - n - - smtpd
EOF
grep -v '^#' contrib/postfix/private-master.cf >> "$pfconf/master.cf"
readme_block "Wiring Postfix to mlistd" 3 | sed "s|^127.0.0.1:20382 |127.0.0.1:$riport |" \
	>> "$pfconf/master.cf"
grep -q "^mlistd " "$pfconf/master.cf" || fail "README's master.cf block"
grep -q "^127.0.0.1:$riport .*smtpd" "$pfconf/master.cf" || fail "README's reinjection smtpd"
postfix -c "$pfconf" check || fail "postfix check"
postfix -c "$pfconf" start || fail "postfix start"
# The administrator points mlistd at this Postfix (listen and relay).
sed -i -e "s|^listen = .*|listen = 127.0.0.1:$mlport|" \
	-e "s|^relay = smtp://127.0.0.1:20382$|relay = smtp://127.0.0.1:$riport|" /etc/mlistd.conf
# DNS stays on this machine: a dnsmasq on loopback that knows no name
# answers mlistd's DMARC lookups (dmarc-mitigation auto): "no record".
start_dns
echo "resolver = 127.0.0.1:$dnsport" >> /etc/mlistd.conf
grep -q "^relay = smtp://127.0.0.1:$riport" /etc/mlistd.conf \
	|| fail "contrib's mlistd.conf does not relay to the reinjection smtpd"
grep -q "^listen = 127.0.0.1:$mlport" /etc/mlistd.conf || fail "no listen line to edit"
/etc/init.d/mlistd start > "$work/init.out" 2>&1 || { cat "$work/init.out"; fail "init start"; }
cat "$work/init.out"
grep -q failed "$work/init.out" && fail "init start said failed"
if [ ! -S /dev/log ]; then
	# Without a syslog daemon the start says so, on a line of its own.
	grep -q "^    mlistd.*no syslog daemon listens on /dev/log" "$work/init.out" \
		|| fail "init start did not warn that nothing receives the log"
	echo "log-file = $work/mlistd.log" >> /etc/mlistd.conf
	/etc/init.d/mlistd restart > "$work/init.out" 2>&1 || { cat "$work/init.out"; fail "restart"; }
	grep -q "no syslog daemon" "$work/init.out" && fail "warning despite log-file"
fi
/etc/init.d/mlistd status || fail "init status"
wait_for "ss -Htln 'sport = :$mlport' | grep -q ." 10 "mlistd to listen"

post() {	# post FROM SUBJECT
	swaks --server "127.0.0.1:$pfport" --from "$1" --to "board@$domain" \
		--header "Subject: $2" --body "walkthrough" > "$work/swaks.out" 2>&1 \
		|| { cat "$work/swaks.out"; fail "swaks $1"; }
}
post "$poster" "first"
wait_for '[ "$(files_in "$work/mail/members/new")" -ge 1 ]' 30 "the list copy for $poster"
copy=$(find "$work/mail/members/new" -type f | head -1)
grep -q "^List-Id: .*board" "$copy" || fail "the copy has no List-Id"
grep -q "^Subject: first" "$copy" || fail "the copy is not the post"
grep -q "postfix/mlistd/smtp\[.*status=sent" "$work/postfix/maillog" || fail "maillog never says postfix/mlistd"
grep -q "postfix/mlistd-reinject/smtpd\[" "$work/postfix/maillog" \
	|| fail "the copies did not come back through the reinjection smtpd"
echo "copy delivered: $copy"

step "6. the clean-up query, on what the relay refused"
post "$poster" "second"
post "$poster" "third"
wait_for '[ "$(files_in "$work/mail/members/new")" -ge 3 ]' 30 "three copies"
readme_block "Bounces" 1 > "$work/cleanup.sql"
grep -q "^SELECT" "$work/cleanup.sql" || fail "README's clean-up query"
result=$(sqlite3 "$db" < "$work/cleanup.sql")
echo "clean-up query: $result"
[ "$result" = "gone@${poster#*@}|3" ] || fail "clean-up query gave \"$result\""
if [ -f "$work/mlistd.log" ]; then
	grep -q "status=sent" "$work/mlistd.log" || fail "mlistd's log-file has no delivery"
	# auto, through the loopback resolver: the poster's domain has no record
	grep -q "dmarc=kept (no DMARC record), status=sent" "$work/mlistd.log" \
		|| fail "mlistd did not look up the poster's DMARC policy"
fi
/etc/init.d/mlistd stop || fail "init stop"
rc=0
/etc/init.d/mlistd status >/dev/null || rc=$?
[ "$rc" = 3 ] || fail "status after stop: $rc"
postfix -c "$pfconf" stop

step "7. the Quick start demo"
demo=$work/demo
dpf=$(free_port)
dml=$(free_port)
dri=$(free_port)
ddk=$(free_port)
DEMO=$demo PFPORT=$dpf MLPORT=$dml RIPORT=$dri DKPORT=$ddk RESOLVER=127.0.0.1:$dnsport \
	setsid sh contrib/demo.sh > "$work/demo.out" 2>&1 &
demo_pgid=$!
wait_for 'grep -q "starting mlistd" "$work/demo.out"' 120 "the demo to start"
wait_for "ss -Htln 'sport = :$dml' | grep -q ." 10 "the demo's mlistd"
grep -o "swaks --server [^ ]* --from alice@example.org --to group1@lists.example.org" \
	"$work/demo.out" | grep -q ":$dpf" || fail "the demo does not print its swaks line"
swaks --server "127.0.0.1:$dpf" --from alice@example.org --to group1@lists.example.org \
	> "$work/swaks.out" 2>&1 || { cat "$work/swaks.out"; fail "demo post"; }
wait_for '[ "$(files_in "$demo/mail/members/new")" -ge 2 ]' 30 "copies for alice and bob"
# The demo's OpenDKIM signed them with the key it made.
for copy in "$demo"/mail/members/new/*; do
	/usr/bin/python3 tests/dkimverify.py "$demo/opendkim/keys/mlistd.txt" lists.example.org \
		"$copy" From List-Id > "$work/dkim.out" 2>&1 \
		|| { cat "$work/dkim.out"; fail "the demo's copy $copy has no valid list signature"; }
done
swaks --server "127.0.0.1:$dpf" --from mallory@example.net --to group1@lists.example.org \
	> "$work/swaks.out" 2>&1 || { cat "$work/swaks.out"; fail "demo non-member post"; }
wait_for '[ "$(files_in "$demo/mail/outside/new")" -ge 1 ]' 30 "the DSN to mallory"
grep -q "^To: mallory@example.net" "$demo"/mail/outside/new/* || fail "DSN is not mallory's"
# Ctrl-C: SIGINT to the demo's process group, as a terminal sends it.
kill -INT -- "-$demo_pgid"
wait_for '! kill -0 "$demo_pgid" 2>/dev/null' 60 "the demo to end at Ctrl-C"
demo_pgid=
[ "$(grep -c "stopping the Postfix mail system" "$demo/postfix/maillog")" = 1 ] \
	|| fail "Postfix was not stopped exactly once"
grep -q "mail system is not running" "$demo/postfix/maillog" && fail "Postfix stopped twice"
postfix -c "$demo/postfix/conf" status >/dev/null 2>&1 && fail "the demo's Postfix still runs"
ss -Htln "sport = :$dml" | grep -q . && fail "the demo's mlistd still listens"

step "8. make uninstall"
make -C "$work/mlistd" uninstall > "$work/uninstall.out" 2>&1 \
	|| { cat "$work/uninstall.out"; fail "make uninstall"; }
grep -iE "error|ignored" "$work/uninstall.out" && fail "make uninstall printed an error"
for dir in /usr/share/doc/mlistd /usr/share/mlistd /etc/mlistd; do
	[ -e "$dir" ] && { find "$dir"; fail "make uninstall left $dir"; }
done
[ -e /usr/sbin/mlistd ] && fail "make uninstall left /usr/sbin/mlistd"
# The state directory holds the lists: kept, and named.
[ -f /var/lib/mlistd/mlistd.db ] || fail "make uninstall removed the database"
grep -q "kept /var/lib/mlistd: not empty" "$work/uninstall.out" \
	|| { cat "$work/uninstall.out"; fail "make uninstall does not name the state it keeps"; }

echo "walkthrough: all steps passed"
