/*
 * relay.c - the SMTP client side: list copies go back to Postfix.
 *
 * Mailutils' SMTP client does what it does well here: the connection's
 * greeting, EHLO and the capabilities (mu_smtp_open, mu_smtp_ehlo,
 * mu_smtp_capa_test), over src/sockstream.c.  The transactions (MAIL,
 * RCPT, DATA, the message, the dot, RSET, QUIT) are ours, written and
 * read over that same stream, and Mailutils' state machine is never
 * used for them: with pipelining, every reply must be matched to its
 * command, which mu_smtp_rcpt_basic cannot do (it reads one reply and
 * moves its state on as if the others did not exist), and
 * mu_mailer_send_message sends RCPT for the first recipient only.
 *
 * Replies are bounded: RELAY_LINE_MAX bytes a line, RELAY_LINES_MAX
 * lines, and one deadline per reply (relay-timeout, and never past the
 * caller's hard deadline), however slowly its bytes arrive.  Anything
 * else is a malformed reply: the connection is dropped.
 *
 * With PIPELINING (RFC 2920) MAIL, the RCPTs of a window of PIPE_WINDOW
 * and, after the last window, DATA go out in one write; the replies are
 * read back in order.  A window is small enough for its commands and
 * replies to fit the socket buffers, so neither side can block the other.
 *
 * What the replies mean:
 *   - 250 to the dot: the relay has the copy for every recipient it
 *     accepted; reported to the checkpoint hook before anything else.
 *   - 5xx to one RCPT: that member's bounce, but only once the
 *     transaction has ended in order (the reply to the dot, or to RSET
 *     when nobody was accepted).  A transaction cut short by 421, a
 *     hang-up or a timeout leaves its refusals in doubt: those members
 *     are owed, not refused.  If the relay refuses MAIL, or every
 *     recipient of a transaction alike for a reason not about the
 *     mailbox, it refuses mlistd
 *     (relay-access rules, a configuration change): a relay problem,
 *     RELAY_TEMP, nobody's bounce.  Refusals about the mailbox (5.1.x,
 *     5.2.x) are always the members', so a list whose first members
 *     (or all of them) are dead still reaches the others.
 *   - 452 to RCPT: too many recipients, the rest go in the next
 *     transaction; any other 4xx leaves that member for the retry.
 *   - Any doubt after DATA (timeout, connection lost before the reply
 *     to the dot) is RELAY_TEMP, and those recipients are not reported:
 *     an unconfirmed copy is never counted as delivered.
 *
 * One connection per worker, kept across messages.  Postfix closes an
 * idle connection after smtpd_timeout (sending 421 first), so a failure
 * before any reply of a transaction on a reused connection reconnects
 * and starts it again; nothing was accepted then, so nothing is sent
 * twice.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mailutils/errno.h>
#include <mailutils/smtp.h>
#include <mailutils/stream.h>
#include <mailutils/url.h>

#include "log.h"
#include "relay.h"
#include "smtp_session.h"
#include "sockstream.h"

struct relay {
	char   *host;
	unsigned port;
	char   *helo;
	unsigned timeout;
	mu_smtp_t smtp;		/* NULL: not connected */
	mu_stream_t carrier;	/* its socket stream (the smtp object's) */
	int	reused;		/* connection already carried a transaction */
	int	pipelining;	/* in use on this connection */
	int	want_pipelining;	/* relay-pipelining */
	double	hard_deadline;	/* of the relay_send in progress; 0: none */
};

#define PIPE_WINDOW 100		/* RCPT commands in flight */

/* One reply: its code, and "CODE text" of its first line. */
struct reply {
	int	code;
	char	text[400];
};

/* relay_create - parse smtp://host[:port] */
struct relay *
relay_create(const char *urlstr, const char *helo, unsigned timeout,
	     int pipelining, char *err, size_t errlen)
{
	struct relay *r;
	mu_url_t url = NULL;
	const char *scheme = NULL, *host = NULL;
	unsigned port = 25;
	int	rc;

	if ((rc = mu_url_create(&url, urlstr)) != 0) {
		snprintf(err, errlen, "relay %s: %s", urlstr, mu_strerror(rc));
		return (NULL);
	}
	if (mu_url_sget_scheme(url, &scheme) != 0 || strcmp(scheme, "smtp") != 0
	    || mu_url_sget_host(url, &host) != 0 || *host == 0) {
		snprintf(err, errlen, "relay %s: expected smtp://HOST[:PORT]", urlstr);
		mu_url_destroy(&url);
		return (NULL);
	}
	/*
	 * The port as text: mu_url_get_port() in Mailutils 3.15 returns
	 * ports above 32767 sign-extended.
	 */
	{
		char	portstr[16];
		size_t	n = 0;

		if (mu_url_get_portstr(url, portstr, sizeof(portstr), &n) == 0 && n > 0) {
			char   *end;
			unsigned long p = strtoul(portstr, &end, 10);

			if (*end != 0 || p == 0 || p > 65535) {
				snprintf(err, errlen, "relay %s: invalid port \"%s\"", urlstr, portstr);
				mu_url_destroy(&url);
				return (NULL);
			}
			port = (unsigned) p;
		}
	}
	if ((r = calloc(1, sizeof(*r))) == NULL
	    || (r->host = strdup(host)) == NULL
	    || (r->helo = strdup(helo)) == NULL) {
		snprintf(err, errlen, "out of memory");
		mu_url_destroy(&url);
		relay_free(r);
		return (NULL);
	}
	r->port = port;
	r->timeout = timeout;
	r->want_pipelining = pipelining;
	mu_url_destroy(&url);
	return (r);
}

