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
 * and reload, so that a root sqlite3 session cannot lock the workers out
 * (safely: see own()).
 *
 * The member list is private: main() sets the umask to 027, and at start
 * and reload the state directory, the Maildirs, the database, its -wal,
 * -shm and -journal files and mlistd.key lose what others may do and the
 * group's write (directories 0750, files 0640 or tighter); a file that is
 * not mlistd's to change gets a warning instead (see tighten()).  SQLite
 * gives the -wal and -shm files the database's mode, and a root sqlite3
 * session gives them the database's owner, so they stay private and the
 * user's.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
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
#include "log.h"
#include "privs.h"

#ifndef MLISTD_STATEDIR
#define MLISTD_STATEDIR "/var/lib/mlistd"
#endif

static int tighten(int, const char *, FILE *);

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

/*
 * Handing files to the user, as root, without being tricked.  The state
 * directory belongs to the user, who could plant a symbolic link
 * (mlistd.db-journal -> /etc/shadow) or a hard link there for root to
 * chown.  So nothing is looked up by path with root's rights: the path is
 * walked one component at a time with openat(); a symbolic link is
 * followed only where root alone could have made it (in a directory that
 * root owns and nobody else may write), and the last component never.
 * A file is handed over only if it is a directory or a regular file with
 * a single link, owned by root or already by the user; anything else is
 * an error that names the path.  A directory that anybody may write
 * (/tmp) is refused as the home of the database or the Maildir.
 */

/* trusted_dir - only root can change entries of this directory */
static int
trusted_dir(int dirfd)
{
	struct stat st;

	return (fstat(dirfd, &st) == 0 && st.st_uid == 0 && (st.st_mode & 022) == 0);
}

/*
 * open_parent - walk path's directories from / (or the working directory)
 * and return an fd of the one that holds the last component, whose name
 * goes to *base (a pointer into buf, a copy of path).  -1 with err set.
 */
