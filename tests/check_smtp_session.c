/*
 * check_smtp_session.c - table-driven tests for the SMTP engine.
 *
 * Every case is fed three ways: the whole input at once (one pipelined
 * write), one byte at a time, and in pseudo-random chunks.  All three must
 * give exactly the expected reply stream and the expected delivered
 * message(s), which is what PIPELINING and the smuggling defences promise.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_session.h"

#define G	"220 mx.test ESMTP mlistd\r\n"
#define EHLO_REPLY \
	"250-mx.test\r\n250-PIPELINING\r\n250-SIZE 4096\r\n250-8BITMIME\r\n" \
	"250-ENHANCEDSTATUSCODES\r\n250 SMTPUTF8\r\n"
#define OK_MAIL	"250 2.1.0 Ok\r\n"
#define OK_RCPT	"250 2.1.5 Ok\r\n"
#define GO	"354 End data with <CR><LF>.<CR><LF>\r\n"
#define QUEUED	"250 2.0.0 Ok: queued\r\n"
#define BYE	"221 2.0.0 Bye\r\n"
#define SMUGGLE	"550 5.5.2 Error: bare <CR> or <LF> received in message; " \
		"lines must end with <CR><LF>\r\n"
#define TXN	"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<l@example.com>\r\nDATA\r\n"
#define TXN_R	G EHLO_REPLY OK_MAIL OK_RCPT GO

/* What the handlers saw. */
static struct {
	int	nmsg;
	char	msg[8192];
	size_t	msglen;
	char	last_rcpt[300];
	char	sender[300];
	size_t	nrcpt;
	int	aborts;
} seen;

static void
t_rcpt(void *ctx, const struct smtp_envelope *env, const char *rcpt,
       struct smtp_reply *r)
{
	const char *at = strrchr(rcpt, '@');

	(void) ctx;
	(void) env;
	snprintf(seen.last_rcpt, sizeof(seen.last_rcpt), "%s", rcpt);
	if (strcasecmp(rcpt, "postmaster") == 0
	    || (at && strcasecmp(at + 1, "example.com") == 0))
		smtp_reply_set(r, 250, "2.1.5 Ok");
	else
		smtp_reply_set(r, 550, "5.7.1 <%s>: Relay access denied", rcpt);
}

static void
t_data(void *ctx, const struct smtp_envelope *env, const char *msg,
       size_t len, struct smtp_reply *r)
{
	(void) ctx;
	seen.nmsg++;
	seen.msglen = len;
	seen.nrcpt = env->nrcpt;
	snprintf(seen.sender, sizeof(seen.sender), "%s", env->sender);
	if (len <= sizeof(seen.msg))
		memcpy(seen.msg, msg, len);
	smtp_reply_set(r, 250, "2.0.0 Ok: queued");
}

static void
t_abort(void *ctx, const struct smtp_envelope *env)
{
	(void) ctx;
	(void) env;
	seen.aborts++;
}

static const struct smtp_handlers th = {NULL, t_rcpt, t_data, t_abort};

struct tcase {
	const char *label;
	const char *input;
	size_t	inlen;			/* 0: strlen(input) */
	const char *want;		/* exact reply stream */
	int	want_nmsg;
	const char *want_msg;		/* last message, or NULL: no check */
	size_t	want_msglen;		/* 0: strlen(want_msg) */
	int	want_closed;
};

static struct smtp_limits limits = {
	512,	/* command */
	1000,	/* text line */
	4096,	/* message */
	3,	/* recipients */
	5	/* errors */
};

