/*
 * deliver.c - what mlistd does with each recipient and each message.
 *
 * RCPT: another domain is 550 5.7.1 (never an open relay); the bounce
 * local part, also as bounce+TAG, is 250; a list in the database is 250;
 * anything else 550 5.1.1; a database problem 451 4.3.0.  Checking the
 * database at RCPT time gives Postfix a precise answer per recipient.
 *
 * End of data, for the lists named in the transaction (one copy per
 * list, even when Postfix batched several lists into one transaction):
 *   1. every list is checked first (loop, posting policy); if any refuses
 *      the post, the whole transaction gets that refusal and nothing is
 *      sent, so one DATA reply never means "sent to some";
 *   2. then each list's copy goes to the relay.  250 only when every copy
 *      was accepted; any relay or database trouble is 451, so Postfix
 *      retries.  (contrib's Postfix transport uses a recipient limit of
 *      1, so a transaction carries one list and a retry duplicates
 *      nothing.)
 *
 * Replies and what Postfix does with them: 250 done; 451/452 keep
 * queued and retry; 550/554 return to the sender.
 *
 * This module is the dispatcher from SMTP events to the flows below it:
 * post.c (a list's copy), returns.c (mail to the bounce address),
 * request.c (mail to command addresses); flow.c holds what they share.
 * A flow never calls back up here.
 *
 * Public: deliver_create and deliver_free (the worker's context, struct
 * deliver: database, relay, probe key), deliver_check (start-up and
 * mlistd -t), deliver_handlers (their ctx a struct deliver_session).
 * deliver_free frees what deliver_create made, and accepts NULL.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "bounce.h"
#include "command.h"
#include "deliver.h"
#include "dmarc.h"
#include "flow.h"
#include "held.h"
#include "log.h"
#include "mitigate.h"
#include "post.h"
#include "probe.h"
#include "relay.h"
#include "request.h"
#include "returns.h"
#include "rewrite.h"
#include "sockstream.h"
#include "store.h"

static void d_mail(void *, struct smtp_envelope *, struct smtp_reply *);
static void d_rcpt(void *, const struct smtp_envelope *, const char *,
		   struct smtp_reply *);
static void d_data(void *, const struct smtp_envelope *, const char *,
		   size_t, struct smtp_reply *);

const struct smtp_handlers deliver_handlers = {d_mail, d_rcpt, d_data, NULL};

/* key_load - the probe secret, mlistd.key beside the database */
static int
key_load(const struct conf *cf, unsigned char key[PROBE_KEY_LEN], char *err,
	 size_t errlen)
{
	char	path[4096];
	const char *slash = strrchr(cf->database, '/');

	if (slash)
		snprintf(path, sizeof(path), "%.*s/mlistd.key", (int) (slash - cf->database),
			 cf->database);
	else
		snprintf(path, sizeof(path), "mlistd.key");
	return (probe_key_load(path, key, err, errlen));
}

