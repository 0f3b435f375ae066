/*
 * smtp_session.c - the SMTP server protocol engine, without any I/O.
 *
 * The caller feeds raw client bytes with smtp_session_feed() and writes
 * out what smtp_session_output() returns.  All commands found in one
 * buffer are run in order and their replies queued in order, which is
 * what PIPELINING (RFC 2920) asks of a server; the I/O layer flushes the
 * queue before it blocks on a read.
 *
 * Line discipline (SMTP smuggling defence): a command or a message line
 * ends only at CR LF.  A bare CR or LF never ends anything.  In a command
 * it makes the command invalid (500 5.5.2); in a message the bytes stay
 * inside the one message, and after the real CR LF . CR LF the message is
 * refused with 550 5.5.2, so there is never a second message and never a
 * second final reply.
 *
 * Limits: the command buffer has a fixed size (max_command_length); the
 * message buffer grows up to max_message_size and no further (the rest is
 * counted and dropped, then 552 5.3.4); recipients are capped at
 * max_recipients (452 4.5.3); pending output is capped (feed stops
 * consuming until the caller flushes).  A failed allocation answers 452
 * 4.3.1, so Postfix keeps the message and retries.
 *
 * Memory: the session owns every string it hands to handlers.  Handlers
 * must not keep pointers past their return.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_session.h"

#define OUTPUT_HIGH_WATER	16384	/* stop feeding above this */
#define OUTPUT_CAPACITY		(OUTPUT_HIGH_WATER + 4096)

enum smtp_state {
	S_CONNECTED,		/* greeting sent, no HELO yet */
	S_READY,		/* HELO/EHLO done */
	S_MAIL,			/* MAIL accepted */
	S_RCPT,			/* at least one RCPT accepted */
	S_DATA,			/* reading message text */
	S_CLOSED		/* QUIT or 421: ignore further input */
};

enum data_state {
	D_LINESTART,		/* just after CR LF (or after 354) */
	D_DOT,			/* "." at line start */
	D_DOTCR,		/* ".\r" at line start */
	D_TEXT,			/* inside a line */
	D_CR			/* "\r" inside a line */
};

/* Per-command counters for the disconnect log line. */
enum {
	C_HELO, C_EHLO, C_MAIL, C_RCPT, C_DATA, C_RSET, C_NOOP, C_QUIT,
	C_VRFY, C_HELP, C_UNKNOWN, C_NCOUNT
};

struct smtp_session {
	struct smtp_limits lim;
	const struct smtp_handlers *h;
	void   *ctx;
	char	hostname[256];
	enum smtp_state state;

	/* Command line assembly. */
	char   *cmd;			/* max_command_length bytes */
	size_t	cmdlen;
	int	cmd_cr;			/* previous byte was CR */
	int	cmd_overflow;
	int	cmd_bare;		/* bare CR or LF, or NUL, seen */

	/* Message assembly. */
	enum data_state dstate;
	char   *msg;
	size_t	msglen, msgcap;
	size_t	linelen;
	int	msg_too_big, msg_bare, msg_long_line, msg_nomem;

	/* Transaction. */
	struct smtp_envelope env;
	char   *helo;
	char   *sender;
	unsigned rcpt_tried;

	/* Output queue. */
	char	out[OUTPUT_CAPACITY];
	size_t	outlen;

	unsigned errors;
	unsigned long progress;
	unsigned count[C_NCOUNT], count_ok[C_NCOUNT];
};

struct smtp_cmd {
	const char *name;
	int	counter;
	void	(*fn) (struct smtp_session *, char *args);
};

