/*
 * post.c - a list post's copy, from the end of data to the relay.
 *
 * post_check: may the message go to the list (loop, null sender,
 * posting policy)?  The dispatcher checks every list of a transaction
 * before it sends any copy, so that one DATA reply never means "sent to
 * some".
 *
 * post_send: the copy of one list, exactly once.  It is claimed in a
 * committed write before the relay is contacted, relayed in transactions
 * of at most relay-recipient-limit members with a checkpoint committed
 * after each (who was served or refused, the refusals' bounces rows),
 * and released: complete, or for a retry that resumes where this attempt
 * stopped.  This module owns a post's durable state: the claim, the
 * checkpoints and the outcome.
 *
 * Replies: 250 only when every copy was accepted; relay or database
 * trouble is 451, so Postfix retries; 5xx only when the relay refused
 * the copy and no member got anything.
 *
 * Memory: the rewritten copy and the recipient list live and die inside
 * post_send; nothing returned is the caller's to free.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flow.h"
#include "log.h"
#include "mitigate.h"
#include "post.h"
#include "relay.h"
#include "rewrite.h"
#include "sockstream.h"
#include "store.h"

/* The copy being relayed, for the relay hooks. */
struct copy_ctx {
	struct deliver_session *ds;
	const struct smtp_envelope *env;
	const struct store_group *g;
	struct store_copy c;		/* c.id 0: no memory (dedup-window 0) */
	size_t	total;			/* recipients of this attempt */
	size_t	done;			/* of them, served or refused */
	unsigned checkpoints;		/* checkpoints committed */
	unsigned batches;		/* of them, with members served */
	int	completed;		/* the last checkpoint marked it complete */
	int	lost;			/* the claim was taken over: stop, write nothing */
	double	deadline;		/* data-done-timeout */
	double	lease_end;		/* our claim's lease, boot clock */
	struct store_owner o;		/* our claim: pid, generation, lease */
	int	munge;			/* From: rewritten for DMARC */
	char	dmarc[MITIGATE_WHY_MAX + 24];	/* the log's dmarc=... field */
};

/*
 * member_refused - a member refused for good by the relay (a transaction
 * that ended cleanly): its evidence row and, with bounce-threshold set
 * and that much evidence within bounce-window, its opt-out from the
 * list.  Inside the caller's write transaction.  0 or -1.
 */
static int
member_refused(struct deliver *d, const char *id, const char *group, const char *rcpt,
	       const char *reply)
{
	const struct conf *cf = d->cf;
	long	n;
	int	u;

	if (flow_refusal_row(d, id, group, rcpt, reply) < 0)
		return (-1);
	if (cf->bounce_threshold == 0)
		return (0);
	if ((n = store_evidence(d->st, rcpt, cf->bounce_window)) == STORE_ERROR)
		return (-1);
	if (n < (long) cf->bounce_threshold)
		return (0);
	if ((u = store_unsubscribe(d->st, group, rcpt, "bounces")) == STORE_ERROR)
		return (-1);
	if (u == STORE_YES)
		msg_info("%s: unsubscribed <%s> from %s after %ld pieces of evidence in %u days "
			 "(bounce-threshold %u)", id, rcpt, group, n, cf->bounce_window,
			 cf->bounce_threshold);
	return (0);
}

/*
 * record - one try at a checkpoint's commit: who was served or refused,
 * and the refusals' bounces rows; the last one marks the copy complete.
 * The commit first renews our claim, fenced on owner and generation.
 * 0, -1 (a database error: nothing written) or -2 (the claim is lost).
 */
static int
record(struct copy_ctx *cx, const struct relay_outcome *o, size_t n, int *accepted)
{
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	int	rc;
	/* A copy sent in one transaction is marked complete in its checkpoint,
	 * and who it served need not be written down. */
	int	final = cx->c.id && cx->done + n >= cx->total && cx->checkpoints == 0;