struct deliver *
deliver_create(const struct conf *cf, const char *helo, char *err, size_t errlen)
{
	struct deliver *d;

	if ((d = calloc(1, sizeof(*d))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	d->cf = cf;
	snprintf(d->bounce_addr, sizeof(d->bounce_addr), "%s@%s", cf->bounce_local,
		 cf->domain);
	if ((d->st = store_open(cf->database, cf->database_timeout * 1000, err, errlen)) == NULL
	    || key_load(cf, d->key, err, errlen) < 0
	    || (d->mit = mitigate_create(cf)) == NULL
	    || (d->relay = relay_create(cf->relay, helo, cf->relay_timeout,
					cf->relay_pipelining, err, errlen)) == NULL) {
		deliver_free(d);
		return (NULL);
	}
	return (d);
}

void
deliver_free(struct deliver *d)
{
	if (d == NULL)
		return;
	store_free(d->st);
	relay_free(d->relay);
	mitigate_free(d->mit);
	free(d);
}

/* A line of `mlistd -t` per list: who may post, who may subscribe. */
struct report {
	FILE   *fp;
	const struct conf *cf;
	struct store *st;
	int	modes;			/* 1 << DMARC_MODE_* of the lists */
};

/* count_one - store_moderators callback: count */
static int
count_one(void *arg, const char *address)
{
	(void) address;
	++*(long *) arg;
	return (0);
}

/* report_moderation - a list's line about moderation, and a warning
 * when it holds posts and nobody is there to decide; -1 on a database
 * error */
static int
report_moderation(struct report *rp, const struct store_group *g)
{
	static const char *const others[] = {"reject", "hold", "discard"};
	const struct conf *cf = rp->cf;
	long	n = 0;

	if (store_moderators(rp->st, g->name, count_one, &n) == STORE_ERROR)
		return (-1);
	fprintf(rp->fp, "mlistd: list %s@%s: moderated=%s, others=%s, %ld moderator%s%s%s\n",
		g->name, cf->domain, g->moderated ? "yes" : "no", others[g->others], n,
		n == 1 ? "" : "s", g->notify_owners && n > 0 ? " (told of subscriptions)" : "",
		g->notify_held ? ", authors told when a post is held" : "");
	if (n == 0 && (g->moderated || g->others == OTHERS_HOLD))
		fprintf(rp->fp, "mlistd: warning: list %s@%s holds posts (%s) but has no "
			"moderator: they wait for a decision with sqlite3 (UPDATE held SET "
			"decision = ...) or expire after hold-expiry; INSERT INTO moderators "
			"VALUES ('%s', 'ADDRESS') to have them sent to someone\n", g->name,
			cf->domain, g->moderated ? "moderated = 1" : "others = 'hold'", g->name);
	return (0);
}

static int
report_group(void *arg, const struct store_group *g)
{
	struct report *rp = arg;
	const struct conf *cf = rp->cf;
	static const char *const posting[] = {"members", "group", "anyone"};
	static const char *const subscribe[] = {"closed", "confirm", "members"};

	if (!g->is_group) {
		fprintf(rp->fp, "mlistd: alias %s@%s\n", g->name, cf->domain);
		return (0);
	}
	fprintf(rp->fp, "mlistd: list %s@%s: posting=%s, subscribe=%s: ", g->name, cf->domain,
		posting[g->posting], subscribe[g->subscribe]);
	if (g->subscribe == SUB_CLOSED)
		fprintf(rp->fp, "requests by mail go to %s@%s\n", cf->postmaster_local,
			cf->domain);
	else
		fprintf(rp->fp, "%s (after confirming) subscribe at %s%csubscribe@%s; "
			"recipients unsubscribe at %s%cunsubscribe@%s\n",
			g->subscribe == SUB_CONFIRM ? "anyone may" : "addresses in members may",
			g->name, cf->delim, cf->domain, g->name, cf->delim, cf->domain);
	if (report_moderation(rp, g) < 0)
		return (-1);
	{
		static const char *const mode[] = {"", "auto", "always", "never"};
		int	m = g->dmarc ? g->dmarc : cf->dmarc_mode;

		rp->modes |= 1 << m;
		fprintf(rp->fp, "mlistd: list %s@%s: dmarc-mitigation=%s%s\n", g->name,
			cf->domain, mode[m], g->dmarc ? " (groups.dmarc)" : " (the option)");
	}
	/* A subscription never adds to members (it would grant posting on
	 * every 'members' list): such a list's subscribers cannot post. */
	if (g->subscribe != SUB_CLOSED && g->posting == POST_MEMBERS)
		fprintf(rp->fp, "mlistd: warning: list %s@%s: subscribe=%s with posting=members: "
			"its new subscribers cannot post (a subscription does not add to "
			"members); set posting = 'group' to let the list's recipients post\n",
			g->name, cf->domain, subscribe[g->subscribe]);
	return (0);
}

/*
 * report_signing - mlistd -t: copies whose From: is rewritten pass DMARC
 * only through the list domain's own DKIM signature, which the relay
 * path adds (mlistd cannot see it): dkim-selector names it.
 */
static void
report_signing(struct report *rp, struct dmarc_resolver *dns)
{
	const struct conf *cf = rp->cf;

	(void) dns;
	if (cf->dkim_selector == NULL && (rp->modes & ~(1 << DMARC_MODE_NEVER)))
		fprintf(rp->fp, "mlistd: warning: dkim-selector is not set: nothing says that "
			"the relay path signs list mail for %s with DKIM; copies whose From: is "
			"rewritten fail DMARC unless it does (contrib/opendkim; DELIVERABILITY in "
			"mlistd(8))\n", cf->domain);
}

/*
 * report_deliverability - mlistd -t: does the resolver answer (asked for
 * the list domain's own DMARC record), and is the list domain's DKIM key
 * published for the selector the relay path signs with?  Warnings only,
 * but for a resolver setting that cannot be used: -1 with err.
 */
static int
report_deliverability(struct report *rp, char *err, size_t errlen)
{
	const struct conf *cf = rp->cf;
	const char *res = cf->resolver ? cf->resolver : "from /etc/resolv.conf";
	struct dmarc_resolver *dns;
	struct dmarc_result dr;
	char	why[256];

	if ((dns = dmarc_resolver_create(cf->resolver, cf->dns_timeout * 1000, why,
					 sizeof(why))) == NULL) {
		snprintf(err, errlen, "resolver %s: %s", res, why);
		return (-1);
	}
	if (rp->modes & (1 << DMARC_MODE_AUTO)) {
		if (dmarc_lookup(dns, cf->domain, &dr) < 0)
			fprintf(rp->fp, "mlistd: warning: resolver %s does not answer (_dmarc.%s: "
				"%s): with dmarc-mitigation auto, a copy's From: is then rewritten "
				"only when no DKIM signature of the author's survives (see "
				"DELIVERABILITY in mlistd(8))\n", res, cf->domain, dr.reason);
		else
			fprintf(rp->fp, "mlistd: resolver %s answers: the list domain %s: %s\n",
				res, cf->domain, dr.policy == DMARC_NONE_FOUND
				? "no DMARC policy (publish one: see DELIVERABILITY in mlistd(8))"
				: dr.reason);
	}
	report_signing(rp, dns);
	dmarc_resolver_free(dns);
	return (0);
}

int
deliver_check(const struct conf *cf, FILE *report, char *err, size_t errlen)
{
	struct store *st;
	struct relay *r;
	char	dir[4096], *slash;

	/* Create the database's directory if it is missing (one level). */
	snprintf(dir, sizeof(dir), "%s", cf->database);
	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0750) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create directory %s: %s", dir,
				 strerror(errno));
			return (-1);
		}
	}
	if (maildir_create(cf->bounce_maildir, err, errlen) < 0
	    || maildir_create(cf->held_maildir, err, errlen) < 0)
		return (-1);
	if ((st = store_open(cf->database, cf->database_timeout * 1000, err, errlen)) == NULL)
		return (-1);
	if (report) {
		struct report rp = {report, cf, st, 0};
		struct store_group pm;
		long	n = store_groups(st, report_group, &rp);

		if (n == STORE_ERROR) {
			snprintf(err, errlen, "database %s: %s", cf->database, store_errmsg(st));
			store_free(st);
			return (-1);
		}
		if (n == 0)
			fprintf(report, "mlistd: warning: the database has no lists yet (see "
				"sql/example.sql)\n");
		else if (store_group(st, cf->postmaster_local, &pm) == STORE_NO)
			fprintf(report, "mlistd: warning: no %s alias in groups: closed lists "
				"refuse requests by mail\n", cf->postmaster_local);
		if (report_deliverability(&rp, err, errlen) < 0) {
			store_free(st);
			return (-1);
		}
		(void) fflush(report);
	}
	store_free(st);
	{
		unsigned char key[PROBE_KEY_LEN];

		if (key_load(cf, key, err, errlen) < 0)
			return (-1);
	}
	if ((r = relay_create(cf->relay, "localhost", cf->relay_timeout, 0, err, errlen)) == NULL)
		return (-1);
	relay_free(r);
	return (0);
}