/* disconnect - drop the connection; QUIT first if it still works */
static void
disconnect(struct relay *r, int polite)
{
	if (r->smtp == NULL)
		return;
	if (polite && r->carrier) {
		/* Our QUIT; nobody waits for its reply. */
		sockstream_deadline(r->carrier, sockstream_now() + 1);
		if (sockstream_write(r->carrier, "QUIT\r\n", 6) == 0)
			(void) sockstream_flush(r->carrier);
	}
	mu_smtp_destroy(&r->smtp);
	r->smtp = NULL;
	r->carrier = NULL;
	r->reused = 0;
}

void
relay_free(struct relay *r)
{
	if (r == NULL)
		return;
	disconnect(r, 1);
	free(r->host);
	free(r->helo);
	free(r);
}

/* reply_deadline - relay-timeout from now, never past the hard deadline */
static void
reply_deadline(struct relay *r)
{
	double	when = sockstream_now() + r->timeout;

	if (r->hard_deadline > 0 && when > r->hard_deadline)
		when = r->hard_deadline;
	sockstream_deadline(r->carrier, when);
}

/* mu_reply_text - "CODE text" of the last reply Mailutils read */
static void
mu_reply_text(struct relay *r, char *buf, size_t len)
{
	char	code[4] = "";
	const char *text = "";

	if (r->smtp == NULL || mu_smtp_replcode(r->smtp, code) != 0)
		code[0] = 0;
	if (r->smtp == NULL || mu_smtp_sget_reply(r->smtp, &text) != 0 || text == NULL)
		text = "";
	snprintf(buf, len, "%s %s", code[0] ? code : "???", text);
}

/* connect_relay - TCP, greeting, EHLO (Mailutils, bounded); -1 with why */
static int
connect_relay(struct relay *r, char *why, size_t len, int *problem)
{
	mu_stream_t str = NULL;
	int	rc;

	*problem = 0;
	if (sockstream_connect(&str, r->host, r->port, r->timeout, why, len) < 0)
		return (-1);
	if ((rc = mu_smtp_create(&r->smtp)) != 0) {
		mu_stream_destroy(&str);
		snprintf(why, len, "relay: %s", mu_strerror(rc));
		return (-1);
	}
	(void) mu_smtp_set_param(r->smtp, MU_SMTP_PARAM_DOMAIN, r->helo);
	if ((rc = mu_smtp_set_carrier(r->smtp, str)) != 0) {
		mu_stream_destroy(&str);
		mu_smtp_destroy(&r->smtp);
		r->smtp = NULL;
		snprintf(why, len, "relay: %s", mu_strerror(rc));
		return (-1);
	}
	mu_stream_unref(str);		/* the smtp object holds it now */
	r->carrier = str;
	/* Mailutils reads these replies without limits of its own. */
	sockstream_budget(str, RELAY_EHLO_MAX);
	reply_deadline(r);
	if ((rc = mu_smtp_open(r->smtp)) == 0) {
		reply_deadline(r);
		rc = mu_smtp_ehlo(r->smtp);
	}
	if (rc != 0) {
		if (rc == MU_ERR_REPLY) {
			char	code[4] = "";

			mu_reply_text(r, why, len);
			*problem = mu_smtp_replcode(r->smtp, code) == 0 && code[0] == '5';
		} else
			snprintf(why, len, "relay %s:%u: %s", r->host, r->port,
				 rc == EOVERFLOW ? "greeting or EHLO reply too long"
				 : mu_strerror(rc));
		disconnect(r, 0);
		return (-1);
	}
	sockstream_budget(str, 0);
	r->reused = 0;
	r->pipelining = r->want_pipelining
		&& mu_smtp_capa_test(r->smtp, "PIPELINING", NULL) == 0;
	return (0);
}

int
relay_has_capa(struct relay *r, const char *capa)
{
	char	why[256];
	int	problem;

	if (r->smtp == NULL && connect_relay(r, why, sizeof(why), &problem) < 0)
		return (-1);
	return (mu_smtp_capa_test(r->smtp, capa, NULL) == 0);
}

/*
 * read_reply - one complete reply, bounded.  0, or an errno value
 * (ETIMEDOUT, ECONNRESET, ...) or MU_ERR_BADREPLY for a malformed one;
 * after an error the connection is out of step and must be dropped.
 */
