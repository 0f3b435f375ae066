/* moderate.h - a moderator's decision by mail on a held post */
#ifndef MLISTD_MODERATE_H
#define MLISTD_MODERATE_H

#include "command.h"
#include "flow.h"
#include "rewrite.h"

/*
 * moderate_mail - mail to LIST+approve+TOKEN (reject, discard) of list g:
 * the decision recorded when the token is valid and a moderator writes,
 * first decision wins (the runner carries it out).  0 when dealt with
 * (also when nothing changed), -1 with a 451 set.
 */
int	moderate_mail(struct deliver_session *, const struct smtp_envelope *,
		      const struct rewrite_msg *, const struct command *,
		      const struct store_group *g, struct smtp_reply *);

#endif
