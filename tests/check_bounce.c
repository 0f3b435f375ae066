/*
 * check_bounce.c - the DSN parser over a corpus of bounces in the formats
 * of Postfix, Exim, Sendmail, Exchange and Gmail (tests/bounces/), plus
 * malformed, truncated and hostile input; VERP decoding; the Maildir.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bounce.h"
#include "probe.h"
#include "token.h"

struct want_rcpt {
	const char *address, *status, *action, *diag_part;
};

static const struct {
	const char *file;
	int	is_dsn;
	const char *group;		/* from List-Id with domain example.com */
	size_t	n;
	struct want_rcpt r[2];
} corpus[] = {
	{"postfix.eml", 1, "group1", 1, {{"alice@example.org", "5.1.1", "failed",
	"smtp; 550 5.1.1 <alice@example.org>: Recipient address rejected: User unknown"}}},
	{"exim.eml", 1, "group2", 1, {{"carol@example.net", "5.0.0", "failed",
	"550 mailbox unavailable"}}},
	{"sendmail.eml", 1, "group1", 1, {{"dave@example.net", "5.2.2", "failed",
	"SMTP; 552 5.2.2 Mailbox full"}}},
	{"exchange.eml", 1, "group1", 1, {{"erin@example.com", "5.1.10", "failed",
	"RecipientNotFound; Recipient not found by SMTP address lookup"}}},
	{"gmail.eml", 1, "group1", 1, {{"frank@gmail.example", "5.1.1", "failed",
	"does not exist. Please try 550-5.1.1 double-checking"}}},
	{"delayed.eml", 1, NULL, 1, {{"gina@example.org", "4.4.1", "delayed",
	"Connection timed out"}}},
	{"multi.eml", 1, NULL, 2, {{"hank@example.org", "5.1.1", "failed", "no such user"},
	{"ida@example.org", "4.2.2", "delayed", "mailbox full"}}},
	{"global.eml", 1, "board", 1, {{"jörg@example.de", "5.1.1", "failed", "Benutzer"}}},
	{"unterminated.eml", 1, NULL, 1, {{"kim@example.org", "5.7.1", "failed", "policy"}}},
	{"truncated.eml", 1, NULL, 0, {{NULL, NULL, NULL, NULL}}},
	{"nonstandard.eml", 0, NULL, 0, {{NULL, NULL, NULL, NULL}}},
	{"no-boundary-param.eml", 0, NULL, 0, {{NULL, NULL, NULL, NULL}}},
	{"vacation.eml", 0, NULL, 0, {{NULL, NULL, NULL, NULL}}},
};

/* to_crlf - the corpus is stored with LF; SMTP delivers CR LF */
static char *
to_crlf(const char *s, size_t len, size_t *out)
{
	char   *d = malloc(2 * len + 1);
	size_t	n = 0;

	ck_assert_ptr_nonnull(d);
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\n')
			d[n++] = '\r';
		d[n++] = s[i];
	}
	*out = n;
	return (d);
}

static void
check_corpus(int i, int crlf)
{
	char	rel[256], group[128];
	long	len;
	char   *raw, *msg;
	size_t	mlen;
	struct bounce_report rep;

	snprintf(rel, sizeof(rel), "tests/bounces/%s", corpus[i].file);
	raw = ck_slurp(ck_srcfile(rel), &len);
	if (crlf)
		msg = to_crlf(raw, (size_t) len, &mlen);
	else {
		msg = raw;
		mlen = (size_t) len;
	}
	ck_assert_int_eq(bounce_parse(msg, mlen, &rep), 0);
	ck_assert_msg(rep.is_dsn == corpus[i].is_dsn, "%s: is_dsn %d", corpus[i].file, rep.is_dsn);
	ck_assert_msg(rep.nrcpt == corpus[i].n, "%s: %zu recipients, want %zu",
		      corpus[i].file, rep.nrcpt, corpus[i].n);
	for (size_t k = 0; k < rep.nrcpt; k++) {
		const struct want_rcpt *w = &corpus[i].r[k];

		ck_assert_str_eq(rep.rcpt[k].address, w->address);
		ck_assert_str_eq(rep.rcpt[k].status, w->status);
		ck_assert_str_eq(rep.rcpt[k].action, w->action);
		ck_assert_msg(strstr(rep.rcpt[k].diagnostic, w->diag_part) != NULL,
			      "%s: diagnostic \"%s\" lacks \"%s\"", corpus[i].file,
			      rep.rcpt[k].diagnostic, w->diag_part);
	}
	if (corpus[i].group) {
		ck_assert_int_eq(bounce_list_name(rep.list_id, "example.com", group,
						  sizeof(group)), 0);
		ck_assert_str_eq(group, corpus[i].group);
	} else if (rep.list_id[0])
		ck_assert_int_ne(bounce_list_name(rep.list_id, "example.com", group,
						  sizeof(group)) == 0 && corpus[i].is_dsn, 1);
	bounce_report_free(&rep);
	if (msg != raw)
		free(msg);
	free(raw);
}

