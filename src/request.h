/* request.h - mail to a list's command addresses: subscribe,
 * unsubscribe, help, confirm */
#ifndef MLISTD_REQUEST_H
#define MLISTD_REQUEST_H

#include "command.h"
#include "flow.h"
#include "rewrite.h"

/* A command address named in the transaction. */
struct cmd_rcpt {
	struct command c;
	const char *rcpt;
};

/*
 * request_mail - the end of data for one command address.  0 when done
 * with (answered, forwarded, or ignored on purpose), -1 with the reply
 * set.  A closed list's request goes to the postmaster alias as a post
 * (post_check, post_send; *copies counts it).
 */
int	request_mail(struct deliver_session *, const struct smtp_envelope *,
		     const struct rewrite_msg *, const struct cmd_rcpt *,
		     const char *digest, double eod_start, struct smtp_reply *,
		     unsigned *copies);

#endif
