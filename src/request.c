/*
 * request.c - mail to a list's command addresses (LIST+subscribe,
 * LIST+unsubscribe, LIST+help, LIST+confirm-TOKEN).
 *
 * Self-service by mail.  A request arrives at a command address of a
 * list whose subscribe policy is 'confirm' or 'members'; its envelope
 * sender X is who asks.  mlistd answers X with one notice (a confirmation
 * request with a signed token, help, or why not) at most once an hour per
 * normalized address whatever the list, and at most once per message,
 * remembered in `requests` before it is sent; X's reply to the
 * confirmation address completes the change, which is recorded with the
 * token, so a token works once.  Machines never trigger anything
 * (command_automatic), and neither does a sender the relay refused before.
 * Each request message is claimed like a list copy (its command address
 * standing for the list), so a retry of one already answered sends
 * nothing again.  Closed lists hand their command mail to the postmaster
 * alias, as the original design did.
 *
 * Public: request_mail.  Diagnostics: a database problem is 451 (the
 * request is retried); a notice the relay cannot take now is 451 too.
 *
 * Memory: the notices are built and freed here; nothing returned is the
 * caller's to free.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "command.h"
#include "flow.h"
#include "log.h"
#include "moderate.h"
#include "notice.h"
#include "post.h"
#include "relay.h"
#include "request.h"
#include "rewrite.h"
#include "store.h"
#include "token.h"

#define HOUR	3600
#define UNSUBSCRIBE_PER_HOUR 3	/* confirmation requests to a current
				 * recipient, per address and list */

/* expiry_text - "2026-12-04 15:00 UTC" */
static void
expiry_text(unsigned long t, char *buf, size_t len)
{
	time_t	tt = (time_t) t;
	struct tm tm;

	(void) gmtime_r(&tt, &tm);
	(void) strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/*
 * send_notice - template `name` to address about list g, through the
 * relay, from the bounce address (its bounces are recorded as any other).
 * token: the confirmation token, or NULL.  0 when the relay took it or
 * refused the address for good (then a refusal row, evidence, keeps
 * further answers from going there); -1 when it must be retried.
 */
static int
send_notice(struct deliver_session *ds, const struct smtp_envelope *env,
	    const struct rewrite_msg *m, const struct store_group *g,
	    const char *address, const char *name, const char *token,
	    unsigned long expires)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	char	post[STORE_NAME_MAX + 300], sub[sizeof(post)], unsub[sizeof(post)];
	char	help[sizeof(post)], confirm[sizeof(post) + TOKEN_MAX + 16], owner[300];
	char	what[TOKEN_MAX + 16], when[64], why[600], msgid[256], *text, *msg;
	char	list[STORE_NAME_MAX + 1];
	struct notice_vars v;
	size_t	len;
	int	eightbit = 0, rc;

	for (size_t i = 0; i < sizeof(list); i++)
		if ((list[i] = (char) tolower((unsigned char) g->name[i])) == 0)
			break;
	snprintf(post, sizeof(post), "%s@%s", list, cf->domain);
	snprintf(owner, sizeof(owner), "%s@%s", cf->postmaster_local, cf->domain);
	snprintf(what, sizeof(what), "confirm%c%s", cf->delim, token ? token : "");
	if (command_address(sub, sizeof(sub), list, cf->delim, "subscribe", cf->domain) < 0
	    || command_address(unsub, sizeof(unsub), list, cf->delim, "unsubscribe",
			       cf->domain) < 0
	    || command_address(help, sizeof(help), list, cf->delim, "help", cf->domain) < 0
	    || command_address(confirm, sizeof(confirm), list, cf->delim, what, cf->domain) < 0)
		return (0);			/* cannot happen: bounded names */
	expiry_text(expires, when, sizeof(when));
	memset(&v, 0, sizeof(v));
	v.list = list;
	v.description = g->description;
	v.domain = cf->domain;
	v.address = address;
	v.post = post;
	v.subscribe = sub;
	v.unsubscribe = unsub;
	v.help = help;
	v.confirm = token ? confirm : "";
	v.owner = owner;
	v.expires = when;
	if ((text = notice_load(cf->template_dir, list, name, why, sizeof(why))) == NULL && why[0])
		msg_warn("template %s: %s; the built-in text is used", name, why);
	rewrite_message_id(m, msgid, sizeof(msgid));
	msg = notice_build(text ? text : notice_builtin(name), &v, token ? confirm : owner,
			   NULL, msgid, &len, &eightbit);
	free(text);
	if (msg == NULL) {
		msg_warn("%s: group=%s: no %s notice for <%s>: out of memory", env->id, g->name,
			 name, address);
		return (-1);
	}
	rc = flow_send_notice(d, env->id, g->name, address, name, msg, len, eightbit);
	free(msg);
	return (rc);
}