	*accepted = 0;
	if (store_begin(d->st) == STORE_ERROR)
		return (-1);
	if (cx->c.id) {
		flow_owner_now(cf, &cx->o);
		if ((rc = store_touch(d->st, cx->c.id, &cx->o)) != STORE_YES)
			goto undo;
		cx->lease_end = (double) (cx->o.now + cx->o.lease);
	}
	for (size_t i = 0; i < n; i++) {
		*accepted |= o[i].accepted;
		if (!o[i].accepted && member_refused(d, cx->env->id, cx->g->name, o[i].rcpt,
						     o[i].reply) < 0)
			goto failed;
		if (cx->c.id && !final
		    && store_mark_rcpt(d->st, cx->c.id, o[i].rcpt, !o[i].accepted) == STORE_ERROR)
			goto failed;
	}
	if (final) {
		if ((rc = store_release(d->st, cx->c.id, 1, cf->dedup_window, &cx->o)) != STORE_YES)
			goto undo;
		cx->completed = 1;
	}
	if (store_commit(d->st) == STORE_ERROR)
		goto failed;
	return (0);
undo:
	store_rollback(d->st);
	cx->completed = 0;
	return (rc == STORE_NO ? -2 : -1);
failed:
	store_rollback(d->st);
	cx->completed = 0;
	return (-1);
}

/*
 * checkpoint - relay hook after each transaction that ended cleanly: its
 * outcome in one commit (record) before the next transaction starts.  A
 * crash from here on costs at most the transaction in flight.  A worker
 * that lost its claim (it stalled past its lease and another attempt
 * took the copy over) records nothing and stops at once.  A lock held by
 * another connection (an administrator's sqlite3 session, say) is tried
 * again while the lease leaves room: nobody can take the copy over
 * before then, and forgetting whom the relay just served would send them
 * a second copy on the retry.  Other database errors are not.
 */
static int
checkpoint(void *arg, const struct relay_outcome *o, size_t n)
{
	struct copy_ctx *cx = arg;
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	int	accepted, rc;

	for (unsigned tries = 1;; tries++) {
		if ((rc = record(cx, o, n, &accepted)) == 0)
			break;
		if (rc == -2) {
			cx->lost = 1;
			msg_warn("%s: group=%s: this worker lost its claim on the copy: it stalled "
				 "past its lease and another attempt took the copy over, which may "
				 "send the %zu members of the transaction that was in flight a "
				 "second copy; nothing more is sent or recorded here", cx->env->id,
				 cx->g->name, n);
			return (-1);
		}
		if (cx->c.id == 0 || !store_busy(d->st)
		    || flow_boot_now() + cf->database_timeout + 1 >= cx->lease_end) {
			msg_warn("%s: group=%s: cannot record the %zu members just served or refused "
				 "(the retry sends to them again): %s", cx->env->id, cx->g->name, n,
				 store_errmsg(d->st));
			return (-1);
		}
		if (tries == 1)
			msg_warn("%s: group=%s: cannot record the %zu members just served or refused "
				 "yet: %s; trying again until the claim's lease is near its end",
				 cx->env->id, cx->g->name, n, store_errmsg(d->st));
		{
			struct timespec nap = {0, 200 * 1000 * 1000};

			(void) nanosleep(&nap, NULL);
		}
	}
	cx->done += n;
	cx->checkpoints++;
	if (accepted)
		flow_crash_point("batch", ++cx->batches);
	return (0);
}

/*
 * proceed - relay hook before each transaction but the first: go on
 * unless the worker is asked to stop, or the next transaction, if it
 * takes as long as the last, would end past data-done-timeout.
 */
static int
proceed(void *arg, double last)
{
	struct copy_ctx *cx = arg;

	if (flow_stop_requested(cx->ds)) {
		msg_info("%s: group=%s: stopping after %zu of %zu members: shutdown or "
			 "reload requested", cx->env->id, cx->g->name, cx->done, cx->total);
		return (-1);
	}
	if (sockstream_now() + last > cx->deadline) {
		msg_info("%s: group=%s: stopping after %zu of %zu members: data-done-timeout "
			 "(%us) is near; the retry resumes", cx->env->id, cx->g->name,
			 cx->done, cx->total, cx->ds->d->cf->data_done_timeout);
		return (-1);
	}
	/* The boot clock goes on while the machine sleeps; the other does not. */
	if (cx->c.id && flow_boot_now() + last >= cx->lease_end) {
		msg_warn("%s: group=%s: stopping after %zu of %zu members: the claim's lease "
			 "is over (the worker was stopped or the machine slept); the retry "
			 "resumes", cx->env->id, cx->g->name, cx->done, cx->total);
		return (-1);
	}
	return (0);
}

