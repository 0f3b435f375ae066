/*
 * check_rewrite.c - table-driven tests for the list copy: header fields
 * removed and added, fields and body kept byte for byte, From: parsing.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "notice.h"
#include "rewrite.h"

#define LIST_HDRS(desc) \
	"X-BeenThere: group1@lists.test\n" \
	"Sender: bounce@lists.test\n" \
	"List-Id: " desc "<group1.lists.test>\n" \
	"List-Unsubscribe: <mailto:postmaster@lists.test?subject=unsubscribe%20group1>\n" \
	"List-Help: <mailto:postmaster@lists.test?subject=help>\n" \
	"List-Subscribe: <mailto:postmaster@lists.test?subject=subscribe%20group1>\n" \
	"List-Post: <mailto:group1@lists.test>\n"
#define BULK "Precedence: bulk\nX-Auto-Response-Suppress: OOF\n"

static const struct {
	const char *label;
	const char *in;			/* as received: CRLF */
	const char *desc;
	int	is_group;
	const char *want;		/* LF */
} copies[] = {
	{"plain post", "From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n", "", 1,
	"From: a@x.test\nSubject: s\n" LIST_HDRS("") BULK "\nbody\n"},
	{"an earlier X-BeenThere is kept",
		"X-BeenThere: board@lists.test\r\nFrom: a@x.test\r\n\r\nb\r\n", "", 1,
	"X-BeenThere: board@lists.test\nFrom: a@x.test\n" LIST_HDRS("") BULK "\nb\n"},
	{"existing Sender and List-* replaced",
		"Sender: someone@else.test\r\nFrom: a@x.test\r\nList-Id: <other.list>\r\n"
		"list-post: <mailto:x@y>\r\nList-Archive: <http://x>\r\nSubject: s\r\n\r\nb\r\n",
	"", 1, "From: a@x.test\nSubject: s\n" LIST_HDRS("") BULK "\nb\n"},
	{"folded fields kept, folded List-* dropped whole",
		"From: a@x.test\r\nX-Long: one\r\n two\r\n\tthree\r\nList-Id: Other\r\n <o.test>\r\n"
		"Subject: s\r\n\r\nb\r\n", "", 1,
	"From: a@x.test\nX-Long: one\n two\n\tthree\nSubject: s\n" LIST_HDRS("") BULK "\nb\n"},
	{"Bcc, Fcc and old Precedence removed",
		"From: a@x.test\r\nBcc: hidden@x.test\r\nFcc: /etc/passwd\r\nPrecedence: list\r\n"
		"X-Auto-Response-Suppress: All\r\n\r\nb\r\n", "", 1,
	"From: a@x.test\n" LIST_HDRS("") BULK "\nb\n"},
	{"alias: no Precedence added, existing one kept",
		"From: a@x.test\r\nPrecedence: junk\r\n\r\nb\r\n", "", 0,
	"From: a@x.test\nPrecedence: junk\n" LIST_HDRS("") "\nb\n"},
	{"description with specials is quoted",
		"From: a@x.test\r\n\r\nb\r\n", "Club \"A\", inc.", 1,
	"From: a@x.test\n" LIST_HDRS("\"Club \\\"A\\\", inc.\" ") BULK "\nb\n"},
	{"description with control characters cannot inject",
		"From: a@x.test\r\n\r\nb\r\n", "Evil\r\nBcc: x@y", 1,
	"From: a@x.test\n" LIST_HDRS("\"Evil  Bcc: x@y\" ") BULK "\nb\n"},
	{"plain description", "From: a@x.test\r\n\r\nb\r\n", "Club members", 1,
	"From: a@x.test\n" LIST_HDRS("Club members ") BULK "\nb\n"},
	{"body byte for byte: dots, blank lines, 8-bit, header-like lines",
		"From: a@x.test\r\n\r\n.\r\n..x\r\nSender: not a header\r\n\r\n\xc3\xa9t\xc3\xa9\r\n", "", 1,
	"From: a@x.test\n" LIST_HDRS("") BULK "\n.\n..x\nSender: not a header\n\n\xc3\xa9t\xc3\xa9\n"},
	{"no body at all", "From: a@x.test\r\nSubject: s\r\n", "", 1,
	"From: a@x.test\nSubject: s\n" LIST_HDRS("") BULK},
	{"name with space before the colon", "Sender : x@y\r\nFrom: a@x.test\r\n\r\nb\r\n", "", 1,
	"From: a@x.test\n" LIST_HDRS("") BULK "\nb\n"},
	/*
	 * A line that is no field ends the header for everybody: the fields
	 * after it are body, for the loop check as for the members, and the
	 * copy gets the empty line the message lacked.
	 */
	{"a line without a colon ends the header",
		"From: a@x.test\r\nthis is no field\r\nList-Id: <group1.lists.test>\r\n"
		"Sender: s@x.test\r\n\r\nb\r\n", "", 1,
	"From: a@x.test\n" LIST_HDRS("") BULK "\nthis is no field\nList-Id: <group1.lists.test>\n"
	"Sender: s@x.test\n\nb\n"},
	{"a continuation line first is no header",
		" folded: x\r\nFrom: a@x.test\r\n\r\nb\r\n", "", 1,
	LIST_HDRS("") BULK "\n folded: x\nFrom: a@x.test\n\nb\n"},
	{"LF line ends are tolerated", "From: a@x.test\nSubject: s\n\nbody\n", "", 1,
	"From: a@x.test\nSubject: s\n" LIST_HDRS("") BULK "\nbody\n"},
};

START_TEST(test_copy)
{
	struct rewrite_list l = {"Group1", copies[_i].desc, "lists.test", "bounce",
	"postmaster", copies[_i].is_group, 0, 0, 0};
	struct rewrite_msg *m;
	size_t	len;
	char   *out;

	ck_assert_int_eq(rewrite_parse(copies[_i].in, strlen(copies[_i].in), NULL, &m), REWRITE_OK);
	out = rewrite_copy(m, &l, &len);
	ck_assert_ptr_nonnull(out);
	ck_assert_msg(len == strlen(copies[_i].want) && memcmp(out, copies[_i].want, len) == 0,
		      "%s:\n--- got ---\n%.*s--- want ---\n%s", copies[_i].label,
		      (int) len, out, copies[_i].want);
	free(out);
	rewrite_msg_free(m);
}
END_TEST