START_TEST(test_corpus_lf)
{
	check_corpus(_i, 0);
}
END_TEST

START_TEST(test_corpus_crlf)
{
	check_corpus(_i, 1);
}
END_TEST

/* Every prefix of every sample parses without crashing or overreading. */
START_TEST(test_truncations)
{
	char	rel[256];
	long	len;
	char   *raw;

	snprintf(rel, sizeof(rel), "tests/bounces/%s", corpus[_i].file);
	raw = ck_slurp(ck_srcfile(rel), &len);
	for (long cut = 0; cut <= len; cut += (len > 2000 ? 7 : 1)) {
		char   *copy = malloc((size_t) cut + 1);
		struct bounce_report rep;

		ck_assert_ptr_nonnull(copy);
		memcpy(copy, raw, (size_t) cut);
		ck_assert_int_eq(bounce_parse(copy, (size_t) cut, &rep), 0);
		ck_assert_uint_le(rep.nrcpt, corpus[_i].n);
		bounce_report_free(&rep);
		free(copy);
	}
	free(raw);
}
END_TEST

/* Hostile: a huge folded header, thousands of blocks, deep nesting. */
START_TEST(test_hostile)
{
	size_t	cap = 4 * 1024 * 1024, n = 0;
	char   *m = malloc(cap);
	struct bounce_report rep;

	ck_assert_ptr_nonnull(m);
	/* 1 MB of one folded header field, then a DSN with 5000 blocks. */
	n += (size_t) sprintf(m + n, "Subject: x");
	while (n < 1024 * 1024)
		n += (size_t) sprintf(m + n, "\r\n folded folded folded folded folded");
	n += (size_t) sprintf(m + n, "\r\nContent-Type: multipart/report; boundary=\"q\"\r\n\r\n"
			      "--q\r\nContent-Type: message/delivery-status\r\n\r\n"
			      "Reporting-MTA: dns; x\r\n\r\n");
	for (int i = 0; i < 5000; i++)
		n += (size_t) sprintf(m + n, "Final-Recipient: rfc822; u%d@example.org\r\n"
				      "Action: failed\r\nStatus: 5.1.1\r\n\r\n", i);
	n += (size_t) sprintf(m + n, "--q--\r\n");
	ck_assert_uint_lt(n, cap);
	ck_assert_int_eq(bounce_parse(m, n, &rep), 0);
	ck_assert_uint_eq(rep.nrcpt, BOUNCE_MAX_RCPTS);
	ck_assert_str_eq(rep.rcpt[BOUNCE_MAX_RCPTS - 1].address, "u99@example.org");
	bounce_report_free(&rep);

	/* 200 nested multiparts: parsed to the depth limit, no deeper. */
	n = 0;
	for (int i = 0; i < 200; i++)
		n += (size_t) sprintf(m + n, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n"
				      "--b%d\r\n", i, i);
	n += (size_t) sprintf(m + n, "Content-Type: message/delivery-status\r\n\r\n"
			      "Final-Recipient: rfc822; deep@example.org\r\nAction: failed\r\n");
	ck_assert_int_eq(bounce_parse(m, n, &rep), 0);
	ck_assert_uint_eq(rep.nrcpt, 0);
	bounce_report_free(&rep);

	/* Binary junk, NUL bytes, a field longer than any buffer. */
	for (size_t i = 0; i < 100000; i++)
		m[i] = (char) (i * 7919 % 251);
	ck_assert_int_eq(bounce_parse(m, 100000, &rep), 0);
	bounce_report_free(&rep);
	n = (size_t) sprintf(m, "Content-Type: multipart/report; boundary=b\r\n\r\n--b\r\n"
			     "Content-Type: message/delivery-status\r\n\r\nFinal-Recipient: rfc822; ");
	memset(m + n, 'a', 100000);
	n += 100000;
	n += (size_t) sprintf(m + n, "@example.org\r\nAction: failed\r\n\r\n--b--\r\n");
	ck_assert_int_eq(bounce_parse(m, n, &rep), 0);
	ck_assert_uint_eq(rep.nrcpt, 0);	/* too long to be an address */
	bounce_report_free(&rep);
	free(m);
}
END_TEST

