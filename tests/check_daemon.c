/*
 * check_daemon.c - the real daemon over a socket: command line, SMTP,
 * worker supervision, signals, timeouts.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <arpa/inet.h>
#include <fcntl.h>
#include <pwd.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "testlib.h"

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

static void
start(struct tl_daemon *d, const char *extra, int v6)
{
	int	rc = tl_daemon_start(d, extra, v6);

	if (rc < 0) {
		char	cmd[400];

		snprintf(cmd, sizeof(cmd), "cat %s >&2", d->log);
		if (system(cmd) != 0)
			fprintf(stderr, "(no log)\n");
	}
	ck_assert_msg(rc == 0, "daemon did not start (listen %s)", d->listen);
}

/* A whole transaction over a real socket. */
START_TEST(test_transaction)
{
	struct tl_daemon d;
	char	buf[4096];
	int	fd;

	start(&d, "domain = Lists.Example.COM\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_ptr_nonnull(strstr(buf, "ESMTP mlistd"));
	ck_assert_int_eq(tl_cmd(fd, "EHLO client.test\r\n", buf, sizeof(buf)), 250);
	ck_assert_ptr_nonnull(strstr(buf, "250-PIPELINING\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "250-SIZE 10240000\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "250-8BITMIME\r\n"));
	ck_assert_ptr_nonnull(strstr(buf, "250-ENHANCEDSTATUSCODES\r\n"));
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<a@b.test>\r\n", buf, sizeof(buf)), 250);
	/* Never an open relay. */
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<x@elsewhere.test>\r\n", buf, sizeof(buf)), 550);
	ck_assert_ptr_nonnull(strstr(buf, "550 5.7.1 "));
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<x@lists.example.com.evil.test>\r\n", buf,
				sizeof(buf)), 550);
	/* The database is empty: no such list. */
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@LISTS.example.com>\r\n", buf,
				sizeof(buf)), 550);
	ck_assert_ptr_nonnull(strstr(buf, "550 5.1.1 "));
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<bounce+x=y@LISTS.example.com>\r\n", buf,
				sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	/* A bounce: stored in the Maildir and the database, then 250. */
	ck_assert_int_eq(tl_cmd(fd, "Subject: t\r\n\r\nhello\r\n.\r\n", buf, sizeof(buf)), 250);
	ck_assert_ptr_nonnull(strstr(buf, "250 2.0.0 "));
	ck_assert_int_eq(tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* Commands pipelined in one write are all answered, in order. */
START_TEST(test_pipelining_socket)
{
	struct tl_daemon d;
	char	buf[4096];
	int	fd;

	start(&d, NULL, 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_send(fd, "EHLO c\r\nMAIL FROM:<a@b.test>\r\n"
				 "RCPT TO:<bounce@example.com>\r\nRCPT TO:<y@other.test>\r\n"
				 "RSET\r\nNOOP\r\nQUIT\r\n"), 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 550);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 221);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), -1);	/* closed */
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* IPv6 loopback listener. */
START_TEST(test_ipv6)
{
	struct tl_daemon d;
	char	buf[1024];
	int	fd;

	start(&d, NULL, 1);
	ck_assert_int_eq(d.listen[0], '[');
	fd = tl_connect(&d);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* A worker killed with SIGKILL is replaced and service goes on. */
START_TEST(test_worker_replaced)
{
	struct tl_daemon d;
	pid_t	before[8], after[8];
	int	n, m = 0, fd;
	char	buf[1024];

	start(&d, NULL, 0);
	for (int i = 0; i < 100 && (n = tl_workers(d.pid, before, 8)) != 2; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(kill(before[0], SIGKILL), 0);
	for (int i = 0; i < 100; i++) {
		m = tl_workers(d.pid, after, 8);
		if (m == 2 && after[0] != before[0] && after[1] != before[0])
			break;
		tl_sleep_ms(50);
	}
	ck_assert_int_eq(m, 2);
	ck_assert_int_ne(after[0], before[0]);
	ck_assert_int_ne(after[1], before[0]);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* worker_uids - the real and effective uid of process pid; 0 or -1 */
static int
worker_uids(pid_t pid, long *ruid, long *euid)
{
	char	path[64], line[256];
	FILE   *fp;
	int	found = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long) pid);
	if ((fp = fopen(path, "r")) == NULL)
		return (-1);
	while (!found && fgets(line, sizeof(line), fp))
		found = sscanf(line, "Uid: %ld %ld", ruid, euid) == 2;
	fclose(fp);
	return (found ? 0 : -1);
}

/*
 * Started as root, the master stays root and the workers do not.  A
 * worker is forked as root and drops its privileges a moment later: wait
 * (bounded) for that state rather than read it too early on a loaded
 * machine.
 */
START_TEST(test_workers_unprivileged)
{
	struct tl_daemon d;
	pid_t	w[8];
	int	n = 0;

	start(&d, NULL, 0);
	for (int i = 0; i < 100 && (n = tl_workers(d.pid, w, 8)) != 2; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++) {
		long	ruid = -1, euid = -1;
		int	dropped = 0;

		for (int t = 0; t < 200 && !dropped; t++) {
			ck_assert_int_eq(worker_uids(w[i], &ruid, &euid), 0);
			dropped = geteuid() == 0 ? ruid != 0 && euid != 0
				: euid == (long) geteuid();
			if (!dropped)
				tl_sleep_ms(50);
		}
		if (geteuid() == 0) {
			ck_assert_int_ne(ruid, 0);
			ck_assert_int_ne(euid, 0);
		} else
			ck_assert_int_eq(euid, (long) geteuid());
	}
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* Workers recycle after max-use sessions. */
START_TEST(test_max_use)
{
	struct tl_daemon d;
	pid_t	before[8], after[8];
	int	n, fd;
	char	buf[1024];

	start(&d, "workers = 1\nmax-use = 2\n", 0);
	for (int i = 0; i < 100 && (n = tl_workers(d.pid, before, 8)) != 1; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(n, 1);
	/* tl_daemon_start used one session already; this is the second. */
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
	(void) close(fd);
	for (int i = 0; i < 100; i++) {
		n = tl_workers(d.pid, after, 8);
		if (n == 1 && after[0] != before[0])
			break;
		tl_sleep_ms(50);
	}
	ck_assert_int_eq(n, 1);
	ck_assert_int_ne(after[0], before[0]);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/*
 * SIGTERM: the transaction in progress finishes, the client then gets
 * 421, the master exits 0 and removes its pid file.
 */
START_TEST(test_sigterm_graceful)
{
	struct tl_daemon d;
	char	buf[1024], pidfile[300];
	struct stat st;
	int	fd, rc;

	start(&d, NULL, 0);
	snprintf(pidfile, sizeof(pidfile), "%s", d.pidfile);
	ck_assert_int_eq(stat(pidfile, &st), 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO c\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<a@b.test>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	tl_sleep_ms(300);
	/*
	 * Nobody holds the listening socket any more, not even the busy
	 * worker: a new connection is refused at once, rather than queued
	 * by the kernel for a worker that will never greet it.
	 */
	{
		int	fd2 = tl_connect(&d);

		if (fd2 >= 0) {
			int	code = tl_reply(fd2, buf, sizeof(buf));

			(void) close(fd2);
			ck_abort_msg("a connection was accepted after SIGTERM (reply %d)", code);
		}
	}
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<bounce@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_cmd(fd, "x\r\n.\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 421);
	ck_assert_ptr_nonnull(strstr(buf, "4.3.2"));
	(void) close(fd);
	rc = tl_daemon_wait(&d, 10);
	ck_assert_int_eq(rc, 0);
	ck_assert_int_ne(stat(pidfile, &st), 0);
	tl_daemon_stop(&d, 1);
}
END_TEST

/* SIGTERM with an idle session open: bounded by shutdown-timeout. */
START_TEST(test_sigterm_bounded)
{
	struct tl_daemon d;
	char	buf[1024];
	int	fd;
	double	t0;

	start(&d, "shutdown-timeout = 2\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO c\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<a@b.test>\r\n", buf, sizeof(buf)), 250);
	/* The client now stalls in the middle of a transaction. */
	t0 = mono();
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_eq(tl_daemon_wait(&d, 10), 0);
	ck_assert_double_ge(mono() - t0, 1.5);
	ck_assert_double_le(mono() - t0, 6.0);
	(void) close(fd);
	tl_daemon_stop(&d, 1);
}
END_TEST

/* SIGHUP re-reads the file; the listener is never dropped. */
START_TEST(test_sighup_reload)
{
	struct tl_daemon d;
	char	buf[2048];
	int	fd, seen_new = 0, failures = 0;

	start(&d, "max-message-size = 100000\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO c\r\n", buf, sizeof(buf)), 250);
	ck_assert_ptr_nonnull(strstr(buf, "SIZE 100000\r\n"));
	(void) close(fd);
	tl_write_conf(&d, "max-message-size = 200000\n");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	for (int i = 0; i < 100 && !seen_new; i++) {
		if ((fd = tl_connect(&d)) < 0) {
			failures++;
			continue;
		}
		if (tl_reply(fd, buf, sizeof(buf)) != 220) {
			failures++;
			(void) close(fd);
			continue;
		}
		if (tl_cmd(fd, "EHLO c\r\n", buf, sizeof(buf)) == 250
		    && strstr(buf, "SIZE 200000\r\n"))
			seen_new = 1;
		(void) tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf));
		(void) close(fd);
		tl_sleep_ms(50);
	}
	ck_assert_int_eq(seen_new, 1);
	ck_assert_int_eq(failures, 0);
	/* A broken file on reload keeps the running configuration. */
	tl_write_conf(&d, "workers = none\n");
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && tl_logged(&d, "reload failed") < 1; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(tl_logged(&d, "reload failed"), 1);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO c\r\n", buf, sizeof(buf)), 250);
	ck_assert_ptr_nonnull(strstr(buf, "SIZE 200000\r\n"));
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* An idle client is cut off with 421 after `timeout`. */
START_TEST(test_idle_timeout)
{
	struct tl_daemon d;
	char	buf[1024];
	int	fd;
	double	t0;

	start(&d, "timeout = 1\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	t0 = mono();
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 421);
	ck_assert_ptr_nonnull(strstr(buf, "421 4.4.2 "));
	ck_assert_double_ge(mono() - t0, 0.8);
	ck_assert_double_le(mono() - t0, 5.0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), -1);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* One byte at a time does not extend the per-line deadline. */
START_TEST(test_trickle)
{
	struct tl_daemon d;
	char	buf[1024];
	int	fd, code = 0;
	double	t0;

	start(&d, "timeout = 2\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	t0 = mono();
	for (int i = 0; i < 40; i++) {
		if (send(fd, "N", 1, MSG_NOSIGNAL) != 1)
			break;
		tl_sleep_ms(250);
		if (mono() - t0 > 3.0)
			break;
	}
	code = tl_reply(fd, buf, sizeof(buf));
	ck_assert_int_eq(code, 421);
	ck_assert_ptr_nonnull(strstr(buf, "timeout exceeded"));
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* Complete commands every 300 ms still meet the session deadline. */
START_TEST(test_session_deadline)
{
	struct tl_daemon d;
	char	buf[1024];
	int	fd, code = 0;
	double	t0;

	start(&d, "timeout = 5\nsession-timeout = 2\n", 0);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	t0 = mono();
	while (mono() - t0 < 8.0) {
		code = tl_cmd(fd, "NOOP\r\n", buf, sizeof(buf));
		if (code != 250)
			break;
		tl_sleep_ms(300);
	}
	ck_assert_int_eq(code, 421);
	ck_assert_ptr_nonnull(strstr(buf, "session time limit exceeded"));
	ck_assert_double_le(mono() - t0, 4.0);
	(void) close(fd);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
}
END_TEST

/* Command-line errors: one clear line, non-zero exit. */
START_TEST(test_command_line)
{
	char	out[8192];
	char   *bad_value[] = {(char *) tl_mlistd(), "--workers=0", "-t", NULL};
	char   *bad_opt[] = {(char *) tl_mlistd(), "--frobnicate", NULL};
	char   *missing[] = {(char *) tl_mlistd(), "-c", "/nonexistent/mlistd.conf", "-t", NULL};
	char   *help[] = {(char *) tl_mlistd(), "--help", NULL};
	char   *version[] = {(char *) tl_mlistd(), "--version", NULL};
	char	tmp[] = "/tmp/mlistd-cmdline.XXXXXX", dbarg[300], mdarg[300];
	char   *check[] = {(char *) tl_mlistd(), "-c", "/dev/null", "-t", "--domain=lists.test",
	dbarg, mdarg, "--user=" TL_USER, NULL};
	char   *bind_busy[] = {(char *) tl_mlistd(), "-c", "/dev/null", "-f", NULL, dbarg,
	mdarg, "--user=" TL_USER, NULL};
	char   *no_user[] = {(char *) tl_mlistd(), "-c", "/dev/null", "-t", dbarg, mdarg,
	"--user=no-such-user-here", NULL};
	char   *bad_db[] = {(char *) tl_mlistd(), "-c", "/dev/null", "-t",
	"--database=/nonexistent/dir/mlistd.db", "--user=" TL_USER, NULL};
	char	listen_arg[64];
	int	fd, port;

	ck_assert_int_eq(tl_run(bad_value, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "mlistd: --workers: invalid value \"0\": expected a number "
			 "from 1 to 256\n");
	ck_assert_int_eq(tl_run(bad_opt, out, sizeof(out)), 1);
	ck_assert_str_eq(out, "mlistd: unrecognized option '--frobnicate' "
			 "(try 'mlistd --help')\n");
	ck_assert_int_eq(tl_run(missing, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, "cannot open configuration file"));
	ck_assert_ptr_eq(strchr(out, '\n'), out + strlen(out) - 1);	/* one line */
	ck_assert_int_eq(tl_run(help, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "--check-config"));
	ck_assert_ptr_nonnull(strstr(out, "--max-message-size=BYTES"));
	ck_assert_int_eq(tl_run(version, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "mlistd (mlistd) "));
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	ck_assert_int_eq(tl_give_dir(tmp), 0);
	snprintf(dbarg, sizeof(dbarg), "--database=%s/mlistd.db", tmp);
	snprintf(mdarg, sizeof(mdarg), "--bounce-maildir=%s/bounces", tmp);
	ck_assert_int_eq(tl_run(check, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "domain = lists.test\n"));
	ck_assert_ptr_nonnull(strstr(out, "mlistd.db OK\n"));
	if (geteuid() == 0) {
		/* Started as root: the files belong to the unprivileged user. */
		struct stat st;
		char	db[400];

		snprintf(db, sizeof(db), "%s/mlistd.db", tmp);
		ck_assert_int_eq(stat(db, &st), 0);
		ck_assert_int_ne(st.st_uid, 0);
		ck_assert_int_eq(tl_run(no_user, out, sizeof(out)), 1);
		ck_assert_ptr_nonnull(strstr(out, "user \"no-such-user-here\" does not exist"));
	}
	/* -t created the database with the schema. */
	ck_assert_int_eq(tl_run(bad_db, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, "/nonexistent/dir"));

	/* A port that is taken: one line, exit 1, no workers left behind. */
	port = tl_free_port(0);
	{
		struct sockaddr_in sin;
		int	on = 1;

		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons((unsigned short) port);
		sin.sin_addr.s_addr = htonl(0x7f000001);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		ck_assert_int_eq(bind(fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
		ck_assert_int_eq(listen(fd, 1), 0);
	}
	snprintf(listen_arg, sizeof(listen_arg), "--listen=127.0.0.1:%d", port);
	bind_busy[4] = listen_arg;
	ck_assert_int_eq(tl_run(bind_busy, out, sizeof(out)), 1);
	ck_assert_ptr_nonnull(strstr(out, "cannot listen on 127.0.0.1:"));
	ck_assert_ptr_nonnull(strstr(out, "Address already in use"));
	(void) close(fd);
	snprintf(out, sizeof(out), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(out), 0);
}
END_TEST


/* alive - running and not a zombie (PID 1 in a container may not reap) */
static int
alive(long pid)
{
	char	path[64], buf[512], *p;
	FILE   *fp;
	int	ok = 0;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return (0);
	if (fgets(buf, sizeof(buf), fp) && (p = strrchr(buf, ')')) != NULL)
		ok = p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
	fclose(fp);
	return (ok);
}

static long detached_all[8];

static void kill_detached(void);

/* detach_track - remember a detached daemon until it is known stopped */
static void
detach_track(long pid)
{
	static int registered;

	for (size_t i = 0; i < sizeof(detached_all) / sizeof(detached_all[0]); i++)
		if (detached_all[i] == 0) {
			detached_all[i] = pid;
			break;
		}
	if (!registered++)
		atexit(kill_detached);
}

/* kill_detached - at exit: stop every detached daemon still running */
static void
kill_detached(void)
{
	for (size_t i = 0; i < sizeof(detached_all) / sizeof(detached_all[0]); i++)
		if (detached_all[i] > 1 && alive(detached_all[i]))
			(void) kill((pid_t) detached_all[i], SIGTERM);
}

/* Without -f: detaches, the launcher exits 0 once the pid file exists. */
START_TEST(test_daemonize)
{
	char	dir[] = "/tmp/mlistd-daemon.XXXXXX", pidfile[300], listen_arg[64],
		out[4096], pidarg[320];
	char	dbarg[320], mdarg[320];
	char   *argv[] = {(char *) tl_mlistd(), "-c", "/dev/null", NULL, NULL,
	"--workers=1", dbarg, mdarg, "--user=" TL_USER, NULL};
	FILE   *fp;
	long	pid = 0;
	struct stat st;
	int	port = tl_free_port(0);

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(tl_give_dir(dir), 0);
	snprintf(pidfile, sizeof(pidfile), "%s/mlistd.pid", dir);
	snprintf(pidarg, sizeof(pidarg), "--pidfile=%s", pidfile);
	snprintf(dbarg, sizeof(dbarg), "--database=%s/mlistd.db", dir);
	snprintf(mdarg, sizeof(mdarg), "--bounce-maildir=%s/bounces", dir);
	snprintf(listen_arg, sizeof(listen_arg), "--listen=127.0.0.1:%d", port);
	argv[3] = listen_arg;
	argv[4] = pidarg;
	ck_assert_int_eq(tl_run(argv, out, sizeof(out)), 0);
	fp = fopen(pidfile, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fscanf(fp, "%ld", &pid), 1);
	fclose(fp);
	ck_assert_int_gt(pid, 1);
	detach_track(pid);
	ck_assert_int_eq(alive(pid), 1);
	/* A second instance with the same pid file refuses to start. */
	{
		char	listen2[64];
		char   *argv2[] = {(char *) tl_mlistd(), "-c", "/dev/null", listen2, pidarg,
		"--workers=1", "-f", dbarg, mdarg, "--user=" TL_USER, NULL};

		snprintf(listen2, sizeof(listen2), "--listen=127.0.0.1:%d", tl_free_port(0));
		ck_assert_int_eq(tl_run(argv2, out, sizeof(out)), 1);
		ck_assert_ptr_nonnull(strstr(out, "already running"));
	}
	ck_assert_int_eq(kill((pid_t) pid, SIGTERM), 0);
	for (int i = 0; i < 200 && alive(pid); i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(alive(pid), 0);
	ck_assert_int_ne(stat(pidfile, &st), 0);
	snprintf(out, sizeof(out), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(out), 0);
}
END_TEST

/* run_sh - sh SCRIPT ACTION; exit status */
static int
run_sh(const char *script, const char *action, char *out, size_t len)
{
	char   *argv[] = {"/bin/sh", (char *) script, (char *) action, NULL};

	return (tl_run(argv, out, len));
}

/* The LSB init script: start, status, reload, restart, stop. */
START_TEST(test_init_script)
{
	char	dir[] = "/tmp/mlistd-init.XXXXXX", script[300], conf[300], pidfile[300],
		daemon[4096], src[4096], out[8192], *text, *p;
	FILE   *fp;
	int	port = tl_free_port(0), fd;
	long	pid1 = 0, pid2 = 0;
	struct tl_daemon probe;
	const char *lsb = "/lib/lsb/init-functions";

	ck_assert_msg(access(lsb, R_OK) == 0, "%s is missing (Debian: sysvinit-utils)", lsb);
	ck_assert_msg(access("/sbin/start-stop-daemon", X_OK) == 0
		      || access("/usr/sbin/start-stop-daemon", X_OK) == 0,
		      "start-stop-daemon is missing");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(tl_give_dir(dir), 0);
	ck_assert_ptr_nonnull(realpath(tl_mlistd(), daemon));
	/* contrib/mlistd is generated next to src/ in the build tree. */
	snprintf(src, sizeof(src), "%s", daemon);
	p = strrchr(src, '/');
	*p = 0;
	p = strrchr(src, '/');
	strcpy(p, "/contrib/mlistd");
	text = ck_slurp(src, NULL);
	snprintf(script, sizeof(script), "%s/mlistd.init", dir);
	snprintf(conf, sizeof(conf), "%s/mlistd.conf", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/mlistd.pid", dir);
	fp = fopen(script, "w");
	ck_assert_ptr_nonnull(fp);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
		if (strncmp(line, "DAEMON=", 7) == 0)
			fprintf(fp, "DAEMON=%s\n", daemon);
		else if (strncmp(line, "CONFIG=", 7) == 0)
			fprintf(fp, "CONFIG=%s\n", conf);
		else if (strncmp(line, "PIDFILE=", 8) == 0)
			fprintf(fp, "PIDFILE=%s\n", pidfile);
		else if (strncmp(line, "[ -r /etc/default/", 18) == 0)
			continue;
		else
			fprintf(fp, "%s\n", line);
	}
	fclose(fp);
	free(text);
	fp = fopen(conf, "w");
	fprintf(fp, "listen = 127.0.0.1:%d\ndatabase = %s/db/mlistd.db\nbounce-maildir = %s/bounces\n"
		"user = %s\nworkers = 1\nmax-message-size = 100000\n", port, dir, dir, TL_USER);
	fclose(fp);
	memset(&probe, 0, sizeof(probe));
	probe.port = port;

	ck_assert_int_eq(run_sh(script, "start", out, sizeof(out)), 0);
	fp = fopen(pidfile, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fscanf(fp, "%ld", &pid1), 1);
	fclose(fp);
	detach_track(pid1);
	ck_assert_int_eq(run_sh(script, "status", out, sizeof(out)), 0);
	ck_assert_int_eq(run_sh(script, "start", out, sizeof(out)), 0);	/* already running */
	fd = tl_connect(&probe);
	ck_assert_int_eq(tl_reply(fd, out, sizeof(out)), 220);
	close(fd);
	/* reload: the new size limit shows in EHLO. */
	fp = fopen(conf, "a");
	fprintf(fp, "max-message-size = 200000\n");
	fclose(fp);
	ck_assert_int_eq(run_sh(script, "reload", out, sizeof(out)), 0);
	{
		int	seen = 0;

		for (int i = 0; i < 60 && !seen; i++) {
			fd = tl_connect(&probe);
			if (fd >= 0 && tl_reply(fd, out, sizeof(out)) == 220
			    && tl_cmd(fd, "EHLO x\r\n", out, sizeof(out)) == 250)
				seen = strstr(out, "SIZE 200000") != NULL;
			if (fd >= 0)
				close(fd);
			tl_sleep_ms(100);
		}
		ck_assert_int_eq(seen, 1);
	}
	/* A broken file: reload refuses with the reason, the daemon runs on. */
	fp = fopen(conf, "a");
	fprintf(fp, "workers = many\n");
	fclose(fp);
	ck_assert_int_ne(run_sh(script, "reload", out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "workers: invalid value"));
	ck_assert_int_eq(run_sh(script, "status", out, sizeof(out)), 0);
	fp = fopen(conf, "w");
	fprintf(fp, "listen = 127.0.0.1:%d\ndatabase = %s/db/mlistd.db\nbounce-maildir = %s/bounces\n"
		"user = %s\nworkers = 2\n", port, dir, dir, TL_USER);
	fclose(fp);
	ck_assert_msg(run_sh(script, "restart", out, sizeof(out)) == 0, "restart: %s", out);
	fp = fopen(pidfile, "r");
	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fscanf(fp, "%ld", &pid2), 1);
	fclose(fp);
	ck_assert_int_ne(pid1, pid2);
	detach_track(pid2);
	ck_assert_int_eq(run_sh(script, "stop", out, sizeof(out)), 0);
	ck_assert_int_eq(access(pidfile, F_OK), -1);
	ck_assert_int_eq(run_sh(script, "status", out, sizeof(out)), 3);
	ck_assert_int_eq(run_sh(script, "stop", out, sizeof(out)), 0);	/* not running */
	/*
	 * A start that fails: the status line ends with one "failed", and
	 * mlistd's reason follows on a line of its own.
	 */
	fp = fopen(conf, "a");
	fprintf(fp, "workers = 0\n");
	fclose(fp);
	ck_assert_int_ne(run_sh(script, "start", out, sizeof(out)), 0);
	ck_assert_msg(tl_count(out, "failed") == 1, "%s", out);
	ck_assert_msg(strstr(out, "Starting mailing-list server: mlistd failed!\n") != NULL,
		      "%s", out);
	ck_assert_msg(strstr(out, "\n    mlistd: ") != NULL && strstr(out,
		"mlistd.conf:6: workers: invalid value \"0\"") != NULL, "%s", out);
	ck_assert_int_eq(run_sh(script, "status", out, sizeof(out)), 3);
	snprintf(out, sizeof(out), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(out), 0);
}
END_TEST

/* plant_link - symlink(target, link) made by TL_USER; 0 or -1 */
static int
plant_link(const char *target, const char *link)
{
	struct passwd *pw = getpwnam(TL_USER);
	pid_t	pid;
	int	status;

	if (pw == NULL || (pid = fork()) < 0)
		return (-1);
	if (pid == 0) {
		if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0)
			_exit(2);
		_exit(symlink(target, link) < 0 ? 1 : 0);
	}
	return (waitpid(pid, &status, 0) == pid && WIFEXITED(status)
		&& WEXITSTATUS(status) == 0 ? 0 : -1);
}

/* owner - uid of path (not following a link), or -1 */
static long
owner(const char *path)
{
	struct stat st;

	return (lstat(path, &st) == 0 ? (long) st.st_uid : -1);
}

/*
 * Root never follows a link the workers' user planted: links for the
 * database journal and the Maildir lead to root's files; `mlistd -t`, a
 * start and a SIGHUP refuse them, and the targets keep their owner.  A
 * database in a directory anybody may write is refused too.
 */
START_TEST(test_no_root_link_following)
{
	struct tl_daemon d;
	char	safe[64] = "/tmp/mlistd-root.XXXXXX", shadow[128], tdir[128];
	char	link[400], conf[400], out[4096], dbopt[300];
	char   *check[] = {(char *) tl_mlistd(), "-t", "-c", conf, NULL};
	char   *tmpdb[] = {(char *) tl_mlistd(), "-t", "-c", "/dev/null", dbopt,
		"--bounce-maildir=/var/tmp/mlistd-never-made", "--user=" TL_USER, NULL};
	int	fd;

	if (geteuid() != 0) {
		fprintf(stderr, "test_no_root_link_following: needs root (CI runs as root)\n");
		return;
	}
	/* Root's own files, in a directory only root may enter. */
	ck_assert_ptr_nonnull(mkdtemp(safe));
	snprintf(shadow, sizeof(shadow), "%s/shadow", safe);
	snprintf(tdir, sizeof(tdir), "%s/dir", safe);
	ck_assert_int_ge(fd = open(shadow, O_WRONLY | O_CREAT, 0600), 0);
	close(fd);
	ck_assert_int_eq(mkdir(tdir, 0700), 0);
	ck_assert_int_eq(chmod(safe, 0711), 0);	/* the user may pass, not read */

	start(&d, NULL, 0);
	snprintf(conf, sizeof(conf), "%s", d.conf);
	/* The journal: a link to root's file. */
	snprintf(link, sizeof(link), "%s/mlistd.db-journal", d.dir);
	ck_assert_int_eq(plant_link(shadow, link), 0);
	ck_assert_int_eq(tl_run(check, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "mlistd.db-journal is a symbolic link") != NULL, "%s", out);
	ck_assert_int_eq(owner(shadow), 0);
	/* A reload is refused the same way, and the daemon keeps running. */
	ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
	for (int i = 0; i < 200 && tl_logged(&d, "reload failed") < 1; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(tl_logged(&d, "reload failed"), 1);
	ck_assert_int_eq(owner(shadow), 0);
	ck_assert_int_eq(kill(d.pid, 0), 0);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
	/* A start with the link in place fails, and hands nothing over. */
	{
		char	dir[64] = "/tmp/mlistd-links.XXXXXX";
		char   *run[] = {(char *) tl_mlistd(), "-f", "-c", conf, NULL};
		FILE   *fp;

		ck_assert_ptr_nonnull(mkdtemp(dir));
		ck_assert_int_eq(tl_give_dir(dir), 0);
		snprintf(conf, sizeof(conf), "%s/mlistd.conf", dir);
		ck_assert_ptr_nonnull(fp = fopen(conf, "w"));
		fprintf(fp, "listen = 127.0.0.1:%d\ndatabase = %s/mlistd.db\n"
			"bounce-maildir = %s/bounces\nuser = %s\nworkers = 1\n",
			tl_free_port(0), dir, dir, TL_USER);
		ck_assert_int_eq(fclose(fp), 0);
		ck_assert_int_eq(tl_run(check, out, sizeof(out)), 0);	/* creates it all */
		snprintf(link, sizeof(link), "%s/mlistd.db-journal", dir);
		ck_assert_int_eq(plant_link(shadow, link), 0);
		ck_assert_int_eq(tl_run(run, out, sizeof(out)), 1);
		ck_assert_msg(strstr(out, "mlistd.db-journal is a symbolic link") != NULL, "%s", out);
		ck_assert_int_eq(owner(shadow), 0);
		/* The Maildir: a link to root's directory. */
		ck_assert_int_eq(unlink(link), 0);
		snprintf(link, sizeof(link), "%s/bounces2", dir);
		ck_assert_int_eq(plant_link(tdir, link), 0);
		ck_assert_ptr_nonnull(fp = fopen(conf, "a"));
		fprintf(fp, "bounce-maildir = %s\n", link);
		ck_assert_int_eq(fclose(fp), 0);
		ck_assert_int_eq(tl_run(check, out, sizeof(out)), 1);
		ck_assert_msg(strstr(out, "bounces2 is a symbolic link") != NULL, "%s", out);
		ck_assert_int_eq(tl_run(run, out, sizeof(out)), 1);
		ck_assert_int_eq(owner(tdir), 0);
		snprintf(out, sizeof(out), "rm -rf '%s'", dir);
		ck_assert_int_eq(system(out), 0);
	}
	/* A directory root made for other things (/var/lib for /var/lib/x.db)
	 * is not handed over. */
	snprintf(dbopt, sizeof(dbopt), "--database=%s/x.db", tdir);
	ck_assert_int_eq(chmod(tdir, 0755), 0);
	snprintf(link, sizeof(link), "%s/dpkg", tdir);
	ck_assert_int_eq(mkdir(link, 0755), 0);
	ck_assert_int_eq(tl_run(tmpdb, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "hands over only directories it made") != NULL, "%s", out);
	ck_assert_int_eq(owner(tdir), 0);
	/* database = /tmp/x.db would let anybody plant its journal. */
	snprintf(dbopt, sizeof(dbopt), "--database=/tmp/mlistd-never-%ld.db", (long) getpid());
	ck_assert_int_eq(tl_run(tmpdb, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "anybody may write") != NULL, "%s", out);
	ck_assert_int_eq(owner(shadow), 0);
	ck_assert_int_eq(owner(tdir), 0);
	snprintf(out, sizeof(out), "rm -rf '%s'", safe);
	ck_assert_int_eq(system(out), 0);
}
END_TEST

/*
 * systemd's StateDirectory= hands the state directory and all in it back
 * to root at every start (the unit has no User=): mlistd must take back
 * a directory that holds only its own files, and the workers must then
 * write the database, the key and the Maildir again.
 */
START_TEST(test_state_dir_given_back)
{
	char	dir[64] = "/tmp/mlistd-state.XXXXXX", conf[300], out[4096], cmd[400];
	char   *check[] = {(char *) tl_mlistd(), "-t", "-c", conf, NULL};
	struct passwd *pw = getpwnam(TL_USER);
	FILE   *fp;

	if (geteuid() != 0) {
		fprintf(stderr, "test_state_dir_given_back: needs root (CI runs as root)\n");
		return;
	}
	ck_assert_ptr_nonnull(pw);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);
	snprintf(conf, sizeof(conf), "%s/mlistd.conf", dir);
	ck_assert_ptr_nonnull(fp = fopen(conf, "w"));
	fprintf(fp, "database = %s/state/mlistd.db\nbounce-maildir = %s/state/bounces\n"
		"user = %s\n", dir, dir, TL_USER);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(tl_run(check, out, sizeof(out)), 0);
	/* What systemd does at the next start. */
	snprintf(cmd, sizeof(cmd), "chown -R root:root '%s/state'", dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_msg(tl_run(check, out, sizeof(out)) == 0, "%s", out);
	{
		/* The -wal and -shm files stay (persistent WAL), the user's, so
		 * that a root sqlite3 session never creates them as root. */
		static const char *const paths[] = {"", "/mlistd.db", "/mlistd.db-wal",
			"/mlistd.db-shm", "/mlistd.key", "/bounces", "/bounces/tmp",
			"/bounces/new", "/bounces/cur"};

		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			char	p[400];
			struct stat st;

			snprintf(p, sizeof(p), "%s/state%s", dir, paths[i]);
			ck_assert_int_eq(lstat(p, &st), 0);
			ck_assert_msg(st.st_uid == pw->pw_uid, "%s still belongs to uid %ld", p,
				      (long) st.st_uid);
		}
	}
	/* A stranger in the directory: not handed over again. */
	snprintf(cmd, sizeof(cmd), "chown -R root:root '%s/state' && chmod 755 '%s/state'"
		 " && touch '%s/state/unrelated'", dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tl_run(check, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "hands over only directories it made") != NULL, "%s", out);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* mode_ok - path exists, belongs to uid and has none of the bits in deny */
static void
mode_ok(const char *path, uid_t uid, mode_t deny)
{
	struct stat st;

	ck_assert_msg(lstat(path, &st) == 0, "%s: missing", path);
	ck_assert_msg(st.st_uid == uid, "%s belongs to uid %ld", path, (long) st.st_uid);
	ck_assert_msg((st.st_mode & deny) == 0, "%s has mode %04o", path,
		      (unsigned) (st.st_mode & 07777));
}

/*
 * The member list is private: the database, its -wal and -shm files and
 * the key are not readable by others (0640 or tighter), their directory
 * is 0750, also when an administrator's root sqlite3 session (umask 022)
 * made the database 0644 before the first start; and a root sqlite3
 * session on the running daemon leaves the files the user's.
 */
START_TEST(test_private_data)
{
	char	dir[64] = "/tmp/mlistd-priv.XXXXXX", extra[300], cmd[600], p[400];
	static const char *const db[] = {"/mlistd.db", "/mlistd.db-wal", "/mlistd.db-shm"};
	struct passwd *pw = getpwnam(TL_USER);
	struct tl_daemon d;
	mode_t	old = umask(022);

	if (geteuid() != 0) {
		fprintf(stderr, "test_private_data: needs root (CI runs as root)\n");
		(void) umask(old);
		return;
	}
	ck_assert_ptr_nonnull(pw);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "chmod 755 '%s' && mkdir -m 755 '%s/state' && "
		 "sqlite3 '%s/state/mlistd.db' 'PRAGMA journal_mode = WAL' >/dev/null",
		 dir, dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(p, sizeof(p), "%s/state/mlistd.db", dir);
	mode_ok(p, 0, 0133);	/* 0644, root's, as sqlite3 made it */
	snprintf(extra, sizeof(extra), "database = %s/state/mlistd.db\n", dir);
	start(&d, extra, 0);
	snprintf(p, sizeof(p), "%s/state", dir);
	mode_ok(p, pw->pw_uid, 027);
	for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++) {
		snprintf(p, sizeof(p), "%s/state%s", dir, db[i]);
		mode_ok(p, pw->pw_uid, 0137);
	}
	snprintf(p, sizeof(p), "%s/state/mlistd.key", dir);
	mode_ok(p, pw->pw_uid, 077);
	/* The administrator's root session while mlistd runs. */
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s/state/mlistd.db' \"INSERT INTO groups "
		 "(name) VALUES ('club')\" && sqlite3 '%s/state/mlistd.db' "
		 "'SELECT count(*) FROM groups' >/dev/null", dir, dir);
	ck_assert_int_eq(system(cmd), 0);
	for (size_t i = 0; i < sizeof(db) / sizeof(db[0]); i++) {
		snprintf(p, sizeof(p), "%s/state%s", dir, db[i]);
		mode_ok(p, pw->pw_uid, 0137);
	}
	{
		char	buf[512];
		int	fd = tl_connect(&d);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
		ck_assert_int_eq(tl_cmd(fd, "HELO x\r\n", buf, sizeof(buf)), 250);
		ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<a@example.org>\r\n", buf, sizeof(buf)),
				 250);
		ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<club@example.com>\r\n", buf, sizeof(buf)),
				 250);
		(void) close(fd);
	}
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	(void) umask(old);
}
END_TEST

/* slurp_or_empty - a file's text, or "" (free the result) */
static char *
slurp_or_empty(const char *path)
{
	char   *text = NULL;
	FILE   *fp = fopen(path, "r");
	size_t	len = 0;

	if (fp != NULL) {
		text = calloc(1, 1 << 20);
		if (text != NULL)
			len = fread(text, 1, (1 << 20) - 1, fp);
		fclose(fp);
	}
	if (text == NULL)
		text = calloc(1, 1);
	ck_assert_ptr_nonnull(text);
	text[len] = 0;
	return (text);
}

/* read_pid - the number in a pid file, or 0 */
static long
read_pid(const char *path)
{
	FILE   *fp = fopen(path, "r");
	long	pid = 0;

	if (fp != NULL) {
		if (fscanf(fp, "%ld", &pid) != 1)
			pid = 0;
		fclose(fp);
	}
	return (pid);
}

/*
 * postrotate - run the postrotate script of contrib/mlistd.logrotate with
 * its PIDFILE set to pidfile, after checking that the snippet names the
 * log-file of the example mlistd.conf.
 */
static void
postrotate(const char *pidfile)
{
	char	path[4096], script[8192] = "", *text, *conf, *p, *end;
	const char *src = getenv("MLISTD_SRCDIR");
	size_t	n = 0;

	ck_assert_ptr_nonnull(src);
	snprintf(path, sizeof(path), "%s/contrib/mlistd.conf", src);
	conf = ck_slurp(path, NULL);
	snprintf(path, sizeof(path), "%s/contrib/mlistd.logrotate", src);
	text = ck_slurp(path, NULL);
	ck_assert_ptr_nonnull(strstr(conf, "#log-file = /var/log/mlistd.log\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n/var/log/mlistd.log {\n"));
	ck_assert_ptr_nonnull(p = strstr(text, "\tpostrotate\n"));
	p += strlen("\tpostrotate\n");
	ck_assert_ptr_nonnull(end = strstr(p, "\tendscript\n"));
	*end = 0;
	for (char *line = strtok(p, "\n"); line; line = strtok(NULL, "\n")) {
		while (*line == '\t')
			line++;
		if (strncmp(line, "PIDFILE=", 8) == 0)
			n += (size_t) snprintf(script + n, sizeof(script) - n, "PIDFILE='%s'\n",
					       pidfile);
		else
			n += (size_t) snprintf(script + n, sizeof(script) - n, "%s\n", line);
		ck_assert_uint_lt(n, sizeof(script));
	}
	ck_assert_ptr_nonnull(strstr(script, "PIDFILE='"));
	{
		char   *argv[] = {"/bin/sh", "-ec", script, NULL}, out[1024];

		ck_assert_msg(tl_run(argv, out, sizeof(out)) == 0, "postrotate: %s", out);
	}
	free(text);
	free(conf);
}

/*
 * In the background with log-file set, every process logs to that file:
 * the master's start, a worker's 451 when the relay is down; the
 * postrotate of contrib/mlistd.logrotate (SIGHUP) opens it again; a
 * symbolic link as log-file is refused.
 * Without log-file and without a syslog daemon, the start says so on
 * stderr before detaching.
 */
START_TEST(test_log_file)
{
	char	dir[] = "/tmp/mlistd-logf.XXXXXX", logf[300], pidfile[300], state[200],
		out[8192], arg[5][340], *text, *p;
	char   *argv[] = {(char *) tl_mlistd(), "-c", "/dev/null", arg[0], arg[1], arg[2],
		arg[3], arg[4], "--workers=1", "--user=" TL_USER, "--domain=lists.test",
		NULL, NULL};
	const char *rcpt[] = {"l1@lists.test", NULL};
	struct tl_daemon d;
	long	pid, worker_pid = 0;
	struct stat st;
	int	code;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(chmod(dir, 0755), 0);	/* root's: a log may live here */
	snprintf(logf, sizeof(logf), "%s/mlistd.log", dir);
	snprintf(pidfile, sizeof(pidfile), "%s/mlistd.pid", dir);
	snprintf(state, sizeof(state), "%s/state", dir);
	memset(&d, 0, sizeof(d));
	d.port = tl_free_port(0);
	snprintf(d.dir, sizeof(d.dir), "%s", state);
	snprintf(arg[0], sizeof(arg[0]), "--listen=127.0.0.1:%d", d.port);
	snprintf(arg[1], sizeof(arg[1]), "--pidfile=%s", pidfile);
	snprintf(arg[2], sizeof(arg[2]), "--database=%s/mlistd.db", state);
	snprintf(arg[3], sizeof(arg[3]), "--bounce-maildir=%s/bounces", state);
	snprintf(arg[4], sizeof(arg[4]), "--relay=smtp://127.0.0.1:%d", tl_free_port(0));
	{
		static char logarg[340];

		snprintf(logarg, sizeof(logarg), "--log-file=%s", logf);
		argv[11] = logarg;
	}
	ck_assert_msg(tl_run(argv, out, sizeof(out)) == 0, "start: %s", out);
	ck_assert_ptr_null(strstr(out, "syslog"));
	pid = read_pid(pidfile);
	ck_assert_int_gt(pid, 1);
	detach_track(pid);
	ck_assert_int_eq(stat(logf, &st), 0);
	ck_assert_int_eq(st.st_uid, 0);
	ck_assert_int_eq(st.st_mode & 0777, 0640);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name) VALUES ('l1');"
				"INSERT INTO members (address) VALUES ('m@x.test');"
				"INSERT INTO group_members VALUES ('l1', 'm@x.test');"), 0);
	code = tl_post(&d, "m@x.test", rcpt, "From: m@x.test\r\nSubject: s\r\n\r\nbody\r\n", out, sizeof(out));
	ck_assert_msg(code == 451, "post: %d %s", code, out);
	text = slurp_or_empty(logf);
	ck_assert_msg(strstr(text, "starting mlistd") != NULL, "log: %s", text);
	/* The worker's deferral, under the worker's own pid. */
	p = strstr(text, "status=deferred (cannot connect to relay");
	ck_assert_msg(p != NULL, "no deferral in the log: %s", text);
	while (p > text && p[-1] != '\n')
		p--;
	p = strstr(p, "mlistd[");
	ck_assert_ptr_nonnull(p);
	ck_assert_int_eq(sscanf(p, "mlistd[%ld]", &worker_pid), 1);
	ck_assert_int_ne(worker_pid, pid);
	/* Every line starts with an ISO 8601 time stamp. */
	for (char *line = text; *line; line = strchr(line, '\n') + 1) {
		int	y, mo, da, h, mi, se;

		ck_assert_msg(sscanf(line, "%4d-%2d-%2dT%2d:%2d:%2d.", &y, &mo, &da, &h, &mi,
				     &se) == 6, "line: %.80s", line);
		if (strchr(line, '\n') == NULL)
			break;
	}
	free(text);
	/* Rotation as contrib/mlistd.logrotate does it: rename, its
	 * postrotate (SIGHUP by the pid file), and the new file gets the next
	 * lines. */
	snprintf(out, sizeof(out), "%s.1", logf);
	ck_assert_int_eq(rename(logf, out), 0);
	postrotate(pidfile);
	for (int i = 0; i < 100 && access(logf, F_OK) != 0; i++)
		tl_sleep_ms(50);
	for (int i = 0; i < 100; i++) {
		text = slurp_or_empty(logf);
		if (strstr(text, "workers started"))
			break;
		free(text);
		text = NULL;
		tl_sleep_ms(50);
	}
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_null(strstr(text, "starting mlistd"));
	free(text);
	ck_assert_int_eq(kill((pid_t) pid, SIGTERM), 0);
	for (int i = 0; i < 200 && alive(pid); i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(alive(pid), 0);
	text = slurp_or_empty(logf);
	ck_assert_ptr_nonnull(strstr(text, "stopped"));
	free(text);

	/* A link as log-file: refused, and its target is left alone. */
	snprintf(out, sizeof(out), "%s/target", dir);
	ck_assert_int_eq(close(open(out, O_WRONLY | O_CREAT, 0600)), 0);
	ck_assert_int_eq(unlink(logf), 0);
	ck_assert_int_eq(symlink(out, logf), 0);
	ck_assert_int_eq(tl_run(argv, out, sizeof(out)), 1);
	ck_assert_msg(strstr(out, "symbolic link") != NULL, "%s", out);
	snprintf(out, sizeof(out), "%s/target", dir);
	ck_assert_int_eq(stat(out, &st), 0);
	ck_assert_int_eq(st.st_size, 0);
	ck_assert_int_eq(access(pidfile, F_OK), -1);

	/* No log-file: the missing syslog daemon is named before detaching. */
	argv[11] = NULL;
	ck_assert_msg(tl_run(argv, out, sizeof(out)) == 0, "start: %s", out);
	pid = read_pid(pidfile);
	ck_assert_int_gt(pid, 1);
	detach_track(pid);
	{
		struct stat ls;
		int	listening = stat("/dev/log", &ls) == 0 && S_ISSOCK(ls.st_mode);

		if (listening)
			ck_assert_msg(strstr(out, "no syslog daemon") == NULL, "%s", out);
		else
			ck_assert_msg(strstr(out, "no syslog daemon listens on /dev/log and "
					     "log-file is not set") != NULL, "%s", out);
	}
	ck_assert_int_eq(kill((pid_t) pid, SIGTERM), 0);
	for (int i = 0; i < 200 && alive(pid); i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(alive(pid), 0);
	snprintf(out, sizeof(out), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(out), 0);
}
END_TEST

/* notify_recv - one datagram from the notify socket within 10 s, or "" */
static void
notify_recv(int fd, char *buf, size_t len)
{
	struct timeval tv = {10, 0};
	ssize_t	n;

	(void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = recv(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = 0;
}

/*
 * Under systemd (Type=notify, stderr is the journal): READY=1 once the
 * workers run, RELOADING=1 and READY=1 around a SIGHUP, STOPPING=1 at
 * SIGTERM; stderr lines carry "<N>" priorities and no "mlistd[pid]:",
 * which the journal adds itself.
 */
START_TEST(test_systemd)
{
	char	dir[] = "/tmp/mlistd-sd.XXXXXX", sock[100], logf[300], msg[256],
		conf[300], *text;
	struct sockaddr_un sun;
	struct tl_daemon d;
	int	sfd, fd, status;
	pid_t	pid;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(tl_give_dir(dir), 0);
	snprintf(sock, sizeof(sock), "%s/notify", dir);
	snprintf(logf, sizeof(logf), "%s/stderr", dir);
	snprintf(conf, sizeof(conf), "%s/mlistd.conf", dir);
	memset(&d, 0, sizeof(d));
	d.port = tl_free_port(0);
	{
		FILE   *fp = fopen(conf, "w");

		ck_assert_ptr_nonnull(fp);
		fprintf(fp, "listen = 127.0.0.1:%d\ndatabase = %s/mlistd.db\n"
			"bounce-maildir = %s/bounces\nuser = %s\nworkers = 1\n",
			d.port, dir, dir, TL_USER);
		ck_assert_int_eq(fclose(fp), 0);
	}
	sfd = socket(AF_UNIX, SOCK_DGRAM, 0);
	ck_assert_int_ge(sfd, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", sock);
	ck_assert_int_eq(bind(sfd, (struct sockaddr *) &sun, sizeof(sun)), 0);
	if ((pid = fork()) == 0) {
		struct stat st;
		char	js[64];
		int	lfd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		if (lfd < 0 || fstat(lfd, &st) < 0 || dup2(lfd, 2) < 0)
			_exit(127);
		snprintf(js, sizeof(js), "%lu:%lu", (unsigned long) st.st_dev,
			 (unsigned long) st.st_ino);
		setenv("JOURNAL_STREAM", js, 1);
		setenv("NOTIFY_SOCKET", sock, 1);
		execl(tl_mlistd(), tl_mlistd(), "-f", "-c", conf, (char *) NULL);
		_exit(127);
	}
	ck_assert_int_gt(pid, 0);
	notify_recv(sfd, msg, sizeof(msg));
	ck_assert_str_eq(msg, "READY=1");
	fd = tl_connect(&d);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, msg, sizeof(msg)), 220);
	(void) close(fd);
	ck_assert_int_eq(kill(pid, SIGHUP), 0);
	notify_recv(sfd, msg, sizeof(msg));
	ck_assert_str_eq(msg, "RELOADING=1");
	notify_recv(sfd, msg, sizeof(msg));
	ck_assert_str_eq(msg, "READY=1");
	ck_assert_int_eq(kill(pid, SIGTERM), 0);
	notify_recv(sfd, msg, sizeof(msg));
	ck_assert_str_eq(msg, "STOPPING=1");
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	(void) close(sfd);
	text = slurp_or_empty(logf);
	ck_assert_msg(strncmp(text, "<6>starting mlistd", 18) == 0, "%s", text);
	ck_assert_ptr_nonnull(strstr(text, "\n<6>reload: reading configuration"));
	ck_assert_ptr_nonnull(strstr(text, "\n<6>stopped\n"));
	ck_assert_ptr_null(strstr(text, "mlistd["));
	free(text);
	snprintf(msg, sizeof(msg), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(msg), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("daemon");
	TCase  *tc = tcase_create("daemon");
	int	failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_transaction);
	tcase_add_test(tc, test_pipelining_socket);
	tcase_add_test(tc, test_ipv6);
	tcase_add_test(tc, test_worker_replaced);
	tcase_add_test(tc, test_max_use);
	tcase_add_test(tc, test_workers_unprivileged);
	tcase_add_test(tc, test_sigterm_graceful);
	tcase_add_test(tc, test_sigterm_bounded);
	tcase_add_test(tc, test_sighup_reload);
	tcase_add_test(tc, test_idle_timeout);
	tcase_add_test(tc, test_trickle);
	tcase_add_test(tc, test_session_deadline);
	tcase_add_test(tc, test_command_line);
	tcase_add_test(tc, test_no_root_link_following);
	tcase_add_test(tc, test_state_dir_given_back);
	tcase_add_test(tc, test_private_data);
	tcase_add_test(tc, test_systemd);
	suite_add_tcase(s, tc);
	failed = ck_run(s);

	/*
	 * Detached daemons (no PR_SET_PDEATHSIG can reach them): run without
	 * a fork per test so that a failure still reaches the atexit handler
	 * that stops them.
	 */
	s = suite_create("daemon-detached");
	tc = tcase_create("detached");
	tcase_add_test(tc, test_daemonize);
	tcase_add_test(tc, test_init_script);
	tcase_add_test(tc, test_log_file);
	suite_add_tcase(s, tc);
	return (ck_run_nofork(s) || failed);
}
