/* held.h - posts held for a moderator: kept at the end of data */
#ifndef MLISTD_HELD_H
#define MLISTD_HELD_H

#include "flow.h"
#include "rewrite.h"

/*
 * held_post - keep the post (msg, len: as received) for list g's
 * moderators: its file in held-maildir and its `held` row, both or
 * neither, before the caller answers 250.  reason: "moderated" or "not
 * allowed".  0 (held now, or held already by an earlier attempt), or -1
 * with the reply set: 552 5.2.3 over hold-max-size, 452 4.2.2 when the
 * list holds hold-limit posts, 451 for a database or disk problem.
 */
int	held_post(struct deliver_session *, const struct smtp_envelope *,
		  const struct rewrite_msg *, const struct store_group *g,
		  const char *msg, size_t len, const char *digest, const char *reason,
		  struct smtp_reply *);

/*
 * held_check - before anything of the transaction is sent: may list g
 * hold a post of len bytes?  POST_HOLD; POST_DISCARD when the list holds
 * hold-limit posts and this one's sender may not post (reason "not
 * allowed": a flood of likely forged senders, who must not get a DSN);
 * -1 with the reply set: 552 5.2.3 over hold-max-size, 452 4.2.2 over
 * hold-limit for a post of an allowed poster, 451.
 */
int	held_check(struct deliver_session *, const struct smtp_envelope *,
		   const struct store_group *g, size_t len, const char *reason,
		   struct smtp_reply *);

/* held_subject - the Subject: of m in one printable line, for rows and
 * notices (controls become spaces; "" when there is none) */
void	held_subject(const struct rewrite_msg *, char *buf, size_t len);

#endif