static void reply(struct smtp_session *, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_multi(struct smtp_session *, const char *line, int last);
static void command_line(struct smtp_session *);
static void data_end(struct smtp_session *);
static void data_store(struct smtp_session *, const char *, size_t);
static void txn_reset(struct smtp_session *);
static void helo_cmd(struct smtp_session *, char *);
static void ehlo_cmd(struct smtp_session *, char *);
static void mail_cmd(struct smtp_session *, char *);
static void rcpt_cmd(struct smtp_session *, char *);
static void data_cmd(struct smtp_session *, char *);
static void rset_cmd(struct smtp_session *, char *);
static void noop_cmd(struct smtp_session *, char *);
static void quit_cmd(struct smtp_session *, char *);
static void vrfy_cmd(struct smtp_session *, char *);
static void help_cmd(struct smtp_session *, char *);
static void expn_cmd(struct smtp_session *, char *);

static const struct smtp_cmd commands[] = {
	{"HELO", C_HELO, helo_cmd},
	{"EHLO", C_EHLO, ehlo_cmd},
	{"MAIL", C_MAIL, mail_cmd},
	{"RCPT", C_RCPT, rcpt_cmd},
	{"DATA", C_DATA, data_cmd},
	{"RSET", C_RSET, rset_cmd},
	{"NOOP", C_NOOP, noop_cmd},
	{"QUIT", C_QUIT, quit_cmd},
	{"VRFY", C_VRFY, vrfy_cmd},
	{"HELP", C_HELP, help_cmd},
	{"EXPN", C_UNKNOWN, expn_cmd},
	{NULL, 0, NULL}
};

static const char *const counter_names[C_NCOUNT] = {
	"helo", "ehlo", "mail", "rcpt", "data", "rset", "noop", "quit",
	"vrfy", "help", "unknown"
};

/* smtp_reply_set - format a handler reply */
void
smtp_reply_set(struct smtp_reply *r, int code, const char *fmt, ...)
{
	va_list	ap;

	r->code = code;
	va_start(ap, fmt);
	vsnprintf(r->text, sizeof(r->text), fmt, ap);
	va_end(ap);
}

/* out_append - add bytes to the output queue; the cap is never exceeded */
static void
out_append(struct smtp_session *s, const char *p, size_t n)
{
	if (n > sizeof(s->out) - s->outlen)
		n = sizeof(s->out) - s->outlen;	/* cannot happen: see feed */
	memcpy(s->out + s->outlen, p, n);
	s->outlen += n;
}

/* reply_line - one reply line with CR LF; control characters masked */
static void
reply_line(struct smtp_session *s, int code, char sep, const char *text)
{
	char	buf[SMTP_TEXT_MAX + 16];
	int	n;

	n = snprintf(buf, sizeof(buf) - 2, "%03d%c%s", code, sep, text);
	if (n < 0)
		return;
	if ((size_t) n > sizeof(buf) - 3)
		n = (int) sizeof(buf) - 3;
	for (int i = 4; i < n; i++)
		if ((unsigned char) buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = '?';
	buf[n++] = '\r';
	buf[n++] = '\n';
	out_append(s, buf, (size_t) n);
}

/* reply - queue a one-line reply and count errors */
static void
reply(struct smtp_session *s, int code, const char *fmt, ...)
{
	char	text[SMTP_TEXT_MAX];
	va_list	ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	reply_line(s, code, ' ', text);
	/* 452 (too many recipients, no storage) is no client error. */
	if (code >= 400 && code != 421 && code != 452)
		s->errors++;
	if (code >= 400 && s->errors >= s->lim.max_errors
	    && s->state != S_CLOSED) {
		reply_line(s, 421, ' ', "4.7.0 Error: too many errors");
		s->state = S_CLOSED;
	}
}

/* reply_multi - one line of a multi-line 250 reply */
static void
reply_multi(struct smtp_session *s, const char *line, int last)
{
	reply_line(s, 250, last ? ' ' : '-', line);
}

/* reply_from - queue a handler's reply, with a safe default */
static void
reply_from(struct smtp_session *s, const struct smtp_reply *r)
{
	if (r->code < 200 || r->code > 599 || r->text[0] == 0)
		reply(s, 451, "4.3.0 Error: internal error");
	else
		reply(s, r->code, "%s", r->text);
}

/* smtp_session_create - allocate, queue the greeting */
struct smtp_session *
smtp_session_create(const struct smtp_limits *lim,
		    const struct smtp_handlers *h, void *ctx,
		    const char *hostname)
{
	struct smtp_session *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return (NULL);
	s->lim = *lim;
	if (s->lim.max_command_length < 16)
		s->lim.max_command_length = 16;
	if (s->lim.max_errors == 0)
		s->lim.max_errors = 1;
	s->h = h;
	s->ctx = ctx;
	snprintf(s->hostname, sizeof(s->hostname), "%s", hostname);
	if ((s->cmd = malloc(s->lim.max_command_length)) == NULL
	    || (s->env.rcpt = calloc(s->lim.max_recipients + 1,
				     sizeof(char *))) == NULL) {
		smtp_session_free(s);
		return (NULL);
	}
	s->env.sender = "";
	s->env.helo = "";
	{
		char	g[SMTP_TEXT_MAX];

		snprintf(g, sizeof(g), "%s ESMTP mlistd", s->hostname);
		reply_line(s, 220, ' ', g);
	}
	return (s);
}

/* smtp_session_free - release everything; NULL is fine */
void
smtp_session_free(struct smtp_session *s)
{
	if (s == NULL)
		return;
	if (s->env.rcpt)
		txn_reset(s);
	free(s->env.rcpt);
	free(s->cmd);
	free(s->msg);
	free(s->helo);
	free(s);
}

const char *
smtp_session_output(const struct smtp_session *s, size_t *len)
{
	*len = s->outlen;
	return (s->out);
}

void
smtp_session_drain(struct smtp_session *s, size_t n)
{
	if (n >= s->outlen) {
		s->outlen = 0;
		return;
	}
	memmove(s->out, s->out + n, s->outlen - n);
	s->outlen -= n;
}

int
smtp_session_closed(const struct smtp_session *s)
{
	return (s->state == S_CLOSED);
}

unsigned long
smtp_session_progress(const struct smtp_session *s)
{
	return (s->progress);
}

int
smtp_session_busy(const struct smtp_session *s)
{
	return (s->state == S_MAIL || s->state == S_RCPT || s->state == S_DATA);
}

/* smtp_session_shutdown - 421 and close (timeouts, server shutdown) */
void
smtp_session_shutdown(struct smtp_session *s, const char *text)
{
	if (s->state == S_CLOSED)
		return;
	txn_reset(s);
	reply_line(s, 421, ' ', text);
	s->state = S_CLOSED;
}

/* smtp_session_summary - Postfix-style disconnect counters */
void
smtp_session_summary(const struct smtp_session *s, char *buf, size_t len)
{
	size_t	used = 0;
	unsigned total = 0, total_ok = 0;

	buf[0] = 0;
	for (int i = 0; i < C_NCOUNT; i++) {
		int	n;

		if (s->count[i] == 0)
			continue;
		total += s->count[i];
		total_ok += s->count_ok[i];
		if (s->count[i] == s->count_ok[i])
			n = snprintf(buf + used, len - used, "%s=%u ",
				     counter_names[i], s->count[i]);
		else
			n = snprintf(buf + used, len - used, "%s=%u/%u ",
				     counter_names[i], s->count_ok[i], s->count[i]);
		if (n < 0 || (size_t) n >= len - used)
			return;
		used += (size_t) n;
	}
	if (total == total_ok)
		snprintf(buf + used, len - used, "commands=%u", total);
	else
		snprintf(buf + used, len - used, "commands=%u/%u", total_ok, total);
}

/* txn_reset - forget the transaction (MAIL, RCPT, message) */
static void
txn_reset(struct smtp_session *s)
{
	if ((s->state == S_MAIL || s->state == S_RCPT || s->state == S_DATA)
	    && s->h->abort)
		s->h->abort(s->ctx, &s->env);
	for (size_t i = 0; i < s->env.nrcpt; i++)
		free(s->env.rcpt[i]);
	s->env.nrcpt = 0;
	free(s->sender);
	s->sender = NULL;
	s->env.sender = "";
	s->env.id[0] = 0;
	s->env.size = 0;
	s->env.body_8bit = 0;
	s->env.smtputf8 = 0;
	s->rcpt_tried = 0;
	s->msglen = 0;
	/* Keep a modest buffer for the next message; drop a big one. */
	if (s->msgcap > 65536) {
		free(s->msg);
		s->msg = NULL;
		s->msgcap = 0;
	}
	if (s->state != S_CONNECTED && s->state != S_CLOSED)
		s->state = S_READY;
}

/* smtp_session_feed - the byte-level scanner */
size_t
smtp_session_feed(struct smtp_session *s, const char *buf, size_t len)
{
	size_t	i = 0;

	while (i < len) {
		unsigned char c;

		if (s->state == S_CLOSED || s->outlen > OUTPUT_HIGH_WATER)
			break;
		if (s->state == S_DATA) {
			/* Fast path: copy a run of plain text in one go. */
			if (s->dstate == D_TEXT) {
				size_t	j = i;

				while (j < len && buf[j] != '\r' && buf[j] != '\n')
					j++;
				if (j > i) {
					data_store(s, buf + i, j - i);
					s->linelen += j - i;
					i = j;
					continue;
				}
			}
			c = (unsigned char) buf[i++];
			switch (s->dstate) {
			case D_LINESTART:
				if (c == '.') {
					s->dstate = D_DOT;
					break;
				}
				/* FALLTHROUGH */
			case D_TEXT:
		text:
				if (c == '\r')
					s->dstate = D_CR;
				else {
					if (c == '\n')
						s->msg_bare = 1;
					data_store(s, (const char *) &c, 1);
					s->linelen++;
					s->dstate = D_TEXT;
				}
				break;
			case D_DOT:
				/* Undo dot-stuffing: drop the leading dot. */
				if (c == '\r')
					s->dstate = D_DOTCR;
				else
					goto text;
				break;
			case D_DOTCR:
				if (c == '\n') {
					s->progress++;
					data_end(s);
					break;
				}
				/* ".\r" then not LF: the CR was bare. */
				s->msg_bare = 1;
				data_store(s, "\r", 1);
				s->linelen++;
				goto text;
			case D_CR:
				if (c == '\n') {
					data_store(s, "\r\n", 2);
					if (s->linelen + 2 > s->lim.max_line_length)
						s->msg_long_line = 1;
					s->linelen = 0;
					s->progress++;
					s->dstate = D_LINESTART;
					break;
				}
				s->msg_bare = 1;
				data_store(s, "\r", 1);
				s->linelen++;
				goto text;
			}
			continue;
		}
		/* Command mode. */
		c = (unsigned char) buf[i++];
		if (c == '\n') {
			if (s->cmd_cr) {
				s->cmd_cr = 0;
				s->progress++;
				command_line(s);
				continue;
			}
			s->cmd_bare = 1;
		} else if (s->cmd_cr) {
			s->cmd_bare = 1;	/* CR not followed by LF */
		}
		if (c == 0)
			s->cmd_bare = 1;
		s->cmd_cr = (c == '\r');
		if (c == '\r')
			continue;	/* stored only if it proves bare */
		if (s->cmdlen + 2 < s->lim.max_command_length)
			s->cmd[s->cmdlen++] = (char) c;
		else
			s->cmd_overflow = 1;
	}
	return (i);
}

/* data_store - append message bytes within the size limit */
static void
data_store(struct smtp_session *s, const char *p, size_t n)
{
	if (s->msg_too_big || s->msg_nomem)
		return;
	if (s->msglen + n > s->lim.max_message_size) {
		s->msg_too_big = 1;
		return;
	}
	if (s->msglen + n > s->msgcap) {
		size_t	cap = s->msgcap ? s->msgcap : 16384;
		char   *nm;

		while (cap < s->msglen + n)
			cap *= 2;
		if (cap > s->lim.max_message_size)
			cap = s->lim.max_message_size;
		if ((nm = realloc(s->msg, cap)) == NULL) {
			s->msg_nomem = 1;
			return;
		}
		s->msg = nm;
		s->msgcap = cap;
	}
	memcpy(s->msg + s->msglen, p, n);
	s->msglen += n;
}

/* data_end - CR LF . CR LF seen: one final reply, always */
static void
data_end(struct smtp_session *s)
{
	struct smtp_reply r;

	s->state = S_RCPT;		/* so txn_reset calls no abort twice */
	if (s->msg_too_big)
		reply(s, 552, "5.3.4 Error: message file too big");
	else if (s->msg_bare)
		reply(s, 550, "5.5.2 Error: bare <CR> or <LF> received in message; "
		      "lines must end with <CR><LF>");
	else if (s->msg_long_line)
		reply(s, 554, "5.6.0 Error: message line longer than %zu bytes",
		      s->lim.max_line_length);
	else if (s->msg_nomem)
		reply(s, 452, "4.3.1 Error: insufficient system storage");
	else {
		memset(&r, 0, sizeof(r));
		s->h->data(s->ctx, &s->env, s->msg ? s->msg : "", s->msglen, &r);
		if (r.code >= 200 && r.code < 300 && r.text[0]) {
			s->count_ok[C_DATA]++;
			s->errors = 0;
		}
		reply_from(s, &r);
	}
	/* No abort callback: the data handler saw the transaction end. */
	if (s->state != S_CLOSED)
		s->state = S_READY;
	txn_reset(s);
}

/* command_line - dispatch one complete command */
static void
command_line(struct smtp_session *s)
{
	const struct smtp_cmd *cmd;
	char   *line = s->cmd, *args;
	size_t	vlen;
	int	overflow = s->cmd_overflow, bare = s->cmd_bare;

	line[s->cmdlen] = 0;
	s->cmdlen = 0;
	s->cmd_overflow = 0;
	s->cmd_bare = 0;
	if (overflow) {
		s->count[C_UNKNOWN]++;
		reply(s, 500, "5.5.2 Error: command line too long (limit %zu bytes)",
		      s->lim.max_command_length);
		return;
	}
	if (bare) {
		s->count[C_UNKNOWN]++;
		reply(s, 500, "5.5.2 Error: bare <CR>, <LF> or NUL received in command");
		return;
	}
	vlen = strcspn(line, " ");
	args = line + vlen;
	while (*args == ' ')
		args++;
	for (cmd = commands; cmd->name; cmd++)
		if (vlen == strlen(cmd->name) && strncasecmp(line, cmd->name, vlen) == 0)
			break;
	if (cmd->name == NULL) {
		s->count[C_UNKNOWN]++;
		reply(s, 500, "5.5.2 Error: command not recognized");
		return;
	}
	s->count[cmd->counter]++;
	{
		size_t	before = s->outlen;

		cmd->fn(s, args);
		/* A 2xx or 3xx first reply counts as a success. */
		if (s->outlen > before && (s->out[before] == '2' || s->out[before] == '3')
		    && cmd->counter != C_DATA)
			s->count_ok[cmd->counter]++;
	}
}

/*
 * utf8_valid - well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF)
 */
static int
utf8_valid(const char *p)
{
	const unsigned char *s = (const unsigned char *) p;

	while (*s) {
		unsigned char c = *s;
		int	n;
		unsigned long cp;

		if (c < 0x80) {
			s++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return (0);
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return (0);
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))
		    || (cp >= 0xd800 && cp <= 0xdfff))
			return (0);
		s += n + 1;
	}
	return (1);
}