/* may_send - relay hook before a message goes out: our lease still holds */
static int
may_send(void *arg)
{
	struct copy_ctx *cx = arg;

	if (cx->c.id == 0 || flow_boot_now() < cx->lease_end)
		return (0);
	msg_warn("%s: group=%s: the claim's lease ended before the message went to the "
		 "relay (the worker was stopped or the machine slept): not sent",
		 cx->env->id, cx->g->name);
	return (-1);
}

/*
 * from_verdict - who wrote the post (From:), and what that means for list
 * g: POST_SEND when every From: address moderates the list (a
 * moderator's own post is never held) or may post and the list is not
 * moderated; POST_HOLD when it may post to a moderated list; 0 with
 * *who set when one of them may not post (or no usable From:, who "");
 * -1 with a 4xx reply set.
 */
static int
from_verdict(struct deliver_session *ds, const struct smtp_envelope *env,
	     const struct rewrite_msg *m, const struct store_group *g,
	     struct smtp_reply *r, char *who, size_t wholen)
{
	struct rewrite_from from;
	size_t	mods = 0;
	int	rc, allowed = 1;

	who[0] = 0;
	if ((rc = rewrite_from(m, &from)) == -2) {
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return (-1);
	}
	if (rc < 0)
		from.n = 0;
	/*
	 * Several mailboxes in From: each of them must be allowed to post.
	 * posting = 'group' means the list's current recipients: in
	 * group_members and not unsubscribed from it or from every list.
	 */
	for (size_t i = 0; i < from.n; i++) {
		int	mod = g->is_group ? store_is_moderator(ds->d->st, g->name, from.addr[i])
			: STORE_NO;
		int	ok = mod == STORE_YES || g->posting == POST_ANYONE ? STORE_YES
			: g->posting == POST_MEMBERS ? store_is_member(ds->d->st, from.addr[i])
			: store_is_recipient(ds->d->st, g->name, from.addr[i]);

		if (mod == STORE_ERROR || ok == STORE_ERROR) {
			flow_lookup_failed(ds->d, env, r);
			return (-1);
		}
		mods += mod == STORE_YES;
		if (ok == STORE_NO && allowed) {
			allowed = 0;
			snprintf(who, wholen, "%s", from.addr[i]);
		}
	}
	if (from.n > 0 && mods == from.n)
		return (POST_SEND);
	if (from.n == 0 && g->posting != POST_ANYONE)
		allowed = 0;
	if (!allowed)
		return (0);
	return (g->is_group && g->moderated ? POST_HOLD : POST_SEND);
}

/*
 * post_check - may this message go to list g, and how?  POST_SEND,
 * POST_HOLD (for a moderator: the list is moderated, or others = hold)
 * or POST_DISCARD (others = discard); -1 with the reply set (a 5xx
 * refusal, or 4xx).  *reason says why a post is held.
 */
int
post_check(struct deliver_session *ds, const struct smtp_envelope *env,
	   const struct rewrite_msg *m, const struct store_group *g,
	   struct smtp_reply *r, const char **reason)
{
	const struct conf *cf = ds->d->cf;
	char	who[sizeof(((struct rewrite_from *) 0)->addr[0])];
	int	v;

	*reason = "";
	if (rewrite_has_list_id(m, g->name, cf->domain)) {
		msg_info("%s: reject: loop: message already carries List-Id <%s.%s>",
			 env->id, g->name, cf->domain);
		smtp_reply_set(r, 554, "5.4.6 <%s@%s>: mail loop detected: the message "
			       "already went through this list", g->name, cf->domain);
		return (-1);
	}
	if (env->sender[0] == 0 && g->is_group) {
		msg_info("%s: reject: null sender to list %s", env->id, g->name);
		smtp_reply_set(r, 550, "5.7.1 <%s@%s>: bounces and auto-replies may not "
			       "post to a list", g->name, cf->domain);
		return (-1);
	}
	if ((v = from_verdict(ds, env, m, g, r, who, sizeof(who))) != 0) {
		if (v == POST_HOLD)
			*reason = "moderated";
		return (v);
	}
	/* Not allowed to post: the list's others policy (lists only). */
	if (g->is_group && g->others == OTHERS_HOLD) {
		*reason = "not allowed";
		return (POST_HOLD);
	}
	if (g->is_group && g->others == OTHERS_DISCARD) {
		msg_info("%s: discard: from=<%s> may not post to %s (posting=%s, others=discard)",
			 env->id, who, g->name, g->posting == POST_MEMBERS ? "members" : "group");
		return (POST_DISCARD);
	}
	if (who[0] == 0) {
		msg_info("%s: reject: no usable From: address for list %s", env->id, g->name);
		smtp_reply_set(r, 550, "5.7.1 <%s@%s>: the message has no valid From: "
			       "address", g->name, cf->domain);
		return (-1);
	}
	msg_info("%s: reject: from=<%s> may not post to %s (posting=%s)", env->id, who,
		 g->name, g->posting == POST_MEMBERS ? "members" : "group");
	smtp_reply_set(r, 550, "5.7.1 <%s@%s>: %s is not allowed to post to this list",
		       g->name, cf->domain, who);
	return (-1);
}