/* run - feed in chunks of `step` (0: all at once, -1: random) */
static char *
run(const char *in, size_t len, int step, int *closed)
{
	struct smtp_session *s = smtp_session_create(&limits, &th, NULL, "mx.test");
	static char out[65536];
	size_t	outlen = 0, off = 0;
	unsigned seed = 12345;

	ck_assert_ptr_nonnull(s);
	memset(&seen, 0, sizeof(seen));
	for (;;) {
		const char *p;
		size_t	n, chunk;

		p = smtp_session_output(s, &n);
		ck_assert_uint_lt(outlen + n, sizeof(out));
		memcpy(out + outlen, p, n);
		outlen += n;
		smtp_session_drain(s, n);
		if (off >= len || smtp_session_closed(s))
			break;
		if (step == 0)
			chunk = len - off;
		else if (step > 0)
			chunk = (size_t) step;
		else {
			seed = seed * 1103515245 + 12345;
			chunk = 1 + (seed >> 16) % 7;
		}
		if (chunk > len - off)
			chunk = len - off;
		off += smtp_session_feed(s, in + off, chunk);
	}
	out[outlen] = 0;
	*closed = smtp_session_closed(s);
	smtp_session_free(s);
	return (out);
}

static char long_cmd[700];
static char long_ok[2100], long_bad[2100];
static char big_msg[6000];

