/*
 * check_dmarc.c - the DMARC policy lookup against a real DNS server:
 * Debian's dnsmasq on a free loopback port, serving the _dmarc TXT
 * records of the table below and NXDOMAIN for the rest of its domains.
 * The test starts it, waits until it answers, and stops it by its pid,
 * also when a test fails (no fork per test, and an atexit handler).
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmarc.h"

#define DNSMASQ		"/usr/sbin/dnsmasq"
#define TIMEOUT_MS	2000

/* What dnsmasq serves: --txt-record=NAME,STRING[,STRING...] */
static const char *const txt_records[] = {
	"_dmarc.example.org,v=DMARC1; p=reject; sp=quarantine",
	"_dmarc.own.example.org,v=DMARC1; p=none",
	"_dmarc.example.com,v=DMARC1; p=quarantine; pct=50; rua=mailto:d@example.com",
	"_dmarc.example.net,v = DMARC1 ;  P = NONE ; foo=bar ;",
	"_dmarc.nosp.example.edu,v=DMARC1; p=quarantine",
	"_dmarc.split.example,v=DMARC1; p=,reject",
	"_dmarc.malformed.example,v=DMARC1; p",
	"_dmarc.badp.example,v=DMARC1; p=bogus",
	"_dmarc.badp-rua.example,v=DMARC1; p=bogus; rua=mailto:d@badp-rua.example",
	"_dmarc.twice.example,v=DMARC1; p=reject; p=none",
	"_dmarc.two.example,v=DMARC1; p=reject",
	"_dmarc.two.example,v=DMARC1; p=none",
	"_dmarc.notdmarc.example,v=spf1 -all",
	"_dmarc.notdmarc.example,p=reject; v=DMARC1",
	"_dmarc.dmarc10.example,v=DMARC10; p=reject",
	"_dmarc.orgtwo.example,v=DMARC1; p=reject",
	"_dmarc.orgtwo.example,v=DMARC1; p=reject",
	"_dmarc.example.edu,v=DMARC1; p=reject",
	"_dmarc.ready.example,v=DMARC1; p=none",
};
static const char *const local_domains[] = {
	"--local=/example.org/", "--local=/example.com/", "--local=/example.net/",
	"--local=/example.edu/", "--local=/example/",
};

static const struct {
	const char *label;
	const char *from;
	enum dmarc_policy want;
	const char *want_domain;	/* whose record applied */
	int	want_org;
	const char *want_reason;	/* a part of the reason */
} cases[] = {
	{"p=reject", "example.org", DMARC_P_REJECT, "example.org", 0, "p=reject"},
	{"case and trailing dot", "EXAMPLE.Org.", DMARC_P_REJECT, "example.org", 0, "p=reject"},
	{"p=quarantine, pct noted", "example.com", DMARC_P_QUARANTINE, "example.com", 0,
	"pct=50 not applied"},
	{"p=none, case and white space", "example.net", DMARC_P_NONE, "example.net", 0, "p=none"},
	{"no record", "nodmarc.example", DMARC_NONE_FOUND, "", 0, "no record"},
	{"no record at sub or org", "a.nodmarc.example", DMARC_NONE_FOUND, "", 0, "no record"},
	{"subdomain: organizational sp=", "mail.example.org", DMARC_P_QUARANTINE, "example.org", 1,
	"organizational domain: sp=quarantine"},
	{"deep subdomain: organizational sp=", "a.b.c.example.org", DMARC_P_QUARANTINE,
	"example.org", 1, "sp=quarantine"},
	{"subdomain, no sp=: organizational p=", "mail.example.edu", DMARC_P_REJECT,
	"example.edu", 1, "p=reject (no sp=)"},
	{"subdomain with its own record", "own.example.org", DMARC_P_NONE, "own.example.org", 0,
	"p=none"},
	{"subdomain record, p= not sp=", "nosp.example.edu", DMARC_P_QUARANTINE,
	"nosp.example.edu", 0, "p=quarantine"},
	{"TXT strings joined", "split.example", DMARC_P_REJECT, "split.example", 0, "p=reject"},
	{"malformed record", "malformed.example", DMARC_NONE_FOUND, "malformed.example", 0,
	"malformed record"},
	{"invalid p=", "badp.example", DMARC_NONE_FOUND, "badp.example", 0, "invalid p="},
	{"invalid p= with rua=: as none", "badp-rua.example", DMARC_P_NONE, "badp-rua.example", 0,
	"as p=none"},
	{"repeated tag", "twice.example", DMARC_NONE_FOUND, "twice.example", 0, "malformed"},
	{"two records", "two.example", DMARC_NONE_FOUND, "", 0, "several records"},
	{"two records at the organizational domain", "x.orgtwo.example", DMARC_NONE_FOUND, "", 0,
	"organizational domain: several records"},
	{"no record starting with v=DMARC1", "notdmarc.example", DMARC_NONE_FOUND, "", 0,
	"no v=DMARC1 record"},
	{"v=DMARC10 is not v=DMARC1", "dmarc10.example", DMARC_NONE_FOUND, "", 0,
	"no v=DMARC1 record"},
	{"not a domain: empty label", "a..example.org", DMARC_NONE_FOUND, "", 0,
	"not a DNS domain"},
	{"not a domain: odd bytes", "ex\"ample;.org", DMARC_NONE_FOUND, "", 0,
	"not a DNS domain"},
	{"not a domain: U-label", "b\xc3\xbc" "cher.example", DMARC_NONE_FOUND, "", 0,
	"not a DNS domain"},
};