static const struct {
	const char *local, *want;
} verp[] = {
	{"bounce+alice=example.org", "alice@example.org"},
	{"BOUNCE+alice=example.org", "alice@example.org"},
	{"bounce+a.b+c=sub.example.org", "a.b+c@sub.example.org"},
	{"bounce+x=y=example.org", "x=y@example.org"},
	{"bounce", NULL},
	{"bounce+", NULL},
	{"bounce+alice", NULL},
	{"bounce+=example.org", NULL},
	{"bounce+alice=", NULL},
	{"bounce+alice=localhost", NULL},
	{"bouncer+alice=example.org", NULL},
};

START_TEST(test_verp)
{
	char	addr[256];
	int	rc = bounce_verp_decode(verp[_i].local, "bounce", addr, sizeof(addr));

	if (verp[_i].want) {
		ck_assert_msg(rc == 0, "%s", verp[_i].local);
		ck_assert_str_eq(addr, verp[_i].want);
	} else
		ck_assert_msg(rc < 0, "%s decoded to %s", verp[_i].local, addr);
}
END_TEST

START_TEST(test_list_name)
{
	char	g[64];

	ck_assert_int_eq(bounce_list_name("Club <group1.example.com>", "example.com", g, sizeof(g)), 0);
	ck_assert_str_eq(g, "group1");
	ck_assert_int_eq(bounce_list_name("<a.b.EXAMPLE.com>", "example.com", g, sizeof(g)), 0);
	ck_assert_str_eq(g, "a.b");
	ck_assert_int_ne(bounce_list_name("<group1.example.net>", "example.com", g, sizeof(g)), 0);
	ck_assert_int_ne(bounce_list_name("<example.com>", "example.com", g, sizeof(g)), 0);
	ck_assert_int_ne(bounce_list_name("group1.example.com", "example.com", g, sizeof(g)), 0);
	ck_assert_int_ne(bounce_list_name("<x.xexample.com>", "example.com", g, sizeof(g)), 0);
}
END_TEST