static int
read_reply(struct relay *r, struct reply *rp)
{
	char	line[RELAY_LINE_MAX + 1];
	unsigned lines = 0;

	rp->code = 0;
	rp->text[0] = 0;
	reply_deadline(r);
	for (;;) {
		size_t	n;
		int	rc, code;

		if ((rc = sockstream_getline(r->carrier, line, sizeof(line), &n)) != 0)
			return (rc == EOVERFLOW ? MU_ERR_BADREPLY : rc);
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = 0;
		if (n < 3 || line[0] < '2' || line[0] > '5' || line[1] < '0' || line[1] > '9'
		    || line[2] < '0' || line[2] > '9' || (n > 3 && line[3] != ' ' && line[3] != '-'))
			return (MU_ERR_BADREPLY);
		code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
		if (lines == 0) {
			rp->code = code;
			/* Keep it printable: it goes into logs and the database. */
			for (char *p = line; *p; p++)
				if ((unsigned char) *p < 0x20 || *p == 0x7f)
					*p = ' ';
			snprintf(rp->text, sizeof(rp->text), "%.399s", line);
		} else if (code != rp->code)
			return (MU_ERR_BADREPLY);
		if (++lines > RELAY_LINES_MAX)
			return (MU_ERR_BADREPLY);
		if (n == 3 || line[3] == ' ')
			return (0);
	}
}

/* io_text - why the relay connection failed */
static void
io_text(struct relay *r, int rc, char *buf, size_t len)
{
	const char *what = rc == MU_ERR_BADREPLY ? "malformed or oversized reply"
		: rc == ETIMEDOUT ? "timed out waiting for a reply"
		: rc == ECONNRESET ? "lost connection" : mu_strerror(rc);

	snprintf(buf, len, "relay %s:%u: %s", r->host, r->port, what);
}

/* put - "VERB:<path>params" CR LF into the write buffer */
static int
put(struct relay *r, const char *verb, const char *path, const char *params)
{
	char	cmd[SMTP_ADDR_MAX + 128];
	int	n = snprintf(cmd, sizeof(cmd), "%s:<%s>%s\r\n", verb, path,
			     params ? params : "");

	if (n < 0 || (size_t) n >= sizeof(cmd))
		return (EOVERFLOW);
	return (sockstream_write(r->carrier, cmd, (size_t) n));
}

/* send_body - the message: LF -> CR LF, dot-stuffing; not the dot */
static int
send_body(struct relay *r, const char *msg, size_t len)
{
	size_t	i = 0;
	int	rc;

	while (i < len) {
		const char *lf = memchr(msg + i, '\n', len - i);
		size_t	n = lf ? (size_t) (lf - (msg + i)) : len - i;

		if (n > 0 && msg[i + n - 1] == '\r')
			n--;			/* already CR LF */
		if ((msg[i] == '.' && (rc = sockstream_write(r->carrier, ".", 1)) != 0)
		    || (rc = sockstream_write(r->carrier, msg + i, n)) != 0
		    || (rc = sockstream_write(r->carrier, "\r\n", 2)) != 0)
			return (rc);
		i += lf ? (size_t) (lf - (msg + i)) + 1 : len - i;
	}
	return (0);
}

/* too_late - may the message (or its final dot) no longer go out?  The
 * hard deadline passed, or the caller's may_send says no. */
static int
too_late(struct relay *r, const struct relay_hooks *h)
{
	return ((r->hard_deadline > 0 && sockstream_now() > r->hard_deadline)
		|| (h && h->may_send && h->may_send(h->arg) != 0));
}

/* enhanced - the enhanced status code of "550 5.1.1 text" ("" if none) */
static void
enhanced(const char *text, char *out, size_t len)
{
	const char *p = text + 3 + strspn(text + 3, " -");
	size_t	n = strcspn(p, " ");

	out[0] = 0;
	if (n >= 5 && n < len && (p[0] == '2' || p[0] == '4' || p[0] == '5') && p[1] == '.')
		snprintf(out, len, "%.*s", (int) n, p);
}

/* refused_alike2 - two refusals with the same code and enhanced code */
static int
refused_alike2(const char *a, const char *b)
{
	char	ea[16], eb[16];

	enhanced(a, ea, sizeof(ea));
	enhanced(b, eb, sizeof(eb));
	return (strncmp(a, b, 3) == 0 && strcmp(ea, eb) == 0);
}

/* refused_alike - n refusals (n > 0), all with one code and enhanced code */
static int
refused_alike(char **replies, size_t n)
{
	if (n == 0)
		return (0);
	for (size_t i = 1; i < n; i++)
		if (!refused_alike2(replies[0], replies[i]))
			return (0);
	return (1);
}

/*
 * sender_refusal - is a refusal at RCPT about mlistd's envelope sender?
 * Enhanced code X.1.7 or X.1.8, or Postfix's form "550 5.1.0 <SENDER>:
 * Sender address rejected: ...": the address it leads with is the
 * sender, or its text starts "Sender address rejected".  Only where
 * Postfix puts them: a remote server's words quoted further on (a
 * recipient's "... check the sender address") change nothing.  Never a
 * member's bounce, wherever it falls.
 */
