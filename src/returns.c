/*
 * returns.c - what comes back to the bounce address (bounce, bounce+TAG):
 * store it, attribute it to a member, probe the members it names.
 *
 * Public: returns_store.  Each bounce message is one Maildir file and
 * its bounces rows, committed together; rows are hints unless they come
 * back to a probe's valid signed tag (src/probe.c).  With
 * bounce-threshold set, a hard hint about a member makes mlistd send that
 * member a probe, in a relay transaction of its own.
 *
 * Diagnostics: a Maildir or database failure is logged and answered
 * 451; a probe that cannot be sent is logged and costs nothing else.
 *
 * Memory: nothing returned is the caller's to free; the caller owns the
 * message and its parsed report.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "flow.h"
#include "log.h"
#include "probe.h"
#include "relay.h"
#include "returns.h"
#include "rewrite.h"
#include "store.h"

/* probe_sender - the signed envelope sender of a probe; -1 if too long */
static int
probe_sender(struct deliver *d, const char *member, const char *group,
	     unsigned long expires, char *out, size_t len)
{
	char	local[SMTP_ADDR_MAX + 1];

	if (probe_local(d->key, d->cf->bounce_local, member, group, expires, local,
			sizeof(local)) < 0)
		return (-1);
	return (snprintf(out, len, "%s@%s", local, d->cf->domain) >= (int) len ? -1 : 0);
}

/*
 * send_probe - a delivery check for member, in a relay transaction of its
 * own, from a signed address (src/probe.c).  Remembered only once the
 * relay took it; any failure is logged and costs nothing but the probe.
 */
static void
send_probe(struct deliver_session *ds, const struct smtp_envelope *env,
	   const char *member, const char *group)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	struct relay_result res;
	char	sender[SMTP_ADDR_MAX + 1], msgid[96], *msg, *rcpt[1];
	unsigned long now = (unsigned long) time(NULL), expires = now + PROBE_LIFETIME;
	size_t	len;

	if (probe_sender(d, member, group, expires, sender, sizeof(sender)) < 0) {
		msg_info("%s: no probe for <%s>: the address is too long for a probe tag",
			 env->id, member);
		return;
	}
	snprintf(msgid, sizeof(msgid), "probe.%lx.%ld", expires, (long) getpid());
	if ((msg = probe_message(member, group, cf->domain, cf->postmaster_local, msgid,
				 &len)) == NULL) {
		msg_warn("%s: no probe for <%s>: out of memory", env->id, member);
		return;
	}
	rcpt[0] = (char *) member;
	if (relay_send(d->relay, sender, flow_needs_utf8(member) ? RELAY_SMTPUTF8 : 0, rcpt, 1, 1,
		       msg, len, NULL, &res) == RELAY_OK && res.accepted == 1) {
		if (store_probe_sent(d->st, member, group, (long long) now,
				     (long long) expires) == STORE_ERROR)
			msg_warn("%s: probe to <%s> sent but not remembered: %s", env->id,
				 member, store_errmsg(d->st));
		else
			msg_info("%s: probe to=<%s>, group=%s, from=<%s>, status=sent (%s)",
				 env->id, member, group, sender, res.queued);
	} else
		msg_warn("%s: probe to=<%s>, group=%s, status=not sent (%s)", env->id,
			 member, group, res.refused ? "refused by the relay" : res.reply);
	free(msg);
}

/* A probe's bounce, as returns_store sees it. */
struct probe_hit {
	int	valid;				/* a tag we signed, alive, first bounce */
	char	member[SMTP_ADDR_MAX + 1];
	char	group[STORE_NAME_MAX + 1];
	unsigned long expires;
};

/*
 * probe_check - is this bounce address a probe's?  Fills h; logs why a
 * probe-looking address does not count.  -1 on a database error.
 */
static int
probe_check(struct deliver *d, const struct smtp_envelope *env, const char *local,
	    struct probe_hit *h)
{
	int	bounced = 0, rc;
	enum probe_verdict v;

