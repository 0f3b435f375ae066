/*
 * check_e2e.c - end to end with a real Postfix.
 *
 * A private Postfix instance runs from a temporary configuration
 * directory (own queue and data directories, loopback only, smtpd on a
 * free high port, maillog_file in the temporary directory, short queue
 * timers), wired as contrib/postfix describes: the list domain relayed to
 * the real mlistd through a "mlistd" transport with a recipient limit of
 * 1, mlistd's copies coming back through the reinjection smtpd, whose
 * master.cf lines are read out of contrib/postfix/master.cf, everything
 * else routed to tests/mlsink standing in for the members' mail servers
 * (it refuses reject* with 550).
 *
 * The "postfix-dkim" case adds a real OpenDKIM, configured from
 * contrib/opendkim with a key made at test time, as the milter of the
 * reinjection smtpd (the commented lines of contrib/postfix/master.cf);
 * the other cases run without it.
 *
 * Postfix is required: without it the suite fails, it does not skip.
 * Postfix and mlistd are stopped and the files removed at exit, also when
 * a case fails.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <pwd.h>
#include <sys/prctl.h>

#include "testlib.h"

#define POSTFIX "/usr/sbin/postfix"

static char pdir[256];			/* Postfix's temporary directory */
static int pport;			/* its smtpd */
static int rport;			/* its reinjection smtpd (contrib's) */
static int slowport;			/* a reinjection smtpd slow at end of data, or 0 */
static struct tl_daemon d;		/* mlistd */
static struct tl_sink k;		/* the members' mail servers */
static int postfix_running;
static int mport;			/* OpenDKIM's milter port, or 0: no milter */
static char odir[256];			/* OpenDKIM's temporary directory */
static pid_t odkim_pid;			/* the opendkim process, or 0 */

static const char *seed =
"INSERT INTO members (address) VALUES ('alice@example.org'), ('bob@example.org');"
"INSERT INTO groups (name, description, posting) VALUES ('group1', 'Club', 'members'),"
" ('lista', 'List A', 'anyone'), ('listb', 'List B', 'anyone');"
"INSERT INTO group_members VALUES ('group1', 'alice@example.org'),"
" ('group1', 'bob@example.org'), ('group1', 'rejectme@example.net'),"
" ('lista', 'listb@example.com'), ('lista', 'dora@example.net'),"
" ('listb', 'lista@example.com'), ('listb', 'carl@example.net');"
"INSERT INTO groups (name, posting, subscribe) VALUES ('club', 'members', 'confirm');"
"INSERT INTO group_members VALUES ('club', 'alice@example.org');";

/* pf - run the postfix command on our instance; exit status */
static int
pf(const char *action)
{
	char	conf[300], out[4096];
	char   *argv[] = {POSTFIX, "-c", conf, (char *) action, NULL};
	int	rc;

	snprintf(conf, sizeof(conf), "%s/conf", pdir);
	rc = tl_run(argv, out, sizeof(out));
	if (rc != 0)
		fprintf(stderr, "postfix %s: exit %d: %s\n", action, rc, out);
	return (rc);
}

static void
show_maillog(void)
{
	char	cmd[1024];

	snprintf(cmd, sizeof(cmd), "echo '--- Postfix maillog:'; tail -n 60 '%s/maillog' >&2;"
		 " echo '--- mlistd log:'; tail -n 40 '%s' >&2", pdir, d.log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no logs)\n");
}

/* remove_dir - remove the temporary directory dir, if any, and forget it */
static void
remove_dir(char *dir)
{
	char	cmd[400];

	if (dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
		dir[0] = 0;
	}
}

static void
postfix_stop(void)
{
	char	cmd[400];

	if (postfix_running) {
		(void) pf("abort");
		postfix_running = 0;
		/* Wait for the master to be gone before removing its files. */
		for (int i = 0; i < 50; i++) {
			snprintf(cmd, sizeof(cmd), "%s/queue/pid/master.pid", pdir);
			if (access(cmd, F_OK) != 0)
				break;
			tl_sleep_ms(100);
		}
	}
	remove_dir(pdir);
}