static const struct tcase cases[] = {
	{"greeting and QUIT", "QUIT\r\n", 0, G BYE, 0, NULL, 0, 1},
	{"HELO", "HELO c.test\r\n", 0, G "250 mx.test\r\n", 0, NULL, 0, 0},
	{"EHLO keywords", "EHLO c.test\r\n", 0, G EHLO_REPLY, 0, NULL, 0, 0},
	{"EHLO needs a name", "EHLO\r\n", 0,
	G "501 5.5.4 Syntax: EHLO hostname\r\n", 0, NULL, 0, 0},
	{"MAIL before HELO", "MAIL FROM:<a@b.test>\r\n", 0,
	G "503 5.5.1 Error: send HELO/EHLO first\r\n", 0, NULL, 0, 0},
	{"RCPT before MAIL", "HELO c\r\nRCPT TO:<l@example.com>\r\n", 0,
	G "250 mx.test\r\n503 5.5.1 Error: need MAIL command\r\n", 0, NULL, 0, 0},
	{"DATA before RCPT", "HELO c\r\nDATA\r\n", 0,
	G "250 mx.test\r\n503 5.5.1 Error: need RCPT command\r\n", 0, NULL, 0, 0},
	{"nested MAIL", "HELO c\r\nMAIL FROM:<a@b.test>\r\nMAIL FROM:<a@b.test>\r\n", 0,
	G "250 mx.test\r\n" OK_MAIL "503 5.5.1 Error: nested MAIL command\r\n", 0, NULL, 0, 0},
	{"DATA with no valid recipient; the text is then commands",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@other.test>\r\nDATA\r\nSubject: x\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL
		"550 5.7.1 <x@other.test>: Relay access denied\r\n"
		"554 5.5.1 Error: no valid recipients\r\n"
	"500 5.5.2 Error: command not recognized\r\n", 0, NULL, 0, 0},
	{"unknown command", "FOO\r\n", 0,
	G "500 5.5.2 Error: command not recognized\r\n", 0, NULL, 0, 0},
	{"EXPN not implemented", "EXPN x\r\n", 0,
	G "502 5.5.1 Error: command not implemented\r\n", 0, NULL, 0, 0},
	{"lower-case verbs", "helo c\r\nnoop\r\nquit\r\n", 0,
	G "250 mx.test\r\n250 2.0.0 Ok\r\n" BYE, 0, NULL, 0, 1},
	{"VRFY, HELP, NOOP", "VRFY x\r\nVRFY\r\nHELP\r\nNOOP\r\n", 0,
		G "252 2.0.0 Cannot VRFY user; try RCPT to attempt delivery\r\n"
		"501 5.5.4 Syntax: VRFY address\r\n"
		"214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP\r\n"
	"250 2.0.0 Ok\r\n", 0, NULL, 0, 0},
	{"MAIL without brackets", "HELO c\r\nMAIL FROM:a@b.test\r\n", 0,
		G "250 mx.test\r\n501 5.5.4 Syntax: address must be in angle brackets\r\n",
	0, NULL, 0, 0},
	{"MAIL syntax", "HELO c\r\nMAIL TO:<a@b.test>\r\n", 0,
	G "250 mx.test\r\n501 5.5.4 Syntax: MAIL FROM:<address>\r\n", 0, NULL, 0, 0},
	{"unknown MAIL parameter", "HELO c\r\nMAIL FROM:<a@b.test> FOO=1\r\n", 0,
	G "250 mx.test\r\n555 5.5.4 Unsupported option: FOO\r\n", 0, NULL, 0, 0},
	{"unknown RCPT parameter",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<l@example.com> NOTIFY=NEVER\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL "555 5.5.4 Unsupported option: NOTIFY\r\n",
	0, NULL, 0, 0},
	{"SIZE over the limit", "HELO c\r\nMAIL FROM:<a@b.test> SIZE=4097\r\n", 0,
	G "250 mx.test\r\n552 5.3.4 Message size exceeds fixed limit\r\n", 0, NULL, 0, 0},
	{"SIZE garbage", "HELO c\r\nMAIL FROM:<a@b.test> SIZE=12x\r\n", 0,
	G "250 mx.test\r\n501 5.5.4 Bad SIZE parameter\r\n", 0, NULL, 0, 0},
	{"SIZE, BODY, SMTPUTF8 accepted",
		"HELO c\r\nMAIL FROM:<a@b.test> SIZE=4096 BODY=8BITMIME SMTPUTF8\r\n", 0,
	G "250 mx.test\r\n" OK_MAIL, 0, NULL, 0, 0},
	{"bad BODY", "HELO c\r\nMAIL FROM:<a@b.test> BODY=BINARYMIME\r\n", 0,
	G "250 mx.test\r\n501 5.5.4 Bad BODY parameter\r\n", 0, NULL, 0, 0},
	{"UTF-8 address needs SMTPUTF8", "HELO c\r\nMAIL FROM:<j\xc3\xb6@b.test>\r\n", 0,
		G "250 mx.test\r\n553 5.6.7 Must declare SMTPUTF8 to send a UTF-8 address\r\n",
	0, NULL, 0, 0},
	{"null sender", "HELO c\r\nMAIL FROM:<>\r\n", 0, G "250 mx.test\r\n" OK_MAIL, 0, NULL, 0, 0},
	{"sender without domain", "HELO c\r\nMAIL FROM:<abc>\r\n", 0,
	G "250 mx.test\r\n501 5.1.7 Bad sender address syntax\r\n", 0, NULL, 0, 0},
	{"space after colon, quoted local part",
		"HELO c\r\nMAIL FROM: <\"a b>\"@b.test>\r\nRCPT TO:<l@example.com>\r\n", 0,
	G "250 mx.test\r\n" OK_MAIL OK_RCPT, 0, NULL, 0, 0},
	{"postmaster without domain",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<Postmaster>\r\n", 0,
	G "250 mx.test\r\n" OK_MAIL OK_RCPT, 0, NULL, 0, 0},
	{"other domain refused",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<x@example.com.evil.test>\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL
	"550 5.7.1 <x@example.com.evil.test>: Relay access denied\r\n", 0, NULL, 0, 0},
	{"RSET ends the transaction",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRSET\r\nRCPT TO:<l@example.com>\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL "250 2.0.0 Ok\r\n503 5.5.1 Error: need MAIL command\r\n",
	0, NULL, 0, 0},
	{"too many recipients: 452 4.5.3",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<a@example.com>\r\n"
		"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL OK_RCPT OK_RCPT OK_RCPT
	"452 4.5.3 Error: too many recipients\r\n", 0, NULL, 0, 0},
	{"452s are not errors: six of them, no 421",
		"HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<a@example.com>\r\n"
		"RCPT TO:<b@example.com>\r\nRCPT TO:<c@example.com>\r\nRCPT TO:<d@example.com>\r\n"
		"RCPT TO:<e@example.com>\r\nRCPT TO:<f@example.com>\r\nRCPT TO:<g@example.com>\r\n"
		"RCPT TO:<h@example.com>\r\nRCPT TO:<i@example.com>\r\nNOOP\r\n", 0,
		G "250 mx.test\r\n" OK_MAIL OK_RCPT OK_RCPT OK_RCPT
		"452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
		"452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
		"452 4.5.3 Error: too many recipients\r\n452 4.5.3 Error: too many recipients\r\n"
	"250 2.0.0 Ok\r\n", 0, NULL, 0, 0},
	{"8-bit HELO name", "HELO h\xc3\xb6st.test\r\nEHLO \xff\r\n", 0,
		G "501 5.5.2 Syntax: HELO hostname: 8-bit characters are not allowed\r\n"
	"501 5.5.2 Syntax: EHLO hostname: 8-bit characters are not allowed\r\n", 0, NULL, 0, 0},
	{"invalid UTF-8 in SMTPUTF8 addresses",
		"HELO c\r\nMAIL FROM:<j\xc3@b.test> SMTPUTF8\r\nMAIL FROM:<\xc0\xaf@b.test> SMTPUTF8\r\n"
		"MAIL FROM:<j\xc3\xb6@b.test> SMTPUTF8\r\nRCPT TO:<\xed\xa0\x80@example.com>\r\n", 0,
		G "250 mx.test\r\n500 5.5.2 Error: bad UTF-8 syntax\r\n"
		"500 5.5.2 Error: bad UTF-8 syntax\r\n" OK_MAIL
	"500 5.5.2 Error: bad UTF-8 syntax\r\n", 0, NULL, 0, 0},
	{"too many errors: 421 and nothing more read",
		"A\r\nB\r\nC\r\nD\r\nE\r\nQUIT\r\n", 0,
		G "500 5.5.2 Error: command not recognized\r\n"
		"500 5.5.2 Error: command not recognized\r\n"
		"500 5.5.2 Error: command not recognized\r\n"
		"500 5.5.2 Error: command not recognized\r\n"
		"500 5.5.2 Error: command not recognized\r\n"
	"421 4.7.0 Error: too many errors\r\n", 0, NULL, 0, 1},
	{"command line too long, then recovery", long_cmd, 0,
		G "500 5.5.2 Error: command line too long (limit 512 bytes)\r\n250 2.0.0 Ok\r\n",
	0, NULL, 0, 0},
	{"bare LF does not end a command", "NOOP\nQUIT\r\nNOOP\r\n", 0,
		G "500 5.5.2 Error: bare <CR>, <LF> or NUL received in command\r\n"
	"250 2.0.0 Ok\r\n", 0, NULL, 0, 0},
	{"bare CR does not end a command", "NOOP\rQUIT\r\nQUIT\r\n", 0,
		G "500 5.5.2 Error: bare <CR>, <LF> or NUL received in command\r\n" BYE,
	0, NULL, 0, 1},
	{"NUL in a command", "NO\0OP\r\n", 8,
	G "500 5.5.2 Error: bare <CR>, <LF> or NUL received in command\r\n", 0, NULL, 0, 0},
	{"full transaction in one write (PIPELINING)",
		TXN "Subject: hi\r\n\r\nbody\r\n.\r\nQUIT\r\n", 0,
	TXN_R QUEUED BYE, 1, "Subject: hi\r\n\r\nbody\r\n", 0, 1},
	{"two transactions in one write",
		TXN "one\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<l@example.com>\r\nDATA\r\ntwo\r\n.\r\n", 0,
	TXN_R QUEUED OK_MAIL OK_RCPT GO QUEUED, 2, "two\r\n", 0, 0},
	{"dot-stuffing undone", TXN "..x\r\n...\r\n. \r\n.\r\n", 0,
	TXN_R QUEUED, 1, ".x\r\n..\r\n \r\n", 0, 0},
	{"empty message", TXN ".\r\n", 0, TXN_R QUEUED, 1, "", 0, 0},
	{"NUL and 8-bit bytes pass", TXN "a\0b\xff\xfe\r\n.\r\n", sizeof(TXN) - 1 + 10,
	TXN_R QUEUED, 1, "a\0b\xff\xfe\r\n", 7, 0},
	{"998-character line passes", long_ok, 0, TXN_R QUEUED, 1, NULL, 0, 0},
	{"999-character line refused", long_bad, 0,
	TXN_R "554 5.6.0 Error: message line longer than 1000 bytes\r\n", 0, NULL, 0, 0},
	{"message too big: 552 5.3.4 at end of data", big_msg, 0,
	TXN_R "552 5.3.4 Error: message file too big\r\n" BYE, 0, NULL, 0, 1},
	{"smuggling: LF.LF", TXN "a\n.\nMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{"smuggling: LF.CRLF", TXN "a\n.\r\nMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{"smuggling: CRLF.LF", TXN "a\r\n.\nMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{"smuggling: CR.CRLF", TXN "a\r.\r\nMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{"smuggling: CRLF.CR", TXN "a\r\n.\rMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{"smuggling: CR.CR", TXN "a\r.\rMAIL FROM:<e@v.test>\r\n.\r\nQUIT\r\n", 0,
	TXN_R SMUGGLE BYE, 0, NULL, 0, 1},
	{NULL, NULL, 0, NULL, 0, NULL, 0, 0}
};

/* build_inputs - the cases whose inputs are too long to spell out */
static void
build_inputs(void)
{
	char	line[1100];

	memset(long_cmd, 'A', 600);
	memcpy(long_cmd, "NOOP ", 5);
	strcpy(long_cmd + 600, "\r\nNOOP\r\n");

	memset(line, 'x', 998);
	line[998] = 0;
	snprintf(long_ok, sizeof(long_ok), TXN "%s\r\n.\r\n", line);
	line[998] = 'y';
	line[999] = 0;
	snprintf(long_bad, sizeof(long_bad), TXN "%s\r\n.\r\n", line);

	strcpy(big_msg, TXN);
	for (int i = 0; i < 50; i++)
		strcat(big_msg, "0123456789012345678901234567890123456789"
		       "0123456789012345678901234567890123456789012345678\r\n");
	strcat(big_msg, ".\r\nQUIT\r\n");
}

static void
check_case(const struct tcase *c, int step)
{
	size_t	len = c->inlen ? c->inlen : strlen(c->input);
	int	closed;
	const char *out = run(c->input, len, step, &closed);

	ck_assert_msg(strcmp(out, c->want) == 0,
		      "%s (step %d):\n--- got ---\n%s--- want ---\n%s",
		      c->label, step, out, c->want);
	ck_assert_msg(seen.nmsg == c->want_nmsg, "%s (step %d): %d messages, want %d",
		      c->label, step, seen.nmsg, c->want_nmsg);
	ck_assert_msg(closed == c->want_closed, "%s (step %d): closed=%d",
		      c->label, step, closed);
	if (c->want_msg) {
		size_t	wl = c->want_msglen ? c->want_msglen : strlen(c->want_msg);

		ck_assert_msg(seen.msglen == wl && memcmp(seen.msg, c->want_msg, wl) == 0,
			      "%s (step %d): message differs (len %zu, want %zu)",
			      c->label, step, seen.msglen, wl);
	}
}

START_TEST(test_table_whole)
{
	check_case(&cases[_i], 0);
}
END_TEST

START_TEST(test_table_bytewise)
{
	check_case(&cases[_i], 1);
}
END_TEST

START_TEST(test_table_random_chunks)
{
	check_case(&cases[_i], -1);
}
END_TEST

/* The 998-character line arrives intact. */
START_TEST(test_long_line_content)
{
	int	closed;

	(void) run(long_ok, strlen(long_ok), 0, &closed);
	ck_assert_int_eq(seen.nmsg, 1);
	ck_assert_uint_eq(seen.msglen, 1000);
	ck_assert_int_eq(seen.msg[0], 'x');
	ck_assert_int_eq(seen.msg[997], 'x');
	ck_assert_int_eq(seen.msg[998], '\r');
}
END_TEST

/* Source routes are dropped; handlers see the plain mailbox. */
START_TEST(test_source_route)
{
	int	closed;
	const char *in = "HELO c\r\nMAIL FROM:<@r.test:a@b.test>\r\n"
	"RCPT TO:<@x.test,@y.test:l@example.com>\r\nDATA\r\n.\r\n";

	(void) run(in, strlen(in), 0, &closed);
	ck_assert_str_eq(seen.last_rcpt, "l@example.com");
	ck_assert_str_eq(seen.sender, "a@b.test");
	ck_assert_int_eq(seen.nmsg, 1);
	ck_assert_uint_eq(seen.nrcpt, 1);
}
END_TEST

/* A transaction cut off by RSET or QUIT tells the handler once. */
START_TEST(test_abort_callback)
{
	int	closed;
	const char *in = "HELO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<l@example.com>\r\n"
	"RSET\r\nMAIL FROM:<a@b.test>\r\nQUIT\r\n";

	(void) run(in, strlen(in), 0, &closed);
	ck_assert_int_eq(seen.aborts, 2);
	ck_assert_int_eq(closed, 1);
}
END_TEST

/* Output stays bounded when a client pipelines without reading. */
START_TEST(test_output_bounded)
{
	struct smtp_session *s = smtp_session_create(&limits, &th, NULL, "mx.test");
	static char in[200000];
	size_t	used, outlen;
	struct smtp_limits many = limits;

	smtp_session_free(s);
	many.max_errors = 1000000;
	s = smtp_session_create(&many, &th, NULL, "mx.test");
	ck_assert_ptr_nonnull(s);
	for (size_t i = 0; i + 6 <= sizeof(in); i += 6)
		memcpy(in + i, "NOOP\r\n", 6);
	used = smtp_session_feed(s, in, sizeof(in) / 6 * 6);
	(void) smtp_session_output(s, &outlen);
	ck_assert_uint_lt(used, sizeof(in) / 6 * 6);
	ck_assert_uint_le(outlen, 32768);
	ck_assert_int_eq(smtp_session_closed(s), 0);
	smtp_session_free(s);
}
END_TEST

/* Shutdown between transactions: 421 and closed. */
START_TEST(test_shutdown)
{
	struct smtp_session *s = smtp_session_create(&limits, &th, NULL, "mx.test");
	const char *out;
	size_t	len;

	smtp_session_drain(s, 1000);
	ck_assert_int_eq(smtp_session_busy(s), 0);
	smtp_session_shutdown(s, "4.3.2 Service shutting down");
	out = smtp_session_output(s, &len);
	ck_assert_uint_eq(len, strlen("421 4.3.2 Service shutting down\r\n"));
	ck_assert_int_eq(memcmp(out, "421 4.3.2 Service shutting down\r\n", len), 0);
	ck_assert_int_eq(smtp_session_closed(s), 1);
	ck_assert_uint_eq(smtp_session_feed(s, "NOOP\r\n", 6), 0);
	smtp_session_free(s);
}
END_TEST

/* The disconnect summary counts like Postfix. */
START_TEST(test_summary)
{
	struct smtp_session *s = smtp_session_create(&limits, &th, NULL, "mx.test");
	const char *in = TXN "x\r\n.\r\nFOO\r\nQUIT\r\n";
	char	buf[256];

	ck_assert_uint_eq(smtp_session_feed(s, in, strlen(in)), strlen(in));
	smtp_session_summary(s, buf, sizeof(buf));
	ck_assert_str_eq(buf, "ehlo=1 mail=1 rcpt=1 data=1 quit=1 unknown=0/1 commands=5/6");
	smtp_session_free(s);
}
END_TEST

static Suite *
session_suite(void)
{
	Suite  *s = suite_create("smtp_session");
	TCase  *tc = tcase_create("table");
	int	n = 0;

	while (cases[n].label)
		n++;
	tcase_add_loop_test(tc, test_table_whole, 0, n);
	tcase_add_loop_test(tc, test_table_bytewise, 0, n);
	tcase_add_loop_test(tc, test_table_random_chunks, 0, n);
	suite_add_tcase(s, tc);
	tc = tcase_create("details");
	tcase_add_test(tc, test_long_line_content);
	tcase_add_test(tc, test_source_route);
	tcase_add_test(tc, test_abort_callback);
	tcase_add_test(tc, test_output_bounded);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_summary);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{

	build_inputs();
	return (ck_run(session_suite()));
}