static const struct {
	const char *label;
	const char *in;
	const char *want;		/* NULL: no usable From: */
} froms[] = {
	{"bare", "From: alice@example.org\r\n\r\nx\r\n", "alice@example.org"},
	{"display name", "From: Alice Example <alice@example.org>\r\n\r\nx\r\n", "alice@example.org"},
	{"quoted display name", "From: \"Example, Alice\" <alice@example.org>\r\n\r\nx\r\n",
	"alice@example.org"},
	{"comment", "From: alice@example.org (Alice)\r\n\r\nx\r\n", "alice@example.org"},
	{"encoded word", "From: =?UTF-8?B?w4FsaWNl?= <alice@example.org>\r\n\r\nx\r\n",
	"alice@example.org"},
	{"folded", "From: Alice\r\n <alice@example.org>\r\n\r\nx\r\n", "alice@example.org"},
	{"lower-case name", "from: alice@example.org\r\n\r\nx\r\n", "alice@example.org"},
	{"quoted local part", "From: \"a b\"@example.org\r\n\r\nx\r\n", "\"a b\"@example.org"},
	{"no From", "Subject: x\r\n\r\nx\r\n", NULL},
	{"empty From", "From: \r\n\r\nx\r\n", NULL},
	{"garbage From", "From: <<<>>>\r\n\r\nx\r\n", NULL},
	{"no domain", "From: alice\r\n\r\nx\r\n", NULL},
	{"From only in the body", "Subject: x\r\n\r\nFrom: alice@example.org\r\n", NULL},
	/* What real mail clients send (RFC 5322 allows all of it). */
	{"trailing space", "From: Alice <alice@example.org> \r\n\r\nx\r\n", "alice@example.org"},
	{"trailing tab", "From: alice@example.org\t\r\n\r\nx\r\n", "alice@example.org"},
	{"comment after the address",
		"From: Alice <alice@example.org> (sent from my phone)\r\n\r\nx\r\n",
	"alice@example.org"},
	{"nested comments after it",
		"From: Alice <alice@example.org> (a (b) c) (d)  \r\n\r\nx\r\n", "alice@example.org"},
	{"comment before the address", "From: (Alice) alice@example.org\r\n\r\nx\r\n",
	"alice@example.org"},
	{"comment inside the display name",
		"From: Alice (the first) Example <alice@example.org>\r\n\r\nx\r\n",
	"alice@example.org"},
	{"folded with a tab, then a comment",
		"From: \"Alice\"\r\n\t<alice@example.org>\r\n (phone)\r\n\r\nx\r\n",
	"alice@example.org"},
	{"encoded word with a comma inside quotes",
		"From: \"=?ISO-8859-1?Q?M=FCller=2C_Ann?=\" <ann@example.org>\r\n\r\nx\r\n",
	"ann@example.org"},
	{"space before the colon", "From : alice@example.org\r\n\r\nx\r\n", "alice@example.org"},
	{"two mailboxes", "From: alice@example.org, Bob <bob@example.org>\r\n\r\nx\r\n",
	"alice@example.org bob@example.org"},
	{"two From: fields", "From: alice@example.org\r\nFrom: mallory@example.net\r\n\r\nx\r\n",
	NULL},
	{"From: after a line that is no field",
		"Subject: x\r\nno field here\r\nFrom: alice@example.org\r\n\r\nx\r\n", NULL},
	{"one mailbox without a domain", "From: alice@example.org, bob\r\n\r\nx\r\n", NULL},
	{"a group", "From: undisclosed-recipients:;\r\n\r\nx\r\n", NULL},
};

START_TEST(test_from)
{
	struct rewrite_msg *m;
	struct rewrite_from f;
	char	got[2048] = "";
	int	rc;

	ck_assert_int_eq(rewrite_parse(froms[_i].in, strlen(froms[_i].in), NULL, &m), REWRITE_OK);
	rc = rewrite_from(m, &f);
	for (size_t i = 0; rc == 0 && i < f.n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s", i ? " " : "",
			 f.addr[i]);
	if (froms[_i].want) {
		ck_assert_msg(rc == 0, "%s: no address", froms[_i].label);
		ck_assert_str_eq(got, froms[_i].want);
	} else
		ck_assert_msg(rc < 0, "%s: got %s", froms[_i].label, got);
	rewrite_msg_free(m);
}
END_TEST

/* The caps: one field too many, one byte too many, and just under. */
START_TEST(test_caps)
{
	struct rewrite_limits lim = {10, 200};
	struct rewrite_msg *m;
	char	buf[4096] = "";

	for (int i = 0; i < 10; i++)
		strcat(buf, "X-A: 1\r\n");
	strcat(buf, "\r\nbody\r\n");
	ck_assert_int_eq(rewrite_parse(buf, strlen(buf), &lim, &m), REWRITE_OK);
	rewrite_msg_free(m);
	memmove(buf + 8, buf, strlen(buf) + 1);
	memcpy(buf, "X-A: 1\r\n", 8);
	ck_assert_int_eq(rewrite_parse(buf, strlen(buf), &lim, &m), REWRITE_TOO_MANY);
	ck_assert_ptr_null(m);
	snprintf(buf, sizeof(buf), "Subject: %0189d\r\n\r\nb\r\n", 0);	/* 200 bytes */
	ck_assert_int_eq(rewrite_parse(buf, strlen(buf), &lim, &m), REWRITE_OK);
	rewrite_msg_free(m);
	snprintf(buf, sizeof(buf), "Subject: %0190d\r\n\r\nb\r\n", 0);
	ck_assert_int_eq(rewrite_parse(buf, strlen(buf), &lim, &m), REWRITE_TOO_BIG);
	/* The body does not count. */
	snprintf(buf, sizeof(buf), "Subject: s\r\n\r\n%03000d\r\n", 0);
	ck_assert_int_eq(rewrite_parse(buf, strlen(buf), &lim, &m), REWRITE_OK);
	rewrite_msg_free(m);
}
END_TEST

/*
 * Linear time: 200,000 List-Id fields (the header that took Mailutils'
 * per-field lookups minutes) are checked in one pass.  Asserted by count
 * of work, not by a clock: the check must see every field once and still
 * find the loop in the last one.
 */