static void
write_file(const char *path, const char *fmt, ...)
{
	va_list	ap;
	FILE   *fp = fopen(path, "w");

	ck_assert_msg(fp != NULL, "cannot write %s", path);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * contrib_reinjection - the reinjection smtpd's lines of
 * contrib/postfix/master.cf, its port replaced by `port`, into out
 */
static void
contrib_reinjection(int port, char *out, size_t len)
{
	const char *srcdir = getenv("MLISTD_SRCDIR");
	char	path[400], line[512];
	size_t	used = 0;
	int	in = 0;
	FILE   *fp;

	ck_assert_msg(srcdir != NULL, "MLISTD_SRCDIR is not set");
	snprintf(path, sizeof(path), "%s/contrib/postfix/master.cf", srcdir);
	ck_assert_msg((fp = fopen(path, "r")) != NULL, "cannot read %s", path);
	out[0] = 0;
	while (fgets(line, sizeof(line), fp)) {
		if (strncmp(line, "127.0.0.1:20382 ", 16) == 0) {
			in = 1;
			used += (size_t) snprintf(out + used, len - used, "127.0.0.1:%d%s", port,
						  line + 15);
		} else if (in && (line[0] == ' ' || line[0] == '\t'))
			used += (size_t) snprintf(out + used, len - used, "%s", line);
		else
			in = 0;
		ck_assert_int_lt(used, len);
	}
	ck_assert_msg(strstr(out, "receive_override_options") != NULL,
		      "no reinjection smtpd in %s", path);
	if (mport) {
		/*
		 * Signing: the commented "-o" lines replace the block's
		 * receive_override_options line and add the milter.
		 */
		char   *ro = strstr(out, "    -o receive_override_options=");
		char   *eol = ro ? strchr(ro, '\n') : NULL;
		int	added = 0;

		ck_assert_ptr_nonnull(eol);
		memmove(ro, eol + 1, strlen(eol + 1) + 1);
		used = strlen(out);
		rewind(fp);
		while (fgets(line, sizeof(line), fp)) {
			char   *milter = strstr(line, "inet:127.0.0.1:8891");

			if (strncmp(line, "#    -o ", 8) != 0)
				continue;
			if (milter)
				used += (size_t) snprintf(out + used, len - used, "%.*sinet:127.0.0.1:%d%s",
							  (int) (milter - line - 1), line + 1, mport,
							  milter + strlen("inet:127.0.0.1:8891"));
			else
				used += (size_t) snprintf(out + used, len - used, "%s", line + 1);
			ck_assert_int_lt(used, len);
			added++;
		}
		ck_assert_msg(added == 3 && strstr(out, "smtpd_milters=inet:127.0.0.1:") != NULL
			      && strstr(out, "milter_default_action=tempfail") != NULL
			      && strstr(out, "no_milters") == NULL,
			      "no signing lines in %s:\n%s", path, out);
	}
	fclose(fp);
}

/* postfix_start - configure and start the private instance */
static void
postfix_start(int mlport, int sinkport)
{
	char	path[400], slow_listener[300] = "", reinject[4096];
	struct passwd *pw;

	/*
	 * The slow case: Postfix waits only 2 s for mlistd's reply to the
	 * final dot, and mlistd's copies go to a second smtpd that takes 4 s
	 * over each end of data, so Postfix always gives up first.
	 */
	if (slowport)
		snprintf(slow_listener, sizeof(slow_listener), "127.0.0.1:%d inet n - n - - smtpd"
			 " -o smtpd_end_of_data_restrictions=sleep,4\n", slowport);
	contrib_reinjection(rport, reinject, sizeof(reinject));
	ck_assert_msg(access(POSTFIX, X_OK) == 0,
		      "Postfix is not installed (Debian package: postfix); the end-to-end "
		      "suite needs it");
	pw = getpwnam("postfix");
	ck_assert_msg(pw != NULL, "the postfix user is missing");
	snprintf(pdir, sizeof(pdir), "/tmp/mlistd-e2e.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pdir));
	atexit(postfix_stop);
	chmod(pdir, 0755);
	snprintf(path, sizeof(path), "%s/conf", pdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/queue", pdir);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/data", pdir);
	ck_assert_int_eq(mkdir(path, 0700), 0);
	ck_assert_int_eq(chown(path, pw->pw_uid, pw->pw_gid), 0);
	snprintf(path, sizeof(path), "%s/conf/main.cf", pdir);
	write_file(path,
		   "compatibility_level = 3.6\n"
		   "queue_directory = %s/queue\n"
		   "data_directory = %s/data\n"
		   "mail_owner = postfix\n"
		   "myhostname = mx.example.test\n"
		   "mydomain = example.test\n"
		   "myorigin = example.test\n"
		   "mydestination =\n"
		   "inet_interfaces = 127.0.0.1\n"
		   "inet_protocols = ipv4\n"
		   "mynetworks = 127.0.0.0/8\n"
		   "smtp_dns_support_level = disabled\n"
		   "alias_maps =\nalias_database =\nlocal_recipient_maps =\n"
		   "maillog_file = %s/maillog\n"
		   "maillog_file_prefixes = %s\n"
		   "queue_run_delay = 1s\n"
		   "minimal_backoff_time = 1s\n"
		   "maximal_backoff_time = 2s\n"
		   "smtp_connection_cache_on_demand = no\n"
		   "# The members' side gets each member's copy on its own, so\n"
		   "# that the sink's files can be counted per member.\n"
		   "smtp_destination_recipient_limit = 1\n"
		   "# As contrib/postfix/main.cf:\n"
		   "relay_domains = example.com\n"
		   "transport_maps = texthash:%s/conf/transport\n"
		   "mlistd_destination_recipient_limit = 1\n"
		   "smtpd_forbid_bare_newline = normalize\n"
		   "smtpd_forbid_bare_newline_exclusions =\n",
		   pdir, pdir, pdir, pdir, pdir);
	snprintf(path, sizeof(path), "%s/conf/transport", pdir);
	write_file(path, "example.com mlistd:[127.0.0.1]:%d\n* smtp:[127.0.0.1]:%d\n",
		   mlport, sinkport);
	snprintf(path, sizeof(path), "%s/conf/master.cf", pdir);
	write_file(path,
		   "127.0.0.1:%d inet n - n - - smtpd\n"
		   "pickup unix n - n 60 1 pickup\n"
		   "cleanup unix n - n - 0 cleanup\n"
		   "qmgr unix n - n 300 1 qmgr\n"
		   "rewrite unix - - n - - trivial-rewrite\n"
		   "bounce unix - - n - 0 bounce\n"
		   "defer unix - - n - 0 bounce\n"
		   "trace unix - - n - 0 bounce\n"
		   "verify unix - - n - 1 verify\n"
		   "flush unix n - n 1000? 0 flush\n"
		   "proxymap unix - - n - - proxymap\n"
		   "smtp unix - - n - - smtp\n"
		   "relay unix - - n - - smtp\n"
		   "error unix - - n - - error\n"
		   "retry unix - - n - - error\n"
		   "discard unix - - n - - discard\n"
		   "anvil unix - - n - 1 anvil\n"
		   "scache unix - - n - 1 scache\n"
		   "postlog unix-dgram n - n - 1 postlogd\n"
		   "showq unix n - n - - showq\n"
		   "# As contrib/postfix/master.cf:\n"
		   "mlistd unix - - n - 4 smtp -o syslog_name=postfix/mlistd%s\n"
		   "%s%s", pport,
		   slowport ? " -o smtp_data_done_timeout=2s" : "", reinject, slow_listener);
	if (pf("start") != 0) {
		show_maillog();
		ck_abort_msg("Postfix did not start");
	}
	postfix_running = 1;
	/* Wait until smtpd answers. */
	for (int i = 0; i < 100; i++) {
		struct tl_daemon probe;
		char	buf[512];
		int	fd;

		memset(&probe, 0, sizeof(probe));
		probe.port = pport;
		if ((fd = tl_connect(&probe)) >= 0) {
			int	code = tl_reply(fd, buf, sizeof(buf));

			(void) tl_send(fd, "QUIT\r\n");
			close(fd);
			if (code == 220)
				return;
		}
		tl_sleep_ms(100);
	}
	show_maillog();
	ck_abort_msg("Postfix smtpd does not answer on port %d", pport);
}

/*
 * contrib_opendkim - contrib/opendkim/NAME into odir, for this instance:
 * its paths under /etc/opendkim/ moved into odir, the list domain
 * example.com, the milter on mport; no UserID or PidFile (the test's
 * user, nothing in /run)
 */
static void
contrib_opendkim(const char *name)
{
	const char *srcdir = getenv("MLISTD_SRCDIR");
	char	path[400], line[1024], out[2048];
	FILE   *in, *fp;

	snprintf(path, sizeof(path), "%s/contrib/opendkim/%s", srcdir, name);
	ck_assert_msg((in = fopen(path, "r")) != NULL, "cannot read %s", path);
	snprintf(path, sizeof(path), "%s/%s", odir, name);
	ck_assert_msg((fp = fopen(path, "w")) != NULL, "cannot write %s", path);
	while (fgets(line, sizeof(line), in)) {
		const char *p = line;
		size_t	used = 0;

		if (strncmp(line, "UserID", 6) == 0 || strncmp(line, "PidFile", 7) == 0)
			continue;
		out[0] = 0;
		while (*p) {
			if (strncmp(p, "/etc/opendkim/", 14) == 0) {
				used += (size_t) snprintf(out + used, sizeof(out) - used, "%s/", odir);
				p += 14;
			} else if (strncmp(p, "lists.example.org", 17) == 0) {
				used += (size_t) snprintf(out + used, sizeof(out) - used, "example.com");
				p += 17;
			} else if (strncmp(p, "inet:8891@", 10) == 0) {
				used += (size_t) snprintf(out + used, sizeof(out) - used, "inet:%d@", mport);
				p += 10;
			} else
				used += (size_t) snprintf(out + used, sizeof(out) - used, "%c", *p++);
			ck_assert_int_lt(used, sizeof(out));
		}
		fputs(out, fp);
	}
	fclose(in);
	/*
	 * The key lies under /tmp, which everybody may write to: OpenDKIM
	 * would refuse it as unsafe (and answer every message with 4xx).
	 */
	if (strcmp(name, "opendkim.conf") == 0)
		fputs("RequireSafeKeys\tfalse\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
}

static void
odkim_show_log(void)
{
	char	cmd[400];

	snprintf(cmd, sizeof(cmd), "echo '--- opendkim:'; tail -n 20 '%s/opendkim.log' >&2", odir);
	if (system(cmd) != 0)
		fprintf(stderr, "(no opendkim log)\n");
}

/* odkim_stop - stop our opendkim by its pid and remove its files */
static void
odkim_stop(void)
{
	if (odkim_pid > 0) {
		int	status;
		pid_t	r = 0;

		(void) kill(odkim_pid, SIGTERM);
		for (int i = 0; i < 50 && (r = waitpid(odkim_pid, &status, WNOHANG)) == 0; i++)
			tl_sleep_ms(100);
		if (r == 0) {
			(void) kill(odkim_pid, SIGKILL);
			(void) waitpid(odkim_pid, &status, 0);
		}
		odkim_pid = 0;
	}
	remove_dir(odir);
}

/*
 * odkim_start - a key made as the README says, contrib's configuration,
 * and a real opendkim in the foreground on a free loopback port, waited
 * for until it accepts connections
 */
static void
odkim_start(void)
{
	static int registered;
	char	keys[300], conf[300], log[300], out[2048];
	char   *genkey[] = {"/usr/sbin/opendkim-genkey", "-D", keys, "-d", "example.com",
			    "-s", "mlistd", NULL};
	struct tl_daemon probe;

	ck_assert_msg(access("/usr/sbin/opendkim", X_OK) == 0
		      && access("/usr/sbin/opendkim-genkey", X_OK) == 0,
		      "OpenDKIM is not installed (Debian packages: opendkim, opendkim-tools)");
	if (!registered++)
		atexit(odkim_stop);
	snprintf(odir, sizeof(odir), "/tmp/mlistd-odkim.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(odir));
	snprintf(keys, sizeof(keys), "%s/keys", odir);
	ck_assert_int_eq(mkdir(keys, 0700), 0);
	ck_assert_msg(tl_run(genkey, out, sizeof(out)) == 0, "opendkim-genkey: %s", out);
	mport = tl_free_port(0);
	contrib_opendkim("opendkim.conf");
	contrib_opendkim("KeyTable");
	contrib_opendkim("SigningTable");
	snprintf(conf, sizeof(conf), "%s/opendkim.conf", odir);
	snprintf(log, sizeof(log), "%s/opendkim.log", odir);
	fflush(NULL);
	if ((odkim_pid = fork()) == 0) {
		(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (freopen(log, "a", stderr) == NULL || dup2(2, 1) < 0)
			_exit(126);
		execl("/usr/sbin/opendkim", "opendkim", "-f", "-x", conf, (char *) NULL);
		_exit(127);
	}
	ck_assert_int_gt(odkim_pid, 0);
	memset(&probe, 0, sizeof(probe));
	probe.port = mport;
	for (int i = 0; i < 200; i++) {
		int	fd, status;

		if (waitpid(odkim_pid, &status, WNOHANG) == odkim_pid) {
			odkim_pid = 0;
			odkim_show_log();
			ck_abort_msg("opendkim exited at start (status %d)", status);
		}
		if ((fd = tl_connect(&probe)) >= 0) {
			close(fd);
			return;
		}
		tl_sleep_ms(50);
	}
	odkim_show_log();
	ck_abort_msg("opendkim does not listen on 127.0.0.1:%d", mport);
}

/*
 * dkim_verify - the sink's message `msg` carries a DKIM signature of
 * example.com that covers the fields named (tests/dkimverify.py) and
 * verifies with the generated key
 */
static void
dkim_verify(const char *msg, const char *what, ...)
{
	static int n;
	const char *srcdir = getenv("MLISTD_SRCDIR");
	char	script[400], txt[300], file[300], out[4096];
	char   *argv[16] = {"/usr/bin/python3", script, txt, "example.com", file};
	int	argc = 5, rc;
	const char *f;
	va_list	ap;

	snprintf(script, sizeof(script), "%s/tests/dkimverify.py", srcdir);
	snprintf(txt, sizeof(txt), "%s/keys/mlistd.txt", odir);
	snprintf(file, sizeof(file), "%s/copy.%d", odir, ++n);
	write_file(file, "%s", msg);
	va_start(ap, what);
	while ((f = va_arg(ap, const char *)) != NULL && argc < 15)
		argv[argc++] = (char *) f;
	va_end(ap);
	argv[argc] = NULL;
	rc = tl_run(argv, out, sizeof(out));
	if (rc != 0) {
		show_maillog();
		odkim_show_log();
	}
	ck_assert_msg(rc == 0, "%s: the list's DKIM signature: %s\n%s", what, out, msg);
}

static int slow_case;			/* the next setup is the slow one */

/* setup - sink, mlistd (relaying into Postfix), Postfix */
static void
setup(void)
{
	char	conf[256];

	ck_assert_int_eq(tl_sink_start(&k, "-t", "120", (char *) NULL), 0);
	pport = tl_free_port(0);
	do
		rport = tl_free_port(0);
	while (rport == pport);
	do
		slowport = slow_case ? tl_free_port(0) : 0;
	while (slowport != 0 && (slowport == pport || slowport == rport));
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\n",
		 slowport ? slowport : rport);
	ck_assert_int_eq(tl_daemon_start(&d, conf, 0), 0);
	ck_assert_int_eq(tl_sql(&d, seed), 0);
	postfix_start(d.port, k.port);
}

/* inject - one message into Postfix from the internet side */
static int
inject(const char *from, const char *to, const char *subject, const char *hdr_from)
{
	struct tl_daemon probe;
	char	data[1024], buf[2048];
	const char *rcpt[] = {to, NULL};

	memset(&probe, 0, sizeof(probe));
	probe.port = pport;
	snprintf(data, sizeof(data), "From: %s\r\nTo: %s\r\nSubject: %s\r\n"
		 "Message-ID: <%s.%ld@example.net>\r\n\r\nHello list.\r\n",
		 hdr_from, to, subject, subject, (long) getpid());
	return (tl_post(&probe, from, rcpt, data, buf, sizeof(buf)));
}

/* wait_sink - messages at the sink containing `needle`, waiting up to secs */
static int
wait_sink(const char *needle, int want, int secs, char **found, int max)
{
	int	n = 0;

	for (int t = 0; t < secs * 5; t++) {
		char   *m[256];
		int	got = tl_sink_messages(&k, m, 256);

		n = 0;
		for (int i = 0; i < got; i++) {
			if (strstr(m[i], needle)) {
				if (found && n < max)
					found[n] = strdup(m[i]);
				n++;
			}
		}
		tl_free_messages(m, got);
		if (n >= want)
			break;
		if (found)
			for (int i = 0; i < n && i < max; i++)
				free(found[i]);
		tl_sleep_ms(200);
	}
	return (n);
}

static long
wait_sql(const char *sql, long want, int secs)
{
	long	v = -1;

	for (int t = 0; t < secs * 5; t++) {
		if ((v = tl_sql_int(&d, sql)) == want)
			break;
		tl_sleep_ms(200);
	}
	return (v);
}

static void
teardown(void)
{
	postfix_stop();
	(void) tl_daemon_stop(&d, 10);
	tl_sink_stop(&k);
}

/*
 * A member's post reaches every member through Postfix with the list
 * headers; the member the sink refuses bounces back into a bounces row.
 */
START_TEST(test_post_and_bounce)
{
	char   *got[4];
	int	n;

	ck_assert_int_eq(inject("alice@example.org", "group1@example.com", "e2e-post",
				"Alice <alice@example.org>"), 250);
	n = wait_sink("Subject: e2e-post", 2, 30, got, 4);
	if (n != 2)
		show_maillog();
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(strstr(got[i], "List-Id: Club <group1.example.com>"));
		ck_assert_ptr_nonnull(strstr(got[i], "List-Post: <mailto:group1@example.com>"));
		ck_assert_ptr_nonnull(strstr(got[i], "Precedence: bulk"));
		/* No XVERP by default: the list's plain bounce address. */
		ck_assert_msg(strstr(got[i], "MAIL FROM:<bounce@example.com>") != NULL,
			      "not the bounce address as sender in:\n%s", got[i]);
		free(got[i]);
	}
	/* Postfix's log names the mlistd transport (contrib's syslog_name). */
	{
		char	cmd[400];

		snprintf(cmd, sizeof(cmd), "grep -q 'postfix/mlistd/smtp.*relay=127.0.0.1' "
			 "'%s/maillog'", pdir);
		if (system(cmd) != 0)
			show_maillog();
		ck_assert_int_eq(system(cmd), 0);
		/* The copies came back through contrib's reinjection smtpd. */
		snprintf(cmd, sizeof(cmd), "grep -q 'postfix/mlistd-reinject/smtpd.*"
			 "client=localhost\\[127.0.0.1\\]' '%s/maillog'", pdir);
		if (system(cmd) != 0)
			show_maillog();
		ck_assert_int_eq(system(cmd), 0);
	}
	/* Postfix's DSN for rejectme comes back to mlistd as a row. */
	if (wait_sql("SELECT count(*) FROM bounces WHERE address = 'rejectme@example.net'"
		     " AND action = 'failed' AND status = '5.1.1' AND group_name = 'group1'"
		     " AND envelope_to = 'bounce@example.com'"
		     " AND maildir_file LIKE 'new/%'", 1, 30) != 1) {
		show_maillog();
		ck_abort_msg("no bounces row for rejectme@example.net");
	}
	{
		char	path[400];
		DIR    *dp;
		struct dirent *e;
		int	files = 0;

		snprintf(path, sizeof(path), "%s/bounces/new", d.dir);
		dp = opendir(path);
		ck_assert_ptr_nonnull(dp);
		while ((e = readdir(dp)) != NULL)
			files += e->d_name[0] != '.';
		closedir(dp);
		ck_assert_int_eq(files, 1);
	}
}
END_TEST

/* confirm_from - the reply address of the confirmation request with
 * subject `subject` that reached rcpt through Postfix */
static void
confirm_from(const char *rcpt, const char *subject, char *out, size_t len)
{
	char   *got[2], want[300];
	const char *p;
	int	n;

	snprintf(want, sizeof(want), "RCPT TO:<%s>", rcpt);
	n = wait_sink(subject, 1, 30, got, 2);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(got[0], want));
	ck_assert_ptr_nonnull(strstr(got[0], "\r\nAuto-Submitted: auto-replied\r\n"));
	p = strstr(got[0], "\r\nFrom: \"club\" <club+confirm+");
	ck_assert_ptr_nonnull(p);
	p = strchr(p, '<') + 1;
	snprintf(out, len, "%.*s", (int) strcspn(p, ">"), p);
	free(got[0]);
}

/*
 * Self-service through Postfix: subscribe, confirm, receive a post,
 * unsubscribe, confirm, receive no more; every answer travels the same
 * way as a list copy.
 */
START_TEST(test_subscribe_round_trip)
{
	char	addr[256];
	int	n;

	ck_assert_int_eq(inject("newbie@example.net", "club+subscribe@example.com", "join",
				"Newbie <newbie@example.net>"), 250);
	confirm_from("newbie@example.net", "Subject: Confirm: subscribe to club@example.com",
		     addr, sizeof(addr));
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'newbie@example.net'"), 0);
	ck_assert_int_eq(inject("newbie@example.net", addr, "Re: Confirm",
				"Newbie <newbie@example.net>"), 250);
	n = wait_sink("Subject: Welcome to club@example.com", 1, 30, NULL, 0);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " group_name = 'club' AND address = 'newbie@example.net'"), 1);
	/* A post now reaches the new member, with the command addresses. */
	ck_assert_int_eq(inject("alice@example.org", "club@example.com", "first-post",
				"Alice <alice@example.org>"), 250);
	ck_assert_int_eq(wait_sink("Subject: first-post", 2, 30, NULL, 0), 2);
	ck_assert_int_eq(wait_sink("RCPT TO:<newbie@example.net>", 3, 30, NULL, 0), 3);
	ck_assert_int_eq(wait_sink("List-Unsubscribe: <mailto:club+unsubscribe@example.com>",
				   2, 5, NULL, 0), 2);
	/* The new member leaves again. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 7200"), 0);
	ck_assert_int_eq(inject("newbie@example.net", "club+unsubscribe@example.com", "leave",
				"Newbie <newbie@example.net>"), 250);
	confirm_from("newbie@example.net", "Subject: Confirm: unsubscribe from club@example.com",
		     addr, sizeof(addr));
	ck_assert_int_eq(inject("newbie@example.net", addr, "Re: Confirm unsubscribe",
				"Newbie <newbie@example.net>"), 250);
	n = wait_sink("Subject: You have left club@example.com", 1, 30, NULL, 0);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes WHERE"
				    " group_name = 'club' AND address = 'newbie@example.net'"
				    " AND source = 'request'"), 1);
	ck_assert_int_eq(inject("alice@example.org", "club@example.com", "second-post",
				"Alice <alice@example.org>"), 250);
	ck_assert_int_eq(wait_sink("Subject: second-post", 1, 30, NULL, 0), 1);
	/* Give a wrong copy time to arrive: none does. */
	tl_sleep_ms(2000);
	ck_assert_int_eq(wait_sink("Subject: second-post", 2, 1, NULL, 0), 1);
	ck_assert_int_eq(wait_sink("RCPT TO:<newbie@example.net>", 6, 1, NULL, 0), 5);
}
END_TEST