struct dns {
	pid_t	pid;
	int	port;
	char	addr[32];		/* ADDRESS:PORT for the resolver */
	int	attempts;		/* ports tried that another took */
};

static struct dns *live[2];
static struct dns server;

/* sleep_ms - a short pause between polls of a condition */
static void
sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* udp_port - a bound UDP socket on 127.0.0.1 (fd into *fd), its port */
static int
udp_port(int *fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *) &sin, &len), 0);
	return (ntohs(sin.sin_port));
}

/* free_udp_port - a UDP port on 127.0.0.1 that nobody holds now */
static int
free_udp_port(void)
{
	int	fd, port = udp_port(&fd);

	(void) close(fd);
	return (port);
}

/* dns_kill - stop d's dnsmasq: SIGTERM, then SIGKILL after 5 s */
static void
dns_kill(struct dns *d)
{
	int	status;

	if (d->pid <= 0)
		return;
	(void) kill(d->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return;
		}
		sleep_ms(10);
	}
	(void) kill(d->pid, SIGKILL);
	(void) waitpid(d->pid, &status, 0);
	d->pid = 0;
}

/* kill_live - at exit: whatever dnsmasq a failed test left */
static void
kill_live(void)
{
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i])
			dns_kill(live[i]);
}

/* dns_answers - does the server at addr answer a query (a fresh
 * resolver each time: no cache, no memory of earlier failures)? */
static int
dns_answers(const char *addr)
{
	struct dmarc_resolver *r;
	struct dmarc_result res;
	char	err[256];
	int	ok;

	r = dmarc_resolver_create(addr, 200, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	ok = dmarc_lookup(r, "ready.example", &res) == 0 && res.policy == DMARC_P_NONE;
	dmarc_resolver_free(r);
	return (ok);
}

/* dns_start - dnsmasq on a free port serving the table; waits until it
 * answers (at most 10 s) */
static void
dns_start(struct dns *d)
{
	const char *argv[64];
	char	port[32], txt[sizeof(txt_records) / sizeof(txt_records[0])][128];
	size_t	n = 0;
	int	status, fd;

	d->port = free_udp_port();
	snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
	snprintf(port, sizeof(port), "--port=%d", d->port);
	argv[n++] = DNSMASQ;
	argv[n++] = "--no-daemon";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--pid-file=";
	argv[n++] = port;
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--local-ttl=300";
	for (size_t i = 0; i < sizeof(local_domains) / sizeof(local_domains[0]); i++)
		argv[n++] = local_domains[i];
	for (size_t i = 0; i < sizeof(txt_records) / sizeof(txt_records[0]); i++) {
		snprintf(txt[i], sizeof(txt[i]), "--txt-record=%s", txt_records[i]);
		argv[n++] = txt[i];
	}
	argv[n] = NULL;
	ck_assert_uint_lt(n, sizeof(argv) / sizeof(argv[0]));

	fflush(NULL);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			(void) dup2(fd, 0);
			(void) dup2(fd, 1);
			(void) dup2(fd, 2);
		}
		execv(DNSMASQ, (char *const *) argv);
		_exit(127);
	}
	for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
		if (live[i] == NULL || live[i] == d) {
			live[i] = d;
			break;
		}
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			/* Exit 2: the port was taken meanwhile (its TCP side, by
			 * another suite running beside this one): another port. */
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2
				      && ++d->attempts < 10, "dnsmasq exited (status %d)", status);
			dns_start(d);
			return;
		}
		if (dns_answers(d->addr))
			return;
		sleep_ms(10);
	}
	dns_kill(d);		/* a failed setup has no teardown */
	ck_abort_msg("dnsmasq on %s does not answer", d->addr);
}

static void
setup(void)
{
	dns_start(&server);
}

static void
teardown(void)
{
	dns_kill(&server);
}