/* valid_helo - a name or address literal without control characters */
static int
valid_helo(const char *p)
{
	if (*p == 0 || strlen(p) > 255)
		return (0);
	for (; *p; p++)
		if ((unsigned char) *p <= ' ' || *p == 0x7f)
			return (0);
	return (1);
}

/* helo_set - remember the client's name, reset the transaction */
static int
helo_set(struct smtp_session *s, const char *verb, char *args)
{
	char   *name;

	for (const char *p = args; *p; p++)
		if ((unsigned char) *p >= 0x80) {
			/* A host name is ASCII (an IDN is sent as A-labels). */
			reply(s, 501, "5.5.2 Syntax: %s hostname: 8-bit characters are not "
			      "allowed", verb);
			return (-1);
		}
	if (!valid_helo(args)) {
		reply(s, 501, "5.5.4 Syntax: %s hostname", verb);
		return (-1);
	}
	if ((name = strdup(args)) == NULL) {
		reply(s, 452, "4.3.1 Error: insufficient system storage");
		return (-1);
	}
	txn_reset(s);
	free(s->helo);
	s->helo = name;
	s->env.helo = s->helo;
	s->state = S_READY;
	return (0);
}

static void
helo_cmd(struct smtp_session *s, char *args)
{
	if (helo_set(s, "HELO", args) == 0)
		reply(s, 250, "%s", s->hostname);
}