/* The Maildir: tmp/ then new/, content with LF line ends. */
START_TEST(test_maildir)
{
	char	dir[] = "/tmp/check_maildir.XXXXXX", sub[400], name[300], err[512], cmd[1200];
	const char msg[] = "Subject: x\r\n\r\nline\r\nbare\rcr\r\n";
	struct stat st;
	long	len;
	char   *got;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/md", dir);
	ck_assert_int_eq(maildir_create(sub, err, sizeof(err)), 0);
	ck_assert_int_eq(maildir_create(sub, err, sizeof(err)), 0);	/* idempotent */
	ck_assert_int_eq(maildir_write(sub, msg, sizeof(msg) - 1, name, sizeof(name), err,
				       sizeof(err)), 0);
	ck_assert_ptr_null(strchr(name, '/'));
	snprintf(cmd, sizeof(cmd), "%s/tmp/%s", sub, name);
	ck_assert_int_eq(stat(cmd, &st), 0);
	ck_assert_int_eq(maildir_publish(sub, name, err, sizeof(err)), 0);
	ck_assert_int_ne(stat(cmd, &st), 0);
	snprintf(cmd, sizeof(cmd), "%s/new/%s", sub, name);
	got = ck_slurp(cmd, &len);
	ck_assert_str_eq(got, "Subject: x\n\nline\nbare\rcr\n");
	free(got);
	/* A Maildir whose tmp/ is not a directory: a clear error. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/tmp' && touch '%s/tmp'", sub, sub);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(maildir_write(sub, msg, sizeof(msg) - 1, name, sizeof(name), err,
				       sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "cannot create"));
	ck_assert_int_eq(maildir_create(sub, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "not a directory"));
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Probe tags: made and checked with a key; any change is caught. */
START_TEST(test_probe_tags)
{
	unsigned char key[PROBE_KEY_LEN], other[PROBE_KEY_LEN];
	char	local[300], member[300], bad[300];
	unsigned long exp;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	ck_assert_int_eq(probe_local(key, "bounce", "Alice.B-c@Example.org", "group1", 2000000000UL,
				     local, sizeof(local)), 0);
	ck_assert_int_eq(strncmp(local, "bounce+probe-773594", 19), 0);
	/* The MAC is HMAC-SHA256("probe\n" member "\n" group "\n" expiry):
	 * tags sent by earlier versions stay valid (computed independently). */
	ck_assert_ptr_nonnull(strstr(local, "-ca1ec2a7bcc59434ca05-"));
	ck_assert_int_eq(probe_parse(local, "bounce", member, sizeof(member), &exp), 0);
	ck_assert_str_eq(member, "Alice.B-c@Example.org");
	ck_assert_uint_eq(exp, 2000000000UL);
	ck_assert_int_eq(probe_verify(key, local, "bounce", "group1", 1999999999UL), PROBE_VALID);
	/* Case of the list and of the hex does not matter. */
	ck_assert_int_eq(probe_verify(key, local, "bounce", "GROUP1", 1999999999UL), PROBE_VALID);
	/* Expired. */
	ck_assert_int_eq(probe_verify(key, local, "bounce", "group1", 2000000001UL), PROBE_EXPIRED);
	/* Another list, another key. */
	ck_assert_int_eq(probe_verify(key, local, "bounce", "group2", 1999999999UL), PROBE_FORGED);
	ck_assert_int_eq(probe_verify(other, local, "bounce", "group1", 1999999999UL), PROBE_FORGED);
	/* Another member, a later expiry, one MAC digit changed. */
	snprintf(bad, sizeof(bad), "%s", local);
	bad[strlen(bad) - strlen("=Example.org") - 1] = 'd';
	ck_assert_int_eq(probe_verify(key, bad, "bounce", "group1", 1999999999UL), PROBE_FORGED);
	snprintf(bad, sizeof(bad), "%s", local);
	bad[18] = '8';
	ck_assert_int_eq(probe_verify(key, bad, "bounce", "group1", 1999999999UL), PROBE_FORGED);
	snprintf(bad, sizeof(bad), "%s", local);
	bad[22] = bad[22] == 'a' ? 'b' : 'a';
	ck_assert_int_eq(probe_verify(key, bad, "bounce", "group1", 1999999999UL), PROBE_FORGED);
	/* Not probe addresses at all. */
	ck_assert_int_eq(probe_parse("bounce+alice=example.org", "bounce", member, sizeof(member),
				     &exp), -1);
	ck_assert_int_eq(probe_parse("bounce+probe-zz-00-a=b", "bounce", member, sizeof(member),
				     &exp), -1);
	ck_assert_int_eq(probe_verify(key, "bounce", "bounce", "group1", 0), PROBE_EXPIRED);
}
END_TEST

/*
 * Confirmation tokens: short, bound to action, list, address and expiry;
 * tampered, expired, another list, another address, another key and
 * malformed tokens are told apart; a probe tag is no token.
 */
START_TEST(test_confirm_tokens)
{
	unsigned char key[PROBE_KEY_LEN], other[PROBE_KEY_LEN];
	char	tok[TOKEN_MAX + 1], bad[64];
	enum token_action act = 0;
	unsigned long exp = 0;

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	ck_assert_int_eq(token_make(key, TOKEN_SUBSCRIBE, "group1", "ann@example.org",
				    2000000000UL, tok, sizeof(tok)), 0);
	/* HMAC-SHA256("confirm\n" "s\n" group "\n" address "\n" expiry). */
	ck_assert_str_eq(tok, "s77359400-1e720315198a60805d7e");
	ck_assert_uint_le(strlen(tok), TOKEN_MAX);
	ck_assert_int_eq(token_check(key, tok, "group1", "ann@example.org", 1999999999UL, &act,
				     &exp), TOKEN_VALID);
	ck_assert_int_eq(act, TOKEN_SUBSCRIBE);
	ck_assert_uint_eq(exp, 2000000000UL);
	/* Case of address, list and token does not matter. */
	ck_assert_int_eq(token_check(key, "S77359400-1E720315198A60805D7E", "GROUP1",
				     "Ann@Example.ORG", 1999999999UL, NULL, NULL), TOKEN_VALID);
	/* Expired: ours, too old. */
	ck_assert_int_eq(token_check(key, tok, "group1", "ann@example.org", 2000000001UL, &act,
				     &exp), TOKEN_EXPIRED);
	/* Another list, another address, another key. */
	ck_assert_int_eq(token_check(key, tok, "group2", "ann@example.org", 1999999999UL, NULL,
				     NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_check(key, tok, "group1", "mallory@example.org", 1999999999UL,
				     NULL, NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_check(other, tok, "group1", "ann@example.org", 1999999999UL,
				     NULL, NULL), TOKEN_FORGED);
	/* Tampered: the action, the expiry, a MAC digit. */
	snprintf(bad, sizeof(bad), "u%s", tok + 1);
	ck_assert_int_eq(token_check(key, bad, "group1", "ann@example.org", 1999999999UL, NULL,
				     NULL), TOKEN_FORGED);
	snprintf(bad, sizeof(bad), "s77359401%s", tok + 9);
	ck_assert_int_eq(token_check(key, bad, "group1", "ann@example.org", 1999999999UL, NULL,
				     NULL), TOKEN_FORGED);
	snprintf(bad, sizeof(bad), "%s", tok);
	bad[strlen(bad) - 1] = bad[strlen(bad) - 1] == 'e' ? 'f' : 'e';
	ck_assert_int_eq(token_check(key, bad, "group1", "ann@example.org", 1999999999UL, NULL,
				     NULL), TOKEN_FORGED);
	/* An unsubscribe token differs from the subscribe one. */
	ck_assert_int_eq(token_make(key, TOKEN_UNSUBSCRIBE, "group1", "ann@example.org",
				    2000000000UL, bad, sizeof(bad)), 0);
	ck_assert_str_ne(bad + 1, tok + 1);
	ck_assert_int_eq(token_check(key, bad, "group1", "ann@example.org", 1999999999UL, &act,
				     NULL), TOKEN_VALID);
	ck_assert_int_eq(act, TOKEN_UNSUBSCRIBE);
	/* Malformed: no action, no dash, short or long MAC, junk, a probe tag. */
	ck_assert_int_eq(token_check(key, "x77359400-1e720315198a60805d7e", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "s773594001e720315198a60805d7e", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "s77359400-1e720315198a60805d7", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "s77359400-1e720315198a60805d7e0", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "s77359400-1e720315198a60805dzz", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "s11111111111111111111-1e720315198a60805d7e", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "", "group1", "ann@example.org", 0, NULL, NULL),
			 TOKEN_MALFORMED);
	ck_assert_int_eq(token_check(key, "probe-77359400-ca1ec2a7bcc59434ca05", "group1",
				     "ann@example.org", 0, NULL, NULL), TOKEN_MALFORMED);
	/* A buffer too small, an unknown action. */
	ck_assert_int_eq(token_make(key, TOKEN_SUBSCRIBE, "group1", "ann@example.org",
				    2000000000UL, bad, 10), -1);
	ck_assert_int_eq(token_make(key, (enum token_action) 'x', "group1", "ann@example.org",
				    2000000000UL, bad, sizeof(bad)), -1);
}
END_TEST

/*
 * A held post's token: bound to list, post and expiry; tampered,
 * expired, another list, another post, another key and malformed tokens
 * are told apart; a confirmation token is no held one, nor the reverse.
 */
START_TEST(test_held_tokens)
{
	unsigned char key[PROBE_KEY_LEN], other[PROBE_KEY_LEN];
	char	tok[TOKEN_MAX + 1], bad[TOKEN_MAX + 16], conf[TOKEN_MAX + 1];
	long long id = 0;
	unsigned long exp = 0;
	static const char *const malformed[] = {
		"", "h", "hc", "hc.", "hc.77359400", "hc.77359400-",
		"c.77359400-281ab914757605a6697e",		/* no "h" */
		"sc.77359400-281ab914757605a6697e",		/* another letter */
		"hc77359400-281ab914757605a6697e",		/* no "." */
		"h.77359400-281ab914757605a6697e",		/* no id */
		"hc.-281ab914757605a6697e",			/* no expiry */
		"hc.77359400.281ab914757605a6697e",		/* "." for "-" */
		"hc.77359400-52d0a4ec9bcee26ff36",		/* short MAC */
		"hc.77359400-281ab914757605a6697e0",		/* long MAC */
		"hc.77359400-52d0a4ec9bcee26ff3zz",		/* not hex */
		"h+c.77359400-281ab914757605a6697e",		/* a sign */
		"h0xc.77359400-281ab914757605a6697e",		/* "0x" */
		"h c.77359400-281ab914757605a6697e",		/* a blank */
		"hc.-77359400-281ab914757605a6697e",		/* a minus */
		"h11111111111111111.77359400-281ab914757605a6697e",	/* 17 digits */
		"h8000000000000000.77359400-281ab914757605a6697e",	/* > LLONG_MAX */
		"hc.11111111111111111-281ab914757605a6697e",
		"s77359400-1e720315198a60805d7e",		/* a confirmation token */
		"probe-77359400-ca1ec2a7bcc59434ca05",
	};

	memset(key, 7, sizeof(key));
	memset(other, 8, sizeof(other));
	ck_assert_int_eq(token_held_make(key, "group1", 12, "mod@x.test", 2000000000UL, tok, sizeof(tok)), 0);
	/* HMAC-SHA256("held\n" group "\n" id in decimal "\n" moderator "\n"
	 * expiry in hex). */
	ck_assert_str_eq(tok, "hc.77359400-281ab914757605a6697e");
	ck_assert_int_eq(token_held_check(key, tok, "group1", "mod@x.test", 1999999999UL, &id, &exp),
			 TOKEN_VALID);
	ck_assert_int_eq(id, 12);
	ck_assert_uint_eq(exp, 2000000000UL);
	/* Case of list and token does not matter; now == expires is alive. */
	ck_assert_int_eq(token_held_check(key, "HC.77359400-281AB914757605A6697E", "Group1", "mod@x.test",
					  2000000000UL, NULL, NULL), TOKEN_VALID);
	/* One spelling only: a leading zero in the id or the expiry is no token. */
	ck_assert_int_eq(token_held_check(key, "h0c.77359400-281ab914757605a6697e", "group1", "mod@x.test",
					  1999999999UL, NULL, NULL), TOKEN_MALFORMED);
	ck_assert_int_eq(token_held_check(key, "hc.077359400-281ab914757605a6697e", "group1", "mod@x.test",
					  1999999999UL, NULL, NULL), TOKEN_MALFORMED);
	/* The longest: the largest id and expiry fit in TOKEN_MAX. */
	ck_assert_int_eq(token_held_make(key, "group1", 0x7fffffffffffffffLL, "mod@x.test", (unsigned long) -1,
					 bad, sizeof(bad)), 0);
	ck_assert_uint_le(strlen(bad), TOKEN_MAX);
	ck_assert_int_eq(token_held_check(key, bad, "group1", "mod@x.test", 0, &id, NULL), TOKEN_VALID);
	ck_assert_int_eq(id, 0x7fffffffffffffffLL);
	ck_assert_int_eq(token_held_make(key, "group1", 0, "mod@x.test", 1, bad, sizeof(bad)), 0);
	ck_assert_int_eq(token_held_check(key, bad, "group1", "mod@x.test", 0, &id, NULL), TOKEN_VALID);
	ck_assert_int_eq(id, 0);
	/* Expired: ours, too old; it still says which post. */
	id = 0;
	ck_assert_int_eq(token_held_check(key, tok, "group1", "mod@x.test", 2000000001UL, &id, &exp),
			 TOKEN_EXPIRED);
	ck_assert_int_eq(id, 12);
	/* Made for one moderator: another address (a former moderator's
	 * mail naming a current one) is refused; the address's case does
	 * not matter. */
	ck_assert_int_eq(token_held_check(key, tok, "group1", "other@x.test", 0, NULL, NULL),
			 TOKEN_FORGED);
	ck_assert_int_eq(token_held_check(key, tok, "group1", "MOD@x.test", 0, NULL, NULL),
			 TOKEN_VALID);
	/* Another list, another key. */
	ck_assert_int_eq(token_held_check(key, tok, "group2", "mod@x.test", 0, NULL, NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_held_check(other, tok, "group1", "mod@x.test", 0, NULL, NULL), TOKEN_FORGED);
	/* Tampered: another post (its own token differs), the expiry, a MAC digit. */
	ck_assert_int_eq(token_held_check(key, "hd.77359400-281ab914757605a6697e", "group1", "mod@x.test", 0,
					  NULL, NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_held_make(key, "group1", 13, "mod@x.test", 2000000000UL, bad, sizeof(bad)), 0);
	ck_assert_str_eq(bad, "hd.77359400-149679c3763dcf595c2d");
	ck_assert_int_eq(token_held_check(key, "hc.77359401-281ab914757605a6697e", "group1", "mod@x.test", 0,
					  NULL, NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_held_check(key, "hc.77359400-52d0a4ec9bcee26ff365", "group1", "mod@x.test", 0,
					  NULL, NULL), TOKEN_FORGED);
	/* The same MAC over another purpose: a confirmation token made for
	 * "group1" and address "12" is no held token. */
	ck_assert_int_eq(token_make(key, TOKEN_SUBSCRIBE, "group1", "12", 2000000000UL, conf,
				    sizeof(conf)), 0);
	snprintf(bad, sizeof(bad), "hc.%s", conf + 1);
	ck_assert_int_eq(token_held_check(key, bad, "group1", "mod@x.test", 0, NULL, NULL), TOKEN_FORGED);
	ck_assert_int_eq(token_check(key, tok, "group1", "12", 0, NULL, NULL), TOKEN_MALFORMED);
	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++)
		ck_assert_msg(token_held_check(key, malformed[i], "group1", "mod@x.test", 0, &id, &exp)
			      == TOKEN_MALFORMED, "%s: not malformed", malformed[i]);
	/* A buffer too small, a negative id. */
	ck_assert_int_eq(token_held_make(key, "group1", 12, "mod@x.test", 2000000000UL, bad, 32), -1);
	ck_assert_int_eq(token_held_make(key, "group1", 12, "mod@x.test", 2000000000UL, bad, 33), 0);
	ck_assert_int_eq(token_held_make(key, "group1", -1, "mod@x.test", 2000000000UL, bad, sizeof(bad)), -1);
}
END_TEST

/* The secret: made once, 0600, read back the same; a loose one refused. */
START_TEST(test_probe_key)
{
	char	dir[] = "/tmp/check_probe.XXXXXX", path[300], err[512];
	unsigned char k1[PROBE_KEY_LEN], k2[PROBE_KEY_LEN];
	struct stat st;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mlistd.key", dir);
	ck_assert_int_eq(probe_key_load(path, k1, err, sizeof(err)), 0);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mode & 0777, 0600);
	ck_assert_int_eq(probe_key_load(path, k2, err, sizeof(err)), 0);
	ck_assert_int_eq(memcmp(k1, k2, sizeof(k1)), 0);
	ck_assert_int_eq(chmod(path, 0644), 0);
	ck_assert_int_eq(probe_key_load(path, k2, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, "chmod 600"));
	ck_assert_int_eq(unlink(path), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("bounce");
	TCase  *tc = tcase_create("bounce");
	int	n = (int) (sizeof(corpus) / sizeof(corpus[0]));

	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_corpus_lf, 0, n);
	tcase_add_loop_test(tc, test_corpus_crlf, 0, n);
	tcase_add_loop_test(tc, test_truncations, 0, n);
	tcase_add_test(tc, test_hostile);
	tcase_add_loop_test(tc, test_verp, 0, sizeof(verp) / sizeof(verp[0]));
	tcase_add_test(tc, test_list_name);
	tcase_add_test(tc, test_maildir);
	tcase_add_test(tc, test_probe_tags);
	tcase_add_test(tc, test_probe_key);
	tcase_add_test(tc, test_confirm_tokens);
	tcase_add_test(tc, test_held_tokens);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
