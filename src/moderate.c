/*
 * moderate.c - a moderator's decision by mail: LIST+approve+TOKEN,
 * LIST+reject+TOKEN, LIST+discard+TOKEN.
 *
 * The token names the held post and its list and is made for one
 * moderator, signed with mlistd.key (token_held_make); each moderator's
 * notice has its own.  The one who writes, the envelope sender or a From:
 * address (a moderator's mail may be forwarded with another envelope
 * sender), must be the one the token was made for, and still a moderator
 * of the list: a moderator removed from the list cannot decide with a
 * token it kept, whatever addresses its mail names.  The decision is recorded, first one wins
 * (store_held_decide); the runner carries it out, exactly as a decision
 * typed with sqlite3.  So a retried approval, two moderators approving at
 * once, or a replayed token change nothing more.  A later, different
 * decision gets one short "decided" answer, at most DECIDED_PER_HOUR an
 * hour per moderator; forged, expired and foreign tokens get nothing
 * (no mail to whoever forged them), only a line in the log.
 *
 * Replies: 250 when the mail is dealt with (also when it changed
 * nothing); 451 for a database problem.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "command.h"
#include "flow.h"
#include "log.h"
#include "moderate.h"
#include "notice.h"
#include "store.h"
#include "token.h"

#define DECIDED_PER_HOUR 10	/* "decided" answers to one moderator */

static const char *const decisions[] = {"approve", "reject", "discard"};

/* decision_of - the word for a command kind */
static const char *
decision_of(enum command_kind k)
{
	return (k == CMD_APPROVE ? decisions[0] : k == CMD_REJECT ? decisions[1] : decisions[2]);
}

/* A candidate for who acts, and what the token says for it. */
struct acting {
	enum token_verdict v;		/* the best verdict over the candidates */
	long long id;
	unsigned long expires;
	int	former;			/* valid for someone who no longer
					 * moderates the list */
};

/* try_as - the token for candidate address a: 1 when it is valid for a
 * and a moderates g (who set), 0 no, -1 database error */
static int
try_as(struct deliver *d, const struct command *c, const struct store_group *g,
       const char *a, struct acting *ac, char *who, size_t len)
{
	long long id = 0;
	unsigned long exp = 0;
	enum token_verdict v;
	int	rc;

	if (!command_address_ok(a))
		return (0);
	v = token_held_check(d->key, c->token, g->name, a, (unsigned long) time(NULL), &id,
			     &exp);
	if (v == TOKEN_EXPIRED || (v == TOKEN_FORGED && ac->v == TOKEN_MALFORMED))
		ac->v = v;
	if (v != TOKEN_VALID)
		return (0);
	ac->id = id;
	ac->expires = exp;
	if ((rc = store_is_moderator(d->st, g->name, a)) != STORE_YES) {
		ac->former |= rc == STORE_NO;
		return (rc == STORE_ERROR ? -1 : 0);
	}
	ac->v = TOKEN_VALID;
	snprintf(who, len, "%s", a);
	return (1);
}

/*
 * moderator_of - who acts: the envelope sender, or a From: address (a
 * moderator's mail may be forwarded with another envelope sender), for
 * whom the token was made and who moderates g now.  1 (who set), 0
 * nobody (ac says why), -1 database error.
 */
static int
moderator_of(struct deliver *d, const struct smtp_envelope *env,
	     const struct rewrite_msg *m, const struct command *c,
	     const struct store_group *g, struct acting *ac, char *who, size_t len)
{
	struct rewrite_from from;
	int	rc;

	memset(ac, 0, sizeof(*ac));
	ac->v = TOKEN_MALFORMED;
	if (env->sender[0] && (rc = try_as(d, c, g, env->sender, ac, who, len)) != 0)
		return (rc);
	if (rewrite_from(m, &from) != 0)
		return (0);
	for (size_t i = 0; i < from.n; i++)
		if ((rc = try_as(d, c, g, from.addr[i], ac, who, len)) != 0)
			return (rc);
	return (0);
}

