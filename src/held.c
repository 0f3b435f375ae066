/*
 * held.c - a post held for a moderator, from the end of data to its row.
 *
 * post_check decides that a post waits for a moderator (the list is
 * moderated, or its `others` policy is hold); held_post keeps it: the
 * message unchanged in held-maildir (fsynced, published into new/) and a
 * `held` row in one commit, so the 250 that follows means the post is
 * safe.  A retry of the same post (same list, same digest) finds its row
 * and is answered 250 again without a second copy; two attempts at once
 * meet at the row's UNIQUE constraint, and the loser removes its file.
 *
 * Limits: hold-max-size bytes per post (552 5.2.3: the author learns it
 * at once), hold-limit undecided posts per list (452 4.2.2: Postfix keeps
 * the post queued while the moderators make room).  Nothing is sent
 * here: the runner (runner.c) notifies the moderators and carries out
 * their decisions.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bounce.h"
#include "command.h"
#include "held.h"
#include "log.h"
#include "post.h"
#include "store.h"

void
held_subject(const struct rewrite_msg *m, char *buf, size_t len)
{
	long	n = rewrite_field(m, "Subject", buf, len);

	if (n == -2)
		snprintf(buf, len, "(a subject too long to show)");
	else if (n < 0)
		buf[0] = 0;
	/* Shown in a notice's Subject, an encoded word would be decoded by
	 * the moderator's mail program: it stays visible as text instead. */
	for (char *p = buf; *p; p++) {
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = ' ';
		if (p[0] == '=' && p[1] == '?')
			p[1] = ' ';
	}
}

int
held_check(struct deliver_session *ds, const struct smtp_envelope *env,
	   const struct store_group *g, size_t len, const char *reason,
	   struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;
	long	n;

	if (len > cf->hold_max_size) {
		msg_info("%s: reject: group=%s, from=<%s>: %zu bytes, over hold-max-size (%lu) "
			 "for a post that waits for a moderator", env->id, g->name, env->sender,
			 len, cf->hold_max_size);
		smtp_reply_set(r, 552, "5.2.3 <%s@%s>: message too large to be held for the "
			       "list's moderators (limit %lu bytes)", g->name, cf->domain,
			       cf->hold_max_size);
		return (-1);
	}
	if ((n = store_held_pending(ds->d->st, g->name)) == STORE_ERROR) {
		flow_lookup_failed(ds->d, env, r);
		return (-1);
	}
	if (n < (long) cf->hold_limit)
		return (POST_HOLD);
	if (strcmp(reason, "moderated") != 0) {
		/* A flood from strangers, likely forged: a 4xx would end as a
		 * DSN to them when Postfix gives up. */
		msg_warn("%s: group=%s, from=<%s>: the list holds hold-limit (%u) posts for its "
			 "moderators already: a post from a sender not allowed to post is "
			 "discarded", env->id, g->name, env->sender, cf->hold_limit);
		return (POST_DISCARD);
	}
	msg_warn("%s: group=%s, from=<%s>: the list holds hold-limit (%u) posts for its "
		 "moderators already: deferred", env->id, g->name, env->sender, cf->hold_limit);
	smtp_reply_set(r, 452, "4.2.2 <%s@%s>: too many posts wait for the list's "
		       "moderators, try again later", g->name, cf->domain);
	return (-1);
}

/* held_row - the row that describes this post */
static void
held_row(struct deliver_session *ds, const struct smtp_envelope *env,
	 const struct rewrite_msg *m, const struct store_group *g, size_t len,
	 const char *digest, const char *reason, struct store_held *h)
{
	const struct conf *cf = ds->d->cf;
	struct rewrite_from from;

	memset(h, 0, sizeof(*h));
	snprintf(h->group, sizeof(h->group), "%s", g->name);
	snprintf(h->sender, sizeof(h->sender), "%s", env->sender);
	if (rewrite_from(m, &from) == 0 && from.n > 0)
		snprintf(h->from_addr, sizeof(h->from_addr), "%s", from.addr[0]);
	held_subject(m, h->subject, sizeof(h->subject));
	snprintf(h->reason, sizeof(h->reason), "%s", reason);
	snprintf(h->digest, sizeof(h->digest), "%s", digest);
	h->size = (long long) len;
	h->expires = (long long) time(NULL) + cf->hold_expiry;
	h->eightbit = env->body_8bit;
	h->smtputf8 = env->smtputf8;
	h->automatic = command_automatic(m, env->sender, cf->domain) != NULL;
}