/* A non-member's post is refused; Postfix returns a DSN to the sender. */
START_TEST(test_non_member_bounced_to_sender)
{
	char   *got[2];
	int	n;

	ck_assert_int_eq(inject("stranger@example.net", "group1@example.com", "e2e-stranger",
				"stranger@example.net"), 250);
	n = wait_sink("RCPT TO:<stranger@example.net>", 1, 30, got, 2);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(got[0], "MAIL FROM:<>"));
	ck_assert_ptr_nonnull(strstr(got[0], "5.7.1"));
	ck_assert_ptr_nonnull(strstr(got[0], "is not allowed to post"));
	free(got[0]);
	/* And no member got it. */
	ck_assert_int_eq(wait_sink("Subject: e2e-stranger\r\n\r\nHello", 1, 1, NULL, 0), 0);
}
END_TEST

/*
 * Moderation through Postfix: a non-member's post to a list that holds
 * such posts is accepted (no DSN to its sender), the moderator's notice
 * travels through Postfix with the approve address, the approval sent
 * to that address through Postfix releases the post to the members,
 * once each.
 */
START_TEST(test_held_and_approved_by_mail)
{
	char   *got[2], addr[300];
	const char *p;
	int	n;

	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET others = 'hold' WHERE name = 'group1';"
				"INSERT INTO moderators VALUES ('group1', 'mod@example.org');"), 0);
	ck_assert_int_eq(inject("stranger@example.net", "group1@example.com", "e2e-held",
				"Stranger <stranger@example.net>"), 250);
	n = wait_sink("RCPT TO:<mod@example.org>", 1, 30, got, 2);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	ck_assert_ptr_nonnull(strstr(got[0], "Content-Type: message/rfc822"));
	ck_assert_ptr_nonnull(strstr(got[0], "Subject: e2e-held"));
	p = strstr(got[0], "group1+approve+");
	ck_assert_ptr_nonnull(p);
	snprintf(addr, sizeof(addr), "%.*s", (int) strspn(p, "abcdefghijklmnopqrstuvwxyz"
		 "0123456789+-.@"), p);
	free(got[0]);
	ck_assert_ptr_nonnull(strstr(addr, "@example.com"));
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE decision IS NULL"), 1);
	/* Nobody but the moderator has anything yet. */
	ck_assert_int_eq(wait_sink("Subject: e2e-held\r\n\r\nHello", 1, 1, NULL, 0), 0);
	ck_assert_int_eq(inject("mod@example.org", addr, "Re: held", "Mod <mod@example.org>"),
			 250);
	n = wait_sink("Subject: e2e-held\r\n", 3, 30, NULL, 0);
	if (n != 3)
		show_maillog();
	ck_assert_int_eq(n, 3);		/* the notice, alice's, bob's */
	ck_assert_int_eq(wait_sql("SELECT count(*) FROM held WHERE decision = 'approve'"
				  " AND decided_by = 'mod@example.org' AND done_at IS NOT NULL", 1,
				  30), 1);
	ck_assert_int_eq(wait_sink("RCPT TO:<alice@example.org>", 1, 5, NULL, 0), 1);
	ck_assert_int_eq(wait_sink("RCPT TO:<bob@example.org>", 1, 5, NULL, 0), 1);
	/* No DSN ever went to the held post's sender. */
	ck_assert_int_eq(wait_sink("RCPT TO:<stranger@example.net>", 1, 2, NULL, 0), 0);
}
END_TEST

