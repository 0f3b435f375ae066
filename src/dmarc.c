/*
 * dmarc.c - the DMARC policy of an author's domain.
 *
 * RFC 7489 6.6.3: ask TXT at _dmarc.FROM-DOMAIN; keep the records that
 * start with "v=DMARC1"; if none is left, ask the same at the
 * organizational domain (the registrable domain by the Public Suffix
 * List, through libpsl), whose sp= then applies (p= when it has no sp=).
 * Several records, or none, mean DMARC does not apply; so does a record
 * without a valid p= (or with an invalid sp=), unless it names a report
 * address (rua=): then it counts as p=none.  pct= is reported, never
 * applied.
 *
 * DNS goes through libunbound, forwarding to the resolver the caller
 * names (or those of /etc/resolv.conf), without DNSSEC validation.  Each
 * query is asynchronous and bounded: poll() on ub_fd() until the answer
 * or the deadline, then ub_cancel().  libunbound works in a thread of its
 * own; it is started with all signals blocked so that SIGTERM and friends
 * keep interrupting the caller's thread, as the worker relies on.
 *
 * TXT data is hostile: rdata lengths are checked, the strings of one
 * record are joined without separators (as RFC 7208 3.3 does), a record
 * is at most DMARC_TXT_MAX bytes, a NUL or control byte makes a DMARC
 * record malformed, and no DNS text ever reaches the reason string.
 *
 * Cache: per domain (not per From: domain), the parsed answer of its
 * _dmarc TXT query: one record, several, or none, until its TTL runs out
 * (monotonic clock).  DMARC_CACHE_SIZE entries in a chained hash; when
 * full, the oldest entry is replaced.  Failures are never cached.
 *
 * dmarc_txt: DKIM key records on the same query path, with a cache apart.
 *
 * Public API: dmarc_resolver_create, dmarc_resolver_free, dmarc_lookup,
 * dmarc_txt, dmarc_dns_name, dmarc_policy_str.  The resolver owns
 * everything it allocates; results are filled into the caller's struct
 * or buffer.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <libpsl.h>
#include <unbound.h>

#include "dmarc.h"

#define DNS_NAME_MAX	253
#define DNS_LABEL_MAX	63
#define TYPE_TXT	16
#define CLASS_IN	1
#define RCODE_NOERROR	0
#define RCODE_SERVFAIL	2
#define RCODE_NXDOMAIN	3
#define TTL_MAX		86400		/* a record, at most a day */
#define NEG_TTL_DEFAULT	300		/* a negative answer without SOA */
#define DMARC_QUIET_MS	30000		/* after a timeout, no query for this long */
#define NEG_TTL_MAX	10800		/* RFC 2308 5: three hours */

#define SP_ABSENT	(-1)
#define SP_INVALID	(-2)

/* One DMARC record, parsed */
struct record {
	signed char p;		/* a policy; DMARC_NONE_FOUND: missing or invalid */
	signed char sp;		/* a policy, SP_ABSENT or SP_INVALID */
	unsigned char pct;	/* 0 to 100 */
	unsigned char rua;	/* names a syntactically valid URI */
	unsigned char malformed;	/* tag-list syntax, overlong, bad bytes */
};

/* The answer to one _dmarc TXT query */
enum answer_kind {
	ANS_NO_TXT,		/* NXDOMAIN, or no TXT at the name */
	ANS_NO_DMARC,		/* TXT records, none a DMARC record */
	ANS_ONE,
	ANS_SEVERAL
};

struct answer {
	enum answer_kind kind;
	struct record rec;	/* when ANS_ONE */
};

/* The answer to one dmarc_txt query */
struct txt_answer {
	int	found;			/* 1; 0: no TXT record; -1: TXT records,
					 * none a key record */
	char	text[DMARC_TXT_MAX];
};

/* One name in a cache; its answer is the cache's payload of the same index */
struct slot {
	char	name[DMARC_DOMAIN_MAX];	/* "" when unused */
	long	expires;		/* monotonic seconds */
	int	next;			/* in its bucket, -1 ends */
};

/* Answers by name, each of psize bytes, in a chained hash of 2 * size
 * buckets; the oldest goes first once it is full */
struct cache {
	int	size;
	size_t	psize;
	int	used;			/* slots filled so far */
	int	hand;			/* the next one replaced once full */
	int    *heads;
	struct slot *slot;
	unsigned char *payload;
};