	memset(h, 0, sizeof(*h));
	if (probe_parse(local, d->cf->bounce_local, h->member, sizeof(h->member),
			&h->expires) < 0)
		return (0);
	rc = store_probe_find(d->st, h->member, (long long) h->expires, h->group,
			      sizeof(h->group), &bounced);
	if (rc == STORE_ERROR)
		return (-1);
	if (rc == STORE_NO) {
		msg_info("%s: bounce for a probe to <%s> that mlistd never sent (or forgot): "
			 "a hint, not evidence", env->id, h->member);
		return (0);
	}
	v = probe_verify(d->key, local, d->cf->bounce_local, h->group,
			 (unsigned long) time(NULL));
	if (v != PROBE_VALID)
		msg_info("%s: bounce at a probe address for <%s> with a %s tag: a hint, not "
			 "evidence", env->id, h->member, v == PROBE_FORGED ? "forged" : "expired");
	else if (bounced)
		msg_info("%s: another bounce of the probe to <%s>: counted once already",
			 env->id, h->member);
	else
		h->valid = 1;
	return (0);
}

/* What an answer at a probe's valid tag says about the member. */
enum probe_answer {
	ANSWER_UNCLEAR,			/* neither: a hint */
	ANSWER_FAILED,			/* a failure report: evidence */
	ANSWER_ALIVE			/* the mailbox answered: proof of life */
};

/* daemon_address - a mailer-daemon's or postmaster's address (local part
 * MAILER-DAEMON, mailer_daemon, mailerdaemon, mail-daemon or postmaster) */
static int
daemon_address(const char *addr)
{
	static const char *const names[] = {"mailer-daemon", "mailer_daemon", "mailerdaemon",
		"mail-daemon", "postmaster"};
	const char *at = strrchr(addr, '@');
	size_t	n = at ? (size_t) (at - addr) : strlen(addr);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && strncasecmp(addr, names[i], n) == 0)
			return (1);
	return (0);
}

/*
 * probe_answer - the rule for what comes back to a probe's valid tag,
 * first match wins (mlistd(8), BOUNCES):
 *   1. From: names the probed address: alive, whatever it says;
 *   2. a delivery-status report with a recipient whose Action is failed:
 *      failed (MTAs mark their own reports Auto-Submitted: auto-replied);
 *   3. an auto-reply (RFC 3834): X-Autoreply, X-Autorespond, Precedence:
 *      auto_reply, or Auto-Submitted: auto-replied from an address that
 *      is no mailer-daemon: alive (a vacation message, say);
 *   4. no report recipient at all, the null envelope sender and a From:
 *      of a mailer-daemon: failed (a failure notice in no standard form);
 *   5. anything else: unclear, a hint.
 * why says which, for the log and the row.
 */
static enum probe_answer
probe_answer(const struct conf *cf, const struct smtp_envelope *env, const char *msg,
	     size_t len, const struct bounce_report *rep, const char *member,
	     const char **why)
{
	struct rewrite_limits lim = {cf->max_header_fields, cf->max_header_size};
	struct rewrite_msg *m = NULL;
	struct rewrite_from from;
	enum probe_answer a = ANSWER_UNCLEAR;
	char	v[256];
	int	have_from = 0, daemon = 0, autoreply = 0;

	*why = "neither a failure report nor an answer from the mailbox";
	if (rewrite_parse(msg, len, &lim, &m) == REWRITE_OK && rewrite_from(m, &from) == 0) {
		have_from = 1;
		for (size_t i = 0; i < from.n; i++)
			daemon |= daemon_address(from.addr[i]);
	}
	if (m)
		autoreply = rewrite_field(m, "X-Autoreply", v, sizeof(v)) != -1
			|| rewrite_field(m, "X-Autorespond", v, sizeof(v)) != -1
			|| (rewrite_field(m, "Precedence", v, sizeof(v)) >= 0
			    && strncasecmp(v, "auto_reply", 10) == 0)
			|| (!daemon && rewrite_field(m, "Auto-Submitted", v, sizeof(v)) >= 0
			    && strncasecmp(v, "auto-replied", 12) == 0);
	for (size_t i = 0; have_from && i < from.n; i++)
		if (strcasecmp(from.addr[i], member) == 0) {
			*why = "a message from the probed address";
			a = ANSWER_ALIVE;
		}
	for (size_t i = 0; a == ANSWER_UNCLEAR && i < rep->nrcpt; i++)
		if (strcmp(rep->rcpt[i].action, "failed") == 0) {
			*why = "a delivery-status report: failed";
			a = ANSWER_FAILED;
		}
	if (a == ANSWER_UNCLEAR && autoreply) {
		*why = "an auto-reply";
		a = ANSWER_ALIVE;
	}
	if (a == ANSWER_UNCLEAR && rep->nrcpt == 0 && env->sender[0] == 0 && daemon) {
		*why = "a mailer-daemon's failure notice without a delivery-status report";
		a = ANSWER_FAILED;
	}
	rewrite_msg_free(m);
	return (a);
}

