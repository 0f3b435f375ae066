/*
 * testlib.c - helpers for the integration suites: start the real mlistd
 * on a free loopback port in a temporary directory, speak SMTP to it, and
 * clean up even when a test fails (atexit, and PR_SET_PDEATHSIG so the
 * daemon gets SIGTERM if the test process dies).
 */
#include "config.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "runner.h"
#include "testlib.h"

static struct tl_daemon *live[8];

void
tl_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

const char *
tl_mlistd(void)
{
	static char path[4096];
	const char *p = getenv("MLISTD");
	ssize_t	n;

	if (p)
		return (p);
	/* Beside the test binary: BUILDDIR/tests/x -> BUILDDIR/src/mlistd */
	if (path[0] == 0) {
		n = readlink("/proc/self/exe", path, sizeof(path) - 32);
		if (n <= 0)
			return ("src/mlistd");
		path[n] = 0;
		if ((p = strrchr(path, '/')) != NULL)
			strcpy((char *) p, "/../src/mlistd");
	}
	return (path);
}

/* rm_rf - remove the temporary directory (one level deep is enough) */
static void
rm_rf(const char *dir)
{
	DIR    *d = opendir(dir);
	struct dirent *e;
	char	path[600];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) < 0 && errno == EISDIR)
			rm_rf(path);
	}
	(void) closedir(d);
	(void) rmdir(dir);
}

static void
cleanup_at_exit(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i]) {
			if (live[i]->pid > 0) {
				(void) kill(live[i]->pid, SIGKILL);
				(void) waitpid(live[i]->pid, NULL, 0);
			}
			rm_rf(live[i]->dir);
			live[i] = NULL;
		}
}

int
tl_free_port(int v6)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int	fd, port;

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if ((fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0)) < 0)
		return (-1);
	if (bind(fd, (struct sockaddr *) &ss, v6 ? sizeof(struct sockaddr_in6)
		 : sizeof(struct sockaddr_in)) < 0
	    || getsockname(fd, (struct sockaddr *) &ss, &len) < 0) {
		(void) close(fd);
		return (-1);
	}
	port = v6 ? ntohs(((struct sockaddr_in6 *) &ss)->sin6_port)
		: ntohs(((struct sockaddr_in *) &ss)->sin_port);
	(void) close(fd);
	return (port);
}

void
tl_write_conf(struct tl_daemon *d, const char *extra)
{
	FILE   *fp = fopen(d->conf, "w");

	if (fp == NULL) {
		perror(d->conf);
		exit(1);
	}
	/* No DNS unless a test asks for it (and names its own resolver on
	 * loopback): dmarc-mitigation never; a later line wins. */
	fprintf(fp, "# written by testlib\nlisten = %s\npidfile = %s\nworkers = 2\n"
		"database = %s/mlistd.db\nbounce-maildir = %s/bounces\n"
		"held-maildir = %s/held\nuser = %s\ndmarc-mitigation = never\n%s",
		d->listen, d->pidfile, d->dir, d->dir, d->dir, TL_USER, extra ? extra : "");
	if (fclose(fp) != 0) {
		perror(d->conf);
		exit(1);
	}
}

int
tl_connect(const struct tl_daemon *d)
{
	struct sockaddr_storage ss;
	struct timeval tv = {10, 0};
	int	fd, v6 = d->listen[0] == '[';

	memset(&ss, 0, sizeof(ss));
	if (v6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr = in6addr_loopback;
		s6->sin6_port = htons((unsigned short) d->port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		s4->sin_port = htons((unsigned short) d->port);
	}
	if ((fd = socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0)) < 0)
		return (-1);
	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	(void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *) &ss, v6 ? sizeof(struct sockaddr_in6)
		    : sizeof(struct sockaddr_in)) < 0) {
		(void) close(fd);
		return (-1);
	}
	return (fd);
}