/* verp_chosen - is this post (by its hex digest) the one in n */
static int
verp_chosen(const char *digest, unsigned n)
{
	unsigned long v = 0;

	if (n <= 1)
		return (1);
	for (int i = 0; i < 8 && isxdigit((unsigned char) digest[i]); i++)
		v = v * 16 + (unsigned long) (isdigit((unsigned char) digest[i])
			? digest[i] - '0' : tolower((unsigned char) digest[i]) - 'a' + 10);
	return (v % n == 0);
}

/* claim_lost - 451 for an attempt whose claim another attempt took over */
static void
claim_lost(const struct smtp_envelope *env, const struct store_group *g,
	   struct smtp_reply *r)
{
	msg_warn("%s: group=%s, from=<%s>, status=deferred (another attempt took the copy "
		 "over; it decides what the retry is told)", env->id, g->name, env->sender);
	smtp_reply_set(r, 451, "4.3.0 Error: this message is being sent to the list by "
		       "another attempt, try again later");
}

/* What a step of post_send leaves it to do. */
enum { STEP_ON, STEP_SENT, STEP_FAILED, STEP_RELEASE };

/*
 * claim_copy - claim the copy (list, digest) in a committed write before
 * the relay is contacted.  STEP_ON (*claim: CLAIM_NEW or CLAIM_RESUME),
 * STEP_SENT (relayed completely before) or STEP_FAILED (reply set).
 */
static int
claim_copy(struct copy_ctx *cx, const struct rewrite_msg *m, const char *digest,
	   struct smtp_reply *r, unsigned *copies, int *claim)
{
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	const struct smtp_envelope *env = cx->env;
	const struct store_group *g = cx->g;
	char	msgid[256];

	rewrite_message_id(m, msgid, sizeof(msgid));
	flow_owner_now(cf, &cx->o);
	*claim = store_claim(d->st, g->name, digest, msgid[0] ? msgid : NULL,
			     cf->dedup_window, &cx->o, &cx->c);
	cx->lease_end = (double) (cx->o.now + cx->o.lease);
	switch (*claim) {
	case STORE_ERROR:
		flow_lookup_failed(d, env, r);
		return (STEP_FAILED);
	case CLAIM_DONE:
		msg_info("%s: group=%s, from=<%s>, status=duplicate (already relayed at "
			 "%s UTC; not sent again)", env->id, g->name, env->sender, cx->c.when);
		(*copies)++;
		return (STEP_SENT);
	case CLAIM_BUSY:
		msg_info("%s: group=%s, from=<%s>, status=deferred (the same message is "
			 "being relayed by process %ld since %s UTC; not sent twice)",
			 env->id, g->name, env->sender, cx->c.owner, cx->c.when);
		smtp_reply_set(r, 451, "4.3.0 Error: this message is being sent to the "
			       "list right now, try again later");
		return (STEP_FAILED);
	case CLAIM_RESUME:
		msg_info("%s: group=%s, from=<%s>, resuming a copy first claimed at %s UTC: "
			 "members already served are skipped", env->id, g->name,
			 env->sender, cx->c.when);
		break;
	}
	flow_crash_point("claimed", 0);
	return (STEP_ON);
}

