/* returns.h - mail to the bounce address: store, attribute, probe */
#ifndef MLISTD_RETURNS_H
#define MLISTD_RETURNS_H

#include <stddef.h>

#include "bounce.h"
#include "flow.h"

/*
 * returns_store - one bounce message (rep: its parsed report), however
 * many bounce addresses it was sent to: rcpt and local are the first of
 * them, nbounce how many; verp_ok when they carry one tag alone.  One
 * Maildir file and its rows, both or neither; then probes.  0, or -1
 * with a 4xx reply set.
 */
int	returns_store(struct deliver_session *, const struct smtp_envelope *,
		      const char *rcpt, const char *local, size_t nbounce, int verp_ok,
		      const char *msg, size_t len, const struct bounce_report *rep,
		      struct smtp_reply *);

#endif