struct dmarc_resolver {
	struct ub_ctx *ub;
	psl_ctx_t *psl;
	unsigned timeout_ms;
	long long quiet_until;		/* after queries for two names timed out
					 * in a row: no queries until then
					 * (monotonic ms) */
	char	last_timeout[256];	/* the last name that timed out since
					 * the last answer; "": none */
	struct cache policies;		/* struct answer by domain */
	struct cache txts;		/* struct txt_answer by query name */
};

/* A query in flight: filled by the callback */
struct pending {
	int	done;
	int	err;
	struct ub_result *res;
};

static int resolver_addr(const char *, char *, size_t, char *, size_t);
static int domain_normalize(const char *, char *);
static long now_sec(void);
static long long now_ms(void);
static int cache_init(struct cache *, int, size_t);
static void cache_free(struct cache *);
static int bucket(const struct cache *, const char *);
static int cache_find(const struct cache *, const char *);
static const void *cache_get(const struct cache *, const char *, long *);
static void cache_put(struct cache *, const char *, const void *, long);
static void on_answer(void *, int, struct ub_result *);
static int start_query(struct dmarc_resolver *, const char *, struct pending *, int *,
		       char *, size_t);
static int wait_answer(struct dmarc_resolver *, struct pending *, char *, size_t);
static int query_txt(struct dmarc_resolver *, const char *, struct ub_result **, long *,
		     char *, size_t);
static int txt_join(const char *, int, char *, size_t);
static int has_version(const char *, const char *);
static int next_tag(const char **, const char **, size_t *, const char **, size_t *);
static int is_key_record(const char *);
static void txt_pick(const struct ub_result *, struct txt_answer *);
static int policy_word(const char *, size_t);
static int is_alpha(char);
static int uri_list_valid(const char *, size_t);
static void record_parse(const char *, struct record *);
static void answer_from_txt(const struct ub_result *, struct answer *);
static int ask(struct dmarc_resolver *, const char *, struct answer *, int *, char *, size_t);
static void apply(const struct record *, int, struct dmarc_result *);

const char *
dmarc_policy_str(enum dmarc_policy p)
{
	switch (p) {
	case DMARC_NONE_FOUND:
		return ("none-found");
	case DMARC_P_NONE:
		return ("none");
	case DMARC_P_QUARANTINE:
		return ("quarantine");
	case DMARC_P_REJECT:
		return ("reject");
	case DMARC_TEMPFAIL:
		return ("tempfail");
	}
	return ("?");
}

/* resolver_addr - "ADDRESS[:PORT]" or "[IPV6][:PORT]" as libunbound's
 * "ADDRESS[@PORT]"; 0, or -1 with a message */
static int
resolver_addr(const char *spec, char *out, size_t len, char *err, size_t errlen)
{
	char	host[INET6_ADDRSTRLEN + 1];
	unsigned char bin[sizeof(struct in6_addr)];
	const char *port = NULL, *end, *colon;
	size_t	hlen;
	long	pn = 0;
	int	n;

	if (spec[0] == '[') {
		if ((end = strchr(spec, ']')) == NULL || (end[1] != 0 && end[1] != ':'))
			goto bad;
		hlen = (size_t) (end - spec - 1);
		spec++;
		if (end[1] == ':')
			port = end + 2;
	} else if ((colon = strchr(spec, ':')) != NULL && strchr(colon + 1, ':') == NULL) {
		hlen = (size_t) (colon - spec);
		port = colon + 1;
	} else
		hlen = strlen(spec);
	if (hlen == 0 || hlen >= sizeof(host))
		goto bad;
	memcpy(host, spec, hlen);
	host[hlen] = 0;
	if (inet_pton(AF_INET, host, bin) != 1 && inet_pton(AF_INET6, host, bin) != 1)
		goto bad;
	if (port) {
		char   *e;

		if (port[0] < '0' || port[0] > '9' || strlen(port) > 5)
			goto bad;
		pn = strtol(port, &e, 10);
		if (*e != 0 || pn < 1 || pn > 65535)
			goto bad;
		n = snprintf(out, len, "%s@%ld", host, pn);
	} else
		n = snprintf(out, len, "%s", host);
	if (n < 0 || (size_t) n >= len)
		goto bad;
	return (0);
bad:
	snprintf(err, errlen, "resolver: not ADDRESS[:PORT]: %.100s", spec);
	return (-1);
}