static void
ehlo_cmd(struct smtp_session *s, char *args)
{
	char	line[64];

	if (helo_set(s, "EHLO", args) < 0)
		return;
	reply_multi(s, s->hostname, 0);
	reply_multi(s, "PIPELINING", 0);
	snprintf(line, sizeof(line), "SIZE %zu", s->lim.max_message_size);
	reply_multi(s, line, 0);
	reply_multi(s, "8BITMIME", 0);
	reply_multi(s, "ENHANCEDSTATUSCODES", 0);
	reply_multi(s, "SMTPUTF8", 1);
}

/*
 * parse_path - "<address>" at *pp, RFC 5321 syntax: source routes are
 * dropped, a quoted local part may hold specials.  On success the address
 * (without brackets) is copied to out and *pp points past ">".  Returns 0,
 * or -1 with a reply text in why.
 */
static int
parse_path(char **pp, char *out, size_t outlen, int *eightbit,
	   const char **why)
{
	char   *p = *pp;
	size_t	n = 0;
	int	quoted = 0;

	*eightbit = 0;
	if (*p != '<') {
		*why = "5.5.4 Syntax: address must be in angle brackets";
		return (-1);
	}
	p++;
	/* Source route "@a,@b:" (RFC 5321 4.1.2): accept and ignore. */
	if (*p == '@') {
		char   *colon = strchr(p, ':');

		if (colon == NULL) {
			*why = "5.1.3 Bad address syntax";
			return (-1);
		}
		p = colon + 1;
	}
	for (;; p++) {
		unsigned char c = (unsigned char) *p;

		if (c == 0) {
			*why = "5.5.4 Syntax: missing \">\"";
			return (-1);
		}
		if (!quoted && c == '>')
			break;
		if (c < 0x20 || c == 0x7f || (c == ' ' && !quoted)) {
			*why = "5.1.3 Bad address syntax";
			return (-1);
		}
		if (c >= 0x80)
			*eightbit = 1;
		if (c == '"')
			quoted = !quoted;
		else if (c == '\\' && quoted) {
			if (n + 1 >= outlen)
				goto toolong;
			out[n++] = (char) c;
			c = (unsigned char) *++p;
			if (c < 0x20 || c == 0x7f) {
				*why = "5.1.3 Bad address syntax";
				return (-1);
			}
		}
		if (n + 1 >= outlen)
			goto toolong;
		out[n++] = (char) c;
	}
	out[n] = 0;
	*pp = p + 1;
	return (0);
toolong:
	*why = "5.1.3 Error: address too long";
	return (-1);
}