int
tl_daemon_start(struct tl_daemon *d, const char *extra, int v6)
{
	int	logfd;

	memset(d, 0, sizeof(*d));
	snprintf(d->dir, sizeof(d->dir), "/tmp/mlistd-test.XXXXXX");
	if (mkdtemp(d->dir) == NULL || tl_give_dir(d->dir) < 0)
		return (-1);
	snprintf(d->conf, sizeof(d->conf), "%s/mlistd.conf", d->dir);
	snprintf(d->pidfile, sizeof(d->pidfile), "%s/mlistd.pid", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/mlistd.log", d->dir);
	if ((d->port = tl_free_port(v6)) < 0)
		return (-1);
	snprintf(d->listen, sizeof(d->listen), v6 ? "[::1]:%d" : "127.0.0.1:%d", d->port);
	tl_write_conf(d, extra);
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == NULL) {
			live[i] = d;
			break;
		}
	{
		static int registered;

		if (!registered++)
			atexit(cleanup_at_exit);
	}
	if ((logfd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
		return (-1);
	fflush(NULL);
	if ((d->pid = fork()) < 0)
		return (-1);
	if (d->pid == 0) {
		(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
		(void) dup2(logfd, 2);
		(void) dup2(logfd, 1);
		if (getenv("MLISTD_VALGRIND") != NULL) {
			char	logopt[400];

			/* Every process of the daemon under memcheck, one log each. */
			snprintf(logopt, sizeof(logopt), "--log-file=%s/valgrind.%%p", d->dir);
			execl("/usr/bin/valgrind", "valgrind", "--quiet", "--trace-children=yes",
			      "--leak-check=full", "--show-leak-kinds=definite",
			      "--errors-for-leak-kinds=definite", logopt,
			      tl_mlistd(), "-f", "-c", d->conf, (char *) NULL);
		}
		execl(tl_mlistd(), "mlistd", "-f", "-c", d->conf, (char *) NULL);
		perror(tl_mlistd());
		_exit(127);
	}
	(void) close(logfd);
	for (int i = 0; i < 200; i++) {
		int	fd = tl_connect(d), status;

		if (fd >= 0) {
			char	buf[512];
			int	code = tl_reply(fd, buf, sizeof(buf));

			(void) tl_send(fd, "QUIT\r\n");
			(void) close(fd);
			if (code == 220)
				return (0);
		}
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return (-1);
		}
		tl_sleep_ms(50);
	}
	return (-1);
}

int
tl_daemon_wait(struct tl_daemon *d, int secs)
{
	int	status;

	for (int i = 0; i < secs * 20; i++) {
		pid_t	r = waitpid(d->pid, &status, WNOHANG);

		if (r == d->pid) {
			d->pid = 0;
			return (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
		}
		tl_sleep_ms(50);
	}
	return (-1);
}

/* valgrind_errors - memcheck logs with a non-zero ERROR SUMMARY */
static int
valgrind_errors(const struct tl_daemon *d)
{
	DIR    *dp = opendir(d->dir);
	struct dirent *e;
	int	bad = 0;

	if (dp == NULL)
		return (0);
	while ((e = readdir(dp)) != NULL) {
		char	path[600], line[512];
		FILE   *fp;

		if (strncmp(e->d_name, "valgrind.", 9) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", d->dir, e->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		while (fgets(line, sizeof(line), fp))
			if (strstr(line, "ERROR SUMMARY:") && !strstr(line, "ERROR SUMMARY: 0 ")) {
				fprintf(stderr, "valgrind: %s: %s", path, line);
				bad++;
			} else if (strstr(line, "definitely lost:") || strstr(line, "Invalid ")) {
				fprintf(stderr, "valgrind: %s: %s", path, line);
			}
		(void) fclose(fp);
	}
	(void) closedir(dp);
	return (bad);
}

int
tl_daemon_stop(struct tl_daemon *d, int secs)
{
	int	rc;

	if (d->pid <= 0) {
		rc = -1;
		goto cleanup;
	}
	(void) kill(d->pid, SIGTERM);
	rc = tl_daemon_wait(d, secs);
	if (rc < 0 && d->pid > 0) {
		(void) kill(d->pid, SIGKILL);
		(void) waitpid(d->pid, NULL, 0);
		d->pid = 0;
	}
cleanup:
	if (getenv("MLISTD_VALGRIND") != NULL && valgrind_errors(d) > 0)
		rc = -2;		/* memcheck found errors or leaks */
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == d)
			live[i] = NULL;
	rm_rf(d->dir);
	return (rc);
}

int
tl_workers(pid_t master, pid_t *out, int max)
{
	DIR    *d = opendir("/proc");
	struct dirent *e;
	int	n = 0;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL && n < max) {
		char	path[300], buf[512], *p;
		FILE   *fp;
		long	ppid;
		char	state;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		/* The held-post runner is no worker. */
		if (fgets(buf, sizeof(buf), fp) != NULL
		    && (p = strrchr(buf, ')')) != NULL
		    && sscanf(p + 1, " %c %ld", &state, &ppid) == 2
		    && ppid == (long) master && state != 'Z'
		    && strstr(buf, "(" RUNNER_NAME ")") == NULL)
			out[n++] = (pid_t) atol(e->d_name);
		(void) fclose(fp);
	}
	(void) closedir(d);
	return (n);
}

/* socket_inode - the inode of the IPv4 loopback socket local -> remote, or 0 */
static unsigned long
socket_inode(int local_port, int remote_port)
{
	FILE   *fp = fopen("/proc/net/tcp", "r");
	char	line[512];
	unsigned long inode = 0;

	if (fp == NULL)
		return (0);
	while (inode == 0 && fgets(line, sizeof(line), fp) != NULL) {
		unsigned lport, rport, st;
		unsigned long ino;
		char	laddr[16], raddr[16];

		if (sscanf(line, " %*u: %8[0-9A-F]:%x %8[0-9A-F]:%x %x %*s %*s %*s %*s %*s %lu",
			   laddr, &lport, raddr, &rport, &st, &ino) == 6
		    && lport == (unsigned) local_port && rport == (unsigned) remote_port
		    && strcmp(laddr, "0100007F") == 0 && ino != 0)
			inode = ino;
	}
	(void) fclose(fp);
	return (inode);
}

pid_t
tl_worker_by_port(pid_t master, int local_port, int remote_port)
{
	pid_t	w[64];
	int	n = tl_workers(master, w, 64);
	unsigned long inode = socket_inode(local_port, remote_port);
	char	want[64];

	if (inode == 0 || n <= 0)
		return (0);
	snprintf(want, sizeof(want), "socket:[%lu]", inode);
	for (int i = 0; i < n; i++) {
		char	path[64], link[64];
		DIR    *d;
		struct dirent *e;
		pid_t	found = 0;

		snprintf(path, sizeof(path), "/proc/%ld/fd", (long) w[i]);
		if ((d = opendir(path)) == NULL)
			continue;
		while (found == 0 && (e = readdir(d)) != NULL) {
			char	fdpath[340];
			ssize_t	len;

			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, e->d_name);
			len = readlink(fdpath, link, sizeof(link) - 1);
			if (len > 0) {
				link[len] = 0;
				if (strcmp(link, want) == 0)
					found = w[i];
			}
		}
		(void) closedir(d);
		if (found)
			return (found);
	}
	return (0);
}

int
tl_send(int fd, const char *s)
{
	size_t	len = strlen(s);

	while (len > 0) {
		ssize_t	n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		s += n;
		len -= (size_t) n;
	}
	return (0);
}

int
tl_reply(int fd, char *buf, size_t len)
{
	size_t	used = 0;

	buf[0] = 0;
	/* Byte at a time: slow, but never reads past the reply. */
	while (used + 1 < len) {
		char	c;
		ssize_t	n = recv(fd, &c, 1, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return (-1);
		buf[used++] = c;
		buf[used] = 0;
		if (c == '\n') {
			char   *line = buf + used - 1;

			while (line > buf && line[-1] != '\n')
				line--;
			if (strlen(line) >= 4 && line[3] == ' ')
				return (atoi(line));
		}
	}
	return (-1);
}

int
tl_cmd(int fd, const char *cmd, char *buf, size_t len)
{
	if (tl_send(fd, cmd) < 0)
		return (-1);
	return (tl_reply(fd, buf, len));
}

int
tl_run(char *const argv[], char *out, size_t len)
{
	int	pfd[2], status;
	size_t	used = 0;
	pid_t	pid;

	if (pipe(pfd) < 0)
		return (-1);
	fflush(NULL);
	if ((pid = fork()) == 0) {
		(void) close(pfd[0]);
		(void) dup2(pfd[1], 1);
		(void) dup2(pfd[1], 2);
		(void) close(pfd[1]);
		execv(argv[0], argv);
		_exit(127);
	}
	(void) close(pfd[1]);
	for (;;) {
		ssize_t	n = read(pfd[0], out + used, len - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		used += (size_t) n;
		if (used + 1 >= len)
			break;
	}
	out[used] = 0;
	(void) close(pfd[0]);
	if (waitpid(pid, &status, 0) != pid)
		return (-1);
	return (WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/* path of a helper program beside the test binary */
static const char *
helper(const char *name)
{
	static char path[4096];
	ssize_t	n = readlink("/proc/self/exe", path, sizeof(path) - 64);
	char   *slash;

	if (n <= 0)
		return (name);
	path[n] = 0;
	if ((slash = strrchr(path, '/')) != NULL)
		snprintf(slash + 1, 64, "%s", name);
	return (path);
}

static struct tl_sink *live_sinks[8];

static void
sink_cleanup(void)
{
	for (size_t i = 0; i < sizeof(live_sinks) / sizeof(live_sinks[0]); i++)
		if (live_sinks[i] && live_sinks[i]->pid > 0) {
			(void) kill(live_sinks[i]->pid, SIGTERM);
			(void) waitpid(live_sinks[i]->pid, NULL, 0);
			rm_rf(live_sinks[i]->dir);
		}
}

int
tl_sink_start(struct tl_sink *k, ...)
{
	char   *argv[32], portbuf[16];
	int	argc = 0;
	va_list	ap;
	static int registered;

	memset(k, 0, sizeof(*k));
	snprintf(k->dir, sizeof(k->dir), "/tmp/mlistd-sink.XXXXXX");
	if (mkdtemp(k->dir) == NULL || (k->port = tl_free_port(0)) < 0)
		return (-1);
	snprintf(portbuf, sizeof(portbuf), "%d", k->port);
	argv[argc++] = (char *) helper("mlsink");
	argv[argc++] = "-p";
	argv[argc++] = portbuf;
	argv[argc++] = "-d";
	argv[argc++] = k->dir;
	va_start(ap, k);
	while (argc < 30 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	if (!registered++)
		atexit(sink_cleanup);
	for (size_t i = 0; i < sizeof(live_sinks) / sizeof(live_sinks[0]); i++)
		if (live_sinks[i] == NULL) {
			live_sinks[i] = k;
			break;
		}
	fflush(NULL);
	if ((k->pid = fork()) == 0) {
		(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
		execv(argv[0], argv);
		perror(argv[0]);
		_exit(127);
	}
	for (int i = 0; i < 200; i++) {
		struct tl_daemon probe;
		int	fd;

		memset(&probe, 0, sizeof(probe));
		probe.port = k->port;
		if ((fd = tl_connect(&probe)) >= 0) {
			(void) close(fd);
			return (0);
		}
		tl_sleep_ms(25);
	}
	return (-1);
}

void
tl_sink_stop(struct tl_sink *k)
{
	if (k->pid > 0) {
		(void) kill(k->pid, SIGTERM);
		(void) waitpid(k->pid, NULL, 0);
		k->pid = 0;
	}
	for (size_t i = 0; i < sizeof(live_sinks) / sizeof(live_sinks[0]); i++)
		if (live_sinks[i] == k)
			live_sinks[i] = NULL;
	rm_rf(k->dir);
}

int
tl_vstart_relayed(struct tl_daemon *d, struct tl_sink *k, const char *extra, const char *seed,
		  va_list ap)
{
	char	conf[2048];
	char   *opt[8];
	int	n = 0;

	while (n < 7 && (opt[n] = va_arg(ap, char *)) != NULL)
		n++;
	opt[n] = NULL;
	if (tl_sink_start(k, opt[0], opt[1], opt[2], opt[3], opt[4], opt[5], opt[6],
			  (char *) NULL) < 0)
		return (-1);
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\n%s", k->port,
		 extra ? extra : "");
	if (tl_daemon_start(d, conf, 0) < 0)
		return (-1);
	return (seed ? tl_sql(d, seed) : 0);
}

int
tl_stop_relayed(struct tl_daemon *d, struct tl_sink *k)
{
	int	rc = tl_daemon_stop(d, 10);

	tl_sink_stop(k);
	return (rc);
}

static int
cmpstr(const void *a, const void *b)
{
	return (strcmp(*(char *const *) a, *(char *const *) b));
}

int
tl_sink_messages(const struct tl_sink *k, char **out, int max)
{
	DIR    *d = opendir(k->dir);
	struct dirent *e;
	char   *names[4096];
	int	n = 0, got = 0;

	if (d == NULL)
		return (-1);
	while ((e = readdir(d)) != NULL && n < 4096)
		if (strncmp(e->d_name, "msg.", 4) == 0)
			names[n++] = strdup(e->d_name);
	(void) closedir(d);
	qsort(names, (size_t) n, sizeof(names[0]), cmpstr);
	for (int i = 0; i < n; i++) {
		char	path[600];
		FILE   *fp;
		long	len;

		snprintf(path, sizeof(path), "%s/%s", k->dir, names[i]);
		if (got < max && (fp = fopen(path, "r")) != NULL) {
			(void) fseek(fp, 0, SEEK_END);
			len = ftell(fp);
			rewind(fp);
			out[got] = calloc(1, (size_t) len + 1);
			if (out[got] && fread(out[got], 1, (size_t) len, fp) == (size_t) len)
				got++;
			(void) fclose(fp);
		}
		free(names[i]);
	}
	return (got);
}

void
tl_free_messages(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
}

int
tl_count(const char *hay, const char *needle)
{
	int	n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	return (n);
}

static sqlite3 *
db_open(const struct tl_daemon *d)
{
	char	path[400];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/mlistd.db", d->dir);
	if (sqlite3_open(path, &db) != SQLITE_OK) {
		fprintf(stderr, "sqlite3_open %s failed\n", path);
		sqlite3_close(db);
		return (NULL);
	}
	sqlite3_busy_timeout(db, 5000);
	return (db);
}

int
tl_sql(const struct tl_daemon *d, const char *sql)
{
	sqlite3 *db = db_open(d);
	char   *msg = NULL;
	int	rc;

	if (db == NULL)
		return (-1);
	rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK)
		fprintf(stderr, "SQL failed: %s: %s\n", sql, msg ? msg : "?");
	sqlite3_free(msg);
	sqlite3_close(db);
	return (rc == SQLITE_OK ? 0 : -1);
}

long
tl_sql_int(const struct tl_daemon *d, const char *sql)
{
	sqlite3 *db = db_open(d);
	sqlite3_stmt *q;
	long	v = -1;

	if (db == NULL)
		return (-1);
	if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK) {
		if (sqlite3_step(q) == SQLITE_ROW)
			v = (long) sqlite3_column_int64(q, 0);
		sqlite3_finalize(q);
	} else
		fprintf(stderr, "SQL failed: %s: %s\n", sql, sqlite3_errmsg(db));
	sqlite3_close(db);
	return (v);
}

int
tl_post(const struct tl_daemon *d, const char *from, const char *const *rcpt,
	const char *data, char *buf, size_t len)
{
	char	cmd[1024];
	int	fd = tl_connect(d), code, accepted = 0;

	if (fd < 0)
		return (-1);
	if (tl_reply(fd, buf, len) != 220 || tl_cmd(fd, "EHLO test.example\r\n", buf, len) != 250)
		goto fail;
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", from);
	if (tl_cmd(fd, cmd, buf, len) != 250)
		goto fail;
	for (int i = 0; rcpt[i]; i++) {
		snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpt[i]);
		code = tl_cmd(fd, cmd, buf, len);
		if (code == 250)
			accepted++;
		else if (rcpt[i + 1] == NULL && accepted == 0)
			goto done;	/* the last refusal is the answer */
	}
	if (tl_cmd(fd, "DATA\r\n", buf, len) != 354)
		goto fail;
	if (tl_send(fd, data) < 0)
		goto fail;
	code = tl_cmd(fd, ".\r\n", buf, len);
	(void) tl_send(fd, "QUIT\r\n");
	(void) close(fd);
	return (code);
done:
	code = atoi(buf);
	(void) tl_send(fd, "QUIT\r\n");
	(void) close(fd);
	return (code);
fail:
	code = atoi(buf);
	(void) close(fd);
	return (code > 0 ? code : -1);
}

int
tl_give_dir(const char *dir)
{
	struct passwd *pw;

	/* As root, the daemon's workers run as TL_USER: let them write here. */
	if (geteuid() != 0)
		return (0);
	if ((pw = getpwnam(TL_USER)) == NULL) {
		fprintf(stderr, "user %s is missing\n", TL_USER);
		return (-1);
	}
	return (chown(dir, pw->pw_uid, pw->pw_gid));
}

int
tl_logged(const struct tl_daemon *d, const char *needle)
{
	FILE   *fp = fopen(d->log, "r");
	char	line[4096];
	int	hits = 0;

	if (fp == NULL)
		return (-1);
	while (fgets(line, sizeof(line), fp))
		hits += strstr(line, needle) != NULL;
	(void) fclose(fp);
	return (hits);
}