/* probe_fields - status, action and diagnostic of the row for a probe's
 * answer; diag: room for the diagnostic of a proof of life */
static void
probe_fields(enum probe_answer answer, const char *why, const struct bounce_report *rep,
	     struct store_bounce *b, char *diag, size_t dlen)
{
	const struct bounce_rcpt *x = NULL;

	for (size_t i = 0; i < rep->nrcpt && x == NULL; i++)
		if (strcmp(rep->rcpt[i].action, "failed") == 0)
			x = &rep->rcpt[i];
	if (answer == ANSWER_FAILED && x) {
		b->status = x->status[0] ? x->status : NULL;
		b->action = "failed";
		b->diagnostic = x->diagnostic[0] ? x->diagnostic : NULL;
	} else if (answer == ANSWER_FAILED) {
		/* A failure notice that came back to a tag only we make. */
		b->status = "5.0.0";
		b->action = "failed";
		b->diagnostic = "probe returned in a failure notice without a "
			"delivery-status report";
	} else if (answer == ANSWER_ALIVE) {
		snprintf(diag, dlen, "probe answered by %s: proof of life", why);
		b->diagnostic = diag;
	} else if (rep->nrcpt > 0) {
		b->status = rep->rcpt[0].status[0] ? rep->rcpt[0].status : NULL;
		b->action = rep->rcpt[0].action[0] ? rep->rcpt[0].action : NULL;
		b->diagnostic = rep->rcpt[0].diagnostic[0] ? rep->rcpt[0].diagnostic : NULL;
	}
}

/* probe_evidence - enough evidence unsubscribes the probed member from
 * that list; 1, or 0 on a database error */
static int
probe_evidence(struct deliver *d, const struct smtp_envelope *env, const struct probe_hit *ph)
{
	const struct conf *cf = d->cf;
	long	n = store_evidence(d->st, ph->member, cf->bounce_window);
	int	u = STORE_NO;

	if (n == STORE_ERROR)
		return (0);
	if (n >= (long) cf->bounce_threshold
	    && (u = store_unsubscribe(d->st, ph->group, ph->member, "bounces")) == STORE_ERROR)
		return (0);
	if (u == STORE_YES)
		msg_info("%s: unsubscribed <%s> from %s after %ld bounced probes in "
			 "%u days", env->id, ph->member, ph->group, n, cf->bounce_window);
	return (1);
}

/*
 * probe_row - the one row of a bounce at a probe's valid tag, the probe
 * marked bounced or answered, the evidence counted (*answer and *why:
 * probe_answer's).  Inside the caller's write transaction; 1, or 0 on a
 * database error.
 */
static int
probe_row(struct deliver *d, const struct smtp_envelope *env, const char *msg, size_t len,
	  const struct bounce_report *rep, const struct probe_hit *ph, struct store_bounce *b,
	  enum probe_answer *answer, const char **why)
{
	const struct conf *cf = d->cf;
	char	diag[600];
	int	ok;

	/*
	 * The probe went to one member: one row.  Evidence only if the
	 * answer reports a failure; an answer from the mailbox itself
	 * (an auto-reply, a message from the member) is proof of life.
	 */
	*answer = probe_answer(cf, env, msg, len, rep, ph->member, why);
	b->address = ph->member;
	b->group_name = ph->group;
	probe_fields(*answer, *why, rep, b, diag, sizeof(diag));
	b->evidence = *answer == ANSWER_FAILED;
	ok = store_add_bounce(d->st, b) != STORE_ERROR;
	if (ok && *answer == ANSWER_FAILED)
		ok = store_probe_mark(d->st, ph->member, (long long) ph->expires,
				      (long long) time(NULL)) != STORE_ERROR;
	else if (ok && *answer == ANSWER_ALIVE)
		ok = store_probe_alive(d->st, ph->member, (long long) ph->expires,
				       (long long) time(NULL)) != STORE_ERROR;
	/* Enough evidence unsubscribes the member from that list. */
	if (ok && b->evidence && cf->bounce_threshold > 0)
		ok = probe_evidence(d, env, ph);
	return (ok);
}