/* valid_mailbox - local@domain with a plausible domain */
static int
valid_mailbox(const char *a)
{
	const char *at = strrchr(a, '@');

	if (at == NULL || at == a || at[1] == 0 || at[1] == '.')
		return (0);
	for (const char *d = at + 1; *d; d++)
		if (*d == '"' || *d == '@' || *d == '\\' || *d == ',')
			return (0);
	return (1);
}

/* next_param - split "KEY[=VALUE]" parameters separated by spaces */
static char *
next_param(char **pp, char **value)
{
	char   *p = *pp, *key, *eq;

	while (*p == ' ')
		p++;
	if (*p == 0)
		return (NULL);
	key = p;
	p += strcspn(p, " ");
	if (*p)
		*p++ = 0;
	*pp = p;
	if ((eq = strchr(key, '=')) != NULL) {
		*eq = 0;
		*value = eq + 1;
	} else
		*value = NULL;
	return (key);
}

static void
mail_cmd(struct smtp_session *s, char *args)
{
	char	addr[SMTP_ADDR_MAX + 1], *key, *val;
	const char *why;
	int	eightbit;
	struct smtp_reply r;

	if (s->state == S_CONNECTED) {
		reply(s, 503, "5.5.1 Error: send HELO/EHLO first");
		return;
	}
	if (s->state != S_READY) {
		reply(s, 503, "5.5.1 Error: nested MAIL command");
		return;
	}
	if (strncasecmp(args, "FROM:", 5) != 0) {
		reply(s, 501, "5.5.4 Syntax: MAIL FROM:<address>");
		return;
	}
	args += 5;
	while (*args == ' ')
		args++;
	if (parse_path(&args, addr, sizeof(addr), &eightbit, &why) < 0) {
		reply(s, 501, "%s", why);
		return;
	}
	if (addr[0] && !valid_mailbox(addr)) {
		reply(s, 501, "5.1.7 Bad sender address syntax");
		return;
	}
	if (*args && *args != ' ') {
		reply(s, 501, "5.5.4 Syntax: MAIL FROM:<address> [parameters]");
		return;
	}
	s->env.size = 0;
	s->env.body_8bit = 0;
	s->env.smtputf8 = 0;
	while ((key = next_param(&args, &val)) != NULL) {
		if (strcasecmp(key, "SIZE") == 0) {
			char   *end;
			unsigned long long v;

			if (val == NULL || !isdigit((unsigned char) *val)) {
				reply(s, 501, "5.5.4 Bad SIZE parameter");
				return;
			}
			errno = 0;
			v = strtoull(val, &end, 10);
			if (*end != 0) {
				reply(s, 501, "5.5.4 Bad SIZE parameter");
				return;
			}
			if (errno == ERANGE || v > s->lim.max_message_size) {
				reply(s, 552, "5.3.4 Message size exceeds fixed limit");
				return;
			}
			s->env.size = (unsigned long) v;
		} else if (strcasecmp(key, "BODY") == 0) {
			if (val && strcasecmp(val, "8BITMIME") == 0)
				s->env.body_8bit = 1;
			else if (val && strcasecmp(val, "7BIT") == 0)
				s->env.body_8bit = 0;
			else {
				reply(s, 501, "5.5.4 Bad BODY parameter");
				return;
			}
		} else if (strcasecmp(key, "SMTPUTF8") == 0 && val == NULL) {
			s->env.smtputf8 = 1;
		} else {
			reply(s, 555, "5.5.4 Unsupported option: %.64s", key);
			return;
		}
	}
	if (eightbit && !s->env.smtputf8) {
		reply(s, 553, "5.6.7 Must declare SMTPUTF8 to send a UTF-8 address");
		return;
	}
	if (eightbit && !utf8_valid(addr)) {
		reply(s, 500, "5.5.2 Error: bad UTF-8 syntax");
		return;
	}
	if ((s->sender = strdup(addr)) == NULL) {
		reply(s, 452, "4.3.1 Error: insufficient system storage");
		return;
	}
	s->env.sender = s->sender;
	memset(&r, 0, sizeof(r));
	smtp_reply_set(&r, 250, "2.1.0 Ok");
	if (s->h->mail)
		s->h->mail(s->ctx, &s->env, &r);
	if (r.code != 250) {
		free(s->sender);
		s->sender = NULL;
		s->env.sender = "";
		s->env.id[0] = 0;
		reply_from(s, &r);
		return;
	}
	s->state = S_MAIL;
	reply_from(s, &r);
}