/* mlistd down: Postfix defers; back up: delivered exactly once. */
START_TEST(test_mlistd_down_then_back)
{
	int	n;

	/* Stop mlistd but keep its directory, configuration and database. */
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	ck_assert_int_eq(tl_daemon_wait(&d, 10), 0);
	ck_assert_int_eq(inject("alice@example.org", "group1@example.com", "e2e-retry",
				"alice@example.org"), 250);
	tl_sleep_ms(3000);
	{
		char	cmd[400];

		snprintf(cmd, sizeof(cmd), "grep -q 'status=deferred' '%s/maillog'", pdir);
		if (system(cmd) != 0)
			show_maillog();
		ck_assert_int_eq(system(cmd), 0);
	}
	ck_assert_int_eq(wait_sink("Subject: e2e-retry", 1, 1, NULL, 0), 0);
	/* Start it again on the same port and database. */
	{
		char	argv_conf[300], logpath[300];
		char   *argv[] = {(char *) tl_mlistd(), "-f", "-c", argv_conf, NULL};
		pid_t	pid;

		snprintf(argv_conf, sizeof(argv_conf), "%s", d.conf);
		snprintf(logpath, sizeof(logpath), "%s", d.log);
		fflush(NULL);
		if ((pid = fork()) == 0) {
			FILE   *log = freopen(logpath, "a", stderr);

			(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
			(void) log;
			execv(argv[0], argv);
			_exit(127);
		}
		d.pid = pid;
	}
	/* Back up: wait for it, then ask Postfix to retry now. */
	for (int i = 0; i < 100; i++) {
		int	fd = tl_connect(&d);

		if (fd >= 0) {
			close(fd);
			break;
		}
		tl_sleep_ms(100);
	}
	n = 0;
	for (int round = 0; round < 8 && n < 2; round++) {
		char	conf[300], out[1024];
		char   *argv[] = {"/usr/sbin/postqueue", "-c", conf, "-f", NULL};

		snprintf(conf, sizeof(conf), "%s/conf", pdir);
		ck_assert_msg(tl_run(argv, out, sizeof(out)) == 0, "postqueue -f: %s", out);
		n = wait_sink("Subject: e2e-retry", 2, 5, NULL, 0);
	}
	if (n != 2)
		show_maillog();
	ck_assert_int_eq(n, 2);
	/* Exactly once: nothing more arrives. */
	tl_sleep_ms(4000);
	ck_assert_int_eq(wait_sink("Subject: e2e-retry", 3, 1, NULL, 0), 2);
}
END_TEST

/* Two lists that contain each other: the loop is stopped. */
START_TEST(test_loop_between_lists)
{
	int	dora, carl;

	ck_assert_int_eq(inject("someone@example.net", "lista@example.com", "e2e-loop",
				"someone@example.net"), 250);
	/* lista -> dora and listb; listb -> carl and lista (refused: loop). */
	dora = wait_sink("RCPT TO:<dora@example.net>", 1, 30, NULL, 0);
	carl = wait_sink("RCPT TO:<carl@example.net>", 1, 30, NULL, 0);
	if (dora != 1 || carl != 1)
		show_maillog();
	ck_assert_int_eq(dora, 1);
	ck_assert_int_eq(carl, 1);
	/* The refused copy bounces to listb's VERP address: a 5.4.6 row. */
	if (wait_sql("SELECT count(*) FROM bounces WHERE status = '5.4.6'"
		     " AND address = 'lista@example.com'", 1, 30) != 1) {
		show_maillog();
		ck_abort_msg("no loop bounce recorded");
	}
	tl_sleep_ms(3000);
	ck_assert_int_eq(wait_sink("RCPT TO:<dora@example.net>", 2, 1, NULL, 0), 1);
	ck_assert_int_eq(wait_sink("RCPT TO:<carl@example.net>", 2, 1, NULL, 0), 1);
}
END_TEST

/*
 * SMTP smuggling through Postfix, wired as contrib says: a bare LF before
 * the dot must not let a second message into the list.  (Without
 * smtpd_forbid_bare_newline, Postfix 3.7 answers two "queued as" for one
 * DATA and every member gets the smuggled message as a post of its own.)
 */
START_TEST(test_no_smuggling_through_postfix)
{
	struct tl_daemon probe;
	char	buf[2048];
	int	fd;

	memset(&probe, 0, sizeof(probe));
	probe.port = pport;
	fd = tl_connect(&probe);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO evil.test\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<alice@example.org>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_send(fd, "From: alice@example.org\r\nSubject: e2e-outer\r\n\r\nouter\n.\n"
				 "MAIL FROM:<alice@example.org>\r\nRCPT TO:<group1@example.com>\r\n"
				 "DATA\r\nFrom: alice@example.org\r\nSubject: e2e-smuggled\r\n\r\n"
				 "smuggled\r\n.\r\nQUIT\r\n"), 0);
	/* One DATA, one reply: Postfix saw one message. */
	{
		int	queued = 0, code;

		while ((code = tl_reply(fd, buf, sizeof(buf))) > 0)
			queued += code == 250 && strstr(buf, "queued as") != NULL;
		ck_assert_int_eq(queued, 1);
	}
	close(fd);
	ck_assert_int_eq(wait_sink("Subject: e2e-outer", 2, 30, NULL, 0), 2);
	tl_sleep_ms(3000);
	/* The "second message" is text in the first, never a post of its own. */
	{
		char   *m[64];
		int	n = tl_sink_messages(&k, m, 64), own = 0;

		for (int i = 0; i < n; i++)
			own += strstr(m[i], "e2e-smuggled") != NULL
				&& strstr(m[i], "Subject: e2e-outer") == NULL;
		tl_free_messages(m, n);
		ck_assert_int_eq(own, 0);
	}
}
END_TEST

