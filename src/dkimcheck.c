/*
 * dkimcheck.c - will the author's DKIM signature survive the list copy?
 *
 * A copy keeps the author's From:, so it passes DMARC only through a
 * DKIM signature aligned with the author's domain (the envelope sender is
 * the list's: SPF never aligns).  mlistd keeps the body and every field
 * it does not touch byte for byte (rewrite.c), so such a signature
 * survives exactly when it verifies on arrival and its h= names no field
 * the copy adds, replaces or removes.  Verification is libopendkim's
 * (keys from DNS, or from a file for the tests); the list of touched
 * fields is rewrite_copy()'s, restated in one table below and checked
 * against the real copy by tests/check_dkimcheck.
 *
 * DKIM header selection (RFC 6376 section 5.4.2) takes a field's
 * instances from the bottom, and a name listed more often than the field
 * occurs signs its absence ("over-signing").  Fields the copy appends at
 * the end of the header therefore break every signature that names them,
 * present or not; fields it only removes break a signature only when the
 * post has them.
 *
 * Bounds: the header is parsed by rewrite_parse() with its limits; only
 * the first DKIMCHECK_MAX_SEEN signatures are looked at, only aligned
 * ones are verified (the others are marked ignored before any key
 * lookup), at most DKIMCHECK_MAX_SIGS of them; an h= longer than
 * DKIMCHECK_MAX_H counts as touching.  Key lookups time out after
 * conf->timeout seconds.
 *
 * With conf->resolver, keys come through mlistd's resolver (dmarc_txt, cached).
 *
 * Public API: dkimcheck_create(), dkimcheck_free(), dkimcheck_survives(),
 * dkimcheck_survives_as(), dkimcheck_touches().  Diagnostics go into the
 * result's reason, never to the log: the caller logs the copy's line.
 * Memory: the checker owns its libopendkim handle; results are the
 * caller's structs.
 */
#include "config.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opendkim/dkim.h>

#include "dkimcheck.h"
#include "dmarc.h"
#include "rewrite.h"

struct dkimcheck {
	DKIM_LIB *lib;
	struct dmarc_resolver *resolver;	/* NULL: libopendkim looks keys up */
	dkimcheck_orgdomain_fn orgdomain;
	void   *orgdomain_arg;
};

/* What one call knows while libopendkim screens the signatures and
 * looks their keys up. */
struct screen {
	const struct dkimcheck *dc;
	const char *author;
	unsigned aligned;
	char	failed[80];		/* why a key lookup failed, or "" */
};

/* The fields rewrite_copy() touches (see dkimcheck.h). */
#define T_ADD		1		/* appended to every copy */
#define T_ADD_GROUP	2		/* appended to a group's copy */
#define T_DROP		4		/* removed from every copy */
#define T_DROP_GROUP	8		/* removed from a group's copy */

static const struct {
	const char *name;
	int	how;
} touched[] = {
	{"X-BeenThere", T_ADD},
	{"Sender", T_ADD | T_DROP},
	{"List-Id", T_ADD | T_DROP},
	{"List-Unsubscribe", T_ADD | T_DROP},
	{"List-Help", T_ADD | T_DROP},
	{"List-Subscribe", T_ADD | T_DROP},
	{"List-Post", T_ADD | T_DROP},
	{"Precedence", T_ADD_GROUP | T_DROP_GROUP},
	{"X-Auto-Response-Suppress", T_ADD_GROUP | T_DROP_GROUP},
	{"Bcc", T_DROP},
	{"Fcc", T_DROP},
	{"Resent-Bcc", T_DROP},
};

static DKIM_CBSTAT screen_sigs(DKIM *, DKIM_SIGINFO **, int);
static int key_name(DKIM_SIGINFO *, char *, size_t);
static DKIM_CBSTAT key_lookup(DKIM *, DKIM_SIGINFO *, u_char *, size_t);
static int aligned(const struct dkimcheck *, const char *, const char *);
static int is_sub(const char *, const char *);
static int h_touches(const struct rewrite_msg *, const char *, int, char *, size_t);
static int bare_lf(const char *, size_t);
static void say(struct dkimcheck_result *, int, const char *, const char *, ...)
	__attribute__((format(printf, 4, 5)));