struct dmarc_resolver *
dmarc_resolver_create(const char *resolver, unsigned timeout_ms, char *err, size_t errlen)
{
	struct dmarc_resolver *r;
	char	fwd[INET6_ADDRSTRLEN + 8];
	int	rc;

	if (resolver && resolver_addr(resolver, fwd, sizeof(fwd), err, errlen) < 0)
		return (NULL);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(err, errlen, "dmarc: %s", strerror(errno));
		return (NULL);
	}
	r->timeout_ms = timeout_ms;
	if (cache_init(&r->policies, DMARC_CACHE_SIZE, sizeof(struct answer)) < 0
	    || cache_init(&r->txts, DMARC_KEY_CACHE_SIZE, sizeof(struct txt_answer)) < 0) {
		snprintf(err, errlen, "dmarc: %s", strerror(errno));
		goto fail;
	}
	if ((r->psl = psl_latest(NULL)) == NULL) {
		snprintf(err, errlen, "dmarc: cannot load the Public Suffix List");
		goto fail;
	}
	if ((r->ub = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "dmarc: cannot create a libunbound context");
		goto fail;
	}
	/* A thread, not a forked process: a child would inherit the
	 * worker's listening socket and signal handlers. */
	if ((rc = ub_ctx_async(r->ub, 1)) != 0
	    || (rc = ub_ctx_set_option(r->ub, "module-config:", "iterator")) != 0
	    || (rc = ub_ctx_set_option(r->ub, "do-not-query-localhost:", "no")) != 0) {
		snprintf(err, errlen, "dmarc: libunbound setup: %s", ub_strerror(rc));
		goto fail;
	}
	if (resolver)
		rc = ub_ctx_set_fwd(r->ub, fwd);
	else
		rc = ub_ctx_resolvconf(r->ub, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "dmarc: resolver %s: %s", resolver ? fwd : "/etc/resolv.conf",
			 ub_strerror(rc));
		goto fail;
	}
	return (r);
fail:
	dmarc_resolver_free(r);
	return (NULL);
}

void
dmarc_resolver_free(struct dmarc_resolver *r)
{
	if (r == NULL)
		return;
	if (r->ub)
		ub_ctx_delete(r->ub);
	psl_free(r->psl);
	cache_free(&r->policies);
	cache_free(&r->txts);
	free(r);
}

/* domain_normalize - a DNS host name in lower case without its trailing
 * dot into out (DMARC_DOMAIN_MAX bytes); 0, or -1: not one */
static int
domain_normalize(const char *in, char *out)
{
	size_t	len = strlen(in), label = 0;

	if (len > 0 && in[len - 1] == '.')
		len--;
	if (len == 0 || len > DNS_NAME_MAX)
		return (-1);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char) in[i];

		if (c == '.') {
			if (label == 0 || out[i - 1] == '-')
				return (-1);
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'
			   || (c == '-' && label > 0)) {
			label++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char) (c - 'A' + 'a');
			label++;
		} else
			return (-1);
		if (label > DNS_LABEL_MAX)
			return (-1);
		out[i] = (char) c;
	}
	if (out[len - 1] == '-')
		return (-1);
	out[len] = 0;
	return (0);
}

int
dmarc_dns_name(const char *name)
{
	char	out[DMARC_DOMAIN_MAX];

	return (domain_normalize(name, out) == 0);
}

/* now_sec - monotonic seconds, for expiry */
static long
now_sec(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long) ts.tv_sec);
}

/* now_ms - monotonic milliseconds, for deadlines */
static long long
now_ms(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* cache_init - an empty cache of size answers of psize bytes; 0, or -1
 * with errno (what was allocated is freed by cache_free) */
static int
cache_init(struct cache *c, int size, size_t psize)
{
	c->size = size;
	c->psize = psize;
	c->used = c->hand = 0;
	c->heads = malloc(2 * (size_t) size * sizeof(*c->heads));
	c->slot = calloc((size_t) size, sizeof(*c->slot));
	c->payload = calloc((size_t) size, psize);
	if (c->heads == NULL || c->slot == NULL || c->payload == NULL)
		return (-1);
	for (int i = 0; i < 2 * size; i++)
		c->heads[i] = -1;
	return (0);
}

/* cache_free - what cache_init allocated */
static void
cache_free(struct cache *c)
{
	free(c->heads);
	free(c->slot);
	free(c->payload);
}

/* bucket - the bucket of name: FNV-1a */
static int
bucket(const struct cache *c, const char *s)
{
	unsigned h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char) *s) * 16777619u;
	return ((int) (h % (2 * (unsigned) c->size)));
}