/* new_id - a Postfix-like hex transaction id, unique on this host */
static void
new_id(char *buf, size_t len)
{
	static unsigned seq;
	struct timeval tv;

	(void) gettimeofday(&tv, NULL);
	snprintf(buf, len, "%05lX%04lX%03X", (unsigned long) tv.tv_usec & 0xFFFFF,
		 (unsigned long) tv.tv_sec & 0xFFFF,
		 (unsigned) (((unsigned) getpid() << 4) ^ (++seq & 0xF)) & 0xFFF);
}

/* d_mail - assign the transaction id and log the client */
static void
d_mail(void *vctx, struct smtp_envelope *env, struct smtp_reply *r)
{
	struct deliver_session *ds = vctx;

	new_id(env->id, sizeof(env->id));
	msg_info("%s: client=%s, helo=<%s>, from=<%s>, size=%lu%s", env->id,
		 ds->client, env->helo, env->sender, env->size,
		 env->smtputf8 ? ", smtputf8" : "");
	smtp_reply_set(r, 250, "2.1.0 Ok");
}

/*
 * command_rcpt - a list's command address (LIST+subscribe, ...): 250 for
 * a list that has them, a 550 5.7.1 for a closed list when there is no
 * postmaster alias to take its requests, 451 for a database problem.
 * -1: not a command address of any list (the caller answers 550 5.1.1).
 */