int
dkimcheck_create(const struct dkimcheck_conf *conf, struct dkimcheck **out)
{
	struct dkimcheck *dc;
	unsigned int timeout = DKIMCHECK_TIMEOUT;
	dkim_query_t qtype = DKIM_QUERY_FILE;

	*out = NULL;
	if ((dc = calloc(1, sizeof(*dc))) == NULL)
		return (-1);
	if ((dc->lib = dkim_init(NULL, NULL)) == NULL) {
		free(dc);
		return (-1);
	}
	if (conf != NULL && conf->timeout > 0)
		timeout = conf->timeout;
	if (dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &timeout,
			 sizeof(timeout)) != DKIM_STAT_OK
	    || dkim_set_prescreen(dc->lib, screen_sigs) != DKIM_STAT_OK)
		goto fail;
	if (conf != NULL && conf->keyfile != NULL
	    && (dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYMETHOD, &qtype,
			     sizeof(qtype)) != DKIM_STAT_OK
		|| dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_QUERYINFO,
				(void *) conf->keyfile, strlen(conf->keyfile)) != DKIM_STAT_OK))
		goto fail;
	if (conf != NULL && conf->keyfile == NULL && conf->resolver != NULL) {
		uint32_t flags;

		/*
		 * A lookup that fails answers TRYAGAIN, which stops dkim_eoh()
		 * at that signature; dkim_eom() goes on with the others.  So
		 * signatures are processed at the end of the message.
		 */
		dc->resolver = conf->resolver;
		if (dkim_options(dc->lib, DKIM_OP_GETOPT, DKIM_OPTS_FLAGS, &flags,
				 sizeof(flags)) != DKIM_STAT_OK)
			goto fail;
		flags |= DKIM_LIBFLAGS_DELAYSIGPROC;
		if (dkim_options(dc->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
				 sizeof(flags)) != DKIM_STAT_OK
		    || dkim_set_key_lookup(dc->lib, key_lookup) != DKIM_STAT_OK)
			goto fail;
	}
	if (conf != NULL) {
		dc->orgdomain = conf->orgdomain;
		dc->orgdomain_arg = conf->orgdomain_arg;
	}
	*out = dc;
	return (0);
fail:
	dkimcheck_free(dc);
	return (-1);
}

void
dkimcheck_free(struct dkimcheck *dc)
{
	if (dc == NULL)
		return;
	if (dc->lib != NULL)
		dkim_close(dc->lib);
	free(dc);
}

int
dkimcheck_touches(const char *name, size_t nlen, int present, int is_group)
{
	int	add = T_ADD | (is_group ? T_ADD_GROUP : 0);
	int	drop = T_DROP | (is_group ? T_DROP_GROUP : 0);

	/* rewrite.c drop_field(): every "List-" field but the bare prefix. */
	if (nlen > 5 && strncasecmp(name, "List-", 5) == 0 && present)
		return (1);
	for (size_t i = 0; i < sizeof(touched) / sizeof(touched[0]); i++)
		if (nlen == strlen(touched[i].name)
		    && strncasecmp(name, touched[i].name, nlen) == 0)
			return ((touched[i].how & add) != 0
				|| (present && (touched[i].how & drop) != 0));
	return (0);
}

int
dkimcheck_survives(struct dkimcheck *dc, const char *msg, size_t len,
		   const char *author_domain, struct dkimcheck_result *out)
{
	return (dkimcheck_survives_as(dc, msg, len, author_domain, 1, out));
}

int
dkimcheck_survives_as(struct dkimcheck *dc, const char *msg, size_t len,
		      const char *author_domain, int is_group,
		      struct dkimcheck_result *out)
{
	struct screen sc = {dc, author_domain, 0, ""};
	struct rewrite_msg *m = NULL;
	DKIM_SIGINFO **sigs = NULL;
	DKIM_STAT st;
	DKIM   *dkim;
	int	nsigs = 0, rc = 0, covers = 0, failed = 0, tempfail = 0;
	char	field[80], qname[2 * DMARC_DOMAIN_MAX];