START_TEST(test_many_fields)
{
	struct rewrite_limits lim = {1000000, 64 * 1024 * 1024};
	const char *one = "List-Id: <other.lists.test>\r\n";
	size_t	n = 200000, ol = strlen(one), len = 0;
	char   *buf = malloc(n * ol + 200);
	struct rewrite_msg *m;

	ck_assert_ptr_nonnull(buf);
	for (size_t i = 0; i < n; i++, len += ol)
		memcpy(buf + len, one, ol);
	len += (size_t) sprintf(buf + len, "List-Id: <group1.lists.test>\r\n\r\nb\r\n");
	ck_assert_int_eq(rewrite_parse(buf, len, &lim, &m), REWRITE_OK);
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 1);
	ck_assert_int_eq(rewrite_has_list_id(m, "group2", "lists.test"), 0);
	rewrite_msg_free(m);
	free(buf);
}
END_TEST

START_TEST(test_list_id_loop)
{
	const char *a = "List-Id: Club <Group1.Lists.Test>\r\n\r\nx\r\n";
	const char *b = "List-Id: <group10.lists.test>\r\nList-Id: <xgroup1.lists.test>\r\n\r\nx\r\n";
	const char *c = "Subject: List-Id: <group1.lists.test>\r\n\r\nList-Id: <group1.lists.test>\r\n";
	struct rewrite_msg *m;

	ck_assert_int_eq(rewrite_parse(a, strlen(a), NULL, &m), REWRITE_OK);
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 1);
	rewrite_msg_free(m);
	ck_assert_int_eq(rewrite_parse(b, strlen(b), NULL, &m), REWRITE_OK);
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
	ck_assert_int_eq(rewrite_has_list_id(m, "group10", "lists.test"), 1);
	rewrite_msg_free(m);
	ck_assert_int_eq(rewrite_parse(c, strlen(c), NULL, &m), REWRITE_OK);
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
	rewrite_msg_free(m);
	/* A loop through another list: List-Id replaced, X-BeenThere kept. */
	{
		const char *d = "X-BeenThere: GROUP1@lists.test\r\nX-BeenThere: board@lists.test\r\n"
		"List-Id: <board.lists.test>\r\n\r\nx\r\n";
		const char *e = "X-BeenThere: group10@lists.test\r\n\r\nx\r\n";

		ck_assert_int_eq(rewrite_parse(d, strlen(d), NULL, &m), REWRITE_OK);
		ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 1);
		rewrite_msg_free(m);
		ck_assert_int_eq(rewrite_parse(e, strlen(e), NULL, &m), REWRITE_OK);
		ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
		rewrite_msg_free(m);
	}
}
END_TEST

/* A list with command addresses names them in List-*. */
START_TEST(test_copy_commands)
{
	struct rewrite_list l = {"Club", "", "lists.test", "bounce", "postmaster", 1, '-', 0, 0};
	const char *in = "From: a@x.test\r\nList-Unsubscribe: <mailto:x@y>\r\n\r\nb\r\n";
	const char *want = "From: a@x.test\nX-BeenThere: club@lists.test\n"
		"Sender: bounce@lists.test\nList-Id: <club.lists.test>\n"
		"List-Unsubscribe: <mailto:club-unsubscribe@lists.test>\n"
		"List-Help: <mailto:club-help@lists.test>\n"
		"List-Subscribe: <mailto:club-subscribe@lists.test>\n"
		"List-Post: <mailto:club@lists.test>\n" BULK "\nb\n";
	struct rewrite_msg *m;
	size_t	len;
	char   *out;

	ck_assert_int_eq(rewrite_parse(in, strlen(in), NULL, &m), REWRITE_OK);
	ck_assert_ptr_nonnull(out = rewrite_copy(m, &l, &len));
	/* The copy is a buffer of len bytes, not a string. */
	ck_assert_msg(len == strlen(want) && memcmp(out, want, len) == 0, "got:\n%.*s",
		      (int) len, out);
	free(out);
	rewrite_msg_free(m);
}
END_TEST

/* DMARC mitigation: From: becomes the list's, the author one reply away. */
static const struct {
	const char *label, *in, *want_head;
} munges[] = {
	{"a display name, no Reply-To",
		"From: Alice Example <alice@yahoo.test>\r\nTo: club@lists.test\r\n\r\nb\r\n",
		"From: \"Alice Example via club\" <club@lists.test>\nTo: club@lists.test\n"
		"Reply-To: Alice Example <alice@yahoo.test>\n"
		"X-Original-From: Alice Example <alice@yahoo.test>\n"},
	{"a quoted name with a quote inside",
		"From: \"Al \\\"Bo\\\" C\" <al@yahoo.test>\r\n\r\nb\r\n",
		"From: \"Al \\\"Bo\\\" C via club\" <club@lists.test>\n"
		"Reply-To: \"Al \\\"Bo\\\" C\" <al@yahoo.test>\n"
		"X-Original-From: \"Al \\\"Bo\\\" C\" <al@yahoo.test>\n"},
	{"no display name: the address stands for it",
		"From: bob@aol.test\r\n\r\nb\r\n",
		"From: \"bob@aol.test via club\" <club@lists.test>\nReply-To: bob@aol.test\n"
		"X-Original-From: bob@aol.test\n"},
	{"an encoded word stays a word",
		"From: =?utf-8?q?J=C3=B6rg?= <j@yahoo.test>\r\n\r\nb\r\n",
		"From: =?utf-8?q?J=C3=B6rg?= \"via club\" <club@lists.test>\n"
		"Reply-To: =?utf-8?q?J=C3=B6rg?= <j@yahoo.test>\n"
		"X-Original-From: =?utf-8?q?J=C3=B6rg?= <j@yahoo.test>\n"},
	{"a Reply-To already: the author goes to Cc",
		"From: A <a@yahoo.test>\r\nReply-To: x@y.test\r\n\r\nb\r\n",
		"From: \"A via club\" <club@lists.test>\nReply-To: x@y.test\n"
		"Cc: A <a@yahoo.test>\nX-Original-From: A <a@yahoo.test>\n"},
	{"a Reply-To and a Cc: the Cc gets the author",
		"From: A <a@yahoo.test>\r\nCc: c@d.test\r\nReply-To: x@y.test\r\n\r\nb\r\n",
		"From: \"A via club\" <club@lists.test>\nCc: c@d.test,\n A <a@yahoo.test>\n"
		"Reply-To: x@y.test\nX-Original-From: A <a@yahoo.test>\n"},
	{"several Cc fields: the first alone gets the author",
		"From: A <a@yahoo.test>\r\nCc: c@d.test\r\nCc: e@f.test\r\nReply-To: x@y.test\r\n"
		"\r\nb\r\n",
		"From: \"A via club\" <club@lists.test>\nCc: c@d.test,\n A <a@yahoo.test>\n"
		"Cc: e@f.test\nReply-To: x@y.test\nX-Original-From: A <a@yahoo.test>\n"},
	{"several mailboxes: the first address names the author, nothing raw",
		"From: ceo@lists.test, =?utf-8?q?Board?= <m@evil.test>\r\n\r\nb\r\n",
		"From: \"ceo@lists.test via club\" <club@lists.test>\n"
		"Reply-To: ceo@lists.test, =?utf-8?q?Board?= <m@evil.test>\n"},
	{"an encoded word beside a quoted string is quoted whole",
		"From: =?utf-8?q?x?= \"q \\\" s\" <a@evil.test>\r\n\r\nb\r\n",
		"From: \"=?utf-8?q?x?= \\\"q \\\" s\\\" via club\" <club@lists.test>\n"},
	{"a value that starts on a continuation line",
		"From:\r\n \"Alice E\" <a@yahoo.test>\r\n\r\nb\r\n",
		"From: \"Alice E via club\" <club@lists.test>\n"
		"Reply-To: \"Alice E\" <a@yahoo.test>\n"},
	{"a folded From: keeps its folds where it is repeated",
		"From: \"Alice\"\r\n  <alice@yahoo.test>\r\n\r\nb\r\n",
		"From: \"Alice via club\" <club@lists.test>\n"
		"Reply-To: \"Alice\"\n  <alice@yahoo.test>\n"
		"X-Original-From: \"Alice\"\n  <alice@yahoo.test>\n"},
};

