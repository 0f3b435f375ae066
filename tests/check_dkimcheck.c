/*
 * check_dkimcheck.c - will the author's DKIM signature survive the list
 * copy?  Posts are signed at test time with a real RSA key by Debian's
 * python3-dkim (tests/dkimsign.py) and verified by libopendkim through
 * its file query method (no DNS).  The module's table of touched fields
 * is checked against what rewrite_copy() really changes.
 *
 * Then the same keys, served in TXT records by a real dnsmasq on a free
 * loopback port (tests/dnslib.c), looked up through mlistd's resolver:
 * found, missing, cached, a silent or dead resolver, hostile selectors
 * and domains.  Those tests run without a process per test (dnsmasq is
 * stopped by the teardown when one fails).
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "dkimcheck.h"
#include "dmarc.h"
#include "dnslib.h"
#include "rewrite.h"

#define PY	"/usr/bin/python3"

static char dir[] = "/tmp/check_dkimcheck.XXXXXX";
static char keyfile[4200], keypem[4200];
static pid_t main_pid;

/* The post before signing: %s is the author's domain, then extra fields. */
#define POST \
	"From: Alice Example <alice@%s>\r\n" \
	"To: club@lists.test\r\n" \
	"Subject: Saturday\r\n" \
	"Date: Mon, 02 Mar 2026 10:00:00 +0000\r\n" \
	"Message-ID: <1234@%s>\r\n" \
	"MIME-Version: 1.0\r\n" \
	"Content-Type: text/plain; charset=utf-8\r\n" \
	"%s" \
	"\r\n" \
	"See you at the club.\r\n" \
	".dot line\r\n"

#define GMAIL	"mime-version:date:message-id:subject:from:to:content-type"
#define RSPAMD	"from:from:reply-to:subject:subject:date:message-id:to:cc:mime-version:" \
	"content-type:resent-to:resent-cc:resent-from:resent-sender:resent-message-id:" \
	"in-reply-to:references:list-id:list-help:list-owner:list-unsubscribe:" \
	"list-subscribe:list-post"
#define FASTMAIL "cc:content-type:date:date:from:from:in-reply-to:in-reply-to:" \
	"message-id:mime-version:references:reply-to:subject:subject:to:to"

