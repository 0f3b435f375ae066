/*
 * relay.c - the SMTP client side: list copies go back to Postfix.
 *
 * Built on Mailutils' SMTP client (mu_smtp_mail_basic, mu_smtp_rcpt_basic,
 * mu_smtp_send_stream, mu_smtp_dot, mu_smtp_rset).  We do not use
 * mu_mailer_send_message(): with several recipients it sends RCPT for the
 * first only, ignores refused recipients, cannot pass ESMTP parameters,
 * and acts on an Fcc: header.  Here every RCPT reply is checked.
 *
 * One connection per worker, kept across messages.  Postfix closes an
 * idle connection after smtpd_timeout (sending 421 first), so a failure
 * of the first command on a reused connection reconnects and starts the
 * transaction again; nothing was accepted at that point, so nothing can
 * be sent twice.  The socket gets send and receive timeouts (the
 * Mailutils TCP stream has none of its own).
 *
 * Any uncertainty after DATA (timeout, dropped connection after the dot)
 * is RELAY_TEMP: the caller answers 451 and Postfix retries, because an
 * unconfirmed copy must never be reported as delivered.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
};

#define PIPE_WINDOW 100		/* RCPT commands in flight */

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

/* disconnect - drop the connection, politely if it still works */
static void
disconnect(struct relay *r, int polite)
{
	if (r->smtp == NULL)
		return;
	if (polite)
		(void) mu_smtp_quit(r->smtp);
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

/* reply_text - "CODE text" of the last reply */
static void
reply_text(struct relay *r, char *buf, size_t len)
{
	char	code[4] = "";
	const char *text = "";

	if (r->smtp == NULL || mu_smtp_replcode(r->smtp, code) != 0)
		code[0] = 0;
	if (r->smtp == NULL || mu_smtp_sget_reply(r->smtp, &text) != 0 || text == NULL)
		text = "";
	snprintf(buf, len, "%s %s", code[0] ? code : "???", text);
}

/* reply_class - 2, 4 or 5 from the last reply code; 0 when unknown */
static int
reply_class(struct relay *r)
{
	char	code[4] = "";

	if (mu_smtp_replcode(r->smtp, code) != 0 || code[0] < '2' || code[0] > '5')
		return (0);
	return (code[0] - '0');
}

/* connect_relay - TCP, timeouts, greeting, EHLO */
static int
connect_relay(struct relay *r, char *why, size_t len)
{
	mu_stream_t str = NULL;
	int	rc;

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
	if ((rc = mu_smtp_open(r->smtp)) != 0 || (rc = mu_smtp_ehlo(r->smtp)) != 0) {
		if (rc == MU_ERR_REPLY)
			reply_text(r, why, len);
		else
			snprintf(why, len, "relay %s:%u: %s", r->host, r->port,
				 mu_strerror(rc));
		disconnect(r, 0);
		return (-1);
	}
	r->reused = 0;
	r->pipelining = r->want_pipelining
		&& mu_smtp_capa_test(r->smtp, "PIPELINING", NULL) == 0;
	return (0);
}

int
relay_has_capa(struct relay *r, const char *capa)
{
	char	why[256];

	if (r->smtp == NULL && connect_relay(r, why, sizeof(why)) < 0)
		return (-1);
	return (mu_smtp_capa_test(r->smtp, capa, NULL) == 0);
}

/* fail - record why, reset or drop the connection, return the status */
static enum relay_status
fail(struct relay *r, struct relay_result *res, int rc, enum relay_status st)
{
	if (rc == MU_ERR_REPLY) {
		reply_text(r, res->reply, sizeof(res->reply));
		/* A clean refusal: RSET keeps the connection usable. */
		if (mu_smtp_rset(r->smtp) != 0)
			disconnect(r, 0);
	} else {
		snprintf(res->reply, sizeof(res->reply), "relay %s:%u: %s", r->host,
			 r->port, mu_strerror(rc));
		disconnect(r, 0);
	}
	res->status = st;
	return (st);
}

/*
 * rcpt_verdict - classify one RCPT reply: 1 go on (accepted, or refused
 * for good and reported), 0 a 452 after some were accepted (send the
 * rest in the next transaction), -1 give up (4xx, or trouble).
 */
static int
rcpt_verdict(struct relay *r, int rc, const char *rcpt, relay_refused_fn refused,
	     void *arg, struct relay_result *res, size_t *accepted)
{
	char	code[4] = "", text[400];

	if (rc == 0) {
		(*accepted)++;
		return (1);
	}
	if (rc != MU_ERR_REPLY)
		return (-1);
	(void) mu_smtp_replcode(r->smtp, code);
	reply_text(r, text, sizeof(text));
	if (code[0] == '5') {
		res->refused++;
		if (refused)
			refused(arg, rcpt, text);
		return (1);
	}
	if (strcmp(code, "452") == 0 && *accepted > 0)
		return (0);
	snprintf(res->reply, sizeof(res->reply), "%s", text);
	return (-1);
}

/*
 * defer_window - RCPT commands for rcpt[0..n-1], to go out right behind
 * the next command Mailutils writes, in the same packet
 */
static int
defer_window(struct relay *r, char *const *rcpt, size_t n)
{
	char	buf[PIPE_WINDOW * (SMTP_ADDR_MAX + 16)];
	size_t	len = 0;

	for (size_t j = 0; j < n; j++) {
		int	w = snprintf(buf + len, sizeof(buf) - len, "RCPT TO:<%s>\r\n", rcpt[j]);

		if (w < 0 || (size_t) w >= sizeof(buf) - len)
			return (EOVERFLOW);
		len += (size_t) w;
	}
	return (sockstream_defer(r->carrier, buf, len));
}

/* fail_hard - give up and drop the connection (replies may be pending) */
static enum relay_status
fail_hard(struct relay *r, struct relay_result *res, int rc)
{
	if (rc == MU_ERR_REPLY)
		reply_text(r, res->reply, sizeof(res->reply));
	else
		snprintf(res->reply, sizeof(res->reply), "relay %s:%u: %s", r->host,
			 r->port, mu_strerror(rc));
	disconnect(r, 0);
	res->status = RELAY_TEMP;
	return (RELAY_TEMP);
}

/*
 * one_batch - MAIL, RCPT for up to `batch` recipients from *next, DATA.
 * Advances *next past the recipients handled (a 452 leaves the rest for
 * the next batch).  Returns RELAY_OK, or a failure; *retry is set when the
 * first command failed on a reused connection (then nothing happened).
 */
static enum relay_status
one_batch(struct relay *r, const char *sender, const char *params,
	  char *const *rcpt, size_t nrcpt, size_t *next, size_t batch,
	  const char *msg, size_t len, relay_refused_fn refused, void *arg,
	  struct relay_result *res, int *retry)
{
	size_t	i, accepted = 0, end = *next + batch;
	mu_stream_t body = NULL;
	int	rc;

	*retry = 0;
	if (end > nrcpt)
		end = nrcpt;
	rc = params ? mu_smtp_mail_basic(r->smtp, sender, "%s", params)
		: mu_smtp_mail_basic(r->smtp, sender, NULL);
	if (rc != 0) {
		if (r->reused && (rc != MU_ERR_REPLY || reply_class(r) == 4)) {
			/* Stale idle connection (or its 421): start over. */
			disconnect(r, 0);
			*retry = 1;
			return (RELAY_TEMP);
		}
		return (fail(r, res, rc, rc == MU_ERR_REPLY && reply_class(r) == 5
			     ? RELAY_PERM : RELAY_TEMP));
	}
	r->reused = 1;
	i = *next;
	/*
	 * The first RCPT of a window goes through mu_smtp_rcpt_basic, which
	 * moves the client's state machine on; with PIPELINING the next ones
	 * of the window (PIPE_WINDOW commands in all) go out in the same
	 * packet behind it, and their replies are read in order (RFC 2920).
	 * A window is small enough for its commands and replies to fit the
	 * socket buffers, so neither side can block the other.
	 */
	while (i < end) {
		size_t	wend, j, resume = i;
		int	verdict, stop = 0;

		wend = r->pipelining ? (i + PIPE_WINDOW < end ? i + PIPE_WINDOW : end) : i + 1;
		if (wend - i > 1) {
			if ((rc = defer_window(r, rcpt + i + 1, wend - i - 1)) != 0)
				return (fail_hard(r, res, rc));
			sockstream_quickack(r->carrier, 1);
		}
		rc = mu_smtp_rcpt_basic(r->smtp, rcpt[i], NULL);
		for (j = i; j < wend; j++) {
			if (j > i) {
				if ((rc = mu_smtp_response(r->smtp)) != 0) {
					sockstream_quickack(r->carrier, 0);
					return (fail_hard(r, res, rc));
				}
				rc = reply_class(r) == 2 ? 0 : MU_ERR_REPLY;
			} else if (rc != 0 && rc != MU_ERR_REPLY && wend - i > 1) {
				/* No reply at all: the rest cannot be read either. */
				sockstream_quickack(r->carrier, 0);
				return (fail_hard(r, res, rc));
			}
			if (stop) {
				/* After a 452 nothing more may be accepted. */
				if (rc == 0 && stop == 1)
					stop = 3;
				continue;
			}
			verdict = rcpt_verdict(r, rc, rcpt[j], refused, arg, res, &accepted);
			if (verdict < 0)
				stop = 2;	/* read the rest, then give up */
			else if (verdict == 0) {
				stop = 1;	/* 452: the rest in the next batch */
				resume = j;
			}
		}
		sockstream_quickack(r->carrier, 0);
		if (stop == 2 && wend - i == 1)
			return (fail(r, res, rc, RELAY_TEMP));	/* RSET, keep it */
		if (stop == 2 || stop == 3)
			return (fail_hard(r, res, stop == 2 ? MU_ERR_REPLY : MU_ERR_BADREPLY));
		if (stop == 1) {
			i = resume;
			break;
		}
		i = wend;
	}
	*next = i;
	if (accepted == 0) {
		/* Everyone refused permanently: no DATA, clean up. */
		if ((rc = mu_smtp_rset(r->smtp)) != 0)
			disconnect(r, 0);
		return (RELAY_OK);
	}
	if ((rc = mu_static_memory_stream_create(&body, msg, len)) != 0)
		return (fail(r, res, rc, RELAY_TEMP));
	rc = mu_smtp_send_stream(r->smtp, body);
	mu_stream_destroy(&body);
	if (rc != 0)
		return (fail(r, res, rc, rc == MU_ERR_REPLY && reply_class(r) == 5
			     && res->transactions == 0 ? RELAY_PERM : RELAY_TEMP));
	if ((rc = mu_smtp_dot(r->smtp)) != 0)
		return (fail(r, res, rc, rc == MU_ERR_REPLY && reply_class(r) == 5
			     && res->transactions == 0 ? RELAY_PERM : RELAY_TEMP));
	reply_text(r, res->reply, sizeof(res->reply));
	res->accepted += accepted;
	res->transactions++;
	return (RELAY_OK);
}

enum relay_status
relay_send(struct relay *r, const char *sender, const char *params,
	   char *const *rcpt, size_t nrcpt, size_t batch,
	   const char *msg, size_t len, relay_refused_fn refused, void *arg,
	   struct relay_result *res)
{
	size_t	next = 0;

	memset(res, 0, sizeof(*res));
	if (batch == 0)
		batch = 1;
	while (next < nrcpt) {
		enum relay_status st;
		int	retry = 0, attempts = 0;

		do {
			if (r->smtp == NULL
			    && connect_relay(r, res->reply, sizeof(res->reply)) < 0) {
				res->status = RELAY_TEMP;
				return (RELAY_TEMP);
			}
			st = one_batch(r, sender, params, rcpt, nrcpt, &next, batch,
				       msg, len, refused, arg, res, &retry);
		} while (retry && ++attempts < 2);
		if (retry) {
			snprintf(res->reply, sizeof(res->reply),
				 "relay %s:%u closed the connection", r->host, r->port);
			res->status = RELAY_TEMP;
			return (RELAY_TEMP);
		}
		if (st != RELAY_OK)
			return (st);
		res->handled = next;
	}
	res->status = RELAY_OK;
	return (RELAY_OK);
}