/* tl_count_str - occurrences of needle in hay */
static int
tl_count_str(const char *hay, const char *needle)
{
	int	n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return (n);
}

/*
 * A long folded From: with a Reply-To and many Cc fields: the copy's
 * buffer holds it (AddressSanitizer watches), the author is added to one
 * Cc only, and no line the copy writes is longer than 998 bytes.
 */
START_TEST(test_copy_munged_big)
{
	struct rewrite_list l = {"Club", "", "lists.test", "bounce", "postmaster", 0, 0, 1, 0};
	struct rewrite_msg *m;
	size_t	len, off = 0;
	char   *in, *out, *p;

	ck_assert_ptr_nonnull(in = malloc(64 * 1024));
	off += (size_t) sprintf(in + off, "From: \"");
	for (int i = 0; i < 40; i++)
		off += (size_t) sprintf(in + off, "%s%.*s", i ? "\r\n " : "", 80,
					"Alice Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
					"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
	off += (size_t) sprintf(in + off, "\" <alice@yahoo.test>\r\nReply-To: r@s.test\r\n");
	for (int i = 0; i < 60; i++)
		off += (size_t) sprintf(in + off, "Cc: c%d@d.test\r\n", i);
	off += (size_t) sprintf(in + off, "\r\nbody\r\n");
	ck_assert_int_eq(rewrite_parse(in, off, NULL, &m), REWRITE_OK);
	ck_assert_ptr_nonnull(p = rewrite_copy(m, &l, &len));
	ck_assert_int_eq(l.munged, 1);
	ck_assert_ptr_nonnull(out = strndup(p, len));
	free(p);
	ck_assert_int_eq(tl_count_str(out, "<alice@yahoo.test>"), 2);	/* Cc, X-Original-From */
	ck_assert_ptr_nonnull(strstr(out, "From: \"alice@yahoo.test via club\" <club@lists.test>\n"));
	for (char *line = out, *nl; (nl = strchr(line, '\n')) != NULL; line = nl + 1)
		ck_assert_int_le(nl - line, 998);
	free(out);
	free(in);
	rewrite_msg_free(m);
}
END_TEST

START_TEST(test_copy_munged)
{
	struct rewrite_list l = {"Club", "", "lists.test", "bounce", "postmaster", 0, 0, 1, 0};
	struct rewrite_msg *m;
	size_t	len;
	char   *raw, *out;

	ck_assert_int_eq(rewrite_parse(munges[_i].in, strlen(munges[_i].in), NULL, &m),
			 REWRITE_OK);
	ck_assert_ptr_nonnull(raw = rewrite_copy(m, &l, &len));
	ck_assert_int_eq(l.munged, 1);
	ck_assert_ptr_nonnull(out = strndup(raw, len));	/* a buffer, not a string */
	free(raw);
	ck_assert_msg(len >= strlen(munges[_i].want_head)
		      && memcmp(out, munges[_i].want_head, strlen(munges[_i].want_head)) == 0,
		      "%s:\n--- got ---\n%s--- want (head) ---\n%s", munges[_i].label, out,
		      munges[_i].want_head);
	/* The body and the list fields as ever; one From: only. */
	ck_assert_ptr_nonnull(strstr(out, "List-Id: <club.lists.test>\n"));
	ck_assert_ptr_null(strstr(strstr(out, "From:") + 1, "\nFrom:"));
	free(out);
	rewrite_msg_free(m);
	/* Without munge_from nothing of this happens. */
	l.munge_from = 0;
	ck_assert_int_eq(rewrite_parse(munges[_i].in, strlen(munges[_i].in), NULL, &m),
			 REWRITE_OK);
	ck_assert_ptr_nonnull(raw = rewrite_copy(m, &l, &len));
	ck_assert_int_eq(l.munged, 0);
	ck_assert_ptr_nonnull(out = strndup(raw, len));
	free(raw);
	ck_assert_ptr_null(strstr(out, "X-Original-From"));
	free(out);
	rewrite_msg_free(m);
}
END_TEST

/* Command addresses, read from their end. */
static const struct {
	const char *local;
	char	delim;
	enum command_kind kind;
	const char *group, *token;
} cmds[] = {
	{"club+subscribe", '+', CMD_SUBSCRIBE, "club", ""},
	{"Club+UNSUBSCRIBE", '+', CMD_UNSUBSCRIBE, "Club", ""},
	{"club+help", '+', CMD_HELP, "club", ""},
	{"club+confirm+s77359400-1e720315198a60805d7e", '+', CMD_CONFIRM, "club",
	 "s77359400-1e720315198a60805d7e"},
	{"club+confirm+U1-1E720315198A60805D7E", '+', CMD_CONFIRM, "club",
	 "U1-1E720315198A60805D7E"},
	{"chess-club-unsubscribe", '-', CMD_UNSUBSCRIBE, "chess-club", ""},
	{"a-confirm-b-confirm-s5-00000000000000000000", '-', CMD_CONFIRM, "a-confirm-b", ""},
	{"club-subscribe", '+', CMD_NONE, NULL, NULL},
	{"+subscribe", '+', CMD_NONE, NULL, NULL},
	{"subscribe", '+', CMD_NONE, NULL, NULL},
	{"club+confirm", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+x5-1e720315198a60805d7e", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+s-1e720315198a60805d7e", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+s5-1e720315198a60805d7", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+s12345678901234567-1e720315198a60805d7e", '+', CMD_NONE, NULL, NULL},
	{"club+confirms5-1e720315198a60805d7e", '+', CMD_NONE, NULL, NULL},
	{"club+other", '+', CMD_NONE, NULL, NULL},
	{"club", '+', CMD_NONE, NULL, NULL},
	{"x123456789x123456789x123456789x123456789x123456789x123456789x12345+help", '+',
	 CMD_NONE, NULL, NULL},
	/* A moderator's decisions on a held post. */
	{"club+approve+hc.77359400-52d0a4ec9bcee26ff364", '+', CMD_APPROVE, "club",
	 "hc.77359400-52d0a4ec9bcee26ff364"},
	{"club+reject+hc.77359400-52d0a4ec9bcee26ff364", '+', CMD_REJECT, "club",
	 "hc.77359400-52d0a4ec9bcee26ff364"},
	{"club+discard+hc.77359400-52d0a4ec9bcee26ff364", '+', CMD_DISCARD, "club",
	 "hc.77359400-52d0a4ec9bcee26ff364"},
	{"Club+APPROVE+HC.77359400-52D0A4EC9BCEE26FF364", '+', CMD_APPROVE, "Club",
	 "HC.77359400-52D0A4EC9BCEE26FF364"},
	{"chess-club-reject-h1a.77359400-52d0a4ec9bcee26ff364", '-', CMD_REJECT, "chess-club",
	 "h1a.77359400-52d0a4ec9bcee26ff364"},
	{"a-approve-b-discard-h7fffffffffffffff.ffffffffffffffff-52d0a4ec9bcee26ff364", '-',
	 CMD_DISCARD, "a-approve-b", "h7fffffffffffffff.ffffffffffffffff-52d0a4ec9bcee26ff364"},
	{"club.approve.h1.5-52d0a4ec9bcee26ff364", '.', CMD_APPROVE, "club",
	 "h1.5-52d0a4ec9bcee26ff364"},
	{"club+approve", '+', CMD_NONE, NULL, NULL},
	{"club+approve+", '+', CMD_NONE, NULL, NULL},
	{"+approve+hc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"approve+hc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club-approve-hc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+c.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+xc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+h.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.5-52d0a4ec9bcee26ff36", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.5-52d0a4ec9bcee26ff3640", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.5-52d0a4ec9bcee26ff3zz", '+', CMD_NONE, NULL, NULL},
	{"club+approve+h11111111111111111.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.11111111111111111-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+s5-1e720315198a60805d7e", '+', CMD_NONE, NULL, NULL},
	{"club+confirm+hc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approvehc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+accept+hc.5-52d0a4ec9bcee26ff364", '+', CMD_NONE, NULL, NULL},
	{"club+approve+hc.5-52d0a4ec9bcee26ff364+help", '+', CMD_HELP,
	 "club+approve+hc.5-52d0a4ec9bcee26ff364", ""},
};

START_TEST(test_command_parse)
{
	struct command c;
	int	rc = command_parse(cmds[_i].local, cmds[_i].delim, &c);

	if (cmds[_i].kind == CMD_NONE) {
		ck_assert_msg(rc == -1, "%s: parsed as %s", cmds[_i].local, command_name(c.kind));
		return;
	}
	ck_assert_msg(rc == 0, "%s: not parsed", cmds[_i].local);
	ck_assert_int_eq(c.kind, cmds[_i].kind);
	ck_assert_str_eq(c.group, cmds[_i].group);
	if (cmds[_i].token[0])
		ck_assert_str_eq(c.token, cmds[_i].token);
	else if (c.kind != CMD_CONFIRM)
		ck_assert_str_eq(c.token, "");
}
END_TEST

/* The names of the kinds, as the logs and the held table spell them. */
START_TEST(test_command_name)
{
	ck_assert_str_eq(command_name(CMD_SUBSCRIBE), "subscribe");
	ck_assert_str_eq(command_name(CMD_CONFIRM), "confirm");
	ck_assert_str_eq(command_name(CMD_APPROVE), "approve");
	ck_assert_str_eq(command_name(CMD_REJECT), "reject");
	ck_assert_str_eq(command_name(CMD_DISCARD), "discard");
	ck_assert_str_eq(command_name(CMD_NONE), "none");
	ck_assert_str_eq(command_name((enum command_kind) (CMD_DISCARD + 1)), "none");
	/* The existing kinds keep their values (logs, tests). */
	ck_assert_int_eq(CMD_CONFIRM, 4);
	ck_assert_int_eq(CMD_APPROVE, 5);
}
END_TEST

/* What must never trigger a command (RFC 3834), and what may. */
static const struct {
	const char *sender, *hdr;
	int	automatic;
} autos[] = {
	{"a@x.test", "From: a@x.test\r\n", 0},
	{"a@x.test", "Auto-Submitted: no\r\n", 0},
	{"a@x.test", "Auto-Submitted: No (a person)\r\n", 0},
	{"a@x.test", "Precedence: first-class\r\n", 0},
	{"a@x.test", "Precedence: bulky\r\n", 0},
	{"", "From: a@x.test\r\n", 1},
	{"x@lists.test", "From: a@x.test\r\n", 1},
	{"X@LISTS.TEST", "From: a@x.test\r\n", 1},
	{"a@x.test", "Auto-Submitted: auto-replied\r\n", 1},
	{"a@x.test", "auto-submitted:\r\n auto-generated\r\n", 1},
	{"a@x.test", "Auto-Submitted: nothing\r\n", 1},
	{"a@x.test", "Auto-Submitted:\r\n", 1},
	{"a@x.test", "Precedence: BULK\r\n", 1},
	{"a@x.test", "Precedence: junk\r\n", 1},
	{"a@x.test", "Precedence: list (a list)\r\n", 1},
	{"a@x.test", "List-Id: <a.b>\r\n", 1},
	{"a@x.test", "X-Autoreply: yes\r\n", 1},
	{"a@x.test", "X-Autorespond: 1\r\n", 1},
};

START_TEST(test_command_automatic)
{
	struct rewrite_msg *m;
	char	msg[512];

	snprintf(msg, sizeof(msg), "%sSubject: s\r\n\r\nbody\r\n", autos[_i].hdr);
	ck_assert_int_eq(rewrite_parse(msg, strlen(msg), NULL, &m), REWRITE_OK);
	ck_assert_msg((command_automatic(m, autos[_i].sender, "lists.test") != NULL)
		      == autos[_i].automatic, "%s / %s", autos[_i].sender, autos[_i].hdr);
	rewrite_msg_free(m);
}
END_TEST

START_TEST(test_command_address)
{
	char	buf[64];

	ck_assert_int_eq(command_address(buf, sizeof(buf), "Club", '+', "help", "l.test"), 0);
	ck_assert_str_eq(buf, "club+help@l.test");
	ck_assert_int_eq(command_address(buf, 12, "Club", '+', "help", "l.test"), -1);
	ck_assert_int_eq(command_address_ok("a@b"), 1);
	ck_assert_int_eq(command_address_ok("a b@c"), 0);
	ck_assert_int_eq(command_address_ok("a@"), 0);
	ck_assert_int_eq(command_address_ok("@b"), 0);
	ck_assert_int_eq(command_address_ok("a<b@c"), 0);
	ck_assert_int_eq(command_address_ok("ab"), 0);
	/* One spelling per mailbox: what would dodge the notice limits. */
	ck_assert_int_eq(command_address_ok("\"victim\"@example.com"), 0);
	ck_assert_int_eq(command_address_ok("vi\\ctim@example.com"), 0);
	ck_assert_int_eq(command_address_ok("victim@example.com."), 0);
	ck_assert_int_eq(command_address_ok("victim%example.com@localhost"), 0);
	ck_assert_int_eq(command_address_ok("host!victim@example.com"), 0);
	ck_assert_int_eq(command_address_ok("victim@[192.0.2.1]"), 0);
	ck_assert_int_eq(command_address_ok("victim@.example.com"), 0);
	ck_assert_int_eq(command_address_ok("victim@example.com@example.com"), 0);
	ck_assert_int_eq(command_address_ok("a@b@c"), 0);
	ck_assert_int_eq(command_address_ok("victim+list@example.com"), 1);
	ck_assert_int_eq(command_address_ok("first.last@example.com"), 1);
}
END_TEST

/* The address the notice limits count: lower case, no subaddress, no
 * dots in the local part. */
static const struct {
	const char *in;
	const char *want;
} normalized[] = {
	{"Victim@Example.NET", "victim@example.net"},
	{"victim+1@example.net", "victim@example.net"},
	{"victim+a+b@example.net", "victim@example.net"},
	{"v.i.c.t.i.m@example.net", "victim@example.net"},
	{"vic.tim+x.y@example.net", "victim@example.net"},
	{"victim-1@example.net", "victim-1@example.net"},
	{"john-smith@example.net", "john-smith@example.net"},
	{"+only@example.net", "+only@example.net"},
	{".lead@example.net", "lead@example.net"},
	{"a+b@c+d.example", "a@c+d.example"},
	{"local+x", "local"},
};

START_TEST(test_command_normalize)
{
	char	buf[64];

	ck_assert_int_eq(command_normalize(normalized[_i].in, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, normalized[_i].want);
	ck_assert_int_eq(command_normalize(normalized[_i].in, buf, 3), -1);
}
END_TEST

/* A notice: the template's Subject and body with the variables, safe
 * headers, RFC 3834 marks; hostile values stay out of the header. */
START_TEST(test_notice_build)
{
	struct notice_vars v = {.list = "club", .description = "Chess\r\nBcc: x@evil.test",
		.domain = "lists.test", .address = "new@x.test", .post = "club@lists.test",
		.subscribe = "club+subscribe@lists.test",
		.unsubscribe = "club+unsubscribe@lists.test", .help = "club+help@lists.test",
		.confirm = "", .owner = "postmaster@lists.test",
		.expires = "2026-12-04 15:00 UTC"};
	char   *msg;
	size_t	len;
	int	eight = -1;

	msg = notice_build("Subject: Hi ${list}: ${description}\n\n$$ ${post} ${nope}\r\n"
			   "${unsubscribe} ${expires}", &v, "postmaster@lists.test", NULL,
			   "<req@x.test>", &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(len, strlen(msg));
	ck_assert_int_eq(eight, 0);
	ck_assert_ptr_nonnull(strstr(msg, "From: \"club\" <postmaster@lists.test>\nTo: "
				     "<new@x.test>\nSubject: Hi club: Chess  Bcc: x@evil.test\n"));
	ck_assert_ptr_null(strstr(msg, "\nBcc:"));
	ck_assert_ptr_nonnull(strstr(msg, "\nIn-Reply-To: <req@x.test>\nReferences: <req@x.test>\n"));
	ck_assert_ptr_nonnull(strstr(msg, "\nAuto-Submitted: auto-replied\n"));
	ck_assert_ptr_nonnull(strstr(msg, "\nContent-Transfer-Encoding: 7bit\n\n$ club@lists.test "
				     "${nope}\nclub+unsubscribe@lists.test 2026-12-04 15:00 UTC\n"));
	ck_assert_ptr_nonnull(strstr(msg, "\nMessage-ID: <notice."));
	free(msg);
	/* Non-ASCII: an encoded Subject, an 8-bit body; a hostile
	 * Message-ID is not quoted. */
	msg = notice_build("Subject: \xc3\xa0 ${list}\n\n\xc3\xa9t\xc3\xa9\n", &v, "a@lists.test",
			   "b@lists.test", "<a b@x>\r\nBcc: y@evil.test", &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(eight, 1);
	ck_assert_ptr_nonnull(strstr(msg, "\nSubject: =?UTF-8?B?"));
	ck_assert_ptr_nonnull(strstr(msg, "\nReply-To: <b@lists.test>\n"));
	ck_assert_ptr_null(strstr(msg, "In-Reply-To"));
	ck_assert_ptr_null(strstr(msg, "evil"));
	ck_assert_ptr_nonnull(strstr(msg, "Content-Transfer-Encoding: 8bit\n\n\xc3\xa9t\xc3\xa9\n"));
	free(msg);
	/* Bounded: a template that expands past NOTICE_MAX is refused. */
	{
		size_t	n = NOTICE_TEMPLATE_MAX;
		char   *t = malloc(n + 1), big[300];

		ck_assert_ptr_nonnull(t);
		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		v.description = big;
		memcpy(t, "Subject: x\n\n", 12);
		for (size_t i = 12; i + 14 <= n; i += 14)
			memcpy(t + i, "${description}", 14);
		t[n - (n - 12) % 14] = 0;
		ck_assert_ptr_null(notice_build(t, &v, "a@b", NULL, NULL, &len, &eight));
		free(t);
	}
	/* Every built-in template exists and begins with its Subject. */
	{
		static const char *const names[] = {"confirm-subscribe", "confirm-unsubscribe",
			"welcome", "goodbye", "help", "start-again", "not-allowed",
			"already-subscribed", "not-subscribed", "moderate", "rejected", "decided",
			"held", "changes"};

		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			ck_assert_ptr_nonnull(notice_builtin(names[i]));
			ck_assert_int_eq(strncmp(notice_builtin(names[i]), "Subject: ", 9), 0);
		}
		ck_assert_ptr_null(notice_builtin("nosuch"));
	}
}
END_TEST

/* A held post as a moderator's notice gets it: CRLF, a line like a
 * delimiter, no final line end. */
static const char held_post[] =
	"From: Ann <ann@x.test>\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\n"
	"--=_mlistd_1_\r\n.\r\n\r\n\xc3\xa9t\xc3\xa9\r\nlast";
static const char held_post_lf[] =
	"From: Ann <ann@x.test>\nSubject: =?UTF-8?Q?caf=C3=A9?=\n\n"
	"--=_mlistd_1_\n.\n\n\xc3\xa9t\xc3\xa9\nlast";

/* mime_part - the part of msg[0 .. len) after delimiter n (1, 2) of
 * boundary b: its header in hdr, its body; its length, or -1 */
static long
mime_part(const char *msg, size_t len, const char *b, int n, char *hdr, size_t hlen,
	  const char **body)
{
	char	delim[128];
	const char *p = msg, *end, *h;

	snprintf(delim, sizeof(delim), "\n--%s\n", b);
	for (int i = 0; i < n; i++) {
		if ((p = memmem(p, len - (size_t) (p - msg), delim, strlen(delim))) == NULL)
			return (-1);
		p += strlen(delim);
	}
	if ((h = memmem(p, len - (size_t) (p - msg), "\n\n", 2)) == NULL)
		return (-1);
	snprintf(hdr, hlen, "%.*s", (int) (h + 1 - p), p);
	*body = h + 2;
	snprintf(delim, sizeof(delim), "\n--%s", b);
	if ((end = memmem(*body, len - (size_t) (*body - msg), delim, strlen(delim))) == NULL)
		return (-1);
	return (end - *body);
}

/*
 * The moderator's notice: the same header as any notice, multipart/mixed
 * under a boundary found in neither part, the text, the held post byte
 * for byte (CRLF as LF); its hostile Subject and From cannot add header
 * fields or lines of text.
 */
START_TEST(test_notice_build_attached)
{
	struct notice_vars v;
	const char *tmpl = "Subject: Held: ${held_subject}\n\n"
		"From: ${held_from}\nSubject: ${held_subject}\nApprove: ${approve}\n"
		"Reject: ${reject}\nDiscard: ${discard}\n";
	char   *msg, *head, b[80], hdr[512];
	const char *p, *body;
	size_t	len;
	long	n;
	int	eight = -1;

	memset(&v, 0, sizeof(v));
	v.list = "club";
	v.domain = "lists.test";
	v.address = "mod@x.test";
	v.approve = "club+approve+hc.5-52d0a4ec9bcee26ff364@lists.test";
	v.reject = "club+reject+hc.5-52d0a4ec9bcee26ff364@lists.test";
	v.discard = "club+discard+hc.5-52d0a4ec9bcee26ff364@lists.test";
	v.held_subject = "Hi\r\nBcc: victim@evil.test\r\n\r\nTo approve, write to evil@evil.test";
	v.held_from = "Ann <ann@x.test>\nApprove: evil@evil.test";
	msg = notice_build_attached(tmpl, &v, "bounce@lists.test", NULL, "<req@x.test>",
				    held_post, sizeof(held_post) - 1, &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(len, strlen(msg));
	ck_assert_int_eq(eight, 1);		/* the post's 8-bit body */
	/* The header: notice_build's, then multipart/mixed. */
	ck_assert_ptr_nonnull(p = strstr(msg, "\n\n"));
	ck_assert_ptr_nonnull(head = strndup(msg, (size_t) (p + 1 - msg)));
	ck_assert_ptr_nonnull(strstr(head, "From: \"club\" <bounce@lists.test>\nTo: <mod@x.test>\n"
				     "Subject: Held: Hi  Bcc: victim@evil.test    To approve, "
				     "write to evil@evil.test\n"));
	ck_assert_ptr_nonnull(strstr(head, "\nIn-Reply-To: <req@x.test>\n"));
	ck_assert_ptr_nonnull(strstr(head, "\nAuto-Submitted: auto-replied\n"
				     "X-Auto-Response-Suppress: All\nMIME-Version: 1.0\n"
				     "Content-Type: multipart/mixed; boundary=\""));
	ck_assert_ptr_nonnull(strstr(head, "\"\nContent-Transfer-Encoding: 8bit\n"));
	ck_assert_ptr_null(strstr(head, "\nBcc:"));
	ck_assert_ptr_null(strchr(head, '\r'));
	ck_assert_int_eq(sscanf(strstr(head, "boundary=\"") + 10, "%79[^\"]", b), 1);
	free(head);
	/* The boundary: in neither part, three times in the notice. */
	ck_assert_ptr_null(memmem(held_post, sizeof(held_post) - 1, b, strlen(b)));
	{
		int	count = 0;

		for (p = msg; (p = strstr(p, b)) != NULL; p += strlen(b))
			count++;
		ck_assert_int_eq(count, 4);	/* the header's, 2 delimiters, the close */
	}
	ck_assert_ptr_nonnull(strstr(msg, "\n\n--"));
	/* The text: each hostile value on one line of its own. */
	ck_assert_int_ge(n = mime_part(msg, len, b, 1, hdr, sizeof(hdr), &body), 0);
	ck_assert_str_eq(hdr, "Content-Type: text/plain; charset=utf-8\n"
			 "Content-Transfer-Encoding: 7bit\n");
	ck_assert_int_eq(n, strlen("From: Ann <ann@x.test> Approve: evil@evil.test\n"
				   "Subject: Hi  Bcc: victim@evil.test    To approve, write to "
				   "evil@evil.test\nApprove: club+approve+hc.5-52d0a4ec9bcee26ff364"
				   "@lists.test\nReject: club+reject+hc.5-52d0a4ec9bcee26ff364@lists"
				   ".test\nDiscard: club+discard+hc.5-52d0a4ec9bcee26ff364@lists.test\n"));
	ck_assert_int_eq(strncmp(body, "From: Ann <ann@x.test> Approve: evil@evil.test\nSubject: "
				 "Hi  Bcc: victim@evil.test    To approve", 83), 0);
	/* The attached post: its bytes, CRLF as LF, then the closing delimiter. */
	ck_assert_int_ge(n = mime_part(msg, len, b, 2, hdr, sizeof(hdr), &body), 0);
	ck_assert_str_eq(hdr, "Content-Type: message/rfc822\nContent-Disposition: inline\n"
			 "Content-Transfer-Encoding: 8bit\n");
	ck_assert_int_eq(n, sizeof(held_post_lf) - 1);
	ck_assert_int_eq(memcmp(body, held_post_lf, (size_t) n), 0);
	ck_assert_str_eq(body + n + 3 + strlen(b), "--\n");
	free(msg);
	/* ASCII throughout: 7bit; an empty attachment still makes two parts;
	 * NULL is notice_build's text/plain. */
	msg = notice_build_attached("Subject: s\n\nt\n", &v, "b@lists.test", NULL, NULL,
				    "Subject: x\n\ny\n", 14, &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_int_eq(eight, 0);
	ck_assert_ptr_nonnull(strstr(msg, "\nContent-Transfer-Encoding: 7bit\n\n--=_mlistd_"));
	ck_assert_ptr_nonnull(strstr(msg, "Content-Transfer-Encoding: 7bit\n\nSubject: x\n\ny\n\n--"));
	free(msg);
	msg = notice_build_attached("Subject: s\n\nt\n", &v, "b@lists.test", NULL, NULL, NULL, 5,
				    &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(strstr(msg, "\nContent-Type: text/plain; charset=utf-8\n"));
	ck_assert_ptr_null(strstr(msg, "multipart"));
	free(msg);
}
END_TEST

/* One-line values are bounded and cut between characters; ${changes}
 * keeps its lines, drops CRs, and is cut at a line's end. */
START_TEST(test_notice_values)
{
	struct notice_vars v;
	char   *msg, *big, *body;
	size_t	len, n;
	int	eight;

	memset(&v, 0, sizeof(v));
	v.list = "club";
	v.domain = "lists.test";
	v.address = "mod@x.test";
	v.changes = "ann@x.test subscribed (request)\r\nbob@x.test unsubscribed (bounces)\n";
	v.decision = "approve";
	v.decided_by = "mod2@x.test";
	msg = notice_build("Subject: ${decision}\n\n${changes}--\n${decided_by}: ${decision}\n",
			   &v, "b@lists.test", NULL, NULL, &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(strstr(msg, "\nSubject: approve\n"));
	ck_assert_ptr_nonnull(strstr(msg, "\n\nann@x.test subscribed (request)\n"
				     "bob@x.test unsubscribed (bounces)\n--\nmod2@x.test: approve\n"));
	free(msg);
	/* Bounded: a Subject of 2000 "é" and 100 000 bytes of changes. */
	n = 100000;
	ck_assert_ptr_nonnull(big = malloc(n + 1));
	for (size_t i = 0; i < n; i += 2)
		memcpy(big + i, i % 40 == 38 ? "\n\n" : "\xc3\xa9", 2);
	big[n] = 0;
	v.held_subject = big + n - 3999;	/* from the middle of an "é" */
	v.changes = big;
	msg = notice_build("Subject: s\n\n[${held_subject}]\n${changes}|\n", &v, "b@lists.test",
			   NULL, NULL, &len, &eight);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(body = strstr(msg, "\n\n["));
	body += 3;
	n = (size_t) (strchr(body, ']') - body);
	ck_assert_uint_le(n, NOTICE_LINE_MAX + 3);
	ck_assert_uint_eq(n, 899 + 3);		/* 900 would split an "é" */
	ck_assert_int_eq(strncmp(body + n - 3, "...", 3), 0);
	ck_assert_int_eq((unsigned char) body[n - 4], 0xa9);
	ck_assert_ptr_null(memchr(body, '\n', n));
	body += n + 2;
	n = strlen(body);
	ck_assert_uint_le(n, NOTICE_CHANGES_MAX + 6);
	ck_assert_int_eq(strcmp(body + n - 7, "\n...\n|\n"), 0);
	free(msg);
	free(big);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("rewrite");
	TCase  *tc = tcase_create("rewrite");

	tcase_add_loop_test(tc, test_copy, 0, sizeof(copies) / sizeof(copies[0]));
	tcase_add_loop_test(tc, test_from, 0, sizeof(froms) / sizeof(froms[0]));
	tcase_add_test(tc, test_list_id_loop);
	tcase_add_test(tc, test_caps);
	tcase_add_test(tc, test_many_fields);
	tcase_add_loop_test(tc, test_command_parse, 0, sizeof(cmds) / sizeof(cmds[0]));
	tcase_add_test(tc, test_command_name);
	tcase_add_loop_test(tc, test_command_automatic, 0, sizeof(autos) / sizeof(autos[0]));
	tcase_add_test(tc, test_command_address);
	tcase_add_loop_test(tc, test_command_normalize, 0, sizeof(normalized) / sizeof(normalized[0]));
	tcase_add_test(tc, test_copy_commands);
	tcase_add_loop_test(tc, test_copy_munged, 0, sizeof(munges) / sizeof(munges[0]));
	tcase_add_test(tc, test_copy_munged_big);
	tcase_add_test(tc, test_notice_build);
	tcase_add_test(tc, test_notice_build_attached);
	tcase_add_test(tc, test_notice_values);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