/* answer_later - 451: the answer could not go out now */
static void
answer_later(struct smtp_reply *r)
{
	smtp_reply_set(r, 451, "4.4.0 Error: cannot answer the request now, try again later");
}

/*
 * answer - a notice that anybody can make mlistd send by writing to a
 * command address: at most one per normalized address an hour (any list)
 * and one per message, none to an address the relay refused before.  A
 * current recipient's unsubscribe (tok TOKEN_UNSUBSCRIBE) is bounded on
 * its own instead: UNSUBSCRIBE_PER_HOUR per normalized address and list
 * (so by the lists it is on), any message.  The row in `requests` is committed before the notice
 * goes out (so two workers cannot both answer), and
 * taken back if it could not be sent.  action: the row's action
 * ('subscribe' or 'unsubscribe' with a token, else the notice's kind).
 * 0, or -1 with a 451 set.
 */
static int
answer(struct deliver_session *ds, const struct smtp_envelope *env,
       const struct rewrite_msg *m, const struct store_group *g, const char *address,
       const char *name, const char *action, int tok, const char *digest,
       struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	unsigned long now = (unsigned long) time(NULL);
	unsigned long expires = tok ? now + cf->confirm_expiry : now;
	char	token[TOKEN_MAX + 1], norm[SMTP_ADDR_MAX + 1];
	long long last = 0, valid = 0;
	long	ev, n;
	int	rc;

	if (command_normalize(address, norm, sizeof(norm)) < 0)
		return (0);			/* cannot happen: bounded */
	if ((ev = store_evidence(d->st, address, cf->bounce_window)) == STORE_ERROR)
		goto db_failed;
	if (ev > 0) {
		msg_info("%s: group=%s: no %s notice for <%s>: the relay refused that address "
			 "within bounce-window", env->id, g->name, name, address);
		return (0);
	}
	if (store_begin(d->st) == STORE_ERROR)
		goto db_failed;
	/* One message, one answer, however many command addresses it names;
	 * a retry finds its own row (same digest, same request) and goes on.
	 * A current recipient's unsubscribe is answered all the same: the
	 * lists it is on bound it. */
	rc = tok == TOKEN_UNSUBSCRIBE ? STORE_NO
		: store_request_sibling(d->st, digest, g->name, address, action);
	if (rc == STORE_YES) {
		store_rollback(d->st);
		msg_info("%s: group=%s: no %s notice for <%s>: this message was answered already "
			 "(one answer per message)", env->id, g->name, name, address);
		return (0);
	}
	if (rc == STORE_ERROR)
		goto db_failed;
	if (tok == TOKEN_UNSUBSCRIBE) {
		/* A current recipient's way out is not held back by the limit
		 * that protects strangers; it has a bound of its own. */
		n = store_request_unsubs(d->st, g->name, address, norm, (long long) now - HOUR,
					 digest, &last, &valid);
		if (n == STORE_ERROR)
			goto db_failed;
		if (n >= UNSUBSCRIBE_PER_HOUR && last > 0) {
			char	sent[64], until[64];

			store_rollback(d->st);
			expiry_text((unsigned long) last, sent, sizeof(sent));
			expiry_text((unsigned long) valid, until, sizeof(until));
			msg_info("%s: group=%s: no %s notice for <%s>: %ld sent within the hour; a "
				 "valid confirmation request went out at %s and is valid until %s",
				 env->id, g->name, name, address, n, sent, until);
			return (0);
		}
		if (n >= UNSUBSCRIBE_PER_HOUR) {
			store_rollback(d->st);
			msg_info("%s: group=%s: no %s notice for <%s>: %ld unsubscribe confirmations "
				 "for this list went to it (as <%s>) within the hour; it can ask "
				 "again after that", env->id, g->name, name, address, n, norm);
			return (0);
		}
		/* Another request in the same second: its own expiry (row, token). */
		if (valid >= (long long) expires)
			expires = (unsigned long) valid + 1;
	} else if ((rc = store_request_recent(d->st, norm, (long long) now - HOUR, digest))
		   == STORE_YES) {
		store_rollback(d->st);
		msg_info("%s: group=%s: no %s notice for <%s>: it was answered within the hour "
			 "(as <%s>, any list)", env->id, g->name, name, address, norm);
		return (0);
	} else if (rc == STORE_ERROR)
		goto db_failed;
	if (tok && token_make(d->key, (enum token_action) tok, g->name, address, expires, token,
			      sizeof(token)) < 0) {
		store_rollback(d->st);
		return (0);			/* cannot happen: bounded */
	}
	if (store_request_add(d->st, g->name, address, action, (long long) now,
			      (long long) expires, digest, norm) == STORE_ERROR
	    || store_commit(d->st) == STORE_ERROR)
		goto db_failed;
	flow_crash_point("answer-reserved", 0);
	if (send_notice(ds, env, m, g, address, name, tok ? token : NULL, expires) == 0)
		return (0);
	if (store_request_cancel(d->st, g->name, address, action, (long long) expires)
	    == STORE_ERROR)
		msg_warn("%s: database: %s (the retry may find its own request and stay "
			 "silent for an hour)", env->id, store_errmsg(d->st));
	answer_later(r);
	return (-1);
db_failed:
	store_rollback(d->st);
	flow_lookup_failed(d, env, r);
	return (-1);
}