static int
sender_refusal(const char *reply, const char *sender)
{
	const char *p = reply + strspn(reply, "0123456789"), *gt;
	char	e[16];
	size_t	n = strlen(sender);

	enhanced(reply, e, sizeof(e));
	if (strcmp(e, "5.1.7") == 0 || strcmp(e, "5.1.8") == 0)
		return (1);
	p += strspn(p, " -");
	if (e[0])
		p += strcspn(p, " ");		/* the enhanced code */
	p += strspn(p, " ");
	if (*p == '<' && (gt = strchr(p, '>')) != NULL) {
		if ((size_t) (gt - p - 1) == n && strncasecmp(p + 1, sender, n) == 0)
			return (1);
		p = gt + 1;
		if (*p == ':')
			p++;
		p += strspn(p, " ");
	}
	return (strncasecmp(p, "Sender address rejected", 23) == 0);
}

/*
 * mailbox_refusal - is a refusal about the recipient's mailbox: enhanced
 * code 5.1.1 to 5.1.4, 5.1.6 or 5.1.10 (no such user, bad system or
 * syntax, ambiguous, moved, null MX) or 5.2.x (disabled, full, ...)?
 * Not when it is about who sends: RFC 3463's X.1.7 and X.1.8, Postfix's
 * "550 5.1.0 <bounce@...>: Sender address rejected", which arrives at
 * every RCPT under smtpd_delay_reject, or any reply that names sender;
 * nor about the relay (5.3.x, 5.4.x), policy (5.7.x: "554 5.7.1 Relay
 * access denied"), the protocol (5.5.x), or unexplained (no enhanced
 * code, 503).
 */
static int
mailbox_refusal(const char *reply, const char *sender)
{
	static const char *const mailbox[] = {"5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.6",
		"5.1.10"};
	char	e[16];

	if (sender_refusal(reply, sender))
		return (0);
	enhanced(reply, e, sizeof(e));
	if (strncmp(e, "5.2.", 4) == 0)
		return (1);
	for (size_t i = 0; i < sizeof(mailbox) / sizeof(mailbox[0]); i++)
		if (strcmp(e, mailbox[i]) == 0)
			return (1);
	return (0);
}

/* Per-recipient state within one transaction. */
enum { R_WAIT, R_ACCEPTED, R_REFUSED, R_NEXT, R_LATER };

/* A transaction's working set. */
struct txn {
	size_t	n;			/* recipients in it */
	size_t *idx;			/* their indexes in rcpt[] */
	unsigned char *state;
	char  **reply;			/* refusals, malloc'd */
	size_t	accepted, refused, next, later;
};

/* txn_alloc - room for a transaction of up to batch recipients; 0 or -1 */
static int
txn_alloc(struct txn *t, size_t batch)
{
	if ((t->idx = calloc(batch + 1, sizeof(*t->idx))) == NULL
	    || (t->state = calloc(batch + 1, 1)) == NULL
	    || (t->reply = calloc(batch + 1, sizeof(*t->reply))) == NULL)
		return (-1);
	return (0);
}

/* txn_free - its arrays (after txn_clear) */
static void
txn_free(struct txn *t)
{
	free(t->idx);
	free(t->state);
	free(t->reply);
	t->idx = NULL;
	t->state = NULL;
	t->reply = NULL;
}

static void
txn_clear(struct txn *t)
{
	for (size_t i = 0; i < t->n; i++) {
		free(t->reply[i]);
		t->reply[i] = NULL;
	}
	t->n = t->accepted = t->refused = t->next = t->later = 0;
}

/* report - hand the finished recipients to the checkpoint hook */
static int
report(const struct relay_hooks *h, struct txn *t, char *const *rcpt,
       int with_accepted, struct relay_outcome *out)
{
	size_t	k = 0;

	for (size_t i = 0; i < t->n; i++) {
		if (t->state[i] == R_REFUSED) {
			out[k].rcpt = rcpt[t->idx[i]];
			out[k].accepted = 0;
			out[k++].reply = t->reply[i];
		} else if (t->state[i] == R_ACCEPTED && with_accepted) {
			out[k].rcpt = rcpt[t->idx[i]];
			out[k].accepted = 1;
			out[k++].reply = NULL;
		}
	}
	if (k == 0 || h == NULL || h->checkpoint == NULL)
		return (0);
	return (h->checkpoint(h->arg, out, k));
}

/* rset - end a transaction that will not be completed; 0 or -1 (dropped) */
static int
rset(struct relay *r)
{
	struct reply rp;

	if (sockstream_write(r->carrier, "RSET\r\n", 6) != 0 || read_reply(r, &rp) != 0
	    || rp.code / 100 != 2) {
		disconnect(r, 0);
		return (-1);
	}
	return (0);
}

/* Outcome of one transaction, for relay_send's loop. */
enum { T_DONE, T_RETRY, T_FAIL };

/* rcpt_state - recipient j's state from its reply to RCPT; 0, ENOMEM, or
 * ECONNRESET when the relay is closing (421) */