static const struct {
	const char *label;
	const char *author;		/* From: domain */
	const char *extra;		/* more header fields of the post */
	const char *d, *s;		/* signer; d NULL: not signed */
	const char *h;
	const char *d2, *h2;		/* a second signature, added after */
	int	tamper;			/* change the body after signing */
	int	is_group;
	int	want;			/* survives */
	unsigned want_aligned;
	const char *want_reason;
	const char *want_domain;
} cases[] = {
	{"gmail style survives", "example.org", "", "example.org", "s1", GMAIL,
	 NULL, NULL, 0, 1, 1, 1, "signature survives", "example.org"},
	{"fastmail style over-signing survives", "example.org", "", "example.org", "s1", FASTMAIL,
	 NULL, NULL, 0, 1, 1, 1, "signature survives", "example.org"},
	{"rspamd style over-signs list-id", "example.org", "", "example.org", "s1", RSPAMD,
	 NULL, NULL, 0, 1, 0, 1, "h= covers list-id", "example.org"},
	{"list-unsubscribe signed absent", "example.org", "", "example.org", "s1",
	 GMAIL ":list-unsubscribe", NULL, NULL, 0, 1, 0, 1, "h= covers list-unsubscribe",
	 "example.org"},
	{"signed Sender:", "example.org", "Sender: secretary@example.org\r\n", "example.org", "s1",
	 GMAIL ":sender", NULL, NULL, 0, 1, 0, 1, "h= covers sender", "example.org"},
	{"cross-post with a signed List-Id", "example.org", "List-Id: <other.lists.example.org>\r\n",
	 "example.org", "s1", GMAIL ":list-id", NULL, NULL, 0, 1, 0, 1, "h= covers list-id",
	 "example.org"},
	{"signed X-BeenThere (appended)", "example.org", "", "example.org", "s1",
	 GMAIL ":x-beenthere", NULL, NULL, 0, 1, 0, 1, "h= covers x-beenthere", "example.org"},
	{"List-Archive present and signed: removed", "example.org",
	 "List-Archive: <https://example.org/a>\r\n", "example.org", "s1", GMAIL ":list-archive",
	 NULL, NULL, 0, 1, 0, 1, "h= covers list-archive", "example.org"},
	{"List-Archive signed absent: not added", "example.org", "", "example.org", "s1",
	 GMAIL ":list-archive:list-owner", NULL, NULL, 0, 1, 1, 1, "signature survives",
	 "example.org"},
	{"Bcc signed absent: not added", "example.org", "", "example.org", "s1", GMAIL ":bcc",
	 NULL, NULL, 0, 1, 1, 1, "signature survives", "example.org"},
	{"Precedence signed absent: a group adds it", "example.org", "", "example.org", "s1",
	 GMAIL ":precedence", NULL, NULL, 0, 1, 0, 1, "h= covers precedence", "example.org"},
	{"Precedence signed absent: an alias does not", "example.org", "", "example.org", "s1",
	 GMAIL ":precedence", NULL, NULL, 0, 0, 1, 1, "signature survives", "example.org"},
	{"Precedence present and signed: an alias keeps it", "example.org", "Precedence: list\r\n",
	 "example.org", "s1", GMAIL ":precedence", NULL, NULL, 0, 0, 1, 1, "signature survives",
	 "example.org"},
	{"tampered body fails on arrival", "example.org", "", "example.org", "s1", GMAIL,
	 NULL, NULL, 1, 1, 0, 1, "aligned signature fails on arrival: body hash mismatch",
	 "example.org"},
	{"unknown key fails on arrival", "example.org", "", "example.org", "nokey", GMAIL,
	 NULL, NULL, 0, 1, 0, 1, "aligned signature fails on arrival: ", "example.org"},
	{"no signature", "example.org", "", NULL, NULL, NULL,
	 NULL, NULL, 0, 1, 0, 0, "no aligned signature", ""},
	{"d= unrelated to From:", "example.org", "", "other.test", "s1", GMAIL,
	 NULL, NULL, 0, 1, 0, 0, "no aligned signature", ""},
	{"author in a subdomain of d=", "mail.example.org", "", "example.org", "s1", GMAIL,
	 NULL, NULL, 0, 1, 1, 1, "signature survives", "example.org"},
	{"d= a subdomain of the author's", "example.org", "", "mail.example.org", "s1", GMAIL,
	 NULL, NULL, 0, 1, 1, 1, "signature survives", "mail.example.org"},
	{"a look-alike domain is not a subdomain", "example.org", "", "badexample.org", "s1", GMAIL,
	 NULL, NULL, 0, 1, 0, 0, "no aligned signature", ""},
	{"one of two aligned signatures survives", "example.org", "", "example.org", "s1", RSPAMD,
	 "example.org", GMAIL, 0, 1, 1, 2, "signature survives", "example.org"},
	{"the aligned one breaks, the unrelated one is ignored", "example.org", "",
	 "example.org", "s1", RSPAMD, "other.test", GMAIL, 0, 1, 0, 1, "h= covers list-id",
	 "example.org"},
};

/* run - a shell command's standard output (malloc'd); the test fails
 * unless it exits 0 */
static char *
run(const char *cmd, size_t *len)
{
	FILE   *p = popen(cmd, "r");
	size_t	cap = 65536, n = 0, r;
	char   *buf = malloc(cap);

	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_nonnull(buf);
	while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0) {
		n += r;
		ck_assert_uint_lt(n, cap - 1);
	}
	buf[n] = 0;
	ck_assert_int_eq(pclose(p), 0);
	if (len)
		*len = n;
	return (buf);
}

/* sign - *msg (malloc'd) replaced by itself signed by d, selector s, over h */
static void
sign(char **msg, size_t *len, const char *d, const char *s, const char *h)
{
	char	path[4200], cmd[9000];
	FILE   *f;

	snprintf(path, sizeof(path), "%s/post", dir);
	ck_assert_ptr_nonnull(f = fopen(path, "wb"));
	ck_assert_uint_eq(fwrite(*msg, 1, *len, f), *len);
	ck_assert_int_eq(fclose(f), 0);
	free(*msg);
	snprintf(cmd, sizeof(cmd), PY " '%s' sign '%s' %s %s '%s' < '%s'",
		 ck_srcfile("tests/dkimsign.py"), keypem, s, d, h, path);
	*msg = run(cmd, len);
}

