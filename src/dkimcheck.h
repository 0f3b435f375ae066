/* dkimcheck.h - will the author's DKIM signature survive the list copy? */
#ifndef MLISTD_DKIMCHECK_H
#define MLISTD_DKIMCHECK_H

#include <stddef.h>

struct dkimcheck;
struct dmarc_resolver;

/*
 * dkimcheck_orgdomain_fn - the organizational domain of domain (RFC 7489
 * section 3.2, e.g. from libpsl) into buf: 0, or -1 when it is unknown
 * or does not fit (then only the exact domain aligns with it).
 */
typedef int (*dkimcheck_orgdomain_fn)(const char *domain, char *buf, size_t size,
				      void *arg);

#define DKIMCHECK_TIMEOUT	5	/* seconds per DNS key lookup */
#define DKIMCHECK_MAX_SIGS	8	/* aligned signatures verified per post */
#define DKIMCHECK_MAX_SEEN	32	/* DKIM-Signature fields looked at */
#define DKIMCHECK_MAX_H		4096	/* bytes of one h= tag examined */

struct dkimcheck_conf {
	const char *keyfile;		/* NULL: keys from DNS; else a file of
					 * "SELECTOR._domainkey.DOMAIN KEY-RECORD"
					 * lines (libopendkim's file query
					 * method: tests) */
	unsigned timeout;		/* seconds per key lookup; 0: the default */
	dkimcheck_orgdomain_fn orgdomain; /* NULL: a domain aligns with itself,
					 * its subdomains and its parents */
	void   *orgdomain_arg;
	struct dmarc_resolver *resolver; /* keys through mlistd's resolver */
};

/*
 * dkimcheck_create - a checker (one libopendkim library handle); conf
 * NULL: DNS, the defaults.  0 with *out set, or -1 (memory, or
 * libopendkim refused the options).  The keyfile name is copied.
 */
int	dkimcheck_create(const struct dkimcheck_conf *conf, struct dkimcheck **out);
void	dkimcheck_free(struct dkimcheck *);

#define DKIMCHECK_REASON_MAX	160

struct dkimcheck_result {
	int	survives;		/* 1: an aligned signature verifies now
					 * and covers nothing the copy changes */
	int	tempfail;		/* 0 survives, but only because an aligned
					 * signature whose h= the copy leaves
					 * alone could not be checked (key lookup
					 * failed or timed out): it may well
					 * survive */
	unsigned aligned;		/* aligned signatures examined */
	char	domain[256];		/* d= of the signature the reason is
					 * about, or "" */
	char	reason[DKIMCHECK_REASON_MAX]; /* for the copy's log line:
					 * "signature survives", "no aligned
					 * signature", "h= covers list-id",
					 * "aligned signature fails on arrival:
					 * ..." */
};

/*
 * dkimcheck_survives - the post as received (CRLF line ends, dot-stuffing
 * undone) from a From: in author_domain: does a DKIM signature aligned
 * with author_domain (relaxed alignment) verify on arrival and cover
 * (h=) no header field a group list's copy adds, replaces or removes
 * (dkimcheck_touches)?  At most DKIMCHECK_MAX_SIGS aligned signatures
 * among the first DKIMCHECK_MAX_SEEN are verified; the others are not
 * even looked up.  0 with *out filled in, -1 when memory is short (out
 * then says so too).  dkimcheck_survives_as: the same for an alias copy
 * (is_group 0) or a group copy (is_group 1).
 */
int	dkimcheck_survives(struct dkimcheck *, const char *msg, size_t len,
			   const char *author_domain, struct dkimcheck_result *out);
int	dkimcheck_survives_as(struct dkimcheck *, const char *msg, size_t len,
			      const char *author_domain, int is_group,
			      struct dkimcheck_result *out);

/*
 * dkimcheck_touches - does rewrite_copy() change what a signature
 * covering the field name signs?  Yes when the copy adds the field
 * (signed while absent, or its last instance replaced), or when the post
 * has it (present) and the copy removes it:
 *   added always:  X-BeenThere, Sender, List-Id, List-Unsubscribe,
 *                  List-Help, List-Subscribe, List-Post
 *   added (group): Precedence, X-Auto-Response-Suppress
 *   removed:       Sender, Bcc, Fcc, Resent-Bcc, every List-* field,
 *                  (group) Precedence, X-Auto-Response-Suppress
 * Case does not matter.
 */
int	dkimcheck_touches(const char *name, size_t nlen, int present, int is_group);

#endif