static int
command_rcpt(struct deliver_session *ds, const struct smtp_envelope *env,
	     const char *rcpt, const char *local, struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;
	struct command c;
	struct store_group g, pm;
	int	rc;

	if (command_parse(local, cf->delim, &c) < 0)
		return (-1);
	rc = store_group(ds->d->st, c.group, &g);
	/* A moderator's decision is taken whatever the subscribe policy. */
	if (rc == STORE_YES && g.is_group && g.subscribe == SUB_CLOSED && !command_moderates(&c)) {
		int	p = store_group(ds->d->st, cf->postmaster_local, &pm);

		if (p == STORE_ERROR)
			rc = STORE_ERROR;
		else if (p == STORE_NO) {
			msg_info("%s: reject: RCPT from %s: 550 5.7.1 <%s>: list %s is closed and "
				 "there is no %s alias to take its requests; from=<%s>", env->id,
				 ds->client, rcpt, g.name, cf->postmaster_local, env->sender);
			smtp_reply_set(r, 550, "5.7.1 <%s>: this list takes no requests by mail",
				       rcpt);
			return (0);
		}
	}
	if (rc == STORE_ERROR) {
		msg_warn("%s: database: %s", env->id, store_errmsg(ds->d->st));
		smtp_reply_set(r, 451, "4.3.0 <%s>: Temporary lookup failure", rcpt);
		return (0);
	}
	if (rc != STORE_YES || !g.is_group)
		return (-1);
	smtp_reply_set(r, 250, "2.1.5 Ok");
	return (0);
}

/* d_rcpt - the recipient check */
static void
d_rcpt(void *vctx, const struct smtp_envelope *env, const char *rcpt,
       struct smtp_reply *r)
{
	struct deliver_session *ds = vctx;
	const struct conf *cf = ds->d->cf;
	struct store_group g;
	const char *domain;
	char	local[SMTP_ADDR_MAX + 1];