/* Members one bounce may have probed, at the most. */
#define RETURNS_PROBES	3

/*
 * hint_rows - the rows of a bounce that came to no probe: one per
 * reported recipient, or one when nothing is parsable; verp (NULL: none)
 * names the member.  Whom to probe goes into probe_for.  Inside the
 * caller's write transaction; 1, or 0 on a database error.
 */
static int
hint_rows(struct deliver *d, const struct bounce_report *rep, const char *verp,
	  struct store_bounce *b, const char **probe_for, size_t *nprobe, size_t *rows)
{
	int	ok = 1;

	for (size_t i = 0; i < rep->nrcpt && ok; i++) {
		const struct bounce_rcpt *x = &rep->rcpt[i];
		char	diag[1400];

		/* With VERP the envelope names the member, even if the report
		 * names a forwarding target. */
		b->address = (verp && rep->nrcpt == 1) ? verp : x->address;
		b->status = x->status[0] ? x->status : NULL;
		b->action = x->action[0] ? x->action : NULL;
		if (b->address == verp && strcasecmp(verp, x->address) != 0)
			snprintf(diag, sizeof(diag), "%s (reported for <%s>)", x->diagnostic,
				 x->address);
		else
			snprintf(diag, sizeof(diag), "%s", x->diagnostic);
		b->diagnostic = diag[0] ? diag : NULL;
		ok = store_add_bounce(d->st, b) != STORE_ERROR;
		(*rows)++;
		if (strcmp(x->action, "failed") == 0 && x->status[0] == '5'
		    && *nprobe < RETURNS_PROBES)
			probe_for[(*nprobe)++] = b->address;
	}
	if (ok && rep->nrcpt == 0) {
		/* Nothing parsable: one row, the member if VERP tells it. */
		b->address = verp;
		ok = store_add_bounce(d->st, b) != STORE_ERROR;
		(*rows)++;
		if (verp)
			probe_for[(*nprobe)++] = verp;
	}
	return (ok);
}

/* publish_bounce - the Maildir file into new/ and the rows committed, both
 * or neither; 0, or -1 with a 451 reply set */
static int
publish_bounce(struct deliver *d, const struct smtp_envelope *env, const char *rcpt,
	       const char *name, struct smtp_reply *r)
{
	const char *dir = d->cf->bounce_maildir;
	char	err[1024];

	if (maildir_publish(dir, name, err, sizeof(err)) < 0) {
		msg_warn("%s: bounce to=<%s>: %s", env->id, rcpt, err);
		store_rollback(d->st);
		maildir_unlink(dir, "tmp", name);
		maildir_unlink(dir, "new", name);
		smtp_reply_set(r, 451, "4.3.0 Error: cannot store the bounce, try again later");
		return (-1);
	}
	if (store_commit(d->st) == STORE_ERROR) {
		msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
		store_rollback(d->st);
		maildir_unlink(dir, "new", name);
		smtp_reply_set(r, 451, "4.3.0 Error: cannot record the bounce, try again later");
		return (-1);
	}
	return (0);
}

/* probe_members - send a probe to each member in probe_for that is ours
 * (in group, if not NULL) and has none within probe-interval */
static void
probe_members(struct deliver_session *ds, const struct smtp_envelope *env,
	      const char **probe_for, size_t nprobe, const char *group)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;

	for (size_t i = 0; cf->bounce_threshold > 0 && i < nprobe; i++) {
		char	g[STORE_NAME_MAX + 1];
		int	due;

		if (store_member_group(d->st, probe_for[i], group, g, sizeof(g)) != STORE_YES)
			continue;		/* not ours to probe */
		due = store_probe_due(d->st, probe_for[i], cf->probe_interval,
				      (long long) time(NULL));
		if (due == STORE_YES)
			send_probe(ds, env, probe_for[i], g);
		else if (due == STORE_NO)
			msg_info("%s: no probe for <%s>: one was sent within probe-interval",
				 env->id, probe_for[i]);
	}
}