	memset(out, 0, sizeof(*out));
	switch (rewrite_parse(msg, len, NULL, &m)) {
	case REWRITE_OK:
		break;
	case REWRITE_NOMEM:
		say(out, 0, "", "out of memory");
		return (-1);
	default:
		say(out, 0, "", "header over the limits");
		return (0);
	}
	if ((dkim = dkim_verify(dc->lib, (const unsigned char *) "mlistd", NULL, &st)) == NULL) {
		rewrite_msg_free(m);
		say(out, 0, "", "out of memory");
		return (-1);
	}
	(void) dkim_set_user_context(dkim, &sc);
	/* libopendkim reads but does not write the message: const cast away. */
	st = dkim_chunk(dkim, (unsigned char *) (uintptr_t) msg, len);
	if (st == DKIM_STAT_OK)
		st = dkim_chunk(dkim, NULL, 0);
	if (st == DKIM_STAT_OK || st == DKIM_STAT_NOSIG)
		st = dkim_eom(dkim, NULL);
	if (dkim_getsiglist(dkim, &sigs, &nsigs) != DKIM_STAT_OK)
		nsigs = 0;
	out->aligned = sc.aligned;
	if (sc.aligned == 0) {
		if (st == DKIM_STAT_NORESOURCE) {
			say(out, 0, "", "out of memory");
			rc = -1;
		} else if (st == DKIM_STAT_SYNTAX)
			say(out, 0, "", "not verifiable: %s", dkim_geterror(dkim) ? dkim_geterror(dkim)
			    : dkim_getresultstr(st));
		else
			say(out, 0, "", "no aligned signature");
		goto done;
	}
	/*
	 * The first aligned signature that verifies and touches nothing
	 * decides.  Otherwise, in this order: one whose key lookup failed
	 * and whose h= the copy leaves alone (tempfail: it may survive), the
	 * first that verifies but covers a touched field, the first failure.
	 */
	for (int i = 0; i < nsigs && i < DKIMCHECK_MAX_SEEN; i++) {
		DKIM_SIGINFO *sig = sigs[i];
		const char *d = (const char *) dkim_sig_getdomain(sig);
		const char *h, *es;
		int	err, touches;

		if ((dkim_sig_getflags(sig) & DKIM_SIGFLAG_IGNORE) != 0 || d == NULL)
			continue;
		h = (const char *) dkim_sig_gettagvalue(sig, false, (u_char *) "h");
		touches = h == NULL ? 1 : h_touches(m, h, is_group, field, sizeof(field));
		if (h == NULL)
			snprintf(field, sizeof(field), "no h= tag");
		if (DKIM_SIG_CHECK(sig)) {
			if (touches == 0) {
				if (bare_lf(msg, len))
					say(out, 0, d, "copy changes line ends (bare LF)");
				else
					say(out, 1, d, "signature survives");
				goto done;
			}
			if (!covers++ && !tempfail)
				say(out, 0, d, "h= covers %s", field);
			continue;
		}
		err = dkim_sig_geterror(sig);
		if (err == DKIM_SIGERROR_KEYFAIL && touches == 0) {
			if (!tempfail++)
				say(out, 0, d, "aligned signature unverified: key lookup failed%s%.80s",
				    sc.failed[0] ? ": " : "", sc.failed);
			continue;
		}
		if (failed++ || covers || tempfail)
			continue;
		es = err == DKIM_SIGERROR_OK ? NULL : dkim_sig_geterrorstr(err);
		if (dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH)
			es = "body hash mismatch";
		else if (err == DKIM_SIGERROR_NOKEY && dc->resolver != NULL
			 && key_name(sig, qname, sizeof(qname)) < 0)
			es = "s= or d= is no DNS name";
		say(out, 0, d, "aligned signature fails on arrival: %s",
		    es ? es : err == DKIM_SIGERROR_OK ? "not verified" : "unknown error");
	}
	out->tempfail = tempfail > 0;
	if (out->reason[0] == 0)
		say(out, 0, "", "no aligned signature");
done:
	dkim_free(dkim);
	rewrite_msg_free(m);
	return (rc);
}

/* screen_sigs - before any key lookup: ignore the signatures that are not
 * aligned with the author's domain, and those over the bounds */
static DKIM_CBSTAT
screen_sigs(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
	struct screen *sc = dkim_get_user_context(dkim);

	for (int i = 0; i < nsigs; i++) {
		const char *d = (const char *) dkim_sig_getdomain(sigs[i]);

		if (sc == NULL || i >= DKIMCHECK_MAX_SEEN || sc->aligned >= DKIMCHECK_MAX_SIGS
		    || d == NULL || !aligned(sc->dc, d, sc->author))
			dkim_sig_ignore(sigs[i]);
		else
			sc->aligned++;
	}
	return (DKIM_CBSTAT_CONTINUE);
}

/* key_name - SELECTOR._domainkey.DOMAIN of sig into buf: 0, or -1 when
 * s= or d= (the post's) is missing or no DNS name, or the name too long */
static int
key_name(DKIM_SIGINFO *sig, char *buf, size_t size)
{
	const char *s = (const char *) dkim_sig_getselector(sig);
	const char *d = (const char *) dkim_sig_getdomain(sig);
	int	n;

	if (s == NULL || d == NULL || !dmarc_dns_name(s) || !dmarc_dns_name(d))
		return (-1);
	n = snprintf(buf, size, "%s._domainkey.%s", s, d);
	return (n > 0 && (size_t) n < size && dmarc_dns_name(buf) ? 0 : -1);
}