/* post - a post from alice@author with the extra fields (malloc'd) */
static char *
post(const char *author, const char *extra, size_t *len)
{
	char	buf[4096];

	snprintf(buf, sizeof(buf), POST, author, author, extra);
	*len = strlen(buf);
	return (strdup(buf));
}

/* add_key - a key record for SELECTOR._domainkey.DOMAIN to the key file
 * (before the tests run: no ck_assert here); 0 or -1 */
static int
add_key(const char *s, const char *d)
{
	char	cmd[9000];

	snprintf(cmd, sizeof(cmd), PY " '%s' genkey '%s' %s %s >> '%s'",
		 ck_srcfile("tests/dkimsign.py"), keypem, s, d, keyfile);
	return (system(cmd) == 0 ? 0 : -1);
}

START_TEST(test_survives)
{
	struct dkimcheck_conf conf = {keyfile, 0, NULL, NULL, NULL};
	struct dkimcheck *dc;
	struct dkimcheck_result r;
	size_t	len;
	char   *msg = post(cases[_i].author, cases[_i].extra, &len), *tmp;

	if (cases[_i].d)
		sign(&msg, &len, cases[_i].d, cases[_i].s, cases[_i].h);
	if (cases[_i].d2)
		sign(&msg, &len, cases[_i].d2, "s1", cases[_i].h2);
	if (cases[_i].tamper) {
		ck_assert_ptr_nonnull(tmp = strstr(msg, "See you"));
		tmp[0] = 's';
	}
	ck_assert_int_eq(dkimcheck_create(&conf, &dc), 0);
	ck_assert_int_eq(dkimcheck_survives_as(dc, msg, len, cases[_i].author, cases[_i].is_group,
					       &r), 0);
	ck_assert_msg(strncmp(r.reason, cases[_i].want_reason, strlen(cases[_i].want_reason)) == 0,
		      "%s: reason \"%s\", want \"%s\"", cases[_i].label, r.reason,
		      cases[_i].want_reason);
	ck_assert_msg(r.survives == cases[_i].want, "%s: survives %d", cases[_i].label, r.survives);
	ck_assert_uint_eq(r.aligned, cases[_i].want_aligned);
	ck_assert_str_eq(r.domain, cases[_i].want_domain);
	ck_assert_int_eq(r.tempfail, 0);
	dkimcheck_free(dc);
	free(msg);
}
END_TEST

/* A stand-in for libpsl: "co.uk" is a public suffix. */
static int
fake_psl(const char *domain, char *buf, size_t size, void *arg)
{
	const char *suffix = arg, *p = domain, *last = NULL;
	size_t	ls = strlen(suffix), ld = strlen(domain);

	if (ld <= ls + 1 || strcasecmp(domain + ld - ls, suffix) != 0 || domain[ld - ls - 1] != '.')
		return (-1);
	/* The label just before the suffix, and the suffix. */
	for (; p < domain + ld - ls - 1; p++)
		if (*p == '.')
			last = p;
	snprintf(buf, size, "%s", last ? last + 1 : domain);
	return (strlen(domain) >= size ? -1 : 0);
}

START_TEST(test_orgdomain)
{
	struct dkimcheck_conf dflt = {keyfile, 0, NULL, NULL, NULL};
	struct dkimcheck_conf psl = {keyfile, 0, fake_psl, "co.uk", NULL};
	struct dkimcheck *dc;
	struct dkimcheck_result r;
	size_t	len;
	char   *msg = post("shop.example.co.uk", "", &len);

	/* Signed by the public suffix: aligned only for the naive default. */
	sign(&msg, &len, "co.uk", "s1", GMAIL);
	ck_assert_int_eq(dkimcheck_create(&dflt, &dc), 0);
	ck_assert_int_eq(dkimcheck_survives(dc, msg, len, "shop.example.co.uk", &r), 0);
	ck_assert_int_eq(r.survives, 1);
	dkimcheck_free(dc);
	ck_assert_int_eq(dkimcheck_create(&psl, &dc), 0);
	ck_assert_int_eq(dkimcheck_survives(dc, msg, len, "shop.example.co.uk", &r), 0);
	ck_assert_int_eq(r.survives, 0);
	ck_assert_str_eq(r.reason, "no aligned signature");
	free(msg);

	/* A sibling under the same organizational domain aligns. */
	msg = post("shop.example.co.uk", "", &len);
	sign(&msg, &len, "mail.example.co.uk", "s1", GMAIL);
	ck_assert_int_eq(dkimcheck_survives(dc, msg, len, "shop.example.co.uk", &r), 0);
	ck_assert_int_eq(r.survives, 1);
	ck_assert_str_eq(r.domain, "mail.example.co.uk");
	dkimcheck_free(dc);
	free(msg);
}
END_TEST