/*
 * returns_store - one bounce message, however many bounce addresses
 * (bounce, bounce+TAG) it was sent to: one Maildir file and at most
 * BOUNCE_MAX_RCPTS rows (one per distinct reported recipient), both or
 * neither.  rcpt and local are its first bounce recipient; a VERP tag
 * names the member only when the bounce addresses carry one tag alone.
 *
 * Rows are hints (evidence = 0), except at a probe's valid signed tag:
 * one row for the probed member, evidence when the answer reports a
 * failure, proof of life when the mailbox itself answered (probe_answer);
 * bounce-threshold counts the evidence since the latest proof of life.
 * With bounce-threshold set, a hard hint about
 * a list member makes mlistd probe that member (at most one probe per
 * probe-interval).  Returns 0, or -1 with a 4xx reply set.
 */
int
returns_store(struct deliver_session *ds, const struct smtp_envelope *env,
	      const char *rcpt, const char *local, size_t nbounce, int verp_ok,
	      const char *msg, size_t len, const struct bounce_report *rep,
	      struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	char	name[512], file[600], err[1024], verp[SMTP_ADDR_MAX + 1], group[128];
	const char *dir = cf->bounce_maildir, *probe_for[RETURNS_PROBES];
	struct store_bounce b;
	struct probe_hit ph;
	enum probe_answer answer = ANSWER_UNCLEAR;
	const char *why = "";
	size_t	rows = 0, nprobe = 0;
	int	have_verp, have_group, ok;

	have_verp = verp_ok && strncasecmp(local + strlen(cf->bounce_local), "+probe-", 7) != 0
		&& bounce_verp_decode(local, cf->bounce_local, verp, sizeof(verp)) == 0;
	have_group = bounce_list_name(rep->list_id, cf->domain, group, sizeof(group)) == 0;
	if (maildir_write(dir, msg, len, name, sizeof(name), err, sizeof(err)) < 0) {
		msg_warn("%s: bounce to=<%s>: %s", env->id, rcpt, err);
		smtp_reply_set(r, 451, "4.3.0 Error: cannot store the bounce, try again later");
		return (-1);
	}
	snprintf(file, sizeof(file), "new/%s", name);
	if (store_begin(d->st) == STORE_ERROR)
		goto db_failed;
	memset(&ph, 0, sizeof(ph));
	if (verp_ok && probe_check(d, env, local, &ph) < 0)
		goto db_failed;
	memset(&b, 0, sizeof(b));
	b.envelope_to = rcpt;
	b.maildir_file = file;
	b.group_name = have_group ? group : NULL;
	if (ph.valid) {
		ok = probe_row(d, env, msg, len, rep, &ph, &b, &answer, &why);
		rows++;
	} else
		ok = hint_rows(d, rep, have_verp ? verp : NULL, &b, probe_for, &nprobe, &rows);
	if (!ok)
		goto db_failed;
	if (publish_bounce(d, env, rcpt, name, r) < 0)
		return (-1);
	msg_info("%s: bounce to=<%s>%s, rows=%zu, dsn=%s, member=%s, group=%s, %s, file=%s",
		 env->id, rcpt, nbounce > 1 ? " and other bounce addresses" : "", rows,
		 rep->is_dsn ? "yes" : "no", ph.valid ? ph.member : have_verp ? verp : "unknown",
		 ph.valid ? ph.group : have_group ? group : "unknown",
		 !ph.valid ? "hint" : answer == ANSWER_FAILED ? "evidence (probe bounced)"
		 : answer == ANSWER_ALIVE ? "proof of life (probe answered)"
		 : "hint (probe answered, unclear)", file);
	if (ph.valid && answer == ANSWER_ALIVE)
		msg_info("%s: probe to <%s>, group=%s: answered by %s: proof of life; the "
			 "evidence before it no longer counts for bounce-threshold", env->id,
			 ph.member, ph.group, why);
	else if (ph.valid && answer == ANSWER_UNCLEAR)
		msg_info("%s: probe to <%s>, group=%s: answered by %s: no evidence, a hint",
			 env->id, ph.member, ph.group, why);
	/*
	 * Hints about members: probe them (bounce-threshold set), each at most
	 * once per probe-interval.  After the commit: the bounce is safe, and
	 * a probe that cannot be sent changes nothing about it.
	 */
	probe_members(ds, env, probe_for, nprobe, have_group ? group : NULL);
	return (0);
db_failed:
	msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	store_rollback(d->st);
	maildir_unlink(dir, "tmp", name);
	smtp_reply_set(r, 451, "4.3.0 Error: cannot record the bounce, try again later");
	return (-1);
}
