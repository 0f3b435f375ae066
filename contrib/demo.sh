#!/bin/sh
# demo.sh - build mlistd and run it in the foreground on a demo database
# (Debian 12, as root).  Lists for lists.example.org on 127.0.0.1:20381;
# the demo club from sql/example.sql; list copies go to the relay given
# as $RELAY (default smtp://127.0.0.1:25, a local Postfix).
set -eu
cd "$(dirname "$0")/.."
DEMO=${DEMO:-/tmp/mlistd-demo}
RELAY=${RELAY:-smtp://127.0.0.1:25}

command -v sqlite3 >/dev/null 2>&1 && [ -f /usr/include/mailutils/smtp.h ] \
	|| sh contrib/install-deps.sh
[ -x src/mlistd ] || { autoreconf -fi && ./configure && make; }

# Sessions never run as root: the workers become the mlistd user.
id mlistd >/dev/null 2>&1 || useradd --system --user-group --no-create-home \
	--home-dir /nonexistent --shell /usr/sbin/nologin mlistd
mkdir -p "$DEMO"
set -- -c /dev/null --domain=lists.example.org --listen=127.0.0.1:20381 \
	--database="$DEMO/mlistd.db" --bounce-maildir="$DEMO/bounces" \
	--relay="$RELAY" --workers=2
./src/mlistd -t "$@" >/dev/null		# creates the schema
sqlite3 "$DEMO/mlistd.db" < sql/example.sql
echo "demo database: $DEMO/mlistd.db (sqlite3 $DEMO/mlistd.db 'SELECT * FROM group_members')"
exec ./src/mlistd -f "$@"