/* already_held - an earlier attempt kept this post: 1, 0 no, -1 error */
static int
already_held(struct deliver_session *ds, const struct smtp_envelope *env,
	     const struct store_group *g, const char *digest)
{
	struct store_held h;
	int	rc = store_held_find(ds->d->st, g->name, digest, &h);

	if (rc == STORE_YES)
		msg_info("%s: group=%s, from=<%s>, status=held already (id=%lld%s%s)",
			 env->id, g->name, env->sender, h.id, h.decision[0] ? ", decision=" : "",
			 h.decision);
	return (rc == STORE_YES ? 1 : rc == STORE_NO ? 0 : -1);
}

int
held_post(struct deliver_session *ds, const struct smtp_envelope *env,
	  const struct rewrite_msg *m, const struct store_group *g, const char *msg,
	  size_t len, const char *digest, const char *reason, struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	const char *dir = cf->held_maildir;
	struct store_held h;
	char	name[256] = "", err[512];
	int	rc;

	if (len > cf->hold_max_size) {
		msg_info("%s: reject: group=%s, from=<%s>: %zu bytes, over hold-max-size (%lu) "
			 "for a post that waits for a moderator", env->id, g->name, env->sender,
			 len, cf->hold_max_size);
		smtp_reply_set(r, 552, "5.2.3 <%s@%s>: message too large to be held for the "
			       "list's moderators (limit %lu bytes)", g->name, cf->domain,
			       cf->hold_max_size);
		return (-1);
	}
	if ((rc = already_held(ds, env, g, digest)) != 0) {
		if (rc < 0)
			flow_lookup_failed(d, env, r);
		return (rc < 0 ? -1 : 0);
	}
	held_row(ds, env, m, g, len, digest, reason, &h);
	if (maildir_write(dir, msg, len, name, sizeof(name), err, sizeof(err)) < 0
	    || maildir_publish(dir, name, err, sizeof(err)) < 0) {
		msg_warn("%s: group=%s: cannot keep the held post: %s", env->id, g->name, err);
		if (name[0])
			maildir_unlink(dir, "tmp", name);
		smtp_reply_set(r, 451, "4.3.0 Error: cannot keep the post for the moderators, "
			       "try again later");
		return (-1);
	}
	snprintf(h.maildir_file, sizeof(h.maildir_file), "new/%s", name);
	flow_crash_point("held-file", 0);
	rc = store_held_add(d->st, &h, cf->hold_limit);
	if (rc != HELD_NEW)
		maildir_unlink(dir, "new", name);
	switch (rc) {
	case HELD_NEW:
		msg_info("%s: group=%s, from=<%s>, size=%zu, status=held (id=%lld, reason=%s, "
			 "file=%s)", env->id, g->name, env->sender, len, h.id, reason,
			 h.maildir_file);
		return (0);
	case HELD_EXISTS:
		msg_info("%s: group=%s, from=<%s>, status=held already (id=%lld)", env->id,
			 g->name, env->sender, h.id);
		return (0);
	case HELD_FULL:
		msg_warn("%s: group=%s, from=<%s>: the list holds hold-limit (%u) posts for its "
			 "moderators already: deferred", env->id, g->name, env->sender,
			 cf->hold_limit);
		smtp_reply_set(r, 452, "4.2.2 <%s@%s>: too many posts wait for the list's "
			       "moderators, try again later", g->name, cf->domain);
		return (-1);
	default:
		flow_lookup_failed(d, env, r);
		return (-1);
	}
}
