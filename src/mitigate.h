/* mitigate.h - DMARC mitigation: does a list copy keep the author's From:? */
#ifndef MLISTD_MITIGATE_H
#define MLISTD_MITIGATE_H

#include <stddef.h>

struct conf;
struct rewrite_msg;
struct store_group;
struct mitigate;

#define MITIGATE_WHY_MAX	256

/*
 * mitigate_create - a worker's state: the DNS resolver and the DKIM
 * checker are made when the first post needs them (after fork: libunbound
 * runs a thread).  NULL when memory is short.  mitigate_free accepts NULL.
 */
struct mitigate *mitigate_create(const struct conf *);
void	mitigate_free(struct mitigate *);

/*
 * mitigate_decide - should list g's copy of post m (digest: its hex
 * SHA-1) carry a rewritten From:?  1 yes, 0 no; why gets the reason for
 * the copy's log line ("p=reject, h= covers list-id").  The mode is
 * g->dmarc, else the option dmarc-mitigation.  In auto, the DMARC
 * policy of each From: domain is looked up (cached for its TTL); only
 * quarantine or reject, or a failed lookup, lead to the DKIM check; the
 * From: is rewritten when no aligned signature will survive the copy.  A
 * key that could not be looked up counts as surviving: the rewrite is
 * for copies that would fail anyway.  What one post taught is kept for
 * the other lists of the same post (a minute at most).
 */
int	mitigate_decide(struct mitigate *, const struct rewrite_msg *m, const char *digest,
			const struct store_group *g, char *why, size_t whylen);

/*
 * mitigate_probe - for mlistd -t: the policy of the list domain through
 * the resolver ("p=none", "no record"...) into buf; 0, or -1 when the
 * resolver cannot be set up or does not answer (buf says why).
 */
int	mitigate_probe(struct mitigate *, const char *domain, char *buf, size_t size);

#endif