START_TEST(test_bounds)
{
	struct dkimcheck_conf conf = {keyfile, 0, NULL, NULL, NULL};
	struct dkimcheck *dc;
	struct dkimcheck_result r;
	size_t	len;
	char   *msg = post("example.org", "", &len);

	/* More aligned signatures than are verified: the good one is last. */
	for (int i = 0; i <= DKIMCHECK_MAX_SIGS; i++)
		sign(&msg, &len, "example.org", "s1", i == 0 ? GMAIL : RSPAMD);
	ck_assert_int_eq(dkimcheck_create(&conf, &dc), 0);
	ck_assert_int_eq(dkimcheck_survives(dc, msg, len, "example.org", &r), 0);
	ck_assert_uint_eq(r.aligned, DKIMCHECK_MAX_SIGS);
	ck_assert_str_eq(r.reason, "h= covers list-id");
	free(msg);

	/* Not a message at all, and a header with no From:. */
	ck_assert_int_eq(dkimcheck_survives(dc, "", 0, "example.org", &r), 0);
	ck_assert_int_eq(r.survives, 0);
	ck_assert_int_eq(dkimcheck_survives(dc, "x\r\n", 3, "example.org", &r), 0);
	ck_assert_int_eq(r.survives, 0);
	dkimcheck_free(dc);
	dkimcheck_free(NULL);
}
END_TEST

/* Every field name a post might carry, and more. */
static const char *const names[] = {
	"From", "To", "Cc", "Bcc", "Fcc", "Subject", "Date", "Message-ID", "Reply-To",
	"In-Reply-To", "References", "Sender", "Resent-From", "Resent-To", "Resent-Cc",
	"Resent-Bcc", "Resent-Date", "Resent-Sender", "Resent-Message-ID", "Return-Path",
	"Received", "Errors-To", "MIME-Version", "Content-Type", "Content-Transfer-Encoding",
	"Content-Disposition", "List-Id", "List-Post", "List-Help", "List-Subscribe",
	"List-Unsubscribe", "List-Unsubscribe-Post", "List-Archive", "List-Owner", "Precedence",
	"X-Auto-Response-Suppress", "Auto-Submitted", "X-BeenThere", "X-Mailer", "X-Loop",
	"Organization", "Keywords", "Comments", "Delivered-To", "Disposition-Notification-To",
	"Autocrypt", "OpenPGP", "DKIM-Signature", "ARC-Seal", "Authentication-Results",
	"Mail-Followup-To", "Mail-Reply-To", "Importance", "X-Priority",
};

/* lines - the header lines called name, in order, joined (malloc'd) */
static char *
lines(const char *hdr, const char *name)
{
	size_t	nl = strlen(name);
	char   *out = calloc(1, strlen(hdr) + 1);

	ck_assert_ptr_nonnull(out);
	for (const char *p = hdr; *p && *p != '\n'; p = strchr(p, '\n') + 1)
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':')
			strncat(out, p, (size_t) (strchr(p, '\n') - p + 1));
	return (out);
}

