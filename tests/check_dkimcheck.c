/*
 * check_dkimcheck.c - will the author's DKIM signature survive the list
 * copy?  Posts are signed at test time with a real RSA key by Debian's
 * python3-dkim (tests/dkimsign.py) and verified by libopendkim through
 * its file query method (no DNS).  The module's table of touched fields
 * is checked against what rewrite_copy() really changes.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "dkimcheck.h"
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
	Suite  *s = suite_create("dkimcheck");
	TCase  *tc = tcase_create("dkimcheck");
	static const char *const records[][2] = {
		{"s1", "example.org"}, {"s1", "mail.example.org"}, {"s1", "other.test"},
		{"s1", "badexample.org"}, {"s1", "co.uk"}, {"s1", "mail.example.co.uk"},
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
	return (rc);
}