/*
 * key_lookup - libopendkim's key lookup through the resolver (its
 * timeout, its cache of keys by TTL): the key record into buf
 * (CONTINUE), none (NOTFOUND), or a failure: the signature KEYFAIL, as
 * libopendkim's own DNS code marks a timeout, and TRYAGAIN.  s= and d=
 * come from the post: a name that is no DNS name is not asked about
 * (NOTFOUND).  After a failure the call asks no more, so that a dead
 * resolver costs one timeout per post, not one per signature.
 */
static DKIM_CBSTAT
key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	struct screen *sc = dkim_get_user_context(dkim);
	char	qname[2 * DMARC_DOMAIN_MAX], why[sizeof(sc->failed)];

	if (sc == NULL || key_name(sig, qname, sizeof(qname)) < 0)
		return (DKIM_CBSTAT_NOTFOUND);
	if (sc->failed[0] == 0) {
		switch (dmarc_txt(sc->dc->resolver, qname, (char *) buf, buflen, NULL, why,
				  sizeof(why))) {
		case 1:
			return (DKIM_CBSTAT_CONTINUE);
		case 0:
			return (DKIM_CBSTAT_NOTFOUND);
		default:
			snprintf(sc->failed, sizeof(sc->failed), "%s", why[0] ? why : "failed");
			break;
		}
	}
	(void) dkim_sig_seterror(sig, DKIM_SIGERROR_KEYFAIL);
	return (DKIM_CBSTAT_TRYAGAIN);
}

/* aligned - relaxed alignment (RFC 7489 section 3.1.1) of d= and the author's domain */
static int
aligned(const struct dkimcheck *dc, const char *d, const char *author)
{
	char	od[256], oa[256];

	if (strcasecmp(d, author) == 0)
		return (1);
	if (dc->orgdomain == NULL)
		return (is_sub(d, author) || is_sub(author, d));
	if (dc->orgdomain(d, od, sizeof(od), dc->orgdomain_arg) != 0
	    || dc->orgdomain(author, oa, sizeof(oa), dc->orgdomain_arg) != 0)
		return (0);
	return (strcasecmp(od, oa) == 0);
}

/* is_sub - sub is a proper subdomain of dom */
static int
is_sub(const char *sub, const char *dom)
{
	size_t	ls = strlen(sub), ld = strlen(dom);

	return (ld > 0 && ls > ld + 1 && sub[ls - ld - 1] == '.'
		&& strcasecmp(sub + ls - ld, dom) == 0);
}

/*
 * h_touches - does the h= list name a field the copy touches?  1 with
 * the first such name in buf (lower case), or 0.  An h= too long to
 * examine counts as touching.
 */
static int
h_touches(const struct rewrite_msg *m, const char *h, int is_group, char *buf, size_t size)
{
	size_t	hlen = strlen(h);
	char	probe[2];

	if (hlen > DKIMCHECK_MAX_H) {
		snprintf(buf, size, "too many fields to examine");
		return (1);
	}
	while (*h) {
		size_t	n, k;

		h += strspn(h, " \t\r\n:");
		n = strcspn(h, ":");
		for (k = n; k > 0 && strchr(" \t\r\n", h[k - 1]) != NULL; k--)
			;
		if (k > 0 && k < size) {
			for (size_t i = 0; i < k; i++)
				buf[i] = (char) (h[i] >= 'A' && h[i] <= 'Z' ? h[i] - 'A' + 'a' : h[i]);
			buf[k] = 0;
			/* Present: rewrite_field() finds it (-2: found, too long). */
			if (dkimcheck_touches(buf, k, rewrite_field(m, buf, probe, sizeof(probe)) != -1,
					      is_group))
				return (1);
		} else if (k >= size && dkimcheck_touches(h, k, 1, is_group)) {
			snprintf(buf, size, "a long field name");
			return (1);
		}
		h += n;
	}
	buf[0] = 0;
	return (0);
}

/* bare_lf - an LF without its CR: the relay sends the copy with CR LF */
static int
bare_lf(const char *msg, size_t len)
{
	for (const char *p = msg; (p = memchr(p, '\n', len - (size_t) (p - msg))) != NULL; p++)
		if (p == msg || p[-1] != '\r')
			return (1);
	return (0);
}

/* say - the result's verdict, domain and reason */
static void
say(struct dkimcheck_result *out, int survives, const char *domain, const char *fmt, ...)
{
	va_list ap;

	out->survives = survives;
	snprintf(out->domain, sizeof(out->domain), "%s", domain);
	va_start(ap, fmt);
	vsnprintf(out->reason, sizeof(out->reason), fmt, ap);
	va_end(ap);
}