static int
rcpt_state(struct relay *r, struct txn *t, size_t j, const struct reply *rp,
	   struct relay_result *res, int *full)
{
	if (rp->code / 100 == 2) {
		t->state[j] = R_ACCEPTED;
		t->accepted++;
	} else if (rp->code / 100 == 5) {
		t->state[j] = R_REFUSED;
		if ((t->reply[j] = strdup(rp->text)) == NULL)
			return (ENOMEM);
		t->refused++;
	} else if (rp->code == 452) {
		t->state[j] = R_NEXT;	/* too many: the next transaction */
		t->next++;
		if (!r->pipelining) {
			/* Lock-step: no point asking for more. */
			for (size_t k = j + 1; k < t->n; k++, t->next++)
				t->state[k] = R_NEXT;
			*full = 1;
		}
	} else if (rp->code == 421) {
		/* Closing: this one and the rest are not done. */
		snprintf(res->reply, sizeof(res->reply), "%s", rp->text);
		t->state[j] = R_LATER;
		return (ECONNRESET);
	} else {
		t->state[j] = R_LATER;	/* 450, 451: for the retry */
		t->later++;
		snprintf(res->reply, sizeof(res->reply), "%s", rp->text);
	}
	return (0);
}

/*
 * envelope - MAIL and the RCPTs of t, in windows with PIPELINING (the
 * last one carries DATA: *data_sent), else one by one; the replies set
 * the recipients' states.  0, or an I/O error for txn_failed (*mail_read:
 * mail holds the reply to MAIL).
 */
static int
envelope(struct relay *r, const char *sender, const char *params, char *const *rcpt,
	 struct txn *t, struct reply *mail, int *mail_read, int *data_sent,
	 struct relay_result *res)
{
	struct reply rp;
	size_t	i = 0;
	int	rc, full = 0;

	if ((rc = put(r, "MAIL FROM", sender, params)) != 0)
		return (rc);
	mail->code = 0;
	if (!r->pipelining) {
		if ((rc = read_reply(r, mail)) != 0)
			return (rc);
		*mail_read = 1;
	}
	while (i < t->n && (mail->code == 0 || mail->code / 100 == 2)) {
		size_t	wend = r->pipelining ? (i + PIPE_WINDOW < t->n ? i + PIPE_WINDOW : t->n)
			: i + 1;

		for (size_t j = i; j < wend; j++)
			if ((rc = put(r, "RCPT TO", rcpt[t->idx[j]], NULL)) != 0)
				return (rc);
		/* The last window carries DATA too (RFC 2920: DATA ends a group). */
		if (r->pipelining && wend == t->n) {
			if ((rc = sockstream_write(r->carrier, "DATA\r\n", 6)) != 0)
				return (rc);
			*data_sent = 1;
		}
		sockstream_quickack(r->carrier, r->pipelining);
		if (!*mail_read) {
			if ((rc = read_reply(r, mail)) != 0)
				return (rc);
			*mail_read = 1;
		}
		for (size_t j = i; j < wend; j++) {
			if ((rc = read_reply(r, &rp)) != 0)
				return (rc);
			if (mail->code / 100 != 2)
				continue;	/* their 503s say nothing of them */
			if ((rc = rcpt_state(r, t, j, &rp, res, &full)) != 0)
				return (rc);
		}
		sockstream_quickack(r->carrier, 0);
		i = full ? t->n : wend;
	}
	return (0);
}

/* mail_refused - MAIL refused (its reply to DATA, if sent, read): T_RETRY
 * on a reused connection closed while idle, else T_FAIL */
static int
mail_refused(struct relay *r, const struct reply *mail, int was_reused,
	     struct relay_result *res)
{
	if (mail->code == 421 && was_reused) {
		disconnect(r, 0);	/* closed while idle: start over */
		return (T_RETRY);
	}
	r->reused = 1;
	snprintf(res->reply, sizeof(res->reply), "%s", mail->text);
	res->problem = mail->code / 100 == 5;
	if (mail->code == 421)
		disconnect(r, 0);
	else
		(void) rset(r);
	return (T_FAIL);
}

/* no_recipient - end a transaction the relay accepted nobody in (rp: its
 * reply to DATA, if data_sent); T_DONE or T_FAIL */
static int
no_recipient(struct relay *r, int data_sent, const struct reply *rp,
	     struct relay_result *res)
{
	/* Nobody to send to: the relay refused DATA (or was not asked). */
	if (data_sent && rp->code == 354) {
		snprintf(res->reply, sizeof(res->reply), "relay %s:%u: 354 to DATA "
			 "without a recipient: %.300s", r->host, r->port, rp->text);
		res->problem = 1;
		disconnect(r, 0);
		return (T_FAIL);
	}
	/* The refusals count only if the relay ends the transaction
	 * in order: a 421 or a hang-up here leaves them in doubt. */
	if (rset(r) < 0) {
		snprintf(res->reply, sizeof(res->reply), "relay %s:%u: connection lost "
			 "after refusing every recipient", r->host, r->port);
		return (T_FAIL);
	}
	return (T_DONE);
}

/* defer_accepted - the recipients accepted in t are owed, not served */
static void
defer_accepted(struct txn *t)
{
	for (size_t j = 0; j < t->n; j++)
		if (t->state[j] == R_ACCEPTED)
			t->state[j] = R_LATER;
}