/* resolver - one pointed at addr (the test fails if it cannot be made) */
static struct dmarc_resolver *
resolver(const char *addr, unsigned timeout_ms)
{
	struct dmarc_resolver *r;
	char	err[256];

	r = dmarc_resolver_create(addr, timeout_ms, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	return (r);
}

START_TEST(test_policies)
{
	struct dmarc_resolver *r = resolver(server.addr, TIMEOUT_MS);
	struct dmarc_result res;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(dmarc_lookup(r, cases[i].from, &res) == 0, "%s: %s",
			      cases[i].label, res.reason);
		ck_assert_msg(res.policy == cases[i].want, "%s: policy %s, want %s (%s)",
			      cases[i].label, dmarc_policy_str(res.policy),
			      dmarc_policy_str(cases[i].want), res.reason);
		ck_assert_msg(strcmp(res.domain, cases[i].want_domain) == 0,
			      "%s: domain \"%s\", want \"%s\"", cases[i].label, res.domain,
			      cases[i].want_domain);
		ck_assert_msg(res.from_org == cases[i].want_org, "%s: from_org %d",
			      cases[i].label, res.from_org);
		ck_assert_msg(strstr(res.reason, cases[i].want_reason) != NULL,
			      "%s: reason \"%s\", want \"%s\"", cases[i].label, res.reason,
			      cases[i].want_reason);
	}
	ck_assert_int_eq(dmarc_lookup(r, "example.com", &res), 0);
	ck_assert_int_eq(res.pct, 50);
	dmarc_resolver_free(r);
}
END_TEST

START_TEST(test_cached_without_dns)
{
	struct dmarc_resolver *r = resolver(server.addr, 500);
	struct dmarc_result res;

	ck_assert_int_eq(dmarc_lookup(r, "mail.example.org", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_P_QUARANTINE);
	ck_assert_int_eq(res.cached, 0);
	ck_assert_int_eq(dmarc_lookup(r, "nodmarc.example", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_NONE_FOUND);

	dns_kill(&server);
	/* Both answers (the subdomain's none and the organizational
	 * domain's record) and the negative one come from the cache. */
	ck_assert_int_eq(dmarc_lookup(r, "mail.example.org", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_P_QUARANTINE);
	ck_assert_str_eq(res.domain, "example.org");
	ck_assert_int_eq(res.from_org, 1);
	ck_assert_int_eq(res.cached, 1);
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_P_REJECT);
	ck_assert_int_eq(res.cached, 1);
	ck_assert_int_eq(dmarc_lookup(r, "nodmarc.example", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_NONE_FOUND);
	ck_assert_int_eq(res.cached, 1);
	/* What was never asked is not invented: the server is gone. */
	ck_assert_int_eq(dmarc_lookup(r, "example.com", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	dmarc_resolver_free(r);
}
END_TEST

START_TEST(test_nobody_listens)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dmarc_result res;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", free_udp_port());
	r = resolver(addr, 300);
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	ck_assert_int_eq(res.cached, 0);
	dmarc_resolver_free(r);
}
END_TEST

START_TEST(test_silent_server)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dmarc_result res;
	int	fd, port = udp_port(&fd);

	/* Bound but never read: the query goes out, no answer comes back. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	r = resolver(addr, 300);
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	ck_assert_msg(strstr(res.reason, "no answer within 300 ms") != NULL, "%s", res.reason);
	/* The cancelled query leaves the resolver usable. */
	ck_assert_int_eq(dmarc_lookup(r, "example.net", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	dmarc_resolver_free(r);
	(void) close(fd);
}
END_TEST

START_TEST(test_bad_resolver_spec)
{
	static const char *const bad[] = {
		"", "localhost", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:53x", "[::1", "[::1]x", "1.2.3.4.5", "[]:53",
	};
	static const char *const good[] = {"127.0.0.1", "127.0.0.1:5353", "::1", "[::1]:53"};
	struct dmarc_resolver *r;
	char	err[256];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		r = dmarc_resolver_create(bad[i], 100, err, sizeof(err));
		ck_assert_msg(r == NULL, "\"%s\" accepted", bad[i]);
		ck_assert_msg(strstr(err, "ADDRESS[:PORT]") != NULL, "%s: %s", bad[i], err);
	}
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		r = dmarc_resolver_create(good[i], 100, err, sizeof(err));
		ck_assert_msg(r != NULL, "%s: %s", good[i], err);
		dmarc_resolver_free(r);
	}
	dmarc_resolver_free(NULL);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("dmarc");
	TCase  *tc = tcase_create("dnsmasq");

	if (access(DNSMASQ, X_OK) < 0) {
		fprintf(stderr, "%s: %s (Debian package: dnsmasq-base)\n", DNSMASQ,
			strerror(errno));
		return (1);
	}
	(void) atexit(kill_live);
	/* No fork per test: a failure unwinds into the teardown, which stops
	 * dnsmasq; the atexit handler catches anything left. */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_policies);
	tcase_add_test(tc, test_cached_without_dns);
	suite_add_tcase(s, tc);
	tc = tcase_create("no server");
	tcase_add_test(tc, test_nobody_listens);
	tcase_add_test(tc, test_silent_server);
	tcase_add_test(tc, test_bad_resolver_spec);
	suite_add_tcase(s, tc);
	return (ck_run_nofork(s));
}
