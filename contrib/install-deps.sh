#!/bin/sh
# install-deps.sh - install what building and testing mlistd needs on
# Debian 12 (run as root).  Postfix is installed with debconf's
# "No configuration", so no system mail service is set up by this.
# "install-deps.sh --list" prints the package names only.
set -eu
PACKAGES="ca-certificates gcc make autoconf automake libtool pkg-config
	libsqlite3-dev sqlite3 libmailutils-dev nettle-dev check postfix swaks
	clang libclang-rt-14-dev iproute2 valgrind sysvinit-utils git
	mandoc groff-base libfaketime python3-dkim opendkim opendkim-tools
	libunbound-dev libpsl-dev publicsuffix dnsmasq-base libopendkim-dev"
if [ "${1:-}" = "--list" ]; then
	echo $PACKAGES
	exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get install -y -q --no-install-recommends $PACKAGES