/*
 * copy_recipients - the members to send to into rl (on a resumed claim,
 * those no transaction has served yet).  With nobody left the copy is
 * released complete: STEP_SENT.  Else STEP_ON, or STEP_FAILED or
 * STEP_RELEASE with the reply set.
 */
static int
copy_recipients(struct copy_ctx *cx, int claim, struct rcpt_list *rl,
		struct smtp_reply *r, unsigned *copies)
{
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	const struct smtp_envelope *env = cx->env;
	long	n;
	int	rc;

	if (store_read_begin(d->st) == STORE_ERROR)
		n = STORE_ERROR;
	else
		n = store_recipients(d->st, cx->g->name, claim == CLAIM_RESUME ? cx->c.id : 0,
				     flow_collect, rl);
	store_read_end(d->st);
	if (n == STORE_ERROR) {
		flow_lookup_failed(d, env, r);
		return (STEP_RELEASE);
	}
	if (rl->n > 0)
		return (STEP_ON);
	if (cx->c.id && (rc = store_release(d->st, cx->c.id, 1, cf->dedup_window, &cx->o))
	    != STORE_YES) {
		if (rc == STORE_ERROR)
			flow_lookup_failed(d, env, r);
		else
			claim_lost(env, cx->g, r);
		return (STEP_FAILED);
	}
	msg_info("%s: group=%s, from=<%s>, nrcpt=0, status=sent (no %srecipients)",
		 env->id, cx->g->name, env->sender, claim == CLAIM_RESUME ? "more " : "");
	(*copies)++;
	return (STEP_SENT);
}

/* copy_text - the list's rewritten copy, malloc'd; NULL if out of memory */
static char *
copy_text(struct copy_ctx *cx, const struct rewrite_msg *m, size_t *clen)
{
	const struct conf *cf = cx->ds->d->cf;
	const struct store_group *g = cx->g;
	struct rewrite_list l;
	char   *copy;

	memset(&l, 0, sizeof(l));
	l.group = g->name;
	l.description = g->description;
	l.domain = cf->domain;
	l.bounce_local = cf->bounce_local;
	l.postmaster_local = cf->postmaster_local;
	l.is_group = g->is_group;
	l.delim = g->is_group && g->subscribe != SUB_CLOSED ? cf->delim : 0;
	l.munge_from = cx->munge;
	if ((copy = rewrite_copy(m, &l, clen)) != NULL && cx->munge && !l.munged)
		snprintf(cx->dmarc, sizeof(cx->dmarc), "dmarc=kept (From: cannot be rewritten)");
	return (copy);
}

/*
 * copy_dmarc - decide whether the copy's From: is rewritten for DMARC
 * (mitigate.c), and the log field that says so and why
 */
static void
copy_dmarc(struct copy_ctx *cx, const struct rewrite_msg *m, const char *digest)
{
	char	why[MITIGATE_WHY_MAX];

	cx->munge = mitigate_decide(cx->ds->d->mit, m, digest, cx->g, why, sizeof(why));
	snprintf(cx->dmarc, sizeof(cx->dmarc), "dmarc=%s (%s)",
		 cx->munge ? "rewritten" : "kept", why);
}

/* copy_flags - the relay flags of this copy: XVERP, 8BITMIME, SMTPUTF8 */
static unsigned
copy_flags(const struct copy_ctx *cx, const char *digest, const struct rcpt_list *rl)
{
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	unsigned flags = 0;

	/*
	 * XVERP: Postfix gives each member's copy the envelope sender
	 * bounce+member=domain@listdomain, so a bounce names its member even
	 * when it is not a proper DSN.  It costs Postfix one delivery
	 * transaction per member, so with verp-interval N only about one
	 * post in N goes with it, chosen by the post's digest: a retry of the
	 * same post makes the same choice.
	 */
	if (cf->verp && verp_chosen(digest, cf->verp_interval)) {
		if (relay_has_capa(d->relay, "XVERP") == 0 && !d->verp_warned++)
			msg_warn("relay %s does not offer XVERP: bounces cannot be traced to "
				 "members by address (Postfix: smtpd_authorized_verp_clients = "
				 "127.0.0.1, [::1])", cf->relay);
		flags |= RELAY_XVERP;
	}
	if (cx->env->body_8bit)
		flags |= RELAY_8BITMIME;
	if (cx->env->smtputf8)
		flags |= RELAY_SMTPUTF8;
	for (size_t i = 0; i < rl->n && !(flags & RELAY_SMTPUTF8); i++)
		if (flow_needs_utf8(rl->v[i]))
			flags |= RELAY_SMTPUTF8;
	return (flags);
}

