/* cklib.c - small helpers shared by the Check suites */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "cklib.h"

int
ck_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int	failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed ? 1 : 0);
}

int
ck_run_nofork(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int	failed;

	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed ? 1 : 0);
}

char   *
ck_slurp(const char *path, long *lenp)
{
	FILE   *fp = fopen(path, "r");
	char   *buf;
	long	len;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	ck_assert_int_eq(fseek(fp, 0, SEEK_END), 0);
	len = ftell(fp);
	rewind(fp);
	buf = malloc((size_t) len + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_eq(fread(buf, 1, (size_t) len, fp), (size_t) len);
	buf[len] = 0;
	fclose(fp);
	if (lenp)
		*lenp = len;
	return (buf);
}

const char *
ck_srcfile(const char *rel)
{
	static char path[4096];
	const char *dir = getenv("MLISTD_SRCDIR");

	snprintf(path, sizeof(path), "%s/%s", dir ? dir : "..", rel);
	return (path);
}