/* cache_find - the slot of name, live or not, or -1 */
static int
cache_find(const struct cache *c, const char *name)
{
	for (int i = c->heads[bucket(c, name)]; i >= 0; i = c->slot[i].next)
		if (strcmp(c->slot[i].name, name) == 0)
			return (i);
	return (-1);
}

/* cache_get - the live answer for name (and the seconds it has left in
 * *left, when not NULL), or NULL */
static const void *
cache_get(const struct cache *c, const char *name, long *left)
{
	int	i = cache_find(c, name);
	long	now = now_sec();

	if (i < 0 || c->slot[i].expires <= now)
		return (NULL);
	if (left)
		*left = c->slot[i].expires - now;
	return (c->payload + (size_t) i * c->psize);
}

/* cache_put - remember the answer ans for name during ttl seconds: in its
 * old slot, a free one, or the oldest one's */
static void
cache_put(struct cache *c, const char *name, const void *ans, long ttl)
{
	int	i, *link;

	if (ttl <= 0)
		return;
	if ((i = cache_find(c, name)) < 0) {
		if (c->used < c->size)
			i = c->used++;
		else {
			i = c->hand;
			c->hand = (c->hand + 1) % c->size;
			/* Unlink the oldest from its bucket. */
			for (link = &c->heads[bucket(c, c->slot[i].name)]; *link != i;
			     link = &c->slot[*link].next)
				;
			*link = c->slot[i].next;
		}
		snprintf(c->slot[i].name, sizeof(c->slot[i].name), "%s", name);
		c->slot[i].next = c->heads[bucket(c, name)];
		c->heads[bucket(c, name)] = i;
	}
	memcpy(c->payload + (size_t) i * c->psize, ans, c->psize);
	c->slot[i].expires = now_sec() + ttl;
}

/* on_answer - libunbound's callback: hand the result over */
static void
on_answer(void *arg, int err, struct ub_result *res)
{
	struct pending *p = arg;

	p->done = 1;
	p->err = err;
	p->res = res;
}

/* start_query - send the TXT query for qname; 0, or -1 with a reason */
static int
start_query(struct dmarc_resolver *r, const char *qname, struct pending *p, int *id,
	    char *why, size_t whylen)
{
	sigset_t all, old;
	int	rc;

	/* The first query starts libunbound's thread, which inherits this
	 * mask: it must never take the process's signals. */
	(void) sigfillset(&all);
	if ((rc = pthread_sigmask(SIG_SETMASK, &all, &old)) != 0) {
		snprintf(why, whylen, "pthread_sigmask: %s", strerror(rc));
		return (-1);
	}
	rc = ub_resolve_async(r->ub, qname, TYPE_TXT, CLASS_IN, p, on_answer, id);
	(void) pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		snprintf(why, whylen, "resolver: %s", ub_strerror(rc));
		return (-1);
	}
	return (0);
}

/* wait_answer - poll until the callback ran or the deadline passed;
 * 0, or -1 with a reason (the query is then cancelled) */
static int
wait_answer(struct dmarc_resolver *r, struct pending *p, char *why, size_t whylen)
{
	long long deadline = now_ms() + r->timeout_ms, left;
	struct pollfd pfd;
	int	rc, n;

	pfd.fd = ub_fd(r->ub);
	pfd.events = POLLIN;
	while (!p->done && (left = deadline - now_ms()) > 0) {
		n = poll(&pfd, 1, left > 60000 ? 60000 : (int) left);
		if (n < 0 && errno != EINTR) {
			snprintf(why, whylen, "poll: %s", strerror(errno));
			return (-1);
		}
		if (n > 0 && (rc = ub_process(r->ub)) != 0) {
			snprintf(why, whylen, "resolver: %s", ub_strerror(rc));
			return (-1);
		}
	}
	if (!p->done) {
		snprintf(why, whylen, "no answer within %u ms", r->timeout_ms);
		return (-1);
	}
	return (0);
}

/*
 * query_txt - ask TXT at qname and wait: 1 with the answer in *res (the
 * caller frees it with ub_resolve_free) and its TTL in *ttl (at most a
 * day); 0, no such record (NXDOMAIN or NODATA), with the negative TTL;
 * -1 with a reason (no answer, SERVFAIL, another rcode).
 */
