#!/bin/sh
# run.sh - build the libFuzzer harnesses with clang and run each one for a
# bounded time.  Usage: tests/fuzz/run.sh BUILDDIR [SECONDS]
#   BUILDDIR: a configured build tree (it has config.h); SECONDS per
#   harness, default 60.  Run longer by hand, e.g. 3600.
# Crashes are written to tests/fuzz/crashes/; after fixing one, copy the
# input into the harness's seed directory (tests/fuzz/smtp, rewrite,
# bounce, command) so that `make check` replays it for ever.
set -eu
src=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:?usage: run.sh BUILDDIR [SECONDS]}" && pwd)
secs=${2:-60}
CC=${CLANG:-clang}
work=$(mktemp -d /tmp/mlistd-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$src/tests/fuzz/crashes"
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
 -I$build -I$src/src $(mailutils-config --compile)"
libs="$(mailutils-config --link mailer maildir)"

run() {
	name=$1; shift
	seeds=$1; shift
	maxlen=$1; shift
	echo "== fuzz_$name: $secs s"
	$CC $flags -o "$work/fuzz_$name" "$src/tests/fuzz/fuzz_$name.c" "$@" $libs
	mkdir -p "$work/corpus_$name"
	for d in $seeds; do cp "$src/$d"/* "$work/corpus_$name/" 2>/dev/null || true; done
	if ! ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
	    LSAN_OPTIONS=suppressions="$src/tests/fuzz/lsan.supp" \
	    "$work/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
		-max_len="$maxlen" -print_final_stats=1 \
		-artifact_prefix="$src/tests/fuzz/crashes/${name}-" \
		"$work/corpus_$name" > "$work/log_$name" 2>&1; then
		tail -n 60 "$work/log_$name"
		echo "fuzz_$name: crash; the input is in tests/fuzz/crashes/" >&2
		exit 1
	fi
	grep -E 'stat::number_of_executed_units|stat::peak_rss_mb|Done [0-9]+ runs' \
		"$work/log_$name" || tail -n 5 "$work/log_$name"
}

# The header tokenizer gets inputs up to 1 MB, so that a super-linear
# case (many fields, long folded ones) shows as a -timeout.
run smtp "tests/fuzz/smtp" 65536 "$src/src/smtp_session.c"
run rewrite "tests/fuzz/rewrite" 1048576 "$src/src/rewrite.c" "$src/src/command.c" \
	"$src/src/notice.c" "$build/src/templates.c"
run bounce "tests/bounces tests/fuzz/bounce" 65536 "$src/src/bounce.c"
run command "tests/fuzz/command" 65536 "$src/src/command.c" "$src/src/token.c" \
	"$src/src/probe.c" "$src/src/rewrite.c" "$src/src/notice.c" "$build/src/templates.c" \
	-lnettle
echo "fuzzing: no crash"
