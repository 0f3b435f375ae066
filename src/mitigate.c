/*
 * mitigate.c - DMARC mitigation: does a list copy keep the author's From:?
 *
 * A copy keeps the author's From: and goes out with the list's envelope
 * sender, so at the members' providers it passes DMARC only through a
 * DKIM signature aligned with the author's domain.  Where the author's
 * domain asks receivers to act on failures (p=quarantine or p=reject)
 * and no such signature survives the copy, the copy's From: becomes the
 * list's (rewrite_copy, munge_from) and passes through the list domain's
 * own signature (contrib/opendkim).  Everything else keeps the author's
 * From:, byte for byte.
 *
 * Per list: groups.dmarc, else dmarc-mitigation: never, always, auto.
 * In auto, for each From: domain: its DMARC policy (dmarc.c: DNS through
 * libunbound, cached for the record's TTL); no record or p=none: kept.
 * Quarantine, reject, or a lookup that failed: the DKIM check
 * (dkimcheck.c: libopendkim, keys through the same resolver).  Rewritten
 * when no aligned signature survives; kept when one survives or when the
 * only one that might could not be checked (its key did not come): a
 * rewrite is for a copy that would fail anyway, never for a DNS hiccup.
 *
 * Cost: the common case (p=none, no record) is a cache lookup per post;
 * the DKIM check (one RSA verification per aligned signature) runs only
 * for enforcing domains, once per post and kind of list: the last post's
 * findings are kept for the other lists it goes to, at most a minute.
 *
 * Memory: the resolver and checker are the worker's, made on first use
 * (libunbound starts a thread: never before fork), freed with it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "conf.h"
#include "dkimcheck.h"
#include "dmarc.h"
#include "log.h"
#include "mitigate.h"
#include "rewrite.h"
#include "store.h"

#define MEMO_SECONDS	60		/* one post's findings, for its lists */
#define RETRY_SETUP	60		/* seconds before a failed setup is retried */

/* What one From: domain taught, for the post being decided. */
struct author {
	char	domain[DMARC_DOMAIN_MAX];
	struct dmarc_result pol;
	int	have_dk[2];		/* dk[is_group] filled in */
	struct dkimcheck_result dk[2];
};

struct mitigate {
	const struct conf *cf;
	struct dmarc_resolver *dns;
	struct dkimcheck *dkim;
	long	setup_failed;		/* when the last setup failed, or 0 */
	/* The post last decided. */
	char	digest[41];
	long	when;
	int	nauthors;		/* -1: no usable From: */
	struct author a[REWRITE_FROM_MAX];
};

static long now_sec(void);
static int setup(struct mitigate *, char *, size_t);
static int orgdomain(const char *, char *, size_t, void *);
static void learn_authors(struct mitigate *, const struct rewrite_msg *, const char *);
static int enforces(const struct dmarc_result *);
static int signature_fate(struct mitigate *, struct author *, const struct rewrite_msg *,
			  int, char *, size_t);

struct mitigate *
mitigate_create(const struct conf *cf)
{
	struct mitigate *mt;

	if ((mt = calloc(1, sizeof(*mt))) == NULL)
		return (NULL);
	mt->cf = cf;
	return (mt);
}

void
mitigate_free(struct mitigate *mt)
{
	if (mt == NULL)
		return;
	dkimcheck_free(mt->dkim);
	dmarc_resolver_free(mt->dns);
	free(mt);
}

/* now_sec - the monotonic clock, seconds */
static long
now_sec(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long) ts.tv_sec);
}

/* orgdomain - dkimcheck's callback: the Public Suffix List's answer */
static int
orgdomain(const char *domain, char *buf, size_t size, void *arg)
{
	return (dmarc_org_domain(arg, domain, buf, size));
}

/*
 * setup - the resolver and the DKIM checker, made on first use; 0, or -1
 * with the reason in err (logged once a minute at most: a resolver that
 * cannot be set up is a configuration error mlistd -t reports too).
 */