static int
query_txt(struct dmarc_resolver *r, const char *qname, struct ub_result **res, long *ttl,
	  char *why, size_t whylen)
{
	struct pending p = {0, 0, NULL};
	int	id, rc;

	*res = NULL;
	/* A resolver that just let queries for two names time out is not
	 * asked again for a while: a dead one costs two timeouts per
	 * DMARC_QUIET_MS, not one per post (cached answers are still used). */
	if (now_ms() < r->quiet_until) {
		snprintf(why, whylen, "the resolver did not answer within the last %d s",
			 DMARC_QUIET_MS / 1000);
		return (-1);
	}
	if (start_query(r, qname, &p, &id, why, whylen) < 0)
		return (-1);
	if (wait_answer(r, &p, why, whylen) < 0) {
		/* After ub_cancel the callback is not called: p may go. */
		if (!p.done) {
			(void) ub_cancel(r->ub, id);
			/* One silent domain is the domain's doing; two names
			 * in a row, the resolver's. */
			if (r->last_timeout[0] && strcasecmp(r->last_timeout, qname) != 0)
				r->quiet_until = now_ms() + DMARC_QUIET_MS;
			snprintf(r->last_timeout, sizeof(r->last_timeout), "%s", qname);
		}
		if (p.res)
			ub_resolve_free(p.res);
		return (-1);
	}
	if (p.err != 0 || p.res == NULL) {
		snprintf(why, whylen, "resolver: %s", ub_strerror(p.err));
		ub_resolve_free(p.res);
		return (-1);
	}
	rc = p.res->rcode;
	r->last_timeout[0] = 0;		/* it answers */
	if (rc == RCODE_NXDOMAIN || (rc == RCODE_NOERROR && !p.res->havedata)) {
		/* libunbound gives min(SOA TTL, SOA minimum) when there is one */
		*ttl = p.res->ttl > 0 ? p.res->ttl : NEG_TTL_DEFAULT;
		if (*ttl > NEG_TTL_MAX)
			*ttl = NEG_TTL_MAX;
		ub_resolve_free(p.res);
		return (0);
	}
	if (rc != RCODE_NOERROR) {
		if (rc == RCODE_SERVFAIL)
			snprintf(why, whylen, "SERVFAIL");
		else
			snprintf(why, whylen, "DNS rcode %d", rc);
		ub_resolve_free(p.res);
		return (-1);
	}
	*ttl = p.res->ttl > TTL_MAX ? TTL_MAX : p.res->ttl;
	*res = p.res;
	return (1);
}

/* txt_join - one TXT record's strings (rdata of rdlen bytes) joined into
 * buf; its length, or -1: malformed, too long, or a NUL or control byte */
static int
txt_join(const char *rdata, int rdlen, char *buf, size_t size)
{
	const unsigned char *d = (const unsigned char *) rdata;
	size_t	off = 0, len = 0, n;
	int	bad = 0;

	buf[0] = 0;
	if (rdlen < 0)
		return (-1);
	while (off < (size_t) rdlen) {
		n = d[off++];
		if (n > (size_t) rdlen - off)
			return (-1);
		for (size_t i = 0; i < n; i++) {
			unsigned char c = d[off + i];

			if ((c < 0x20 && c != '\t') || c == 0x7f)
				bad = 1;
			if (len + 1 < size)
				buf[len++] = (char) c;
			else
				bad = 1;
		}
		off += n;
	}
	buf[len] = 0;
	return (bad ? -1 : (int) len);
}

/* has_version - does rec start with the version tag "v=" version (white
 * space around "=", the value exactly version)? */
static int
has_version(const char *rec, const char *version)
{
	const char *p = rec;
	size_t	n = strlen(version);

	if (*p != 'v' && *p != 'V')
		return (0);
	for (p++; *p == ' ' || *p == '\t'; p++)
		;
	if (*p++ != '=')
		return (0);
	for (; *p == ' ' || *p == '\t'; p++)
		;
	if (strncmp(p, version, n) != 0)
		return (0);
	p += n;
	return (*p == 0 || *p == ';' || *p == ' ' || *p == '\t');
}

/* policy_word - the policy v[0..n) names (any case), or -1 */
static int
policy_word(const char *v, size_t n)
{
	static const struct {
		const char *word;
		enum dmarc_policy policy;
	} words[] = {
		{"none", DMARC_P_NONE},
		{"quarantine", DMARC_P_QUARANTINE},
		{"reject", DMARC_P_REJECT},
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strlen(words[i].word) == n && strncasecmp(v, words[i].word, n) == 0)
			return ((int) words[i].policy);
	return (-1);
}

