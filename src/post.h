/* post.h - a list post's copy: may it go, send it exactly once */
#ifndef MLISTD_POST_H
#define MLISTD_POST_H

#include "flow.h"
#include "rewrite.h"

/* post_check - may this message go to list g, and how?  *reason says why
 * a post is held ("moderated", "not allowed"). */
enum {
	POST_SEND = 1,		/* to the members now */
	POST_HOLD,		/* for a moderator (held.c) */
	POST_DISCARD		/* 250, logged, nothing sent */
};
int	post_check(struct deliver_session *, const struct smtp_envelope *,
		   const struct rewrite_msg *, const struct store_group *,
		   struct smtp_reply *, const char **reason);

/* post_send - list g's copy: claim, relay in transactions with a
 * checkpoint after each, release; counts a copy done in *copies.  0, or
 * -1 with the reply set. */
int	post_send(struct deliver_session *, const struct smtp_envelope *,
		  const struct rewrite_msg *, const struct store_group *,
		  const char *digest, double eod_start, struct smtp_reply *,
		  unsigned *copies);

#endif