/*
 * confirm - a reply to a confirmation request.  The token must be one
 * mlistd made for this list and the envelope sender (or, for senders
 * rewritten on the way such as SRS, a From: address: the token itself
 * went only to the subscriber), alive and not used.  The change and the
 * used token are one commit; the welcome or goodbye follows, and a retry
 * of this same message sends only that again.
 */
static int
confirm(struct deliver_session *ds, const struct smtp_envelope *env,
	const struct rewrite_msg *m, const struct command *c, const struct store_group *g,
	const char *digest, struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	struct rewrite_from from;
	enum token_action act = TOKEN_SUBSCRIBE;
	enum token_verdict v;
	unsigned long now = (unsigned long) time(NULL), expires = 0;
	const char *who = env->sender, *action;
	char	seen[64];
	int	state, ok;

	v = token_check(d->key, c->token, g->name, who, now, &act, &expires);
	if (v == TOKEN_FORGED && rewrite_from(m, &from) == 0)
		for (size_t i = 0; i < from.n && v == TOKEN_FORGED; i++)
			if ((v = token_check(d->key, c->token, g->name, from.addr[i], now, &act,
					     &expires)) != TOKEN_FORGED)
				who = from.addr[i];
	if (v != TOKEN_VALID || !command_address_ok(who)) {
		msg_info("%s: group=%s: confirmation from=<%s> with a%s token: nothing changes",
			 env->id, g->name, env->sender, v == TOKEN_EXPIRED ? "n expired"
			 : v == TOKEN_FORGED ? " forged or misdirected" : " malformed");
		return (answer(ds, env, m, g, env->sender, "start-again", "start-again", 0,
			       digest, r));
	}
	action = act == TOKEN_SUBSCRIBE ? "subscribe" : "unsubscribe";
	if (store_begin(d->st) == STORE_ERROR)
		goto db_failed;
	state = store_request_state(d->st, g->name, who, action, (long long) expires, seen,
				    sizeof(seen));
	if (state == STORE_ERROR)
		goto db_failed;
	if (state == REQUEST_DONE && strcmp(seen, digest) != 0) {
		store_rollback(d->st);
		msg_info("%s: group=%s: confirmation from=<%s>: the token to %s <%s> was used "
			 "already; nothing changes", env->id, g->name, env->sender, action, who);
		return (answer(ds, env, m, g, who, "start-again", "start-again", 0, digest, r));
	}
	if (state == REQUEST_DONE) {
		/* This very message made the change: only its notice is owed. */
		store_rollback(d->st);
		goto notice;
	}
	if (act == TOKEN_SUBSCRIBE) {
		ok = g->subscribe != SUB_MEMBERS ? STORE_YES : store_is_member(d->st, who);
		if (ok == STORE_YES && store_subscribe(d->st, g->name, who) == STORE_ERROR)
			goto db_failed;
		if (ok == STORE_YES)
			ok = store_is_recipient(d->st, g->name, who);
		if (ok == STORE_ERROR)
			goto db_failed;
		if (ok == STORE_NO) {
			store_rollback(d->st);
			msg_info("%s: group=%s: <%s> confirmed, but may not subscribe (not in "
				 "members, or unsubscribed by the administrator)", env->id,
				 g->name, who);
			return (answer(ds, env, m, g, who, "not-allowed", "refused", 0, digest, r));
		}
	} else if (store_unsubscribe(d->st, g->name, who, "request") == STORE_ERROR)
		goto db_failed;
	if (store_request_done(d->st, g->name, who, action, (long long) expires,
			       (long long) now, digest) == STORE_ERROR
	    || store_commit(d->st) == STORE_ERROR)
		goto db_failed;
	msg_info("%s: group=%s: %s <%s> (confirmed by mail from=<%s>)", env->id, g->name,
		 act == TOKEN_SUBSCRIBE ? "subscribed" : "unsubscribed", who, env->sender);
	flow_crash_point("confirmed", 0);
notice:
	if ((ok = store_request_sibling(d->st, digest, g->name, who, action)) == STORE_ERROR) {
		flow_lookup_failed(d, env, r);
		return (-1);
	}
	if (ok == STORE_YES) {
		msg_info("%s: group=%s: no %s notice for <%s>: this message was answered already "
			 "(one answer per message)", env->id, g->name,
			 act == TOKEN_SUBSCRIBE ? "welcome" : "goodbye", who);
		return (0);
	}
	if (send_notice(ds, env, m, g, who, act == TOKEN_SUBSCRIBE ? "welcome" : "goodbye",
			NULL, 0) == 0)
		return (0);
	answer_later(r);
	return (-1);
db_failed:
	store_rollback(d->st);
	flow_lookup_failed(d, env, r);
	return (-1);
}