/* send_message - after 354, the message and the dot; T_DONE (res->queued:
 * the relay's reply to the dot) or T_FAIL */
static int
send_message(struct relay *r, struct txn *t, const char *msg, size_t len,
	     const struct relay_hooks *h, struct relay_result *res, int *data_failed)
{
	struct reply rp;
	int	rc = 0;

	/*
	 * The last moment to change our mind: a worker stopped (SIGSTOP, a
	 * machine asleep) before its message went out must not send it
	 * late, past the deadline or after its claim may have been taken
	 * over.  Hanging up before the dot makes the relay drop the
	 * message, so nobody gets this copy from us.
	 */
	if (too_late(r, h)
	    || (rc = send_body(r, msg, len)) != 0 || (rc = sockstream_flush(r->carrier)) != 0
	    || too_late(r, h)) {
		if (rc != 0)
			io_text(r, rc, res->reply, sizeof(res->reply));
		else
			snprintf(res->reply, sizeof(res->reply), "relay %s:%u: the message not sent: "
				 "the deadline or the claim's lease passed before its final dot",
				 r->host, r->port);
		*data_failed = 1;
		disconnect(r, 0);
		defer_accepted(t);
		return (T_FAIL);
	}
	if ((rc = sockstream_write(r->carrier, ".\r\n", 3)) != 0
	    || (rc = read_reply(r, &rp)) != 0) {
		/* Maybe delivered, maybe not: nobody counts as served. */
		io_text(r, rc, res->reply, sizeof(res->reply));
		*data_failed = 1;
		disconnect(r, 0);
		defer_accepted(t);
		return (T_FAIL);
	}
	if (rp.code / 100 != 2) {
		snprintf(res->reply, sizeof(res->reply), "%s", rp.text);
		*data_failed = rp.code / 100 == 5 ? 5 : 4;
		defer_accepted(t);
		return (T_FAIL);
	}
	snprintf(res->queued, sizeof(res->queued), "%s", rp.text);
	return (T_DONE);
}

/*
 * txn_failed - a transaction cut short by the I/O error rc (a hang-up, a
 * timeout, 421, a malformed reply): T_RETRY when a reused connection
 * failed before any reply, else T_FAIL with nobody in it served.
 */
static int
txn_failed(struct relay *r, struct txn *t, int rc, int mail_read, const struct reply *mail,
	   int was_reused, struct relay_result *res)
{
	sockstream_quickack(r->carrier, 0);
	/* A reused connection that failed before any reply: start over. */
	if (was_reused && !mail_read && rc != MU_ERR_BADREPLY) {
		disconnect(r, 0);
		return (T_RETRY);
	}
	if (mail_read && mail->code == 421 && was_reused) {
		disconnect(r, 0);
		return (T_RETRY);
	}
	if (res->reply[0] == 0 || rc != ECONNRESET)
		io_text(r, rc, res->reply, sizeof(res->reply));
	if (rc == MU_ERR_BADREPLY)
		res->problem = 1;
	disconnect(r, 0);
	for (size_t j = 0; j < t->n; j++)
		if (t->state[j] == R_ACCEPTED || t->state[j] == R_WAIT)
			t->state[j] = R_LATER;
	return (T_FAIL);
}

/*
 * one_txn - MAIL, the RCPTs of t, DATA, message, dot.  Sets each
 * recipient's state; T_DONE when the transaction ended as the relay
 * wanted (t says who is served), T_RETRY when a reused connection was
 * found closed before anything happened, T_FAIL with res filled in.
 */
static int
one_txn(struct relay *r, const char *sender, const char *params,
	char *const *rcpt, struct txn *t, const char *msg, size_t len,
	const struct relay_hooks *h, struct relay_result *res, int *data_failed)
{
	struct reply rp, mail;
	int	rc, data_sent = 0, mail_read = 0, was_reused = r->reused;

	*data_failed = 0;
	for (size_t j = 0; j < t->n; j++)
		t->state[j] = R_WAIT;
	if ((rc = envelope(r, sender, params, rcpt, t, &mail, &mail_read, &data_sent, res)) != 0)
		goto io_failed;
	if (mail.code / 100 != 2) {
		/* Refused: us, not the members (5xx is a relay problem). */
		if (data_sent && (rc = read_reply(r, &rp)) != 0)
			goto io_failed;
		return (mail_refused(r, &mail, was_reused, res));
	}
	r->reused = 1;
	if (!data_sent && t->accepted > 0) {
		if ((rc = sockstream_write(r->carrier, "DATA\r\n", 6)) != 0)
			goto io_failed;
		data_sent = 1;
	}
	if (data_sent && (rc = read_reply(r, &rp)) != 0)
		goto io_failed;
	if (t->accepted == 0)
		return (no_recipient(r, data_sent, &rp, res));
	if (rp.code != 354) {
		snprintf(res->reply, sizeof(res->reply), "%s", rp.text);
		res->problem = rp.code / 100 == 5;	/* 503, 554 to DATA itself */
		*data_failed = 1;
		(void) rset(r);
		return (T_FAIL);
	}
	return (send_message(r, t, msg, len, h, res, data_failed));
io_failed:
	return (txn_failed(r, t, rc, mail_read, &mail, was_reused, res));
}