	if (flow_split(rcpt, cf->domain, local, sizeof(local), &domain) < 0) {
		smtp_reply_set(r, 501, "5.1.3 <%s>: Bad recipient address syntax", rcpt);
		return;
	}
	if (strcasecmp(domain, cf->domain) != 0) {
		msg_info("%s: reject: RCPT from %s: 550 5.7.1 <%s>: Relay access denied; "
			 "from=<%s>", env->id, ds->client, rcpt, env->sender);
		smtp_reply_set(r, 550, "5.7.1 <%s>: Relay access denied", rcpt);
		return;
	}
	if (flow_is_bounce(cf, local)) {
		if (env->size > cf->bounce_max_size) {
			msg_info("%s: reject: RCPT from %s: 552 5.3.4 <%s>: bounce of %lu bytes "
				 "over bounce-max-size", env->id, ds->client, rcpt, env->size);
			smtp_reply_set(r, 552, "5.3.4 <%s>: bounce too large (limit %lu bytes)",
				       rcpt, cf->bounce_max_size);
			return;
		}
		smtp_reply_set(r, 250, "2.1.5 Ok");
		return;
	}
	/* No list name is longer than a local part may be (RFC 5321: 64). */
	if (strlen(local) > STORE_NAME_MAX) {
		msg_info("%s: reject: RCPT from %s: 550 5.1.1 <%s>: local part too long for "
			 "a list; from=<%s>", env->id, ds->client, rcpt, env->sender);
		smtp_reply_set(r, 550, "5.1.1 <%s>: Recipient address rejected: "
			       "no such list or alias", rcpt);
		return;
	}
	switch (store_group(ds->d->st, local, &g)) {
	case STORE_YES:
		smtp_reply_set(r, 250, "2.1.5 Ok");
		return;
	case STORE_NO:
		if (command_rcpt(ds, env, rcpt, local, r) == 0)
			return;
		msg_info("%s: reject: RCPT from %s: 550 5.1.1 <%s>: no such list; from=<%s>",
			 env->id, ds->client, rcpt, env->sender);
		smtp_reply_set(r, 550, "5.1.1 <%s>: Recipient address rejected: "
			       "no such list or alias", rcpt);
		return;
	default:
		msg_warn("%s: database: %s", env->id, store_errmsg(ds->d->st));
		smtp_reply_set(r, 451, "4.3.0 <%s>: Temporary lookup failure", rcpt);
		return;
	}
}

/* post_route - one list's post as post_check decided: sent, held for
 * the moderators, or discarded; 0 or -1 with the reply set */
static int
post_route(struct deliver_session *ds, const struct smtp_envelope *env,
	   const struct rewrite_msg *m, const struct store_group *g, int verdict,
	   const char *reason, const char *msg, size_t len, const char *digest,
	   double eod_start, struct smtp_reply *r, unsigned *copies)
{
	if (verdict == POST_HOLD)
		return (held_post(ds, env, m, g, msg, len, digest, reason, r));
	if (verdict == POST_DISCARD) {
		msg_info("%s: group=%s, from=<%s>, status=discarded (not allowed to post; "
			 "others=discard, or hold-limit reached)", env->id, g->name, env->sender);
		return (0);
	}
	return (post_send(ds, env, m, g, digest, eod_start, r, copies));
}

/* What the end of data found in the transaction. */
struct eod {
	struct store_group *groups;	/* the distinct lists */
	int    *verdict;		/* post_check's, per list */
	const char **reason;		/* ... why held */
	struct cmd_rcpt *cmds;		/* command addresses */
	size_t	ngroups, nbounce, ncmds;
	struct rewrite_msg *m;
};

/* eod_free - what eod_alloc and the steps below allocated */
static void
eod_free(struct eod *e)
{
	rewrite_msg_free(e->m);
	free(e->groups);
	free(e->verdict);
	free(e->reason);
	free(e->cmds);
}