/*
 * Postfix's end-of-data timeout (2 s here, 600 s by default) is shorter
 * than mlistd's fan-out: Postfix gives up on the first attempt while
 * mlistd is still relaying, and retries.  The retry finds the copy
 * claimed (451), later complete (250, a duplicate): every member gets
 * exactly one copy.
 */
START_TEST(test_postfix_gives_up_first)
{
	char	cmd[700];
	int	n;

	ck_assert_int_eq(inject("alice@example.org", "group1@example.com", "e2e-slow",
				"alice@example.org"), 250);
	n = wait_sink("Subject: e2e-slow", 2, 40, NULL, 0);
	if (n != 2)
		show_maillog();
	ck_assert_int_eq(n, 2);
	/* The race really happened: Postfix timed out, a retry found the claim. */
	snprintf(cmd, sizeof(cmd), "grep -q 'timed out while sending end of data' '%s/maillog'",
		 pdir);
	if (system(cmd) != 0)
		show_maillog();
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "grep -q 'being relayed by process' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* Postfix is done with it: the retry got 250 for a duplicate ... */
	snprintf(cmd, sizeof(cmd), "grep -q 'status=duplicate' '%s'", d.log);
	for (int i = 0; i < 100 && system(cmd) != 0; i++)
		tl_sleep_ms(200);
	ck_assert_int_eq(system(cmd), 0);
	/* ... and nobody got a second copy. */
	tl_sleep_ms(4000);
	ck_assert_int_eq(wait_sink("Subject: e2e-slow", 3, 1, NULL, 0), 2);
	ck_assert_int_eq(wait_sink("RCPT TO:<alice@example.org>", 2, 1, NULL, 0), 1);
	ck_assert_int_eq(wait_sink("RCPT TO:<bob@example.org>", 2, 1, NULL, 0), 1);
}
END_TEST