START_TEST(test_touched_fields_match_rewrite)
{
	struct rewrite_list l = {"club", "Club", "lists.test", "club-bounces",
				 "postmaster", _i & 1, (_i & 2) ? '+' : 0, 0, 0};
	char	full[16384], bare[] = "From: a@example.org\r\nSubject: s\r\n\r\nbody\r\n";
	size_t	n = 0;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		n += (size_t) snprintf(full + n, sizeof(full) - n, "%s: value %zu\r\n", names[i], i);
	snprintf(full + n, sizeof(full) - n, "\r\nbody\r\n");
	for (int pass = 0; pass < 2; pass++) {
		const char *in = pass ? bare : full;
		struct rewrite_msg *m;
		char   *raw, *copy, *hdr;
		size_t	len;

		ck_assert_int_eq(rewrite_parse(in, strlen(in), NULL, &m), REWRITE_OK);
		ck_assert_ptr_nonnull(raw = rewrite_copy(m, &l, &len));
		ck_assert_ptr_nonnull(copy = strndup(raw, len));	/* not NUL-terminated */
		free(raw);
		/* The post's header with LF line ends, as the copy has it. */
		ck_assert_ptr_nonnull(hdr = malloc(strlen(in) + 1));
		n = 0;
		for (const char *p = in; *p; p++)
			if (*p != '\r')
				hdr[n++] = *p;
		hdr[n] = 0;
		/* Every name of the list, and every name of the copy. */
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) + 64; i++) {
			char	name[80], *a, *b;
			const char *p = copy;
			int	present, changed;

			if (i < sizeof(names) / sizeof(names[0]))
				snprintf(name, sizeof(name), "%s", names[i]);
			else {
				size_t	k = i - sizeof(names) / sizeof(names[0]);

				for (; *p && *p != '\n' && k > 0; k--)
					p = strchr(p, '\n') + 1;
				if (*p == 0 || *p == '\n')
					break;
				snprintf(name, sizeof(name), "%.*s", (int) strcspn(p, ":"), p);
			}
			a = lines(hdr, name);
			b = lines(copy, name);
			present = a[0] != 0;
			changed = strcmp(a, b) != 0;
			ck_assert_msg(dkimcheck_touches(name, strlen(name), present, l.is_group) == changed,
				      "%s (present %d, is_group %d): rewrite_copy %s it",
				      name, present, l.is_group, changed ? "changes" : "keeps");
			free(a);
			free(b);
		}
		free(hdr);
		free(copy);
		rewrite_msg_free(m);
	}
}
END_TEST

/* What dnsmasq serves: the key file's records for example.org (split into
 * strings of at most 255 bytes), and TXT records that are no key records */
#define MAX_TXT		16
static char *txt[MAX_TXT];
static const char *const local_domains[] = {"example.org"};
static struct dns server;

#define RESOLVER_MS	500

/* serve_keys - the key file's example.org records as dnsmasq's
 * "NAME,STRING,STRING..." into txt[] (before the tests run: no ck_assert) */
static int
serve_keys(void)
{
	FILE   *f = fopen(keyfile, "r");
	char	line[4200];
	size_t	n = 0;

	if (f == NULL)
		return (-1);
	txt[n++] = strdup("s2._domainkey.example.org,google-site-verification=0123");
	txt[n++] = strdup("s3._domainkey.example.org,hello world");
	while (fgets(line, sizeof(line), f) != NULL && n < MAX_TXT) {
		char   *rec = strchr(line, ' '), *out;

		line[strcspn(line, "\n")] = 0;
		if (rec == NULL || strstr(line, ".example.org ") == NULL)
			continue;
		*rec++ = 0;
		if ((out = dns_txt_split(line, rec, 255)) == NULL)
			break;
		txt[n++] = out;
	}
	fclose(f);
	server.txt = (const char *const *) txt;
	server.ntxt = n;
	server.local = local_domains;
	server.nlocal = 1;
	return (0);
}

static void
dns_setup(void)
{
	dns_start(&server);
}

static void
dns_teardown(void)
{
	dns_kill(&server);
}

/* signed_post - a post from example.org signed with selector s (malloc'd) */
static char *
signed_post(const char *s, size_t *len)
{
	char   *msg = post("example.org", "", len);

	sign(&msg, len, "example.org", s, GMAIL);
	return (msg);
}

/* check - the post from example.org checked with keys through r; the
 * milliseconds it took */
static long
check(struct dmarc_resolver *r, const char *msg, size_t len, struct dkimcheck_result *out)
{
	struct dkimcheck_conf conf = {NULL, 0, NULL, NULL, r};
	struct dkimcheck *dc;
	struct timespec t0, t1;

	ck_assert_int_eq(dkimcheck_create(&conf, &dc), 0);
	(void) clock_gettime(CLOCK_MONOTONIC, &t0);
	ck_assert_int_eq(dkimcheck_survives(dc, msg, len, "example.org", out), 0);
	(void) clock_gettime(CLOCK_MONOTONIC, &t1);
	dkimcheck_free(dc);
	return ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000);
}

