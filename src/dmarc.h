/* dmarc.h - the DMARC policy of an author's domain (RFC 7489 6.6.3),
 * looked up in DNS through libunbound, with a cache */
#ifndef MLISTD_DMARC_H
#define MLISTD_DMARC_H

#include <stddef.h>

/* A domain name in text, without the trailing dot, and its NUL */
#define DMARC_DOMAIN_MAX	254
#define DMARC_REASON_MAX	96

/* Answers kept by one resolver; the oldest goes first when it is full */
#define DMARC_CACHE_SIZE	1024
#define DMARC_KEY_CACHE_SIZE	256	/* dmarc_txt's, apart */

/* One TXT record, its strings joined, and its NUL */
#define DMARC_TXT_MAX		2048

enum dmarc_policy {
	DMARC_NONE_FOUND,	/* no usable record: DMARC does not apply */
	DMARC_P_NONE,
	DMARC_P_QUARANTINE,
	DMARC_P_REJECT,
	DMARC_TEMPFAIL		/* DNS did not answer: timeout, SERVFAIL... */
};

struct dmarc_result {
	enum dmarc_policy policy;
	char	domain[DMARC_DOMAIN_MAX];	/* whose record applied, or "" */
	int	from_org;	/* the record is the organizational domain's
				 * (the From: domain had none): its sp= applied,
				 * or p= when it has no sp= */
	int	pct;		/* pct= of the record (100 when absent); not
				 * applied: mlistd decides per copy */
	int	cached;		/* every answer came from the cache */
	char	reason[DMARC_REASON_MAX];	/* for logs: plain text, no DNS data */
};

struct dmarc_resolver;

/*
 * dmarc_resolver_create - a resolver that asks resolver ("ADDRESS[:PORT]",
 * "[IPV6]:PORT", or NULL for the system's /etc/resolv.conf) and gives up
 * on one query after timeout_ms.  NULL with a message in err on a bad
 * address or when libunbound or the Public Suffix List cannot be set up.
 * The caller frees it with dmarc_resolver_free (which accepts NULL).
 * libunbound answers in a thread of its own, started with every signal
 * blocked, so the process's signals still reach the thread that called.
 */
struct dmarc_resolver *dmarc_resolver_create(const char *resolver, unsigned timeout_ms,
					     char *err, size_t errlen);
void	dmarc_resolver_free(struct dmarc_resolver *);

/*
 * dmarc_lookup - the policy that applies to mail from from_domain (any
 * case, a trailing dot allowed), filled into *out.  Returns 0, or -1 when
 * out->policy is DMARC_TEMPFAIL (what that means is the caller's choice).
 * A name that is no DNS host name (too long, odd characters, a U-label)
 * is DMARC_NONE_FOUND.  Definite answers, records or none, are cached for
 * their TTL (at most a day; a negative answer for its SOA's, 300 s when
 * it has none, at most 3 hours); failures are not cached.
 */
int	dmarc_lookup(struct dmarc_resolver *, const char *from_domain,
		     struct dmarc_result *out);

/*
 * dmarc_org_domain - the organizational domain of domain (RFC 7489 3.2:
 * the Public Suffix List's registrable domain) into buf: 0, or -1 when
 * it has none (a public suffix itself, not a DNS name) or it does not fit.
 */
int	dmarc_org_domain(struct dmarc_resolver *, const char *domain, char *buf,
			 size_t size);

/*
 * dmarc_txt - the TXT record at qname (a DNS name, any case, a trailing
 * dot allowed; a DKIM key's SELECTOR._domainkey.DOMAIN) through the same
 * resolver, timeout and rules as dmarc_lookup, with a cache of its own
 * (DMARC_KEY_CACHE_SIZE names).  1: the record, its strings joined, in
 * buf; 0: none (NXDOMAIN or NODATA, or TXT records none of which is a
 * key record), or qname is no DNS name; -1: no answer (timeout,
 * SERVFAIL...) or the record does not fit in size bytes.  Among several
 * TXT records the answer is the first that starts with "v=DKIM1", else
 * the first tag-list with a p= tag (a key record without its version);
 * records over DMARC_TXT_MAX bytes or with control bytes are passed
 * over.  When ttl is not NULL it gets the seconds the answer stays
 * cached (0: not cached).  Answers, found or not, are cached as
 * dmarc_lookup's are; failures are not.  A reason goes into why
 * (plain text, no DNS data) unless the answer is 1.
 */
int	dmarc_txt(struct dmarc_resolver *, const char *qname, char *buf, size_t size,
		  long *ttl, char *why, size_t whylen);

/*
 * dmarc_dns_name - would dmarc_txt ask about name: labels of 1 to 63
 * letters, digits, "_" and inner "-", at most 253 bytes in all (a
 * trailing dot allowed)?  No U-labels, no empty labels.
 */
int	dmarc_dns_name(const char *name);

/* dmarc_resolver_valid - is spec a resolver address dmarc_resolver_create
 * takes ("ADDRESS[:PORT]", "[IPV6]:PORT")?  0, or -1 with why in err */
int	dmarc_resolver_valid(const char *spec, char *err, size_t errlen);

/* dmarc_policy_str - "none-found", "none", "quarantine", "reject", "tempfail" */
const char *dmarc_policy_str(enum dmarc_policy);

#endif