static int
setup(struct mitigate *mt, char *err, size_t errlen)
{
	const struct conf *cf = mt->cf;
	struct dkimcheck_conf dc;

	if (mt->dns != NULL && mt->dkim != NULL)
		return (0);
	if (mt->setup_failed && now_sec() - mt->setup_failed < RETRY_SETUP) {
		snprintf(err, errlen, "DNS resolver not set up");
		return (-1);
	}
	if (mt->dns == NULL
	    && (mt->dns = dmarc_resolver_create(cf->resolver, cf->dns_timeout * 1000, err,
						errlen)) == NULL)
		goto failed;
	memset(&dc, 0, sizeof(dc));
	dc.timeout = cf->dns_timeout;
	dc.orgdomain = orgdomain;
	dc.orgdomain_arg = mt->dns;
	dc.resolver = mt->dns;
	if (dkimcheck_create(&dc, &mt->dkim) < 0) {
		snprintf(err, errlen, "cannot set up libopendkim");
		goto failed;
	}
	mt->setup_failed = 0;
	return (0);
failed:
	msg_error("DMARC mitigation: %s (resolver %s): every copy is decided as if DNS "
		  "did not answer", err, cf->resolver ? cf->resolver : "from /etc/resolv.conf");
	mt->setup_failed = now_sec();
	if (mt->setup_failed == 0)
		mt->setup_failed = 1;
	return (-1);
}

/* learn_authors - the From: domains of post digest and their policies,
 * unless they are known from another list of the same post */
static void
learn_authors(struct mitigate *mt, const struct rewrite_msg *m, const char *digest)
{
	struct rewrite_from from;
	char	err[DMARC_REASON_MAX];
	int	dns_ok;

	if (strcmp(mt->digest, digest) == 0 && now_sec() - mt->when < MEMO_SECONDS)
		return;
	snprintf(mt->digest, sizeof(mt->digest), "%s", digest);
	mt->when = now_sec();
	mt->nauthors = 0;
	if (rewrite_from(m, &from) < 0) {
		mt->nauthors = -1;
		return;
	}
	dns_ok = setup(mt, err, sizeof(err)) == 0;
	for (size_t i = 0; i < from.n; i++) {
		const char *at = strrchr(from.addr[i], '@');
		struct author *a = &mt->a[mt->nauthors];
		int	dup = 0;

		if (at == NULL)
			continue;
		for (int k = 0; k < mt->nauthors; k++)
			dup |= strcasecmp(mt->a[k].domain, at + 1) == 0;
		if (dup || strlen(at + 1) >= sizeof(a->domain))
			continue;
		memset(a, 0, sizeof(*a));
		snprintf(a->domain, sizeof(a->domain), "%s", at + 1);
		if (dns_ok)
			(void) dmarc_lookup(mt->dns, a->domain, &a->pol);
		else {
			a->pol.policy = DMARC_TEMPFAIL;
			snprintf(a->pol.reason, sizeof(a->pol.reason), "%s", err);
		}
		mt->nauthors++;
	}
}

/* enforces - does the policy ask receivers to act on a failure? */
static int
enforces(const struct dmarc_result *p)
{
	return (p->policy == DMARC_P_QUARANTINE || p->policy == DMARC_P_REJECT);
}

/*
 * signature_fate - will an aligned signature of a's survive list g's
 * copy?  1 yes (or it could not be checked), 0 no; why gets the DKIM
 * side of the reason.
 */
