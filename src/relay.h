/* relay.h - hand list copies to Postfix over SMTP */
#ifndef MLISTD_RELAY_H
#define MLISTD_RELAY_H

#include <stddef.h>

enum relay_status {
	RELAY_OK = 0,		/* every recipient accepted or refused for good */
	RELAY_TEMP = 1,		/* some recipients not served: answer 451 */
	RELAY_PERM = 2		/* the relay refused the content (5xx after
				 * DATA) in the first transaction */
};

/* relay_send flags: ESMTP parameters the incoming transaction used */
#define RELAY_8BITMIME	0x01	/* BODY=8BITMIME */
#define RELAY_SMTPUTF8	0x02	/* SMTPUTF8 */
#define RELAY_XVERP	0x04	/* XVERP=+= when the relay offers it */

struct relay_result {
	enum relay_status status;
	int	problem;	/* the relay refuses mlistd itself: its
				 * configuration needs fixing (log a warning) */
	int	stopped;	/* proceed() or checkpoint() said stop */
	char	reply[400];	/* the relay's reply that decided, or why */
	char	queued[400];	/* its last 250 to the dot */
	size_t	accepted;	/* recipients accepted in completed transactions */
	size_t	refused;	/* recipients refused with 5xx at RCPT */
	size_t	deferred;	/* 4xx at RCPT: left for the retry */
	unsigned transactions;	/* MAIL ... dot completed with 250 */
};

/* What became of one recipient in a transaction that ended. */
struct relay_outcome {
	const char *rcpt;
	int	accepted;	/* 1: the relay took the copy for it (250 after
				 * the dot); 0: refused for good at RCPT */
	const char *reply;	/* the refusal ("550 5.1.1 ..."), or NULL */
};

struct relay_hooks {
	/*
	 * After each transaction: the recipients that are done with (the
	 * accepted ones only after the relay's 250 to the dot).  Return 0
	 * to go on; anything else stops the send (RELAY_TEMP, stopped).
	 */
	int	(*checkpoint) (void *arg, const struct relay_outcome *, size_t n);
	/*
	 * Before each transaction but the first; last is how long the
	 * previous one took, in seconds.  0 to go on, else stop.
	 */
	int	(*proceed) (void *arg, double last);
	/*
	 * After the relay's 354, before the message goes out: 0 to send
	 * it, else the connection is dropped before the dot (the relay
	 * keeps nothing) and the transaction fails.  May be NULL.
	 */
	int	(*may_send) (void *arg);
	void   *arg;
	double	hard_deadline;	/* no reply is awaited past this
				 * (sockstream_now() seconds; 0: none) */
};

struct relay;

/*
 * relay_create - parse the URL (smtp://HOST[:PORT]); no connection yet.
 * helo is our EHLO name; timeout bounds each reply; pipelining: send
 * MAIL, RCPT and DATA in pipelined groups when the relay offers
 * PIPELINING.  Returns NULL with a message in err.
 */
struct relay *relay_create(const char *url, const char *helo,
			   unsigned timeout, int pipelining,
			   char *err, size_t errlen);
void	relay_free(struct relay *);

/*
 * relay_send - send msg (LF line ends; CR LF and dot-stuffing are
 * restored on the wire) from sender to the recipients, in transactions of
 * at most batch recipients, over one persistent connection (reconnecting
 * once when a reused connection turns out to be closed).  A 452 at RCPT
 * moves the rest to the next transaction; any other 4xx at RCPT leaves
 * that recipient for the retry (RELAY_TEMP) and the others are served.
 * Each completed transaction is reported to hooks->checkpoint before the
 * next starts; a transaction cut short (421, hang-up, timeout) reports
 * nobody, not even its refusals.  A refusal of mlistd itself (5xx at
 * greeting, EHLO or MAIL; every recipient of a transaction refused
 * alike for a reason not about the mailbox; a sequence error) is
 * RELAY_TEMP with problem set,
 * and its refusals are not reported as the members'.
 */
enum relay_status relay_send(struct relay *, const char *sender, unsigned flags,
			     char *const *rcpt, size_t nrcpt, size_t batch,
			     const char *msg, size_t len,
			     const struct relay_hooks *, struct relay_result *);

/* relay_has_capa - does the relay offer CAPA?  1, 0, or -1 when it
 * cannot be reached (connects if needed). */
int	relay_has_capa(struct relay *, const char *capa);

/* Bounds on what the relay may send (replies are read by relay.c). */
#define RELAY_LINE_MAX	2048	/* bytes per reply line, CR LF included */
#define RELAY_LINES_MAX	100	/* lines per reply */
#define RELAY_EHLO_MAX	65536	/* bytes of greeting plus EHLO reply */

#endif
