/* cklib.h - small helpers shared by the Check suites */
#ifndef MLISTD_CKLIB_H
#define MLISTD_CKLIB_H

#include <check.h>

/* ck_run - run a suite, print Check's summary; the process exit status */
int	ck_run(Suite *);

/*
 * ck_run_nofork - the same without a process per test, for suites that
 * start detached processes: a failing test then still runs its checked
 * teardown and, at the end, the atexit handlers (in fork mode Check ends
 * a failed test with _exit(), skipping both).
 */
int	ck_run_nofork(Suite *);

/* ck_slurp - a whole file as a malloc'd string (the test fails if it cannot) */
char   *ck_slurp(const char *path, long *len);

/* ck_srcfile - $MLISTD_SRCDIR/rel (the source tree), in a static buffer */
const char *ck_srcfile(const char *rel);

#endif