/* is_alpha - an ASCII letter, whatever the locale */
static int
is_alpha(char c)
{
	return ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'));
}

/* uri_list_valid - does the comma list v[0..n) hold a URI with a scheme
 * (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":" more)? */
static int
uri_list_valid(const char *v, size_t n)
{
	size_t	i = 0;

	while (i < n) {
		size_t	s;

		while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
			i++;
		s = i;
		if (i < n && is_alpha(v[i])) {
			while (i < n && (is_alpha(v[i]) || (v[i] >= '0' && v[i] <= '9')
					 || v[i] == '+' || v[i] == '-' || v[i] == '.'))
				i++;
			if (i + 1 < n && i > s && v[i] == ':' && v[i + 1] != ','
			    && v[i + 1] != ' ')
				return (1);
		}
		while (i < n && v[i] != ',')
			i++;
	}
	return (0);
}

/*
 * next_tag - the next tag of the tag-list at *pp (RFC 6376 3.2), *pp
 * moved past it: its name and value without the white space around them.
 * 1, 0 at the end of the list (empty tags, ";;" or a final ";", are
 * skipped), or -1: a tag without "=".
 */
static int
next_tag(const char **pp, const char **name, size_t *nlen, const char **val, size_t *vlen)
{
	const char *p = *pp, *eq, *semi;

	for (;;) {
		if (*p == 0)
			return (0);
		semi = strchr(p, ';');
		if (semi == NULL)
			semi = p + strlen(p);
		for (*name = p; *name < semi && (**name == ' ' || **name == '\t'); (*name)++)
			;
		p = *semi ? semi + 1 : semi;
		if (*name != semi)
			break;
	}
	*pp = p;
	if ((eq = memchr(*name, '=', (size_t) (semi - *name))) == NULL)
		return (-1);
	for (*nlen = (size_t) (eq - *name); *nlen > 0
	     && ((*name)[*nlen - 1] == ' ' || (*name)[*nlen - 1] == '\t'); (*nlen)--)
		;
	for (*val = eq + 1; *val < semi && (**val == ' ' || **val == '\t'); (*val)++)
		;
	for (*vlen = (size_t) (semi - *val); *vlen > 0
	     && ((*val)[*vlen - 1] == ' ' || (*val)[*vlen - 1] == '\t'); (*vlen)--)
		;
	return (1);
}

/* record_parse - the tags of one DMARC record (has_version "DMARC1"):
 * names in any case, unknown tags ignored, a repeated known tag or a tag
 * without "=" malformed */
static void
record_parse(const char *rec, struct record *r)
{
	static const char *known[] = {"v", "p", "sp", "pct", "rua"};
	unsigned seen = 0;
	const char *p = rec, *name, *val;
	size_t	nlen, vlen;
	int	rc;

	r->p = DMARC_NONE_FOUND;
	r->sp = SP_ABSENT;
	r->pct = 100;
	r->rua = 0;
	r->malformed = 0;
	while ((rc = next_tag(&p, &name, &nlen, &val, &vlen)) != 0) {
		unsigned k;

		if (rc < 0) {
			r->malformed = 1;
			return;
		}
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strlen(known[k]) == nlen && strncasecmp(name, known[k], nlen) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0]))
			continue;		/* unknown tags are ignored */
		if (seen & (1u << k)) {
			r->malformed = 1;	/* RFC 6376 3.2: duplicates */
			return;
		}
		seen |= 1u << k;
		if (k == 1) {
			int	pol = policy_word(val, vlen);

			r->p = (signed char) (pol < 0 ? DMARC_NONE_FOUND : pol);
		} else if (k == 2) {
			int	pol = policy_word(val, vlen);

			r->sp = (signed char) (pol < 0 ? SP_INVALID : pol);
		} else if (k == 3) {
			int	pct = 0;
			size_t	i;

			for (i = 0; i < vlen && i < 4 && val[i] >= '0' && val[i] <= '9'; i++)
				pct = pct * 10 + (val[i] - '0');
			if (i == vlen && vlen > 0 && pct <= 100)
				r->pct = (unsigned char) pct;
		} else if (k == 4)
			r->rua = (unsigned char) uri_list_valid(val, vlen);
	}
}