/*
 * Signed list mail, wired as contrib says: a real OpenDKIM as the milter
 * of the reinjection smtpd signs each list copy and each notice with
 * d= the list domain, over From and the list's fields, and the members'
 * side gets a signature that verifies against the published key.
 */
START_TEST(test_list_mail_signed)
{
	char   *got[4];
	int	n;

	ck_assert_int_eq(inject("alice@example.org", "group1@example.com", "e2e-dkim",
				"Alice <alice@example.org>"), 250);
	n = wait_sink("Subject: e2e-dkim", 2, 30, got, 4);
	if (n != 2)
		show_maillog();
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++) {
		ck_assert_ptr_nonnull(strstr(got[i], "List-Id: Club <group1.example.com>"));
		dkim_verify(got[i], "a list copy", "from", "list-id", "list-unsubscribe?",
			    "list-post", "subject", "sender?", "reply-to?", (char *) NULL);
		free(got[i]);
	}
	/*
	 * A copy whose From: is rewritten (groups.dmarc = 'always') passes
	 * DMARC through the list's signature: From: in the list domain,
	 * aligned with d=example.com, and the author kept in
	 * X-Original-From and Reply-To.
	 */
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET dmarc = 'always' WHERE name = 'group1'"), 0);
	ck_assert_int_eq(inject("alice@example.org", "group1@example.com", "e2e-dmarc",
				"Alice <alice@example.org>"), 250);
	n = wait_sink("Subject: e2e-dmarc", 2, 30, got, 4);
	if (n != 2)
		show_maillog();
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++) {
		ck_assert_msg(strstr(got[i], "\nFrom: \"Alice via group1\" <group1@example.com>")
			      != NULL, "no rewritten From: in\n%s", got[i]);
		ck_assert_ptr_nonnull(strstr(got[i], "\nX-Original-From: Alice <alice@example.org>"));
		ck_assert_ptr_nonnull(strstr(got[i], "\nReply-To: Alice <alice@example.org>"));
		dkim_verify(got[i], "a rewritten copy", "from", "list-id", "reply-to", "subject",
			    (char *) NULL);
		free(got[i]);
	}
	ck_assert(tl_logged(&d, "dmarc=rewritten (dmarc-mitigation always), status=sent"));
	/* A notice mlistd writes itself: the subscription request. */
	ck_assert_int_eq(inject("newbie@example.net", "club+subscribe@example.com", "join",
				"Newbie <newbie@example.net>"), 250);
	n = wait_sink("Subject: Confirm: subscribe to club@example.com", 1, 30, got, 1);
	if (n != 1)
		show_maillog();
	ck_assert_int_eq(n, 1);
	dkim_verify(got[0], "a notice", "from", "subject", (char *) NULL);
	free(got[0]);
}
END_TEST