/*
 * relay_copy - rewrite the copy and relay it to rl with a checkpoint
 * after each transaction; sent in several, mark it complete.  STEP_ON
 * with *st and res filled in, or STEP_RELEASE (reply set).
 */
static int
relay_copy(struct copy_ctx *cx, const struct rewrite_msg *m, const char *digest,
	   const struct rcpt_list *rl, enum relay_status *st, struct relay_result *res,
	   struct smtp_reply *r)
{
	struct deliver *d = cx->ds->d;
	const struct conf *cf = d->cf;
	struct relay_hooks hooks;
	char   *copy;
	unsigned flags;
	size_t	clen;
	int	rc;

	copy_dmarc(cx, m, digest);
	if ((copy = copy_text(cx, m, &clen)) == NULL) {
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return (STEP_RELEASE);
	}
	flags = copy_flags(cx, digest, rl);
	cx->total = rl->n;
	/* The lease, again, right before the relay is contacted: the machine
	 * may have slept since the claim (later transactions: proceed). */
	if (cx->c.id && flow_boot_now() >= cx->lease_end) {
		free(copy);
		msg_warn("%s: group=%s: the claim's lease ended before the relay was contacted "
			 "(the worker was stopped or the machine slept); the retry sends",
			 cx->env->id, cx->g->name);
		smtp_reply_set(r, 451, "4.4.0 Error: cannot relay the list copy now, "
			       "try again later");
		return (STEP_RELEASE);
	}
	hooks.checkpoint = checkpoint;
	hooks.proceed = proceed;
	hooks.may_send = may_send;
	hooks.arg = cx;
	hooks.hard_deadline = cx->deadline;
	*st = relay_send(d->relay, d->bounce_addr, flags, rl->v, rl->n,
			 cf->relay_recipient_limit, copy, clen, &hooks, res);
	free(copy);
	if (*st == RELAY_OK && cx->c.id && !cx->completed) {
		/* Sent in several transactions, each committed: now complete.
		 * Should this fail, the retry finds nobody left and says 250. */
		flow_crash_point("before-mark", 0);
		if ((rc = store_release(d->st, cx->c.id, 1, cf->dedup_window, &cx->o)) == STORE_YES)
			cx->completed = 1;
		else if (rc == STORE_NO)
			cx->lost = 1;
		else
			msg_warn("%s: database: %s", cx->env->id, store_errmsg(d->st));
	}
	return (STEP_ON);
}

/* relay_problem - the warning for a relay that refuses mlistd, if it does */
static void
relay_problem(const struct copy_ctx *cx, int claim, const struct relay_result *res)
{
	const char *id = cx->env->id, *group = cx->g->name;

	if (res->problem && (res->accepted > 0 || claim == CLAIM_RESUME)
	    && strncmp(res->reply, "every recipient refused: ", 25) == 0)
		/* The relay took this copy for others: an access rule may
		 * refuse these members alone, or its configuration changed. */
		msg_warn("%s: group=%s: the relay refused every recipient of a transaction "
			 "for a reason not about their mailboxes (%s) after it took this copy for "
			 "other members: either its access rules refuse these members (remove "
			 "them from the list, or change the rules) or its configuration changed; "
			 "the post gets 451 and is retried for them alone, never counted as "
			 "their bounce", id, group, res->reply + 25);
	else if (res->problem)
		msg_warn("%s: group=%s: the relay refuses mlistd itself: %s; every post gets "
			 "451 until the relay accepts mail from mlistd for any recipient "
			 "(Postfix: mynetworks or smtpd_relay_restrictions for mlistd's "
			 "address, smtpd_recipient_limit >= relay-recipient-limit)",
			 id, group, res->reply);
}

/*
 * copy_outcome - the relay's answer for this copy: its log line and, short
 * of complete, the reply.  STEP_SENT, STEP_FAILED (the claim is lost) or
 * STEP_RELEASE.
 */