/* answer_from_txt - the DMARC records among the TXT records of res */
static void
answer_from_txt(const struct ub_result *res, struct answer *ans)
{
	char	buf[DMARC_TXT_MAX];
	int	ndmarc = 0, len;

	ans->kind = ANS_NO_DMARC;
	for (int i = 0; res->data[i] != NULL; i++) {
		len = txt_join(res->data[i], res->len[i], buf, sizeof(buf));
		if (!has_version(buf, "DMARC1"))
			continue;
		if (++ndmarc > 1) {
			ans->kind = ANS_SEVERAL;
			return;
		}
		ans->kind = ANS_ONE;
		if (len < 0) {
			memset(&ans->rec, 0, sizeof(ans->rec));
			ans->rec.malformed = 1;
		} else
			record_parse(buf, &ans->rec);
	}
}

/* ask - the answer for domain's _dmarc TXT, from the cache or DNS;
 * 0, or -1 with a reason (no answer) */
static int
ask(struct dmarc_resolver *r, const char *domain, struct answer *ans, int *cached,
    char *why, size_t whylen)
{
	char	qname[DMARC_DOMAIN_MAX + 8];
	const struct answer *hit;
	struct ub_result *res;
	long	ttl;
	int	rc;

	if ((hit = cache_get(&r->policies, domain, NULL)) != NULL) {
		*ans = *hit;
		return (0);
	}
	*cached = 0;
	snprintf(qname, sizeof(qname), "_dmarc.%s", domain);
	if (strlen(qname) > DNS_NAME_MAX) {
		ans->kind = ANS_NO_TXT;	/* no such name can exist */
		return (0);
	}
	if ((rc = query_txt(r, qname, &res, &ttl, why, whylen)) < 0)
		return (-1);
	if (rc == 0)
		ans->kind = ANS_NO_TXT;
	else {
		answer_from_txt(res, ans);
		ub_resolve_free(res);
	}
	cache_put(&r->policies, domain, ans, ttl);
	return (0);
}

/* apply - the policy of record rec (the organizational domain's when
 * org) into out, with its reason */
static void
apply(const struct record *rec, int org, struct dmarc_result *out)
{
	const char *where = org ? "organizational domain: " : "";
	const char *tag = "p";
	int	pol = rec->p;
	size_t	n;

	if (rec->malformed) {
		out->policy = DMARC_NONE_FOUND;
		snprintf(out->reason, sizeof(out->reason), "%smalformed record", where);
		return;
	}
	if (rec->p == DMARC_NONE_FOUND || rec->sp == SP_INVALID) {
		/* RFC 7489 6.6.3 step 6 */
		out->policy = rec->rua ? DMARC_P_NONE : DMARC_NONE_FOUND;
		snprintf(out->reason, sizeof(out->reason), "%sinvalid %s=%s", where,
			 rec->sp == SP_INVALID ? "sp" : "p",
			 rec->rua ? ", rua= given: as p=none" : "");
		return;
	}
	if (org && rec->sp != SP_ABSENT) {
		pol = rec->sp;
		tag = "sp";
	}
	out->policy = (enum dmarc_policy) pol;
	out->pct = rec->pct;
	n = (size_t) snprintf(out->reason, sizeof(out->reason), "%s%s=%s", where, tag,
			      dmarc_policy_str(out->policy));
	if (org && rec->sp == SP_ABSENT && n < sizeof(out->reason))
		n += (size_t) snprintf(out->reason + n, sizeof(out->reason) - n, " (no sp=)");
	if (rec->pct < 100 && n < sizeof(out->reason))
		(void) snprintf(out->reason + n, sizeof(out->reason) - n,
				"; pct=%d not applied", rec->pct);
}

int
dmarc_lookup(struct dmarc_resolver *r, const char *from_domain, struct dmarc_result *out)
{
	char	domain[DMARC_DOMAIN_MAX], why[DMARC_REASON_MAX - 32];
	const char *org;
	struct answer ans;
	int	level, rc;

	memset(out, 0, sizeof(*out));
	out->policy = DMARC_NONE_FOUND;
	out->pct = 100;
	out->cached = 1;
	if (domain_normalize(from_domain, domain) < 0) {
		out->cached = 0;
		snprintf(out->reason, sizeof(out->reason), "not a DNS domain name");
		return (0);
	}
	org = psl_registrable_domain(r->psl, domain);
	level = 0;
	rc = ask(r, domain, &ans, &out->cached, why, sizeof(why));
	if (rc == 0 && (ans.kind == ANS_NO_TXT || ans.kind == ANS_NO_DMARC)
	    && org != NULL && strcmp(org, domain) != 0) {
		/* Step 3: nothing at the From: domain; its organizational one */
		level = 1;
		rc = ask(r, org, &ans, &out->cached, why, sizeof(why));
	}
	if (rc < 0) {
		out->policy = DMARC_TEMPFAIL;
		snprintf(out->reason, sizeof(out->reason), "%s%s",
			 level ? "organizational domain: " : "", why);
		return (-1);
	}
	switch (ans.kind) {
	case ANS_NO_TXT:
	case ANS_NO_DMARC:
		snprintf(out->reason, sizeof(out->reason), "%s",
			 ans.kind == ANS_NO_TXT ? "no record" : "no v=DMARC1 record");
		break;
	case ANS_SEVERAL:
		snprintf(out->reason, sizeof(out->reason), "%sseveral records",
			 level ? "organizational domain: " : "");
		break;
	case ANS_ONE:
		snprintf(out->domain, sizeof(out->domain), "%s", level ? org : domain);
		out->from_org = level;
		apply(&ans.rec, level, out);
		break;
	}
	return (0);
}