static void
setup_dkim(void)
{
	odkim_start();
	setup();
}

static void
teardown_dkim(void)
{
	teardown();
	odkim_stop();
	mport = 0;
}

static void
setup_slow(void)
{
	slow_case = 1;
	setup();
}

static void
teardown_slow(void)
{
	teardown();
	slow_case = 0;
	slowport = 0;
}

int
main(void)
{
	Suite  *s = suite_create("e2e");
	TCase  *tc = tcase_create("postfix");

	/*
	 * No fork per test: Check ends a forked test that fails with _exit(),
	 * which would skip the teardown and leave Postfix running.  In this
	 * mode a failure unwinds, the teardown stops Postfix and mlistd, and
	 * the atexit handlers catch anything left.
	 */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_post_and_bounce);
	tcase_add_test(tc, test_non_member_bounced_to_sender);
	tcase_add_test(tc, test_mlistd_down_then_back);
	tcase_add_test(tc, test_loop_between_lists);
	tcase_add_test(tc, test_no_smuggling_through_postfix);
	tcase_add_test(tc, test_subscribe_round_trip);
	tcase_add_test(tc, test_held_and_approved_by_mail);
	suite_add_tcase(s, tc);
	tc = tcase_create("postfix-slow");
	tcase_add_checked_fixture(tc, setup_slow, teardown_slow);
	tcase_add_test(tc, test_postfix_gives_up_first);
	suite_add_tcase(s, tc);
	tc = tcase_create("postfix-dkim");
	tcase_add_checked_fixture(tc, setup_dkim, teardown_dkim);
	tcase_add_test(tc, test_list_mail_signed);
	suite_add_tcase(s, tc);
	return (ck_run_nofork(s));
}