/* mail_params - the ESMTP parameters for MAIL FROM; -1 with why */
static int
mail_params(struct relay *r, unsigned flags, char *buf, size_t len,
	    struct relay_result *res)
{
	buf[0] = 0;
	if ((flags & RELAY_8BITMIME) && mu_smtp_capa_test(r->smtp, "8BITMIME", NULL) == 0)
		snprintf(buf + strlen(buf), len - strlen(buf), " BODY=8BITMIME");
	if (flags & RELAY_SMTPUTF8) {
		if (mu_smtp_capa_test(r->smtp, "SMTPUTF8", NULL) != 0) {
			snprintf(res->reply, sizeof(res->reply), "relay %s:%u does not offer "
				 "SMTPUTF8, which this copy needs (Postfix: smtputf8_enable = yes)",
				 r->host, r->port);
			res->problem = 1;
			return (-1);
		}
		snprintf(buf + strlen(buf), len - strlen(buf), " SMTPUTF8");
	}
	if ((flags & RELAY_XVERP) && mu_smtp_capa_test(r->smtp, "XVERP", NULL) == 0)
		snprintf(buf + strlen(buf), len - strlen(buf), " XVERP=+=");
	return (0);
}

/* valid_path - nothing in it can break out of "RCPT TO:<...>" */
static int
valid_path(const char *a)
{
	size_t	n = 0;

	for (; a[n]; n++)
		if ((unsigned char) a[n] <= 0x20 || a[n] == 0x7f || a[n] == '<' || a[n] == '>')
			return (0);
	return (n > 0 && n <= SMTP_ADDR_MAX);
}

/* What a finished transaction leaves relay_send to do. */
enum { F_NEXT, F_END, F_UNRECORDED };

/* txn_ready - may the next transaction start: the proceed hook (after
 * the first), a connection, the MAIL parameters; 0, or -1 with res set */
static int
txn_ready(struct relay *r, unsigned flags, const struct relay_hooks *h, unsigned started,
	  double last, char *params, size_t plen, struct relay_result *res)
{
	if (started > 0 && h && h->proceed && h->proceed(h->arg, last) != 0) {
		res->stopped = 1;
		snprintf(res->reply, sizeof(res->reply), "stopped before the next "
			 "transaction (deadline or shutdown)");
		return (-1);
	}
	if (r->smtp == NULL
	    && connect_relay(r, res->reply, sizeof(res->reply), &res->problem) < 0)
		return (-1);
	return (mail_params(r, flags, params, plen, res));
}

/*
 * sender_refused - was a member of t refused at RCPT for mlistd's sender
 * (see sender_refusal)?  F_NEXT if not, else F_END once whom t served is
 * reported, or F_UNRECORDED.
 */
static int
sender_refused(const struct relay_hooks *h, struct txn *t, char *const *rcpt,
	       const char *sender, struct relay_outcome *out, struct relay_result *res)
{
	for (size_t j = 0; j < t->n; j++)
		if (t->state[j] == R_REFUSED && sender_refusal(t->reply[j], sender)) {
			/* Not the member's doing; and not to be sent twice. */
			snprintf(res->reply, sizeof(res->reply), "the relay refuses the "
				 "sender: %s", t->reply[j]);
			res->problem = 1;
			res->deferred += t->n;
			if (t->accepted > 0) {
				/* Those are served: report them, and only them. */
				for (size_t i = 0; i < t->n; i++)
					if (t->state[i] != R_ACCEPTED)
						t->state[i] = R_LATER;
				res->accepted += t->accepted;
				res->transactions++;
				res->deferred -= t->accepted;
				if (report(h, t, rcpt, 1, out) != 0)
					return (F_UNRECORDED);
			}
			return (F_END);
		}
	return (F_NEXT);
}

/* requeue - the recipients of t told 452 back to the queue's head, for
 * the next transaction; how many */
static size_t
requeue(const struct txn *t, size_t *queue, size_t *head)
{
	size_t	k = 0;

	for (size_t j = 0; j < t->n; j++)
		if (t->state[j] == R_NEXT)
			k++;
	*head -= k;
	for (size_t j = 0, w = *head; j < t->n; j++)
		if (t->state[j] == R_NEXT)
			queue[w++] = t->idx[j];
	return (k);
}

/*
 * txn_done - a transaction that ended in order: whom it served, refused
 * or owes, reported to the checkpoint hook, and its 452s back in the
 * queue.  F_NEXT, F_END (res says why) or F_UNRECORDED.
 */
static int
txn_done(struct relay *r, const char *sender, char *const *rcpt, struct txn *t,
	 size_t *queue, size_t *head, const struct relay_hooks *h,
	 struct relay_outcome *out, struct relay_result *res)
{
	int	rc;