int
dmarc_org_domain(struct dmarc_resolver *r, const char *domain, char *buf, size_t size)
{
	char	name[DMARC_DOMAIN_MAX];
	const char *org;

	if (domain_normalize(domain, name) < 0
	    || (org = psl_registrable_domain(r->psl, name)) == NULL
	    || strlen(org) >= size)
		return (-1);
	memcpy(buf, org, strlen(org) + 1);
	return (0);
}

/* is_key_record - is rec a tag-list with a p= tag (a DKIM key record
 * without its optional version, RFC 6376 3.6.1)? */
static int
is_key_record(const char *rec)
{
	const char *p = rec, *name, *val;
	size_t	nlen, vlen;
	int	rc, key = 0;

	while ((rc = next_tag(&p, &name, &nlen, &val, &vlen)) != 0) {
		if (rc < 0)
			return (0);
		if (nlen == 1 && name[0] == 'p')
			key = 1;
	}
	return (key);
}

/* txt_pick - the record dmarc_txt answers among the TXT records of res:
 * the first that starts with "v=DKIM1", else the first key record; a
 * record over DMARC_TXT_MAX or with a control byte does not count */
static void
txt_pick(const struct ub_result *res, struct txt_answer *ans)
{
	char	buf[DMARC_TXT_MAX];
	int	key = -1;

	ans->found = -1;
	ans->text[0] = 0;
	for (int i = 0; res->data[i] != NULL; i++) {
		if (txt_join(res->data[i], res->len[i], buf, sizeof(buf)) < 0)
			continue;
		if (has_version(buf, "DKIM1")) {
			key = i;
			break;
		}
		if (key < 0 && is_key_record(buf))
			key = i;
	}
	if (key >= 0) {
		(void) txt_join(res->data[key], res->len[key], ans->text, sizeof(ans->text));
		ans->found = 1;
	}
}

int
dmarc_txt(struct dmarc_resolver *r, const char *qname, char *buf, size_t size, long *ttl,
	  char *why, size_t whylen)
{
	char	name[DMARC_DOMAIN_MAX];
	const struct txt_answer *hit;
	struct txt_answer ans;
	struct ub_result *res;
	long	left = 0;
	size_t	len;
	int	rc;

	if (size > 0)
		buf[0] = 0;
	if (ttl)
		*ttl = 0;
	if (domain_normalize(qname, name) < 0) {
		snprintf(why, whylen, "not a DNS name");
		return (0);
	}
	if ((hit = cache_get(&r->txts, name, &left)) == NULL) {
		if ((rc = query_txt(r, name, &res, &left, why, whylen)) < 0)
			return (-1);
		ans.found = 0;
		ans.text[0] = 0;
		if (rc > 0) {
			txt_pick(res, &ans);
			ub_resolve_free(res);
		}
		cache_put(&r->txts, name, &ans, left);
		hit = &ans;
	}
	if (ttl)
		*ttl = left;
	if (hit->found <= 0) {
		snprintf(why, whylen, "%s", hit->found == 0 ? "no TXT record" : "no key record");
		return (0);
	}
	if ((len = strlen(hit->text)) >= size) {
		snprintf(why, whylen, "a record of %zu bytes does not fit", len);
		return (-1);
	}
	memcpy(buf, hit->text, len + 1);
	return (1);
}

int
dmarc_resolver_valid(const char *spec, char *err, size_t errlen)
{
	char	addr[INET6_ADDRSTRLEN + 16];

	return (resolver_addr(spec, addr, sizeof(addr), err, errlen));
}