/* request - subscribe, unsubscribe or help from the envelope sender */
static int
request(struct deliver_session *ds, const struct smtp_envelope *env,
	const struct rewrite_msg *m, const struct command *c, const struct store_group *g,
	const char *digest, struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const char *x = env->sender;
	int	rcpt, allowed = STORE_YES, blocked = STORE_NO;

	if (c->kind == CMD_HELP)
		return (answer(ds, env, m, g, x, "help", "help", 0, digest, r));
	if (store_read_begin(d->st) == STORE_ERROR)
		rcpt = STORE_ERROR;
	else if ((rcpt = store_is_recipient(d->st, g->name, x)) != STORE_ERROR
		 && c->kind == CMD_SUBSCRIBE) {
		if (g->subscribe == SUB_MEMBERS)
			allowed = store_is_member(d->st, x);
		blocked = store_blocked(d->st, g->name, x);
	}
	store_read_end(d->st);
	if (rcpt == STORE_ERROR || allowed == STORE_ERROR || blocked == STORE_ERROR) {
		flow_lookup_failed(d, env, r);
		return (-1);
	}
	msg_info("%s: group=%s: %s request from=<%s>", env->id, g->name, command_name(c->kind), x);
	if (c->kind == CMD_UNSUBSCRIBE)
		return (rcpt == STORE_YES
			? answer(ds, env, m, g, x, "confirm-unsubscribe", "unsubscribe",
				 TOKEN_UNSUBSCRIBE, digest, r)
			: answer(ds, env, m, g, x, "not-subscribed", "refused", 0, digest, r));
	if (rcpt == STORE_YES)
		return (answer(ds, env, m, g, x, "already-subscribed", "refused", 0, digest, r));
	if (allowed == STORE_NO || blocked == STORE_YES)
		return (answer(ds, env, m, g, x, "not-allowed", "refused", 0, digest, r));
	return (answer(ds, env, m, g, x, "confirm-subscribe", "subscribe", TOKEN_SUBSCRIBE,
		       digest, r));
}

/*
 * to_postmaster - a closed list's command mail, for the person behind
 * the postmaster alias: checked as a post to it would be, but never held
 * (a sender the alias does not take is refused) or discarded.
 */
