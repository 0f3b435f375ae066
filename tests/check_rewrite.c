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
};

START_TEST(test_copy)
{
	struct rewrite_list l = {"Group1", copies[_i].desc, "lists.test", "bounce",
	"postmaster", copies[_i].is_group};
	struct rewrite_msg *m = rewrite_parse(copies[_i].in, strlen(copies[_i].in));
	size_t	len;
	char   *out;

	ck_assert_ptr_nonnull(m);
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
};

START_TEST(test_from)
{
	struct rewrite_msg *m = rewrite_parse(froms[_i].in, strlen(froms[_i].in));
	char	buf[256];
	int	rc;

	ck_assert_ptr_nonnull(m);
	rc = rewrite_from(m, buf, sizeof(buf));
	if (froms[_i].want) {
		ck_assert_msg(rc == 0, "%s: no address", froms[_i].label);
		ck_assert_str_eq(buf, froms[_i].want);
	} else
		ck_assert_msg(rc < 0, "%s: got %s", froms[_i].label, buf);
	rewrite_msg_free(m);
}
END_TEST

START_TEST(test_list_id_loop)
{
	const char *a = "List-Id: Club <Group1.Lists.Test>\r\n\r\nx\r\n";
	const char *b = "List-Id: <group10.lists.test>\r\nList-Id: <xgroup1.lists.test>\r\n\r\nx\r\n";
	const char *c = "Subject: List-Id: <group1.lists.test>\r\n\r\nList-Id: <group1.lists.test>\r\n";
	struct rewrite_msg *m;

	m = rewrite_parse(a, strlen(a));
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 1);
	rewrite_msg_free(m);
	m = rewrite_parse(b, strlen(b));
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
	ck_assert_int_eq(rewrite_has_list_id(m, "group10", "lists.test"), 1);
	rewrite_msg_free(m);
	m = rewrite_parse(c, strlen(c));
	ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
	rewrite_msg_free(m);
	/* A loop through another list: List-Id replaced, X-BeenThere kept. */
	{
		const char *d = "X-BeenThere: GROUP1@lists.test\r\nX-BeenThere: board@lists.test\r\n"
		"List-Id: <board.lists.test>\r\n\r\nx\r\n";
		const char *e = "X-BeenThere: group10@lists.test\r\n\r\nx\r\n";

		m = rewrite_parse(d, strlen(d));
		ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 1);
		rewrite_msg_free(m);
		m = rewrite_parse(e, strlen(e));
		ck_assert_int_eq(rewrite_has_list_id(m, "group1", "lists.test"), 0);
		rewrite_msg_free(m);
	}
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
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
