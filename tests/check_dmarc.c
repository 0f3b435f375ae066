/*
 * check_dmarc.c - the DMARC policy lookup against a real DNS server:
 * Debian's dnsmasq on a free loopback port (tests/dnslib.c), serving the
 * _dmarc TXT records of the table below and NXDOMAIN for the rest of its
 * domains.  The test starts it, waits until it answers, and stops it by
 * its pid, also when a test fails (no fork per test, and an atexit
 * handler).
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dmarc.h"
#include "dnslib.h"

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
	/* For dmarc_txt: key records, alone or among others */
	"k1._domainkey.example.org,v=DKIM1; k=rsa; p=TUlJQg==",
	"k2._domainkey.example.org,google-site-verification=xyz",
	"k2._domainkey.example.org,k=rsa; p=QUJD",
	"k3._domainkey.example.org,k=rsa; p=Zm9v",
	"k3._domainkey.example.org,v=DKIM1; p=YmFy",
	"k4._domainkey.example.org,hello world",
	"k5._domainkey.example.org,v=DKIM1; p=,QUJD",
};
static const char *const local_domains[] = {
	"example.org", "example.com", "example.net", "example.edu", "example",
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

static struct dns server = {
	txt_records, sizeof(txt_records) / sizeof(txt_records[0]),
	local_domains, sizeof(local_domains) / sizeof(local_domains[0]),
	0, 0, 0, "", 0
};

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

START_TEST(test_policies)
{
	struct dmarc_resolver *r = dns_resolver(server.addr, TIMEOUT_MS);
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

static const struct {
	const char *label;
	const char *qname;
	int	want;			/* dmarc_txt's return */
	const char *want_text;		/* the record, or a part of the reason */
} txt_cases[] = {
	{"a key record", "k1._domainkey.example.org", 1, "v=DKIM1; k=rsa; p=TUlJQg=="},
	{"case and trailing dot", "K1._DomainKey.Example.ORG.", 1, "v=DKIM1; k=rsa; p=TUlJQg=="},
	{"the key record among others", "k2._domainkey.example.org", 1, "k=rsa; p=QUJD"},
	{"v=DKIM1 first", "k3._domainkey.example.org", 1, "v=DKIM1; p=YmFy"},
	{"no key record", "k4._domainkey.example.org", 0, "no key record"},
	{"strings joined", "k5._domainkey.example.org", 1, "v=DKIM1; p=QUJD"},
	{"NXDOMAIN", "nokey._domainkey.example.org", 0, "no TXT record"},
	{"NODATA", "example.org", 0, "no TXT record"},
	{"empty label", "a..b._domainkey.example.org", 0, "not a DNS name"},
	{"odd bytes", "s1;x._domainkey.example.org", 0, "not a DNS name"},
};

START_TEST(test_txt)
{
	struct dmarc_resolver *r = dns_resolver(server.addr, TIMEOUT_MS);
	char	buf[DMARC_TXT_MAX], why[96];
	long	ttl;
	int	rc;

	for (size_t i = 0; i < sizeof(txt_cases) / sizeof(txt_cases[0]); i++) {
		rc = dmarc_txt(r, txt_cases[i].qname, buf, sizeof(buf), &ttl, why, sizeof(why));
		ck_assert_msg(rc == txt_cases[i].want, "%s: %d, want %d (%s)", txt_cases[i].label,
			      rc, txt_cases[i].want, rc == 1 ? buf : why);
		if (rc == 1)
			ck_assert_msg(strcmp(buf, txt_cases[i].want_text) == 0, "%s: \"%s\"",
				      txt_cases[i].label, buf);
		else
			ck_assert_msg(strstr(why, txt_cases[i].want_text) != NULL, "%s: \"%s\"",
				      txt_cases[i].label, why);
		/* dnsmasq's TTL, or its SOA's for none (at most 3 hours) */
		if (rc == 1 || strstr(why, "DNS name") == NULL)
			ck_assert_msg(ttl > 0 && ttl <= (rc == 1 ? 300 : 10800), "%s: ttl %ld",
				      txt_cases[i].label, ttl);
	}
	/* A record that does not fit is a failure, never cut short. */
	ck_assert_int_eq(dmarc_txt(r, "k1._domainkey.example.org", buf, 10, NULL, why, sizeof(why)),
			 -1);
	ck_assert_str_eq(buf, "");
	dmarc_resolver_free(r);
}
END_TEST

START_TEST(test_cached_without_dns)
{
	struct dmarc_resolver *r = dns_resolver(server.addr, 500);
	struct dmarc_result res;
	char	buf[DMARC_TXT_MAX], why[96];
	long	ttl;

	ck_assert_int_eq(dmarc_lookup(r, "mail.example.org", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_P_QUARANTINE);
	ck_assert_int_eq(res.cached, 0);
	ck_assert_int_eq(dmarc_lookup(r, "nodmarc.example", &res), 0);
	ck_assert_int_eq(res.policy, DMARC_NONE_FOUND);
	ck_assert_int_eq(dmarc_txt(r, "k1._domainkey.example.org", buf, sizeof(buf), NULL, why,
				   sizeof(why)), 1);
	ck_assert_int_eq(dmarc_txt(r, "nokey._domainkey.example.org", buf, sizeof(buf), NULL, why,
				   sizeof(why)), 0);

	dns_kill(&server);
	/* The key records too, found or not, kept apart from the policies. */
	ck_assert_int_eq(dmarc_txt(r, "k1._domainkey.example.org", buf, sizeof(buf), &ttl, why,
				   sizeof(why)), 1);
	ck_assert_str_eq(buf, "v=DKIM1; k=rsa; p=TUlJQg==");
	ck_assert(ttl > 0 && ttl <= 300);
	ck_assert_int_eq(dmarc_txt(r, "nokey._domainkey.example.org", buf, sizeof(buf), NULL, why,
				   sizeof(why)), 0);
	ck_assert_int_eq(dmarc_txt(r, "k2._domainkey.example.org", buf, sizeof(buf), NULL, why,
				   sizeof(why)), -1);
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

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dns_free_udp_port());
	r = dns_resolver(addr, 300);
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	ck_assert_int_eq(res.cached, 0);
	dmarc_resolver_free(r);
}
END_TEST

/* now - the monotonic clock, seconds */
static double
now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

START_TEST(test_silent_server)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dmarc_result res;
	char	buf[DMARC_TXT_MAX], why[96];
	int	fd, port = dns_udp_port(&fd);

	/* Bound but never read: the query goes out, no answer comes back. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	r = dns_resolver(addr, 300);
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), -1);
	ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
	ck_assert_msg(strstr(res.reason, "no answer within 300 ms") != NULL, "%s", res.reason);
	/*
	 * One name that times out may be its domain's doing: the resolver is
	 * asked again, for the same name too.  After a second name in a row
	 * it is left alone for 30 s: the next lookups, policies and keys
	 * alike, fail at once and send nothing (a dead resolver costs two
	 * timeouts, not one per post).
	 */
	ck_assert_int_eq(dmarc_lookup(r, "example.org", &res), -1);
	ck_assert_msg(strstr(res.reason, "no answer within 300 ms") != NULL, "%s", res.reason);
	ck_assert_int_eq(dmarc_lookup(r, "example.net", &res), -1);
	ck_assert_msg(strstr(res.reason, "no answer within 300 ms") != NULL, "%s", res.reason);
	{
		char	pkt[512];
		int	queries = 0;
		double	t0 = now();

		while (recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT) > 0)
			queries++;
		ck_assert_int_ge(queries, 3);
		ck_assert_int_eq(dmarc_lookup(r, "example.com", &res), -1);
		ck_assert_int_eq(res.policy, DMARC_TEMPFAIL);
		ck_assert_msg(strstr(res.reason, "did not answer within the last 30 s") != NULL,
			      "%s", res.reason);
		ck_assert_int_eq(dmarc_txt(r, "s1._domainkey.example.org", buf, sizeof(buf), NULL,
					   why, sizeof(why)), -1);
		ck_assert_msg(strstr(why, "did not answer within the last 30 s") != NULL, "%s", why);
		ck_assert_msg(now() - t0 < 0.2, "the quiet resolver still waits");
		ck_assert_int_lt(recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT), 0);
	}
	dmarc_resolver_free(r);
	/* A new resolver asks again: the failure was never cached. */
	r = dns_resolver(addr, 300);
	ck_assert_int_eq(dmarc_txt(r, "s1._domainkey.example.org", buf, sizeof(buf), NULL, why,
				   sizeof(why)), -1);
	ck_assert_msg(strstr(why, "no answer within 300 ms") != NULL, "%s", why);
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

	if (access(DNS_DNSMASQ, X_OK) < 0) {
		fprintf(stderr, "%s: %s (Debian package: dnsmasq-base)\n", DNS_DNSMASQ,
			strerror(errno));
		return (1);
	}
	/* No fork per test: a failure unwinds into the teardown, which stops
	 * dnsmasq; the atexit handler catches anything left. */
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_policies);
	tcase_add_test(tc, test_txt);
	tcase_add_test(tc, test_cached_without_dns);
	suite_add_tcase(s, tc);
	tc = tcase_create("no server");
	tcase_add_test(tc, test_nobody_listens);
	tcase_add_test(tc, test_silent_server);
	tcase_add_test(tc, test_bad_resolver_spec);
	suite_add_tcase(s, tc);
	return (ck_run_nofork(s));
}