static int
copy_outcome(const struct copy_ctx *cx, int claim, const struct rcpt_list *rl,
	     enum relay_status st, const struct relay_result *res, struct smtp_reply *r,
	     unsigned *copies)
{
	const struct conf *cf = cx->ds->d->cf;
	const struct smtp_envelope *env = cx->env;
	const struct store_group *g = cx->g;

	if (st == RELAY_OK && (cx->completed || cx->c.id == 0)) {
		flow_crash_point("before-reply", 0);
		msg_info("%s: group=%s, from=<%s>, nrcpt=%zu, refused=%zu, relay=%s, %s, "
			 "status=sent (%s)", env->id, g->name, env->sender, res->accepted,
			 res->refused, cf->relay, cx->dmarc,
			 res->accepted ? res->queued : "every member refused");
		(*copies)++;
		return (STEP_SENT);
	}
	if (cx->lost) {
		claim_lost(env, g, r);
		return (STEP_FAILED);
	}
	relay_problem(cx, claim, res);
	msg_warn("%s: group=%s, from=<%s>, nrcpt=%zu, served=%zu, refused=%zu, "
		 "deferred=%zu, relay=%s, %s, status=%s (%s)", env->id, g->name, env->sender,
		 rl->n, res->accepted, res->refused, res->deferred, cf->relay, cx->dmarc,
		 st == RELAY_PERM ? "bounced" : "deferred",
		 st == RELAY_OK ? "could not record the copy as complete" : res->reply);
	/* 5xx upstream only when no member got anything, in any attempt. */
	if (st == RELAY_PERM && *copies == 0 && claim != CLAIM_RESUME)
		smtp_reply_set(r, 554, "5.3.0 Error: the relay refused the list copy: %s",
			       res->reply);
	else
		smtp_reply_set(r, 451, "4.4.0 Error: cannot relay the list copy now, "
			       "try again later");
	return (STEP_RELEASE);
}

/* release_claim - let go of the claim on a copy this attempt did not finish */
static void
release_claim(const struct copy_ctx *cx)
{
	struct deliver *d = cx->ds->d;

	/* The retry resumes where this attempt stopped. */
	if (cx->c.id && store_release(d->st, cx->c.id, 0, d->cf->dedup_window, &cx->o)
	    == STORE_ERROR)
		msg_warn("%s: group=%s: cannot release the claim (a retry waits until its "
			 "lease ends): %s", cx->env->id, cx->g->name, store_errmsg(d->st));
}

/*
 * post_send - one list: claim, recipients, rewrite, relay with a
 * checkpoint after each transaction, release.  0 or -1 (reply set).
 *
 * Exactly once (dedup-window > 0): the copy (list, digest) is claimed in
 * a committed write before the relay is contacted.  A retry of a copy
 * relayed completely is answered 250 and sends nothing; one that finds
 * a live claim (another worker is sending it right now, e.g. Postfix
 * gave up waiting for us and retried) gets 451 and sends nothing; one
 * that finds a claim whose owner died takes it over and sends only to
 * the members no transaction has served yet.
 */
int
post_send(struct deliver_session *ds, const struct smtp_envelope *env,
	  const struct rewrite_msg *m, const struct store_group *g,
	  const char *digest, double eod_start, struct smtp_reply *r,
	  unsigned *copies)
{
	struct rcpt_list rl = {NULL, 0, 0, g->name};
	struct relay_result res;
	struct copy_ctx cx;
	enum relay_status st;
	int	claim = CLAIM_NEW, step;

	memset(&cx, 0, sizeof(cx));
	cx.ds = ds;
	cx.env = env;
	cx.g = g;
	cx.deadline = eod_start + ds->d->cf->data_done_timeout;
	if (ds->d->cf->dedup_window > 0
	    && (step = claim_copy(&cx, m, digest, r, copies, &claim)) != STEP_ON)
		return (step == STEP_SENT ? 0 : -1);
	if ((step = copy_recipients(&cx, claim, &rl, r, copies)) == STEP_ON
	    && (step = relay_copy(&cx, m, digest, &rl, &st, &res, r)) == STEP_ON)
		step = copy_outcome(&cx, claim, &rl, st, &res, r, copies);
	flow_rcpt_free(&rl);
	if (step == STEP_RELEASE)
		release_claim(&cx);
	return (step == STEP_SENT ? 0 : -1);
}