static const struct {
	const char *label;
	const char *s;			/* the selector */
	int	want;			/* survives */
	const char *want_reason;
} dns_cases[] = {
	{"key from DNS", "s1", 1, "signature survives"},
	{"a selector with a dot", "sub.s1", 1, "signature survives"},
	{"the key among other TXT records", "s2", 1, "signature survives"},
	{"no such name", "nokey", 0, "aligned signature fails on arrival: key not found in DNS"},
	{"TXT, but no key record", "s3", 0, "aligned signature fails on arrival: key not found in DNS"},
};

START_TEST(test_dns_keys)
{
	struct dmarc_resolver *r = dns_resolver(server.addr, 2000);
	struct dkimcheck_result res;
	size_t	len;

	for (size_t i = 0; i < sizeof(dns_cases) / sizeof(dns_cases[0]); i++) {
		char   *msg = signed_post(dns_cases[i].s, &len);

		(void) check(r, msg, len, &res);
		ck_assert_msg(res.survives == dns_cases[i].want && res.tempfail == 0
			      && strncmp(res.reason, dns_cases[i].want_reason,
					 strlen(dns_cases[i].want_reason)) == 0,
			      "%s: survives %d, tempfail %d, \"%s\"", dns_cases[i].label,
			      res.survives, res.tempfail, res.reason);
		ck_assert_str_eq(res.domain, "example.org");
		free(msg);
	}
	dmarc_resolver_free(r);
}
END_TEST

START_TEST(test_dns_cached)
{
	struct dmarc_resolver *r = dns_resolver(server.addr, RESOLVER_MS);
	struct dkimcheck_result res;
	size_t	len, len2, len3;
	char   *msg = signed_post("s1", &len), *none = signed_post("nokey", &len2);
	char   *other = signed_post("sub.s1", &len3);

	(void) check(r, msg, len, &res);
	ck_assert_int_eq(res.survives, 1);
	(void) check(r, none, len2, &res);
	ck_assert_int_eq(res.survives, 0);
	ck_assert_int_eq(res.tempfail, 0);

	dns_kill(&server);
	/* The key, and its absence, come from the resolver's cache. */
	(void) check(r, msg, len, &res);
	ck_assert_msg(res.survives == 1, "%s", res.reason);
	(void) check(r, none, len2, &res);
	ck_assert_int_eq(res.survives, 0);
	ck_assert_int_eq(res.tempfail, 0);
	/* A key never asked for is not invented: the server is gone. */
	(void) check(r, other, len3, &res);
	ck_assert_int_eq(res.survives, 0);
	ck_assert_msg(res.tempfail == 1, "%s", res.reason);
	ck_assert_msg(strncmp(res.reason, "aligned signature unverified: key lookup failed: ",
			      strlen("aligned signature unverified: key lookup failed: ")) == 0,
		      "%s", res.reason);
	free(msg);
	free(none);
	free(other);
	dmarc_resolver_free(r);
}
END_TEST

/* has_label - does the datagram pkt of n bytes ask about a name with the
 * label s? */
static int
has_label(const unsigned char *pkt, ssize_t n, const char *s)
{
	size_t	ll = strlen(s);

	for (ssize_t i = 12; i + (ssize_t) ll + 1 <= n; i++)
		if (pkt[i] == ll && memcmp(pkt + i + 1, s, ll) == 0)
			return (1);
	return (0);
}

/* queried - the datagrams the silent server at fd got since the last call
 * (drained); how many asked about a name with the label s (and t, into
 * *t_hits, when t is not NULL) */
static int
queried(int fd, const char *s, const char *t, int *t_hits, int *total)
{
	unsigned char pkt[1500];
	ssize_t n;
	int	hits = 0;

	*total = 0;
	if (t_hits)
		*t_hits = 0;
	while ((n = recv(fd, pkt, sizeof(pkt), MSG_DONTWAIT)) >= 0) {
		++*total;
		hits += has_label(pkt, n, s);
		if (t)
			*t_hits += has_label(pkt, n, t);
	}
	ck_assert_int_eq(errno, EAGAIN);
	return (hits);
}