static void
rcpt_cmd(struct smtp_session *s, char *args)
{
	char	addr[SMTP_ADDR_MAX + 1], *key, *val, *copy;
	const char *why;
	int	eightbit;
	struct smtp_reply r;

	if (s->state != S_MAIL && s->state != S_RCPT) {
		reply(s, 503, "5.5.1 Error: need MAIL command");
		return;
	}
	if (strncasecmp(args, "TO:", 3) != 0) {
		reply(s, 501, "5.5.4 Syntax: RCPT TO:<address>");
		return;
	}
	args += 3;
	while (*args == ' ')
		args++;
	if (parse_path(&args, addr, sizeof(addr), &eightbit, &why) < 0) {
		reply(s, 501, "%s", why);
		return;
	}
	/* RFC 5321 4.5.1: <postmaster> without a domain must be accepted. */
	if (!valid_mailbox(addr) && strcasecmp(addr, "postmaster") != 0) {
		reply(s, 501, "5.1.3 Bad recipient address syntax");
		return;
	}
	if (*args && *args != ' ') {
		reply(s, 501, "5.5.4 Syntax: RCPT TO:<address> [parameters]");
		return;
	}
	if ((key = next_param(&args, &val)) != NULL) {
		reply(s, 555, "5.5.4 Unsupported option: %.64s", key);
		return;
	}
	if (eightbit && !s->env.smtputf8) {
		reply(s, 553, "5.6.7 Must declare SMTPUTF8 to send a UTF-8 address");
		return;
	}
	if (eightbit && !utf8_valid(addr)) {
		reply(s, 500, "5.5.2 Error: bad UTF-8 syntax");
		return;
	}
	if (s->env.nrcpt >= s->lim.max_recipients) {
		/* Postfix sends the rest in a new transaction. */
		reply(s, 452, "4.5.3 Error: too many recipients");
		return;
	}
	memset(&r, 0, sizeof(r));
	s->h->rcpt(s->ctx, &s->env, addr, &r);
	if (r.code == 250 || r.code == 251) {
		if ((copy = strdup(addr)) == NULL) {
			reply(s, 452, "4.3.1 Error: insufficient system storage");
			return;
		}
		s->env.rcpt[s->env.nrcpt++] = copy;
		s->state = S_RCPT;
	}
	reply_from(s, &r);
}