static int
to_postmaster(struct deliver_session *ds, const struct smtp_envelope *env,
	      const struct rewrite_msg *m, const struct store_group *pm, const char *digest,
	      double eod_start, struct smtp_reply *r, unsigned *copies)
{
	const char *reason;
	int	v = post_check(ds, env, m, pm, r, &reason);

	if (v < 0)
		return (-1);
	if (v == POST_DISCARD)
		return (0);
	if (v == POST_HOLD && strcmp(reason, "moderated") != 0) {
		smtp_reply_set(r, 550, "5.7.1 <%s@%s>: not allowed to write to this address",
			       pm->name, ds->d->cf->domain);
		return (-1);
	}
	return (post_send(ds, env, m, pm, digest, eod_start, r, copies));
}

/*
 * request_mail - the end of data for one command address.  0 when done
 * with (answered, forwarded, or ignored on purpose), -1 with the reply set.
 */
int
request_mail(struct deliver_session *ds, const struct smtp_envelope *env,
	     const struct rewrite_msg *m, const struct cmd_rcpt *cr, const char *digest,
	     double eod_start, struct smtp_reply *r, unsigned *copies)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	struct store_group g, pm;
	struct store_copy c;
	struct store_owner o;
	const char *why;
	char	name[SMTP_ADDR_MAX + 1], *at;
	int	rc;

	if ((rc = store_group(d->st, cr->c.group, &g)) == STORE_ERROR) {
		flow_lookup_failed(d, env, r);
		return (-1);
	}
	if (rc == STORE_NO || !g.is_group) {
		msg_info("%s: <%s>: the list is gone since RCPT; request ignored", env->id,
			 cr->rcpt);
		return (0);
	}
	if (command_moderates(&cr->c))
		return (moderate_mail(ds, env, m, &cr->c, &g, r));
	if (g.subscribe == SUB_CLOSED) {
		/* As in the original design: a person handles it, and the
		 * mail is checked as mail to the postmaster alias would be. */
		if ((rc = store_group(d->st, cf->postmaster_local, &pm)) == STORE_YES)
			return (to_postmaster(ds, env, m, &pm, digest, eod_start, r, copies));
		if (rc == STORE_ERROR) {
			flow_lookup_failed(d, env, r);
			return (-1);
		}
		msg_warn("%s: <%s>: list %s is closed and the %s alias is gone; request "
			 "ignored", env->id, cr->rcpt, g.name, cf->postmaster_local);
		return (0);
	}
	why = command_automatic(m, env->sender, cf->domain);
	if (why == NULL && !command_address_ok(env->sender))
		why = "an address in a form mlistd does not answer (quoted, escaped, %, !, "
			"a literal or a trailing dot)";
	if (why) {
		msg_info("%s: group=%s: %s from=<%s> ignored: %s", env->id, g.name,
			 command_name(cr->c.kind), env->sender, why);
		return (0);
	}
	memset(&c, 0, sizeof(c));
	if (cf->dedup_window > 0) {
		/* The command address stands for the list in `relayed`. */
		snprintf(name, sizeof(name), "%s", cr->rcpt);
		if ((at = strrchr(name, '@')) != NULL)
			*at = 0;
		for (at = name; *at; at++)
			*at = (char) tolower((unsigned char) *at);
		flow_owner_now(cf, &o);
		switch (store_claim(d->st, name, digest, NULL, cf->dedup_window, &o, &c)) {
		case STORE_ERROR:
			flow_lookup_failed(d, env, r);
			return (-1);
		case CLAIM_DONE:
			msg_info("%s: group=%s: %s from=<%s>: status=duplicate (answered at %s UTC)",
				 env->id, g.name, command_name(cr->c.kind), env->sender, c.when);
			return (0);
		case CLAIM_BUSY:
			smtp_reply_set(r, 451, "4.3.0 Error: this request is being answered right "
				       "now, try again later");
			return (-1);
		}
	}
	rc = cr->c.kind == CMD_CONFIRM ? confirm(ds, env, m, &cr->c, &g, digest, r)
		: request(ds, env, m, &cr->c, &g, digest, r);
	/* Should this fail after the answer went out, a retry would answer
	 * again: the answer is the work, so it still counts as done. */
	if (c.id && store_release(d->st, c.id, rc == 0, cf->dedup_window, &o) == STORE_ERROR)
		msg_warn("%s: database: %s (a retry of this request may be answered twice)",
			 env->id, store_errmsg(d->st));
	return (rc);
}
