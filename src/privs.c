/*
 * privs.c - mlistd never runs SMTP sessions as root.
 *
 * Started as root (by an init script, say), the master stays root only
 * to supervise and to write its pid file; every worker, and every process
 * that creates the database or the Maildir, becomes the `user` of the
 * configuration (default mlistd) first.  Started as any other user,
 * mlistd runs as that user and `user` is ignored.
 *
 * Files that the administrator created as root with the sqlite3 CLI
 * (the database, its -wal and -shm files) are handed to `user` at start
 * and reload, so that a root sqlite3 session cannot lock the workers out.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deliver.h"
#include "privs.h"

/* lookup - the user's ids; refuse root */
static int
lookup(const char *user, uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
	struct passwd *pw;

	errno = 0;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(err, errlen, "user \"%s\" does not exist: create it (adduser --system "
			 "--group %s) or set \"user\" in the configuration", user, user);
		return (-1);
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errlen, "user \"%s\" is root; mlistd will not run sessions as root",
			 user);
		return (-1);
	}
	*uid = pw->pw_uid;
	*gid = pw->pw_gid;
	return (0);
}

int
privs_drop(const char *user, char *err, size_t errlen)
{
	uid_t	uid;
	gid_t	gid;

	if (geteuid() != 0)
		return (0);
	if (lookup(user, &uid, &gid, err, errlen) < 0)
		return (-1);
	if (initgroups(user, gid) < 0 || setgid(gid) < 0 || setuid(uid) < 0) {
		snprintf(err, errlen, "cannot become user %s: %s", user, strerror(errno));
		return (-1);
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errlen, "cannot become user %s: root privileges remain", user);
		return (-1);
	}
	return (0);
}

/* own - mkdir (if asked) and chown one path to the user; ENOENT is fine */
static int
own(const char *path, int make_dir, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	if (make_dir && mkdir(path, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create directory %s: %s", path, strerror(errno));
		return (-1);
	}
	if (chown(path, uid, gid) < 0 && errno != ENOENT) {
		snprintf(err, errlen, "cannot hand %s to the mlistd user: %s", path,
			 strerror(errno));
		return (-1);
	}
	return (0);
}

int
privs_check(const struct conf *cf, char *err, size_t errlen)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	char	path[4096], *slash;
	uid_t	uid;
	gid_t	gid;
	int	pfd[2], status;
	pid_t	pid;
	ssize_t	n;

	if (geteuid() != 0)
		return (deliver_check(cf, err, errlen));
	if (lookup(cf->user, &uid, &gid, err, errlen) < 0)
		return (-1);
	/* The database's directory and files, and the Maildir's top. */
	snprintf(path, sizeof(path), "%s", cf->database);
	if ((slash = strrchr(path, '/')) != NULL && slash != path) {
		*slash = 0;
		if (own(path, 1, uid, gid, err, errlen) < 0)
			return (-1);
	}
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", cf->database, suffix[i]);
		if (own(path, 0, uid, gid, err, errlen) < 0)
			return (-1);
	}
	if (own(cf->bounce_maildir, 1, uid, gid, err, errlen) < 0)
		return (-1);
	/* Open everything as the user, in a child. */
	if (pipe(pfd) < 0 || (pid = fork()) < 0) {
		snprintf(err, errlen, "cannot fork: %s", strerror(errno));
		return (-1);
	}
	if (pid == 0) {
		char	cerr[1024];
		int	rc;

		(void) close(pfd[0]);
		rc = privs_drop(cf->user, cerr, sizeof(cerr)) < 0
			|| deliver_check(cf, cerr, sizeof(cerr)) < 0;
		if (rc && write(pfd[1], cerr, strlen(cerr)) < 0)
			_exit(2);
		_exit(rc ? 1 : 0);
	}
	(void) close(pfd[1]);
	n = read(pfd[0], err, errlen - 1);
	err[n > 0 ? n : 0] = 0;
	(void) close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
	    || WEXITSTATUS(status) != 0) {
		if (err[0] == 0)
			snprintf(err, errlen, "database check as user %s failed", cf->user);
		return (-1);
	}
	return (0);
}