static void
data_cmd(struct smtp_session *s, char *args)
{
	if (*args) {
		reply(s, 501, "5.5.4 Syntax: DATA");
		return;
	}
	if (s->state == S_CONNECTED || s->state == S_READY) {
		reply(s, 503, "5.5.1 Error: need RCPT command");
		return;
	}
	if (s->state == S_MAIL) {
		/* Postfix's wording; the client sends RSET or QUIT next. */
		reply(s, 554, "5.5.1 Error: no valid recipients");
		return;
	}
	s->state = S_DATA;
	s->dstate = D_LINESTART;
	s->msglen = 0;
	s->linelen = 0;
	s->msg_too_big = s->msg_bare = s->msg_long_line = s->msg_nomem = 0;
	reply(s, 354, "End data with <CR><LF>.<CR><LF>");
}

static void
rset_cmd(struct smtp_session *s, char *args)
{
	if (*args) {
		reply(s, 501, "5.5.4 Syntax: RSET");
		return;
	}
	txn_reset(s);
	reply(s, 250, "2.0.0 Ok");
}

static void
noop_cmd(struct smtp_session *s, char *args)
{
	(void) args;
	reply(s, 250, "2.0.0 Ok");
}

static void
quit_cmd(struct smtp_session *s, char *args)
{
	(void) args;
	txn_reset(s);
	reply(s, 221, "2.0.0 Bye");
	s->state = S_CLOSED;
}

static void
vrfy_cmd(struct smtp_session *s, char *args)
{
	if (*args == 0) {
		reply(s, 501, "5.5.4 Syntax: VRFY address");
		return;
	}
	reply(s, 252, "2.0.0 Cannot VRFY user; try RCPT to attempt delivery");
}

static void
help_cmd(struct smtp_session *s, char *args)
{
	(void) args;
	reply(s, 214, "2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP");
}

static void
expn_cmd(struct smtp_session *s, char *args)
{
	(void) args;
	reply(s, 502, "5.5.1 Error: command not implemented");
}
