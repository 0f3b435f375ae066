/* relay.h - hand list copies to Postfix through Mailutils' SMTP client */
#ifndef MLISTD_RELAY_H
#define MLISTD_RELAY_H

#include <stddef.h>

enum relay_status {
	RELAY_OK = 0,		/* every batch accepted (refused ones reported) */
	RELAY_TEMP = 1,		/* 4xx, timeout, connection trouble: answer 451 */
	RELAY_PERM = 2		/* 5xx for the message itself, nothing sent */
};

struct relay_result {
	enum relay_status status;
	char	reply[400];	/* the relay's reply that decided, or why */
	size_t	accepted;	/* recipients the relay accepted */
	size_t	refused;	/* recipients refused with 5xx */
	unsigned transactions;	/* MAIL ... DOT completed */
	size_t	handled;	/* rcpt[0 .. handled-1] are done: accepted in a
				 * completed transaction, or refused for good;
				 * on failure, the retry need not repeat them */
};

/* Called for each recipient the relay refuses permanently at RCPT. */
typedef void (*relay_refused_fn) (void *arg, const char *rcpt,
				  const char *reply);

struct relay;

/*
 * relay_create - parse the URL (smtp://HOST[:PORT]); no connection yet.
 * helo is our EHLO name; pipelining: send RCPTs in windows when the
 * relay offers PIPELINING.  Returns NULL with a message in err.
 */
struct relay *relay_create(const char *url, const char *helo,
			   unsigned timeout, int pipelining,
			   char *err, size_t errlen);
void	relay_free(struct relay *);

/*
 * relay_send - send msg (LF line ends; the client restores CR LF and
 * dot-stuffing) from sender to the recipients, in transactions of at most
 * batch recipients, over one persistent connection (reconnecting when the
 * relay dropped it while idle).  A 452 at RCPT moves the rest of a batch
 * to the next transaction.  Any other 4xx, a timeout or a broken
 * connection ends with RELAY_TEMP: the caller must answer 451, because it
 * cannot know the copy was delivered.  mail_params are ESMTP parameters
 * for MAIL FROM (NULL: none).
 */
enum relay_status relay_send(struct relay *, const char *sender,
			     const char *mail_params,
			     char *const *rcpt, size_t nrcpt, size_t batch,
			     const char *msg, size_t len,
			     relay_refused_fn refused, void *arg,
			     struct relay_result *);

/* relay_has_capa - does the relay offer CAPA?  1, 0, or -1 when it
 * cannot be reached (connects if needed). */
int	relay_has_capa(struct relay *, const char *capa);

#endif