static int
signature_fate(struct mitigate *mt, struct author *a, const struct rewrite_msg *m,
	       int is_group, char *why, size_t whylen)
{
	struct dkimcheck_result *dk = &a->dk[is_group != 0];
	char	err[DMARC_REASON_MAX];
	const char *text;
	size_t	len;

	if (!a->have_dk[is_group != 0]) {
		memset(dk, 0, sizeof(*dk));
		text = rewrite_text(m, &len);
		if (setup(mt, err, sizeof(err)) < 0) {
			dk->tempfail = 1;
			snprintf(dk->reason, sizeof(dk->reason), "DKIM not checked: %s", err);
		} else if (dkimcheck_survives_as(mt->dkim, text, len, a->domain, is_group, dk) < 0) {
			dk->tempfail = 1;
			snprintf(dk->reason, sizeof(dk->reason), "DKIM not checked: out of memory");
		}
		a->have_dk[is_group != 0] = 1;
	}
	snprintf(why, whylen, "%s", dk->reason);
	return (dk->survives || dk->tempfail);
}

int
mitigate_decide(struct mitigate *mt, const struct rewrite_msg *m, const char *digest,
		const struct store_group *g, char *why, size_t whylen)
{
	int	mode = g->dmarc ? g->dmarc : mt->cf->dmarc_mode;
	char	dkwhy[DKIMCHECK_REASON_MAX];
	int	tempfails = 0;

	if (mode == DMARC_MODE_NEVER) {
		snprintf(why, whylen, "dmarc-mitigation never");
		return (0);
	}
	if (mode == DMARC_MODE_ALWAYS) {
		snprintf(why, whylen, "dmarc-mitigation always");
		return (1);
	}
	learn_authors(mt, m, digest);
	if (mt->nauthors <= 0) {
		snprintf(why, whylen, "no usable From:");
		return (0);
	}
	/* A domain that enforces and whose signature will not survive. */
	for (int i = 0; i < mt->nauthors; i++) {
		struct author *a = &mt->a[i];

		if (a->pol.policy == DMARC_TEMPFAIL)
			tempfails++;
		if (!enforces(&a->pol) || signature_fate(mt, a, m, g->is_group, dkwhy,
							 sizeof(dkwhy)))
			continue;
		snprintf(why, whylen, "%s%s%s, %s", mt->nauthors > 1 ? a->domain : "",
			 mt->nauthors > 1 ? ": " : "", a->pol.reason, dkwhy);
		return (1);
	}
	/* A domain whose policy could not be learnt: rewritten only if no
	 * aligned signature would survive anyway. */
	for (int i = 0; tempfails && i < mt->nauthors; i++) {
		struct author *a = &mt->a[i];

		if (a->pol.policy != DMARC_TEMPFAIL)
			continue;
		if (signature_fate(mt, a, m, g->is_group, dkwhy, sizeof(dkwhy))) {
			snprintf(why, whylen, "DMARC lookup failed (%s), %s", a->pol.reason, dkwhy);
			return (0);
		}
		snprintf(why, whylen, "DMARC lookup failed (%s), %s", a->pol.reason, dkwhy);
		return (1);
	}
	/* Kept: say why for the first domain that enforces, else the first. */
	for (int i = 0; i < mt->nauthors; i++)
		if (enforces(&mt->a[i].pol)) {
			(void) signature_fate(mt, &mt->a[i], m, g->is_group, dkwhy, sizeof(dkwhy));
			snprintf(why, whylen, "%s, %s", mt->a[i].pol.reason, dkwhy);
			return (0);
		}
	if (mt->a[0].pol.policy == DMARC_NONE_FOUND)
		snprintf(why, whylen, "%s", strcmp(mt->a[0].pol.reason, "no record") == 0
			 ? "no DMARC record" : mt->a[0].pol.reason);
	else
		snprintf(why, whylen, "%s", mt->a[0].pol.reason);
	return (0);
}

int
mitigate_probe(struct mitigate *mt, const char *domain, char *buf, size_t size)
{
	struct dmarc_result r;

	if (setup(mt, buf, size) < 0)
		return (-1);
	if (dmarc_lookup(mt->dns, domain, &r) < 0) {
		snprintf(buf, size, "%s", r.reason);
		return (-1);
	}
	snprintf(buf, size, "%s", r.reason);
	return (0);
}
