#!/bin/sh
# check_man.sh - the built manual pages pass mandoc -Tlint and groff's
# warnings without a single message, every @placeholder@ of the .in files
# was substituted, and no option name is split by hyphenation when man(1)
# renders the page.  Run by make check from the build directory.
set -u
status=0
for tool in mandoc groff awk; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "FAIL: $tool is missing (Debian: contrib/install-deps.sh installs it)"
		exit 1
	fi
done
for page in man/mlistd.8 man/mlistd.conf.5; do
	if [ ! -s "$page" ]; then
		echo "FAIL: $page was not built"
		status=1
		continue
	fi
	out=$(mandoc -Tlint -W warning "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL: mandoc -Tlint $page:"
		echo "$out"
		status=1
	fi
	out=$(groff -man -ww -z "$page" 2>&1)
	if [ -n "$out" ]; then
		echo "FAIL: groff -ww $page:"
		echo "$out"
		status=1
	fi
	if grep -n '@[a-z_]*@' "$page"; then
		echo "FAIL: $page has unsubstituted placeholders (above)"
		status=1
	fi
	# Rendered as man(1) does (groff), 60 columns wide: a line that ends
	# in "-" must end at a hyphen of the source, so the word joined with
	# the next line's first word occurs in the source as it is.
	src=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$page")
	split=$(groff -man -Tascii -rLL=60n -P-cbou "$page" 2>/dev/null | awk '
		prev != "" { n = split($0, w, " "); if (n > 0) print prev w[1] }
		{ prev = ""; if ($0 ~ /[A-Za-z]-$/) { n = split($0, w, " "); prev = w[n] } }')
	nsplit=0
	for word in $split; do
		nsplit=$((nsplit + 1))
		# Paths break at their own hyphens (a prefix such as
		# .../mlistd-0.1.0/ in make distcheck); punctuation after a
		# word is set apart in the source (.IR path ).).
		case "$word" in
		*/*) continue ;;
		esac
		word=${word%%[).,;:]*}
		case "$src" in
		*"$word"*) ;;
		*)	echo "FAIL: $page: a line break hyphenates \"$word\""
			status=1 ;;
		esac
	done
	echo "$page: lint and warnings clean; $nsplit line breaks at a hyphen checked"
done
[ "$status" -eq 0 ] && echo "PASS: manual pages clean"
exit "$status"