	/*
	 * Every recipient of a transaction refused alike for a reason
	 * that is not about the mailbox (see mailbox_refusal): that is
	 * a rule of the relay's, which refuses mlistd (relay access, a
	 * configuration change, also in the middle of a fan-out), not a
	 * verdict on these members.  Refusals about the mailbox (550
	 * 5.1.1 no such user) are always the members', so a list whose
	 * first batch, or every member, is dead still gets its bounces.
	 */
	if (t->accepted == 0 && t->next == 0 && t->later == 0
	    && refused_alike(t->reply, t->n) && !mailbox_refusal(t->reply[0], sender)) {
		snprintf(res->reply, sizeof(res->reply), "every recipient refused: %s",
			 t->reply[0]);
		res->problem = 1;
		res->deferred += t->n;
		return (F_END);
	}
	if ((rc = sender_refused(h, t, rcpt, sender, out, res)) != F_NEXT)
		return (rc);
	if (t->accepted > 0) {
		res->accepted += t->accepted;
		res->transactions++;
	}
	/* 452: back to the queue's head, for the next transaction. */
	if (requeue(t, queue, head) == t->n) {
		snprintf(res->reply, sizeof(res->reply), "relay %s:%u took no "
			 "recipient (452 to the first)", r->host, r->port);
		return (F_END);
	}
	for (size_t j = 0; j < t->n; j++)
		if (t->state[j] == R_LATER)
			res->deferred++;
	res->refused += t->refused;
	if (report(h, t, rcpt, 1, out) != 0)
		return (F_UNRECORDED);
	return (F_NEXT);
}

/* valid_queue - the indexes of the recipients fit to send into queue;
 * how many */
static size_t
valid_queue(char *const *rcpt, size_t nrcpt, size_t *queue)
{
	size_t	n = 0;

	/* Nothing that could smuggle a command goes on the wire. */
	for (size_t i = 0; i < nrcpt; i++)
		if (valid_path(rcpt[i]))
			queue[n++] = i;
		else
			msg_warn("relay: invalid recipient address skipped");
	return (n);
}

/* cut_short - res after a transaction that failed (T_FAIL) */
static void
cut_short(const struct txn *t, int data_failed, struct relay_result *res)
{
	/*
	 * Cut short (421, a hang-up, a timeout, a refusal of MAIL,
	 * DATA or the dot): nobody in it is done with, not even a
	 * member refused at RCPT, whose refusal is in doubt.
	 */
	res->deferred += t->n;
	if (data_failed == 5 && res->transactions == 0)
		res->status = RELAY_PERM;
}

enum relay_status
relay_send(struct relay *r, const char *sender, unsigned flags,
	   char *const *rcpt, size_t nrcpt, size_t batch,
	   const char *msg, size_t len, const struct relay_hooks *h,
	   struct relay_result *res)
{
	struct txn t = {0, NULL, NULL, NULL, 0, 0, 0, 0};
	struct relay_outcome *out = NULL;
	size_t *queue = NULL, nqueue = 0, head = 0;
	char	params[64];
	double	last = 0;
	int	retried = 0;
	unsigned started = 0;		/* transactions that got anywhere */

	memset(res, 0, sizeof(*res));
	res->status = RELAY_TEMP;
	r->hard_deadline = h ? h->hard_deadline : 0;
	if (batch == 0)
		batch = 1;
	if (batch > nrcpt)
		batch = nrcpt;
	if (!valid_path(sender)) {
		snprintf(res->reply, sizeof(res->reply), "invalid sender address");
		goto done;
	}
	if ((queue = calloc(nrcpt + 1, sizeof(*queue))) == NULL
	    || txn_alloc(&t, batch) < 0
	    || (out = calloc(batch + 1, sizeof(*out))) == NULL) {
		snprintf(res->reply, sizeof(res->reply), "out of memory");
		goto done;
	}
	nqueue = valid_queue(rcpt, nrcpt, queue);
	while (head < nqueue) {
		double	t0;
		int	st, data_failed;

		if (txn_ready(r, flags, h, started, last, params, sizeof(params), res) < 0)
			goto done;
		txn_clear(&t);
		while (t.n < batch && head < nqueue)
			t.idx[t.n++] = queue[head++];
		t0 = sockstream_now();
		st = one_txn(r, sender, params, rcpt, &t, msg, len, h, res, &data_failed);
		last = sockstream_now() - t0;
		if (st == T_RETRY) {
			head -= t.n;		/* nothing happened: the same again */
			if (retried++ > 0) {
				snprintf(res->reply, sizeof(res->reply),
					 "relay %s:%u closed the connection", r->host, r->port);
				goto done;
			}
			continue;
		}
		retried = 0;
		started++;
		if (st == T_FAIL) {
			cut_short(&t, data_failed, res);
			goto done;
		}
		if ((st = txn_done(r, sender, rcpt, &t, queue, &head, h, out, res)) == F_END)
			goto done;
		if (st == F_UNRECORDED)
			goto unrecorded;
	}
	res->status = res->deferred > 0 ? RELAY_TEMP : RELAY_OK;
	goto done;
unrecorded:
	res->stopped = 1;
	snprintf(res->reply, sizeof(res->reply), "could not record the recipients served");
done:
	r->hard_deadline = 0;
	txn_clear(&t);
	free(queue);
	txn_free(&t);
	free(out);
	return (res->status);
}