static int
open_parent(const char *path, char *buf, size_t buflen, const char **base,
	    char *err, size_t errlen)
{
	char   *p, *slash;
	int	fd;

	if (snprintf(buf, buflen, "%s", path) >= (int) buflen) {
		snprintf(err, errlen, "%s: path too long", path);
		return (-1);
	}
	/* Drop trailing slashes; "/" itself has no parent to speak of. */
	for (size_t n = strlen(buf); n > 1 && buf[n - 1] == '/'; n--)
		buf[n - 1] = 0;
	p = buf;
	if ((fd = open(*p == '/' ? "/" : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	while (*p == '/')
		p++;
	while ((slash = strchr(p, '/')) != NULL) {
		struct stat st;
		int	next, follow;

		*slash = 0;
		if (*p == 0 || strcmp(p, ".") == 0) {
			p = slash + 1;
			continue;
		}
		if (fstatat(fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			snprintf(err, errlen, "%s: %s: %s", path, p, strerror(errno));
			(void) close(fd);
			return (-1);
		}
		follow = S_ISLNK(st.st_mode) && trusted_dir(fd);
		if (S_ISLNK(st.st_mode) && !follow) {
			snprintf(err, errlen, "%s: %s is a symbolic link in a directory that "
				 "others than root may write; refusing to follow it as root",
				 path, p);
			(void) close(fd);
			return (-1);
		}
		next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_CLOEXEC | (follow ? 0 : O_NOFOLLOW));
		if (next < 0) {
			snprintf(err, errlen, "%s: %s: %s", path, p, strerror(errno));
			(void) close(fd);
			return (-1);
		}
		(void) close(fd);
		fd = next;
		p = slash + 1;
	}
	*base = p;
	return (fd);
}

/* hand - fchown an open file or directory if it may be handed over */
static int
hand(int fd, const char *path, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	struct stat st;

	if (fstat(fd, &st) < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (!S_ISDIR(st.st_mode) && !(S_ISREG(st.st_mode) && st.st_nlink == 1)) {
		snprintf(err, errlen, "%s is not a directory or a plain file with one link; "
			 "refusing to hand it to the mlistd user", path);
		return (-1);
	}
	if (st.st_uid != 0 && st.st_uid != uid) {
		snprintf(err, errlen, "%s belongs to uid %ld, neither root nor the mlistd "
			 "user; refusing to hand it over", path, (long) st.st_uid);
		return (-1);
	}
	if ((st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0) {
		snprintf(err, errlen, "cannot hand %s to the mlistd user: %s", path,
			 strerror(errno));
		return (-1);
	}
	return (tighten(fd, path, NULL));
}

/*
 * tighten - take from an open file or directory what others may do and
 * the group's write (and a file's execute bits): directories end up 0750,
 * files 0640, or tighter.  Only the owner (or root) may: for a file that
 * is not ours, warn (on report, or in the log) and go on.  Always 0.
 */
static int
tighten(int fd, const char *path, FILE *report)
{
	struct stat st;
	mode_t	want;

	if (fstat(fd, &st) < 0)
		return (0);
	want = st.st_mode & (S_ISDIR(st.st_mode) ? (mode_t) ~027 : (mode_t) ~0137) & 07777;
	if (want == (st.st_mode & 07777))
		return (0);
	if ((st.st_uid == geteuid() || geteuid() == 0) && fchmod(fd, want) == 0)
		return (0);
	if (report)
		fprintf(report, "mlistd: warning: %s has mode %04o and mlistd cannot make "
			"it %04o (owner uid %ld): others may read the member list; chmod it\n",
			path, (unsigned) (st.st_mode & 07777), (unsigned) want, (long) st.st_uid);
	else
		msg_warn("%s has mode %04o and mlistd cannot make it %04o (owner uid %ld): "
			 "others may read the member list; chmod it", path,
			 (unsigned) (st.st_mode & 07777), (unsigned) want, (long) st.st_uid);
	return (0);
}

/*
 * only_ours - every entry of the directory fd is one mine() accepts
 * (mine NULL: anything)
 */
static int
only_ours(int fd, int (*mine) (const char *, const void *), const void *arg)
{
	DIR    *dp;
	struct dirent *e;
	int	dfd, ok = 1;

	if (mine == NULL)
		return (1);
	if ((dfd = dup(fd)) < 0 || (dp = fdopendir(dfd)) == NULL) {
		if (dfd >= 0)
			(void) close(dfd);
		return (0);
	}
	while (ok && (e = readdir(dp)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
			ok = mine(e->d_name, arg);
	(void) closedir(dp);
	return (ok);
}

/* state_entry - what mlistd keeps in the database's directory */
static int
state_entry(const char *name, const void *arg)
{
	const struct conf *cf = arg;
	const char *db = strrchr(cf->database, '/'), *md = strrchr(cf->bounce_maildir, '/');
	const char *hd = strrchr(cf->held_maildir, '/');
	size_t	n;

	db = db ? db + 1 : cf->database;
	md = md ? md + 1 : cf->bounce_maildir;
	hd = hd ? hd + 1 : cf->held_maildir;
	n = strlen(db);
	if (strncmp(name, db, n) == 0 && (name[n] == 0 || strcmp(name + n, "-wal") == 0
					  || strcmp(name + n, "-shm") == 0
					  || strcmp(name + n, "-journal") == 0))
		return (1);
	return (strcmp(name, md) == 0 || strcmp(name, hd) == 0
		|| strncmp(name, "mlistd.", 7) == 0);
}

/* maildir_entry - what a Maildir holds at its top */
static int
maildir_entry(const char *name, const void *arg)
{
	(void) arg;
	return (strcmp(name, "tmp") == 0 || strcmp(name, "new") == 0 || strcmp(name, "cur") == 0);
}

/*
 * own - hand path to the user: a directory (created if missing, when
 * make_dir) or a file that may not exist (ENOENT is fine); never through
 * a symbolic link.  strict: refuse it in a directory that anybody may
 * write; otherwise only in one without the sticky bit (a directory of
 * its own inside /tmp is fine, a file in /tmp is not).
 */
static int
own(const char *path, int make_dir, int strict, int (*mine) (const char *, const void *),
    const void *arg, uid_t uid, gid_t gid, char *err, size_t errlen)
{
	char	buf[4096];
	const char *base;
	struct stat st;
	int	dfd, fd, rc, created = 0;

	if ((dfd = open_parent(path, buf, sizeof(buf), &base, err, errlen)) < 0)
		return (-1);
	if (fstat(dfd, &st) == 0 && (st.st_mode & 002) && (strict || !(st.st_mode & S_ISVTX))) {
		snprintf(err, errlen, "%s is in a directory that anybody may write "
			 "(mode %04o); give the database and the Maildir a directory of "
			 "their own, such as " MLISTD_STATEDIR, path,
			 (unsigned) (st.st_mode & 07777));
		(void) close(dfd);
		return (-1);
	}
	if (*base == 0) {
		/* "/" or "." itself: not ours to give away. */
		(void) close(dfd);
		snprintf(err, errlen, "%s: not a usable state directory", path);
		return (-1);
	}
	if (make_dir) {
		if (mkdirat(dfd, base, 0750) == 0)
			created = 1;
		else if (errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", path,
				 strerror(errno));
			(void) close(dfd);
			return (-1);
		}
	}
	fd = openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC
		    | (make_dir ? O_DIRECTORY : 0));
	if (fd < 0) {
		int	e = errno;

		if (e == ENOENT && !make_dir) {
			(void) close(dfd);
			return (0);
		}
		/* O_DIRECTORY makes a link ENOTDIR rather than ELOOP. */
		if (e == ELOOP || (fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0
				   && S_ISLNK(st.st_mode)))
			snprintf(err, errlen, "%s is a symbolic link; refusing to hand it "
				 "to the mlistd user", path);
		else
			snprintf(err, errlen, "%s: cannot open it: %s", path, strerror(e));
		(void) close(dfd);
		return (-1);
	}
	(void) close(dfd);
	if (make_dir && fstat(fd, &st) == 0) {
		if (st.st_mode & 002) {
			snprintf(err, errlen, "%s is a directory that anybody may write (mode "
				 "%04o); give the database and the Maildir a directory of their "
				 "own, such as " MLISTD_STATEDIR, path,
				 (unsigned) (st.st_mode & 07777));
			(void) close(fd);
			return (-1);
		}
		/*
		 * A directory is handed over only if mlistd made it, or if it
		 * holds nothing but what mlistd keeps there (systemd's
		 * StateDirectory= hands it back to root at every start): one
		 * that root made for other things (/var/lib, say, for database
		 * = /var/lib/x.db) stays root's, and the check as the user says
		 * if it cannot write.
		 */
		if (!created && st.st_uid != uid && !(st.st_uid == 0 && only_ours(fd, mine, arg))) {
			int	writable = (st.st_gid == gid && (st.st_mode & 020))
				|| (st.st_mode & 002);

			(void) close(fd);
			if (writable)
				return (0);
			snprintf(err, errlen, "directory %s belongs to uid %ld and mlistd's user "
				 "cannot write it; mlistd hands over only directories it made "
				 "itself: chown it to that user, or remove it and let mlistd "
				 "create it", path, (long) st.st_uid);
			return (-1);
		}
	}
	rc = hand(fd, path, uid, gid, err, errlen);
	(void) close(fd);
	return (rc);
}

/* One path mlistd keeps, and how own() treats it. */
struct state_path {
	char	path[4096];
	int	make_dir;		/* a directory, made if missing */
	int	strict;			/* never in a directory anybody may write */
	int	(*mine) (const char *, const void *);
	const void *arg;
};

#define STATE_PATHS	14

/*
 * state_paths - the database's directory and files, the key, the
 * Maildirs and their tmp, new, cur: how many, or -1 with a message
 */
static int
state_paths(const struct conf *cf, struct state_path *sp, char *err, size_t errlen)
{
	static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
	static const char *const sub[] = {"tmp", "new", "cur"};
	char   *slash;
	int	n = 0;

	memset(sp, 0, STATE_PATHS * sizeof(*sp));
	snprintf(sp[n].path, sizeof(sp[n].path), "%s", cf->database);
	if ((slash = strrchr(sp[n].path, '/')) != NULL && slash != sp[n].path) {
		*slash = 0;
		sp[n].make_dir = 1;
		sp[n].mine = state_entry;
		sp[n].arg = cf;
		if (snprintf(sp[n + 1].path, sizeof(sp[n + 1].path), "%s/mlistd.key",
			     sp[n].path) >= (int) sizeof(sp[n + 1].path)) {
			snprintf(err, errlen, "%s: path too long", cf->database);
			return (-1);
		}
		sp[n + 1].strict = 1;
		n += 2;
	}
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++, n++) {
		snprintf(sp[n].path, sizeof(sp[n].path), "%s%s", cf->database, suffix[i]);
		sp[n].strict = 1;
	}
	/* A missing tmp, new or cur is made by the user later. */
	for (size_t k = 0; k < 2; k++) {
		const char *md = k == 0 ? cf->bounce_maildir : cf->held_maildir;

		snprintf(sp[n].path, sizeof(sp[n].path), "%s", md);
		sp[n].make_dir = sp[n].strict = 1;
		sp[n++].mine = maildir_entry;
		for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++, n++) {
			snprintf(sp[n].path, sizeof(sp[n].path), "%s/%s", md, sub[i]);
			sp[n].strict = 1;
		}
	}
	return (n);
}

/* tighten_own - not root: tighten what exists of the paths that are ours */
static void
tighten_own(const struct state_path *sp, int n, FILE *report)
{
	for (int i = 0; i < n; i++) {
		int	fd = open(sp[i].path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY
				  | O_CLOEXEC | (sp[i].make_dir ? O_DIRECTORY : 0));

		/* A missing or odd one is deliver_check's to report. */
		if (fd >= 0) {
			(void) tighten(fd, sp[i].path, report);
			(void) close(fd);
		}
	}
}

int
privs_check(const struct conf *cf, FILE *report, char *err, size_t errlen)
{
	struct state_path *sp;
	uid_t	uid;
	gid_t	gid;
	int	pfd[2], status, n;
	pid_t	pid;
	ssize_t	len;

	if ((sp = malloc(STATE_PATHS * sizeof(*sp))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	if ((n = state_paths(cf, sp, err, errlen)) < 0) {
		free(sp);
		return (-1);
	}
	if (geteuid() != 0) {
		tighten_own(sp, n, report);
		free(sp);
		return (deliver_check(cf, report, err, errlen));
	}
	if (lookup(cf->user, &uid, &gid, err, errlen) < 0) {
		free(sp);
		return (-1);
	}
	for (int i = 0; i < n; i++)
		if (own(sp[i].path, sp[i].make_dir, sp[i].strict, sp[i].mine, sp[i].arg, uid,
			gid, err, errlen) < 0) {
			free(sp);
			return (-1);
		}
	free(sp);
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
			|| deliver_check(cf, report, cerr, sizeof(cerr)) < 0;
		if (rc && write(pfd[1], cerr, strlen(cerr)) < 0)
			_exit(2);
		_exit(rc ? 1 : 0);
	}
	(void) close(pfd[1]);
	len = read(pfd[0], err, errlen - 1);
	err[len > 0 ? len : 0] = 0;
	(void) close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
	    || WEXITSTATUS(status) != 0) {
		size_t	elen = strlen(err);

		if (elen == 0)
			snprintf(err, errlen, "database check as user %s failed", cf->user);
		else if (strstr(err, "ermission") || strstr(err, "readonly")
			 || strstr(err, "read-only") || strstr(err, "unable to open"))
			/* Only where a file's owner or mode may be why. */
			snprintf(err + elen, errlen - elen, " (as user %s: may it write there?)",
				 cf->user);
		return (-1);
	}
	return (0);
}

/*
 * privs_log_open - open the log-file for appending, as the master (root):
 * the last component must not be a symbolic link, the file must be a
 * regular file with one link, and as root its directory must be one only
 * root can change (a link planted there by the workers' user is never
 * followed: see open_parent).  The descriptor survives fork, so workers
 * write to it after dropping privileges.  fd, or -1 with a message.
 */
int
privs_log_open(const char *path, char *err, size_t errlen)
{
	char	buf[4096];
	const char *base;
	struct stat st;
	int	dirfd, fd;

	if ((dirfd = open_parent(path, buf, sizeof(buf), &base, err, errlen)) < 0)
		return (-1);
	if (geteuid() == 0 && !trusted_dir(dirfd)) {
		snprintf(err, errlen, "log-file %s: its directory may be written by others "
			 "than root; put the log in a directory such as /var/log", path);
		(void) close(dirfd);
		return (-1);
	}
	fd = openat(dirfd, base, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NOCTTY
		    | O_CLOEXEC, 0640);
	if (fd < 0) {
		snprintf(err, errlen, "log-file %s: %s", path, errno == ELOOP
			 ? "is a symbolic link; name the file itself" : strerror(errno));
		(void) close(dirfd);
		return (-1);
	}
	(void) close(dirfd);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_nlink != 1) {
		snprintf(err, errlen, "log-file %s: not a regular file with one link", path);
		(void) close(fd);
		return (-1);
	}
	return (fd);
}