START_TEST(test_dns_silent)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dkimcheck_result res;
	size_t	len;
	int	fd, port = dns_udp_port(&fd), total, s1, s2;
	char   *msg = signed_post("s1", &len);
	long	ms;

	/* Bound but never read: the query goes out, no answer comes back. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	r = dns_resolver(addr, RESOLVER_MS);
	ms = check(r, msg, len, &res);
	ck_assert_int_eq(res.survives, 0);
	ck_assert_int_eq(res.tempfail, 1);
	ck_assert_str_eq(res.reason, "aligned signature unverified: key lookup failed: "
			 "no answer within 500 ms");
	ck_assert_msg(ms >= RESOLVER_MS && ms < RESOLVER_MS + 1500, "%ld ms", ms);
	ck_assert_int_ge(queried(fd, "s1", NULL, NULL, &total), 1);
	dmarc_resolver_free(r);
	(void) close(fd);

	/* Two aligned signatures with two keys: one timeout, the other key
	 * is not even asked for (a new server: no late retries of the
	 * first query). */
	sign(&msg, &len, "example.org", "s2", GMAIL);
	port = dns_udp_port(&fd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	r = dns_resolver(addr, RESOLVER_MS);
	ms = check(r, msg, len, &res);
	ck_assert_int_eq(res.tempfail, 1);
	ck_assert_uint_eq(res.aligned, 2);
	ck_assert_msg(ms >= RESOLVER_MS && ms < RESOLVER_MS + 1500, "%ld ms", ms);
	s1 = queried(fd, "s1", "s2", &s2, &total);
	ck_assert_msg((s1 > 0) + (s2 > 0) == 1, "s1 asked %d times, s2 %d times", s1, s2);
	free(msg);
	dmarc_resolver_free(r);
	(void) close(fd);
}
END_TEST

START_TEST(test_dns_nobody_listens)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dkimcheck_result res;
	size_t	len;
	char   *msg = signed_post("s1", &len);
	long	ms;

	snprintf(addr, sizeof(addr), "127.0.0.1:%d", dns_free_udp_port());
	r = dns_resolver(addr, RESOLVER_MS);
	ms = check(r, msg, len, &res);
	ck_assert_int_eq(res.survives, 0);
	ck_assert_int_eq(res.tempfail, 1);
	ck_assert_msg(ms < RESOLVER_MS + 1500, "%ld ms", ms);
	free(msg);
	dmarc_resolver_free(r);
}
END_TEST

#define NO_NAME	"aligned signature fails on arrival: s= or d= is no DNS name"