/* answer_decided - tell who that h was decided already (best effort) */
static void
answer_decided(struct deliver *d, const struct smtp_envelope *env,
	       const struct store_group *g, const struct store_held *h, const char *who)
{
	const struct conf *cf = d->cf;
	struct notice_vars v;
	char	norm[STORE_ADDR_MAX], post[STORE_ADDR_MAX], owner[STORE_ADDR_MAX], why[600];
	char   *t, *msg;
	size_t	len;
	long	n;
	int	eightbit = 0;

	if (command_normalize(who, norm, sizeof(norm)) < 0)
		return;
	if ((n = store_notice_count(d->st, norm, "decided", (long long) time(NULL) - 3600))
	    == STORE_ERROR || n >= DECIDED_PER_HOUR) {
		msg_info("%s: group=%s: no \"decided\" answer to <%s>: %s", env->id, g->name, who,
			 n == STORE_ERROR ? store_errmsg(d->st) : "enough within the hour");
		return;
	}
	memset(&v, 0, sizeof(v));
	snprintf(post, sizeof(post), "%s@%s", g->name, cf->domain);
	snprintf(owner, sizeof(owner), "%s@%s", cf->postmaster_local, cf->domain);
	v.list = g->name;
	v.description = g->description;
	v.domain = cf->domain;
	v.post = post;
	v.owner = owner;
	v.address = who;
	v.held_subject = h->subject;
	v.held_from = h->from_addr[0] ? h->from_addr : h->sender;
	v.decision = h->decision;
	v.decided_by = h->decided_by[0] ? h->decided_by : "sqlite3";
	if ((t = notice_load(cf->template_dir, g->name, "decided", why, sizeof(why))) == NULL && why[0])
		msg_warn("template decided: %s; the built-in text is used", why);
	msg = notice_build(t ? t : notice_builtin("decided"), &v, owner, NULL, NULL, &len,
			   &eightbit);
	free(t);
	if (msg == NULL)
		return;
	if (flow_send_notice(d, env->id, g->name, who, "decided", msg, len, eightbit) == 0
	    && store_notice_add(d->st, norm, "decided", (long long) time(NULL)) == STORE_ERROR)
		msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	free(msg);
}

int
moderate_mail(struct deliver_session *ds, const struct smtp_envelope *env,
	      const struct rewrite_msg *m, const struct command *c,
	      const struct store_group *g, struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const char *decision = decision_of(c->kind), *why;
	struct acting ac;
	struct store_held h;
	long long id;
	char	who[STORE_ADDR_MAX];
	int	rc;

	if ((why = command_automatic(m, env->sender, d->cf->domain)) != NULL) {
		msg_info("%s: group=%s: %s from=<%s> ignored: %s", env->id, g->name, decision,
			 env->sender, why);
		return (0);
	}
	if ((rc = moderator_of(d, env, m, c, g, &ac, who, sizeof(who))) < 0) {
		flow_lookup_failed(d, env, r);
		return (-1);
	}
	if (rc == 0) {
		msg_info("%s: group=%s: %s from=<%s>: %s: nothing changes", env->id, g->name,
			 decision, env->sender, ac.former
			 ? "the token's moderator no longer moderates the list"
			 : ac.v == TOKEN_EXPIRED ? "an expired token"
			 : ac.v == TOKEN_FORGED ? "a token made for nobody who wrote this "
			 "(forged, or another moderator's)" : "a malformed token");
		return (0);
	}
	id = ac.id;
	if ((rc = store_held_decide(d->st, id, g->name, decision, who, &h)) == STORE_ERROR) {
		flow_lookup_failed(d, env, r);
		return (-1);
	}
	if (rc == STORE_YES) {
		msg_info("%s: group=%s: held post %lld: decision=%s by <%s> (by mail)", env->id,
			 g->name, id, decision, who);
		return (0);
	}
	if (h.id == 0) {
		msg_info("%s: group=%s: %s from=<%s>: held post %lld is gone", env->id, g->name,
			 decision, who, id);
		return (0);
	}
	msg_info("%s: group=%s: %s of held post %lld by <%s>: decided already (%s by %s)",
		 env->id, g->name, decision, id, who, h.decision,
		 h.decided_by[0] ? h.decided_by : "sqlite3");
	/* The same decision again (a retry, a second click): nothing to say. */
	if (!(strcmp(h.decision, decision) == 0 && strcasecmp(h.decided_by, who) == 0))
		answer_decided(d, env, g, &h, who);
	return (0);
}