/* eod_alloc - room for n recipients; 0 or -1 (no memory) */
static int
eod_alloc(struct eod *e, size_t n)
{
	memset(e, 0, sizeof(*e));
	if ((e->groups = calloc(n, sizeof(*e->groups))) == NULL
	    || (e->verdict = calloc(n, sizeof(*e->verdict))) == NULL
	    || (e->reason = calloc(n, sizeof(*e->reason))) == NULL
	    || (e->cmds = calloc(n, sizeof(*e->cmds))) == NULL) {
		eod_free(e);
		return (-1);
	}
	return (0);
}

/* eod_recipients - the distinct lists, the command addresses and the
 * bounce addresses of the transaction; 0, or -1 with the reply set */
static int
eod_recipients(struct deliver_session *ds, const struct smtp_envelope *env, struct eod *e,
	       struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;

	for (size_t i = 0; i < env->nrcpt; i++) {
		char	local[SMTP_ADDR_MAX + 1];
		const char *domain;
		size_t	k;
		int	rc;

		if (flow_split(env->rcpt[i], cf->domain, local, sizeof(local), &domain) < 0)
			continue;
		if (flow_is_bounce(cf, local)) {
			e->nbounce++;
			continue;
		}
		for (k = 0; k < e->ngroups; k++)
			if (strcasecmp(e->groups[k].name, local) == 0)
				break;
		if (k < e->ngroups)
			continue;
		rc = store_group(ds->d->st, local, &e->groups[e->ngroups]);
		if (rc == STORE_ERROR) {
			flow_lookup_failed(ds->d, env, r);
			return (-1);
		} else if (rc == STORE_NO
			   && command_parse(local, cf->delim, &e->cmds[e->ncmds].c) == 0) {
			/* A command address: answered after the lists. */
			e->cmds[e->ncmds++].rcpt = env->rcpt[i];
		} else if (rc == STORE_NO) {
			/* Deleted between RCPT and DATA. */
			smtp_reply_set(r, 550, "5.1.1 <%s>: Recipient address rejected: "
				       "no such list or alias", env->rcpt[i]);
			return (-1);
		} else
			e->ngroups++;
	}
	return (0);
}

/* eod_parse - the message's header, for lists and commands; 0 or -1
 * with the reply set */
static int
eod_parse(struct deliver_session *ds, const struct smtp_envelope *env, const char *msg,
	  size_t len, struct eod *e, struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;
	struct rewrite_limits lim = {cf->max_header_fields, cf->max_header_size};

	if (e->ngroups == 0 && e->ncmds == 0)
		return (0);
	switch (rewrite_parse(msg, len, &lim, &e->m)) {
	case REWRITE_OK:
		return (0);
	case REWRITE_TOO_MANY:
	case REWRITE_TOO_BIG:
		msg_info("%s: reject: header over max-header-fields (%u) or max-header-size (%lu)",
			 env->id, cf->max_header_fields, cf->max_header_size);
		smtp_reply_set(r, 552, "5.3.4 Error: message header too large "
			       "(limit %u fields, %lu bytes)", cf->max_header_fields,
			       cf->max_header_size);
		return (-1);
	default:
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return (-1);
	}
}

/*
 * eod_check - every list of the transaction checked first (loop, posting
 * policy, moderation), in one read transaction: one round of locks
 * instead of one per statement.  0, or -1 with the reply set.
 */
static int
eod_check(struct deliver_session *ds, const struct smtp_envelope *env, const char *msg,
	  size_t len, struct eod *e, struct smtp_reply *r)
{
	int	rc = 0;

	if (store_read_begin(ds->d->st) == STORE_ERROR) {
		flow_lookup_failed(ds->d, env, r);
		return (-1);
	}
	if (eod_recipients(ds, env, e, r) < 0 || eod_parse(ds, env, msg, len, e, r) < 0)
		rc = -1;
	for (size_t k = 0; k < e->ngroups && rc == 0; k++) {
		if ((e->verdict[k] = post_check(ds, env, e->m, &e->groups[k], r,
						&e->reason[k])) < 0)
			rc = -1;
		else if (e->verdict[k] == POST_HOLD
			 && (e->verdict[k] = held_check(ds, env, &e->groups[k], len,
							e->reason[k], r)) < 0)
			rc = -1;
	}
	store_read_end(ds->d->st);
	return (rc);
}