/* s= and d= values from a hostile post: none may reach DNS */
static const struct {
	const char *tag;		/* "s" or "d" */
	const char *value;
	const char *want_reason;	/* NULL: NO_NAME */
} hostile[] = {
	{"s", "a..b", NULL}, {"s", ".s1", NULL}, {"s", "s1.", NULL}, {"s", "-s1", NULL},
	{"s", "s1-", NULL}, {"s", "s1!x", NULL}, {"s", "s1/x", NULL}, {"s", "s1\\x", NULL},
	{"s", "s1@x", NULL}, {"s", "s1*", NULL}, {"s", "s1\"x", NULL},
	/* libopendkim refuses 8-bit tag values itself */
	{"s", "b\xc3\xbc" "cher", "not verifiable: invalid character"},
	{"s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
	{"s", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
	 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", NULL},
	{"d", "a..example.org", NULL}, {"d", "x_-.example.org", NULL},
	{"d", "-x.example.org", NULL},
	/* and odd bytes in d= */
	{"d", "x!y.example.org", "not verifiable: malformed \"d=\" tag value"},
};

/* retag - *msg with the tag TAG=OLD; of its signature made TAG=VALUE; */
static void
retag(char **msg, size_t *len, const char *tag, const char *old, const char *value)
{
	char	from[64], to[400], *at, *out;

	snprintf(from, sizeof(from), "%s=%s;", tag, old);
	snprintf(to, sizeof(to), "%s=%s;", tag, value);
	ck_assert_ptr_nonnull(at = strstr(*msg, from));
	ck_assert_ptr_nonnull(out = malloc(*len + strlen(to) + 1));
	memcpy(out, *msg, (size_t) (at - *msg));
	strcpy(out + (at - *msg), to);
	strcat(out, at + strlen(from));
	*len = strlen(out);
	free(*msg);
	*msg = out;
}

START_TEST(test_dns_hostile)
{
	char	addr[32];
	struct dmarc_resolver *r;
	struct dkimcheck_result res;
	size_t	len, len0;
	int	fd, port = dns_udp_port(&fd), total;
	char   *msg0 = signed_post("s1", &len0);
	const char *want;

	/* A silent server: a query would be seen there and time out. */
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	r = dns_resolver(addr, RESOLVER_MS);
	for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
		char   *msg = strdup(msg0);

		len = len0;
		if (hostile[i].tag[0] == 's')
			retag(&msg, &len, "s", "s1", hostile[i].value);
		else {
			char	i_tag[300];

			/* i= must stay within d= */
			snprintf(i_tag, sizeof(i_tag), "@%s", hostile[i].value);
			retag(&msg, &len, "d", "example.org", hostile[i].value);
			retag(&msg, &len, "i", "@example.org", i_tag);
		}
		(void) check(r, msg, len, &res);
		want = hostile[i].want_reason ? hostile[i].want_reason : NO_NAME;
		ck_assert_msg(res.survives == 0 && res.tempfail == 0
			      && strncmp(res.reason, want, strlen(want)) == 0,
			      "%s=%s: survives %d, tempfail %d, \"%s\"", hostile[i].tag,
			      hostile[i].value, res.survives, res.tempfail, res.reason);
		(void) queried(fd, "s1", NULL, NULL, &total);
		ck_assert_msg(total == 0, "%s=%s: %d queries", hostile[i].tag, hostile[i].value,
			      total);
		free(msg);
	}
	/* The same post as signed is asked about there. */
	(void) check(r, msg0, len0, &res);
	ck_assert_int_eq(res.tempfail, 1);
	ck_assert_int_ge(queried(fd, "s1", NULL, NULL, &total), 1);
	free(msg0);
	dmarc_resolver_free(r);
	(void) close(fd);
}
END_TEST

static void
cleanup(void)
{
	char	cmd[4300];

	if (getpid() != main_pid)
		return;			/* a test's child process */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_dkimcheck: cannot remove %s\n", dir);
}

int
main(void)
{
	Suite  *s = suite_create("dkimcheck"), *sd = suite_create("dkimcheck-dns");
	TCase  *tc = tcase_create("dkimcheck");
	static const char *const records[][2] = {
		{"s1", "example.org"}, {"s1", "mail.example.org"}, {"s1", "other.test"},
		{"s1", "badexample.org"}, {"s1", "co.uk"}, {"s1", "mail.example.co.uk"},
		{"sub.s1", "example.org"}, {"s2", "example.org"},
	};
	int	rc;

	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	main_pid = getpid();
	atexit(cleanup);
	snprintf(keyfile, sizeof(keyfile), "%s/keys", dir);
	snprintf(keypem, sizeof(keypem), "%s/key.pem", dir);
	for (size_t i = 0; i < sizeof(records) / sizeof(records[0]); i++)
		if (add_key(records[i][0], records[i][1]) != 0) {
			fprintf(stderr, "check_dkimcheck: cannot make a key with %s"
				" (Debian packages python3-dkim, openssl)\n", PY);
			return (1);
		}

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_survives, 0, sizeof(cases) / sizeof(cases[0]));
	tcase_add_test(tc, test_orgdomain);
	tcase_add_test(tc, test_bounds);
	tcase_add_loop_test(tc, test_touched_fields_match_rewrite, 0, 4);
	suite_add_tcase(s, tc);
	rc = ck_run(s);

	if (access(DNS_DNSMASQ, X_OK) < 0 || serve_keys() < 0) {
		fprintf(stderr, "check_dkimcheck: %s or the key file: %s (Debian package:"
			" dnsmasq-base)\n", DNS_DNSMASQ, strerror(errno));
		return (1);
	}
	/* No fork per test: a failure unwinds into the teardown, which stops
	 * dnsmasq; dnslib's atexit handler catches anything left. */
	tc = tcase_create("dnsmasq");
	tcase_add_checked_fixture(tc, dns_setup, dns_teardown);
	tcase_add_test(tc, test_dns_keys);
	tcase_add_test(tc, test_dns_cached);
	suite_add_tcase(sd, tc);
	tc = tcase_create("no server");
	tcase_add_test(tc, test_dns_silent);
	tcase_add_test(tc, test_dns_nobody_listens);
	tcase_add_test(tc, test_dns_hostile);
	suite_add_tcase(sd, tc);
	rc |= ck_run_nofork(sd);
	for (int i = 0; i < MAX_TXT; i++)
		free(txt[i]);
	return (rc);
}
