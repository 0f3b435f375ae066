/*
 * check_conf.c - configuration: defaults, file, command line, errors.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"

static char tmpdir[] = "/tmp/check_conf.XXXXXX";
static char conffile[256];

static void
write_conf(const char *text)
{
	FILE   *fp = fopen(conffile, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(text, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/* build - parse a NULL-terminated argv, then build; err gets the reason */
static struct conf *
build(char *err, size_t len, enum conf_action *action, ...)
{
	char   *argv[32];
	int	argc = 0;
	va_list	ap;
	struct conf_args *args;
	struct conf *cf;
	enum conf_action dummy;

	if (action == NULL)
		action = &dummy;
	argv[argc++] = "mlistd";
	va_start(ap, action);
	while ((argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	err[0] = 0;
	if ((args = conf_args_parse(argc, argv, action, err, len)) == NULL)
		return (NULL);
	cf = conf_build(args, err, len);
	conf_args_free(args);
	return (cf);
}

static void
setup(void)
{
	ck_assert_ptr_nonnull(mkdtemp(tmpdir));
	snprintf(conffile, sizeof(conffile), "%s/mlistd.conf", tmpdir);
}

static void
teardown(void)
{
	(void) unlink(conffile);
	(void) rmdir(tmpdir);
	strcpy(tmpdir, "/tmp/check_conf.XXXXXX");
}

START_TEST(test_defaults)
{
	char	err[512];
	struct conf *cf;

	write_conf("# empty\n\n");
	cf = build(err, sizeof(err), NULL, "-c", conffile, NULL);
	ck_assert_msg(cf != NULL, "%s", err);
	ck_assert_str_eq(cf->listen, "127.0.0.1:20381");
	ck_assert_str_eq(cf->listen_host, "127.0.0.1");
	ck_assert_str_eq(cf->listen_port, "20381");
	ck_assert_str_eq(cf->domain, "example.com");
	ck_assert_str_eq(cf->relay, "smtp://127.0.0.1:25");
	ck_assert_str_eq(cf->bounce_local, "bounce");
	ck_assert_str_eq(cf->postmaster_local, "postmaster");
	ck_assert_uint_eq(cf->workers, 4);
	ck_assert_uint_eq(cf->max_message_size, 10240000);
	ck_assert_uint_eq(cf->max_command_length, 512);
	ck_assert_uint_eq(cf->max_recipients, 1000);
	ck_assert_ptr_null(cf->pidfile);
	ck_assert_int_eq(cf->foreground, 0);
	ck_assert_ptr_nonnull(strstr(cf->database, "mlistd.db"));
	conf_free(cf);
}
END_TEST

START_TEST(test_file_then_command_line)
{
	char	err[512];
	struct conf *cf;

	write_conf("domain = Lists.Example.ORG\n"
		   "  workers=7   \n"
		   "listen = [::1]:2525\n"
		   "max-message-size = 2m\n"
		   "timeout = 2m\n"
		   "foreground = yes\n"
		   "pidfile = /run/x.pid\n");
	cf = build(err, sizeof(err), NULL, "-c", conffile, "--workers=3", NULL);
	ck_assert_msg(cf != NULL, "%s", err);
	ck_assert_str_eq(cf->domain, "lists.example.org");
	ck_assert_uint_eq(cf->workers, 3);	/* command line wins */
	ck_assert_str_eq(cf->listen_host, "::1");
	ck_assert_str_eq(cf->listen_port, "2525");
	ck_assert_uint_eq(cf->max_message_size, 2 * 1024 * 1024);
	ck_assert_uint_eq(cf->timeout, 120);
	ck_assert_int_eq(cf->foreground, 1);
	ck_assert_str_eq(cf->pidfile, "/run/x.pid");
	conf_free(cf);
}
END_TEST

START_TEST(test_missing_named_file)
{
	char	err[512];

	ck_assert_ptr_null(build(err, sizeof(err), NULL, "-c", "/nonexistent/mlistd.conf", NULL));
	ck_assert_ptr_nonnull(strstr(err, "cannot open configuration file /nonexistent/mlistd.conf"));
}
END_TEST

/* Bad input: label, file text (or NULL), option, expected message part. */
static const struct {
	const char *file;
	const char *opt;
	const char *want;
} bad[] = {
	{NULL, "--workers=0", "--workers: invalid value \"0\": expected a number from 1 to 256"},
	{NULL, "--workers=abc", "invalid value \"abc\""},
	{NULL, "--workers=4x", "invalid value \"4x\""},
	{NULL, "--max-message-size=-5", "invalid value \"-5\""},
	{NULL, "--listen=127.0.0.1", "expected HOST:PORT"},
	{NULL, "--listen=127.0.0.1:0", "port from 1 to 65535"},
	{NULL, "--listen=127.0.0.1:99999", "port from 1 to 65535"},
	{NULL, "--listen=[::1:25", "expected [HOST]:PORT"},
	{NULL, "--domain=exa mple.com", "expected a domain name"},
	{NULL, "--domain=.com", "expected a domain name"},
	{NULL, "--bounce-local=bounce+x", "without '+'"},
	{NULL, "--bounce-local=postmaster", "must differ"},
	{NULL, "--timeout=0", "expected a time in seconds"},
	{NULL, "--max-command-length=100", "from 512 to"},
	{NULL, "--dmarc-mitigation=sometimes", "dmarc-mitigation: \"sometimes\" is none of"},
	{NULL, "--resolver=localhost", "resolver: not ADDRESS[:PORT]: localhost"},
	{NULL, "--resolver=127.0.0.1:0", "resolver"},
	{NULL, "--dns-timeout=0", "--dns-timeout: invalid value \"0\""},
	{NULL, "--dns-timeout=31", "--dns-timeout: invalid value \"31\""},
	{NULL, "--dkim-selector=a b", "dkim-selector: \"a b\" is no DNS name"},
	{NULL, "--dkim-selector=../etc", "is no DNS name"},
	{"workers = 9999\n", NULL, ":1: workers: invalid value \"9999\""},
	{"nonsense\n", NULL, ":1: expected \"name = value\""},
	{"\n# c\nbogus = 1\n", NULL, ":3: unknown parameter \"bogus\""},
	{"foreground = maybe\n", NULL, ":1: foreground: invalid value \"maybe\": expected yes or no"},
	{"domain =\n", NULL, ":1: domain: invalid value \"\""},
};

START_TEST(test_bad_values)
{
	char	err[512];
	struct conf *cf;

	write_conf(bad[_i].file ? bad[_i].file : "\n");
	cf = build(err, sizeof(err), NULL, "-c", conffile, bad[_i].opt, NULL);
	ck_assert_msg(cf == NULL, "accepted %s", bad[_i].opt ? bad[_i].opt : bad[_i].file);
	ck_assert_msg(strstr(err, bad[_i].want) != NULL, "got \"%s\", want \"%s\"",
		      err, bad[_i].want);
	ck_assert_msg(strchr(err, '\n') == NULL, "more than one line: %s", err);
}
END_TEST

START_TEST(test_bad_options)
{
	char	err[512];
	enum conf_action action;

	ck_assert_ptr_null(build(err, sizeof(err), &action, "--no-such-option", NULL));
	ck_assert_str_eq(err, "unrecognized option '--no-such-option'");
	ck_assert_ptr_null(build(err, sizeof(err), &action, "-x", NULL));
	ck_assert_str_eq(err, "invalid option '-x'");
	ck_assert_ptr_null(build(err, sizeof(err), &action, "--workers", NULL));
	ck_assert_str_eq(err, "option '--workers' requires an argument");
	ck_assert_ptr_null(build(err, sizeof(err), &action, "extra", NULL));
	ck_assert_str_eq(err, "unexpected argument 'extra'");
}
END_TEST

START_TEST(test_actions)
{
	char	err[512];
	enum conf_action action;
	struct conf *cf;

	write_conf("\n");
	cf = build(err, sizeof(err), &action, "-c", conffile, "-t", NULL);
	ck_assert_ptr_nonnull(cf);
	ck_assert_int_eq(action, CONF_CHECK);
	conf_free(cf);
	cf = build(err, sizeof(err), &action, "-c", conffile, "--check-config", "-f", NULL);
	ck_assert_ptr_nonnull(cf);
	ck_assert_int_eq(action, CONF_CHECK);
	ck_assert_int_eq(cf->foreground, 1);
	conf_free(cf);
	cf = build(err, sizeof(err), &action, "-c", conffile, "--version", NULL);
	ck_assert_int_eq(action, CONF_VERSION);
	conf_free(cf);
	cf = build(err, sizeof(err), &action, "-c", conffile, "--help", NULL);
	ck_assert_int_eq(action, CONF_HELP);
	conf_free(cf);
}
END_TEST

/* Every option of the help text round-trips through conf_dump. */
START_TEST(test_dump_and_usage)
{
	char	err[512], *buf = NULL;
	size_t	len = 0;
	FILE   *fp;
	struct conf *cf;

	write_conf("max-use = 42\n");
	cf = build(err, sizeof(err), NULL, "-c", conffile, NULL);
	ck_assert_ptr_nonnull(cf);
	fp = open_memstream(&buf, &len);
	ck_assert_ptr_nonnull(fp);
	conf_dump(fp, cf);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(strstr(buf, "\nmax-use = 42\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nlisten = 127.0.0.1:20381\n"));
	/* Durations as the files and the man pages write them. */
	ck_assert_ptr_nonnull(strstr(buf, "\ndedup-window = 5d\n"));
	ck_assert_ptr_nonnull(strstr(buf, "\nrelay-timeout = 120\n"));
	free(buf);
	buf = NULL;
	fp = open_memstream(&buf, &len);
	conf_usage(fp);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_ptr_nonnull(strstr(buf, "--config=FILE"));
	ck_assert_ptr_nonnull(strstr(buf, "--bounce-maildir=DIR"));
	ck_assert_ptr_nonnull(strstr(buf, "-f, --foreground"));
	/* Booleans show their default too. */
	ck_assert_ptr_nonnull(strstr(buf, "pipelined windows (default yes)\n"));
	ck_assert_ptr_nonnull(strstr(buf, "a transaction per member) (default no)\n"));
	free(buf);
	conf_free(cf);
}
END_TEST

/* read_file - a man page source */
static char *
read_file(const char *name)
{
	char	rel[256];

	snprintf(rel, sizeof(rel), "man/%s", name);
	return (ck_slurp(ck_srcfile(rel), NULL));
}

/* roff_escape - "max-use" -> "max\-use" */
static void
roff_escape(const char *in, char *out, size_t len)
{
	size_t	n = 0;

	for (; *in && n + 3 < len; in++) {
		if (*in == '-')
			out[n++] = '\\';
		out[n++] = *in;
	}
	out[n] = 0;
}

/*
 * Every option --help shows is documented in mlistd(8), and every one
 * that is also a configuration key in mlistd.conf(5).
 */
START_TEST(test_manpages_match_help)
{
	char   *help = NULL, *man8 = read_file("mlistd.8.in"),
	       *man5 = read_file("mlistd.conf.5.in"), *p;
	size_t	len = 0;
	FILE   *fp = open_memstream(&help, &len);
	int	options = 0;

	ck_assert_ptr_nonnull(fp);
	conf_usage(fp);
	ck_assert_int_eq(fclose(fp), 0);
	for (p = help; (p = strstr(p, "--")) != NULL; p += 2) {
		char	name[64], esc[160], want[200];
		size_t	n = strspn(p + 2, "abcdefghijklmnopqrstuvwxyz-");

		if (n == 0 || n >= sizeof(name) || p[-1] != ' ')
			continue;
		memcpy(name, p + 2, n);
		name[n] = 0;
		roff_escape(name, esc, sizeof(esc));
		snprintf(want, sizeof(want), "\\-\\-%s", esc);
		ck_assert_msg(strstr(man8, want) != NULL,
			      "--%s is in --help but not in man/mlistd.8.in", name);
		options++;
		if (strcmp(name, "config") == 0 || strcmp(name, "check-config") == 0
		    || strcmp(name, "help") == 0 || strcmp(name, "version") == 0)
			continue;
		snprintf(want, sizeof(want), ".B %s =", esc);
		ck_assert_msg(strstr(man5, want) != NULL,
			      "%s is a configuration key but not in man/mlistd.conf.5.in", name);
	}
	ck_assert_int_ge(options, 20);
	free(help);
	free(man8);
	free(man5);
}
END_TEST

/*
 * Where log lines go: the journal alone while stderr is its stream
 * (JOURNAL_STREAM), syslog once detached from it, a log-file instead of
 * syslog; never nowhere.
 */
START_TEST(test_log_destinations)
{
	char	path[] = "/tmp/check_log.XXXXXX", js[64];
	struct stat st;
	int	fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_ge(dup2(fd, 2), 0);
	ck_assert_int_eq(fstat(2, &st), 0);
	snprintf(js, sizeof(js), "%lu:%lu", (unsigned long) st.st_dev, (unsigned long) st.st_ino);
	ck_assert_int_eq(setenv("JOURNAL_STREAM", js, 1), 0);
	msg_open("t", 1);
	msg_syslog_probe();
	ck_assert_int_eq(msg_destinations(), MSG_TO_JOURNAL);
	/* Detached without -f under a unit of Type=forking: syslog. */
	msg_set_stderr(0);
	msg_syslog_probe();
	ck_assert_int_eq(msg_destinations(), MSG_TO_SYSLOG);
	msg_set_file(fd);
	msg_syslog_probe();
	ck_assert_int_eq(msg_destinations(), MSG_TO_FILE);
	/* Another stream than stderr's is not the journal. */
	ck_assert_int_eq(setenv("JOURNAL_STREAM", "1:2", 1), 0);
	msg_set_file(-1);
	msg_open("t", 1);
	msg_syslog_probe();
	ck_assert_int_eq(msg_destinations() & (MSG_TO_STDERR | MSG_TO_JOURNAL), MSG_TO_STDERR);
	ck_assert_int_eq(unlink(path), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("conf");
	TCase  *tc = tcase_create("conf");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_file_then_command_line);
	tcase_add_test(tc, test_missing_named_file);
	tcase_add_loop_test(tc, test_bad_values, 0, sizeof(bad) / sizeof(bad[0]));
	tcase_add_test(tc, test_bad_options);
	tcase_add_test(tc, test_actions);
	tcase_add_test(tc, test_dump_and_usage);
	tcase_add_test(tc, test_manpages_match_help);
	tcase_add_test(tc, test_log_destinations);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