/*
 * eod_bounces - the bounce addresses' share: one file and one set of
 * rows for the message, not one per bounce address it names (50
 * bounce+TAG recipients must not make 50 copies).  A VERP tag counts
 * only if it is the only one.  0, or -1 with the reply set.
 */
static int
eod_bounces(struct deliver_session *ds, const struct smtp_envelope *env, const char *msg,
	    size_t len, const struct eod *e, struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;
	struct bounce_report rep;
	char	first[SMTP_ADDR_MAX + 1] = "";
	const char *first_rcpt = NULL;
	int	tags_agree = 1, rc = 0;

	/* Anyone can send a bounce: a large one is not worth keeping. */
	if (len > cf->bounce_max_size) {
		msg_info("%s: reject: bounce of %zu bytes over bounce-max-size", env->id, len);
		smtp_reply_set(r, 552, "5.3.4 Error: bounce too large (limit %lu bytes)",
			       cf->bounce_max_size);
		return (-1);
	}
	if (bounce_parse(msg, len, &rep) < 0) {
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return (-1);
	}
	for (size_t i = 0; i < env->nrcpt; i++) {
		char	local[SMTP_ADDR_MAX + 1];
		const char *domain;

		if (flow_split(env->rcpt[i], cf->domain, local, sizeof(local), &domain) < 0
		    || !flow_is_bounce(cf, local))
			continue;
		if (first_rcpt == NULL) {
			first_rcpt = env->rcpt[i];
			snprintf(first, sizeof(first), "%s", local);
		} else if (strcasecmp(first, local) != 0)
			tags_agree = 0;
	}
	if (first_rcpt && returns_store(ds, env, first_rcpt, first, e->nbounce, tags_agree,
					msg, len, &rep, r) < 0)
		rc = -1;
	bounce_report_free(&rep);
	return (rc);
}

/* d_data - the end of data */
static void
d_data(void *vctx, const struct smtp_envelope *env, const char *msg,
       size_t len, struct smtp_reply *r)
{
	struct deliver_session *ds = vctx;
	struct eod e;
	unsigned copies = 0;
	int	refused;		/* r holds a refusal or a 4xx */
	char	digest[41];
	double	eod_start = sockstream_now();

	if (eod_alloc(&e, env->nrcpt) < 0) {
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return;
	}
	refused = eod_check(ds, env, msg, len, &e, r) < 0;
	/* A temporary failure: Postfix retries the whole transaction. */
	if (refused && r->code < 500)
		goto done;
	/*
	 * Bounces before copies: should a list copy then fail, the retry
	 * records the bounce again, which is harmless; copies are never sent
	 * twice for a bounce's sake.  A post refused for good (5xx) is
	 * refused only after the bounce beside it was kept.
	 */
	if ((e.nbounce > 0 && eod_bounces(ds, env, msg, len, &e, r) < 0) || refused)
		goto done;
	if (e.ngroups > 0 || e.ncmds > 0)
		rewrite_digest(e.m, digest);
	for (size_t k = 0; k < e.ngroups; k++)
		if (post_route(ds, env, e.m, &e.groups[k], e.verdict[k], e.reason[k], msg, len,
			       digest, eod_start, r, &copies) < 0)
			goto done;
	for (size_t k = 0; k < e.ncmds; k++)
		if (request_mail(ds, env, e.m, &e.cmds[k], digest, eod_start, r, &copies) < 0)
			goto done;
	smtp_reply_set(r, 250, "2.0.0 Ok: queued as %s", env->id);
done:
	eod_free(&e);
}
