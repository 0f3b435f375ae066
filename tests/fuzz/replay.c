/*
 * replay.c - run a fuzz harness over files without libFuzzer, for
 * `make check`: every seed and every input that once crashed a harness
 * (kept in the corpus directories) must run cleanly.  Prints
 * "N passed, 0 failed"; a crash fails the test.
 */
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
	FILE   *fp = fopen(path, "rb");
	uint8_t *buf;
	long	len;

	if (fp == NULL)
		return (-1);
	if (fseek(fp, 0, SEEK_END) != 0 || (len = ftell(fp)) < 0) {
		fclose(fp);
		return (-1);
	}
	rewind(fp);
	if ((buf = malloc((size_t) len + 1)) == NULL
	    || fread(buf, 1, (size_t) len, fp) != (size_t) len) {
		free(buf);
		fclose(fp);
		return (-1);
	}
	fclose(fp);
	/* Exact size: ASan sees any read past the end. */
	(void) LLVMFuzzerTestOneInput(buf, (size_t) len);
	free(buf);
	return (0);
}

/* replay_dir - every file of one directory */
static void
replay_dir(const char *dir, int *passed, int *failed)
{
	DIR    *d = opendir(dir);
	struct dirent *e;
	char	path[8192];

	if (d == NULL) {
		fprintf(stderr, "replay: cannot open %s\n", dir);
		(*failed)++;
		return;
	}
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, e->d_name) >= (int) sizeof(path)) {
			fprintf(stderr, "replay: path too long in %s\n", dir);
			(*failed)++;
			continue;
		}
		if (run_file(path) == 0)
			(*passed)++;
		else {
			fprintf(stderr, "replay: cannot read %s\n", path);
			(*failed)++;
		}
	}
	closedir(d);
}

/*
 * Directories: the arguments, or else REPLAY_DIRS (colon-separated,
 * relative to $MLISTD_SRCDIR), as `make check` runs it.
 */
int
main(int argc, char **argv)
{
	int	passed = 0, failed = 0;

#ifdef REPLAY_DIRS
	if (argc < 2) {
		const char *src = getenv("MLISTD_SRCDIR");
		char	dirs[] = REPLAY_DIRS, path[8192];

		for (char *p = strtok(dirs, ":"); p; p = strtok(NULL, ":")) {
			snprintf(path, sizeof(path), "%s/%s", src ? src : ".", p);
			replay_dir(path, &passed, &failed);
		}
	}
#endif
	for (int i = 1; i < argc; i++) {
		DIR    *d = opendir(argv[i]);
		struct dirent *e;
		char	path[4096];

		if (d == NULL) {
			fprintf(stderr, "replay: cannot open %s\n", argv[i]);
			failed++;
			continue;
		}
		while ((e = readdir(d)) != NULL) {
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
			if (run_file(path) == 0)
				passed++;
			else {
				fprintf(stderr, "replay: cannot read %s\n", path);
				failed++;
			}
		}
		closedir(d);
	}
	printf("%d passed, %d failed\n", passed, failed);
	return (failed || passed == 0 ? 1 : 0);
}
