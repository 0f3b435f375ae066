/*
 * runner.c - the held-post runner, one process beside the workers.
 *
 * Decisions on held posts are recorded by whoever makes them: a worker
 * for a moderator's mail (moderate.c), an administrator with sqlite3
 * (UPDATE held SET decision = 'approve' WHERE id = 12).  This process
 * alone carries them out, so nothing is done twice however the decision
 * came in.  Every RUNNER_INTERVAL seconds it
 *   1. carries out the decisions not yet done, and expires the undecided
 *      posts past hold-expiry: approve sends the stored post to the list
 *      through post_send (claimed, checkpointed: exactly once even if
 *      this process dies half way; the next pass resumes the claim, and
 *      only the relay transaction in flight when it died, whose outcome
 *      it never learnt, may reach its members twice, as for any post);
 *      reject tells the author once (not the null sender, automatic
 *      mail, addresses the relay refused; one an hour per address);
 *      discard and expire send nothing.  Done: done_at set, the file
 *      removed.  A relay that cannot take the post now: tried again
 *      later, waiting longer each time (at most an hour);
 *   2. sends each moderator one notice per held post (the post
 *      attached, the approve/reject/discard addresses with a signed
 *      token), at most moderator-notice-limit an hour per moderator
 *      (the rest wait), and the author's "held" notice where the list
 *      asks for it;
 *   3. once a minute, tells moderators of subscriptions and
 *      unsubscriptions on their lists (notify_owners), at most one
 *      notice an hour per moderator;
 *   4. once an hour, removes files of held-maildir that no row names
 *      (a crash between a file and its row).
 * A relay that cannot take a notice pauses the notices (30 s doubling
 * up to NOTICE_BACKOFF); decisions are carried out all the same.
 * Signals: SIGTERM/SIGINT/SIGHUP finish the work in hand and exit; the
 * master starts a new runner with the new configuration on reload.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "command.h"
#include "deliver.h"
#include "flow.h"
#include "log.h"
#include "notice.h"
#include "post.h"
#include "privs.h"
#include "rewrite.h"
#include "runner.h"
#include "sockstream.h"
#include "store.h"
#include "token.h"

#define RUNNER_INTERVAL	2	/* seconds between passes */
#define RUNNER_BATCH	20	/* rows per kind of work per pass */
#define OWNERS_EVERY	60	/* seconds between looks at changes */
#define RETRY_MAX	3600	/* seconds: the longest wait before a retry */
#define HOUR		3600
#define NOTICE_BACKOFF	600	/* seconds: the longest pause after a relay
				 * that could not take a notice */

static volatile sig_atomic_t runner_stop;

struct runner {
	struct deliver *d;
	struct deliver_session ds;
	const struct conf *cf;
	struct store_held batch[RUNNER_BATCH];
	size_t	n;
	time_t	notify_after;		/* no notices before (relay trouble) */
	unsigned notify_fails;		/* passes in a row the relay refused */
};

/* on_stop - finish the work in hand, then exit */
static void
on_stop(int sig)
{
	(void) sig;
	runner_stop = 1;
}

/* collect - store_held_due/_unnotified callback: copy into the batch */
static int
collect(void *arg, const struct store_held *h)
{
	struct runner *rn = arg;

	if (rn->n >= RUNNER_BATCH)
		return (1);
	rn->batch[rn->n++] = *h;
	return (0);
}

/* held_file - the held post's bytes, malloc'd (NULL: gone, or no
 * memory: why says which) */
static char *
held_file(const struct conf *cf, const struct store_held *h, size_t *len, char *why,
	  size_t whylen)
{
	char	path[4096], *buf;
	struct stat sb;
	ssize_t	n;
	size_t	got = 0;
	int	fd;

	snprintf(path, sizeof(path), "%s/%s", cf->held_maildir, h->maildir_file);
	if (h->maildir_file[0] == 0 || strstr(h->maildir_file, "..") != NULL
	    || (fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		snprintf(why, whylen, "the held file %.300s: %s", path,
			 h->maildir_file[0] ? strerror(errno) : "none");
		return (NULL);
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size < 0
	    || (unsigned long long) sb.st_size > 2ULL * cf->hold_max_size + 65536
	    || (buf = malloc((size_t) sb.st_size + 1)) == NULL) {
		snprintf(why, whylen, "the held file %.300s: unusable or out of memory", path);
		(void) close(fd);
		return (NULL);
	}
	while (got < (size_t) sb.st_size
	       && (n = read(fd, buf + got, (size_t) sb.st_size - got)) > 0)
		got += (size_t) n;
	(void) close(fd);
	buf[got] = 0;
	*len = got;
	return (buf);
}

/* held_unlink - the held post's file, once its decision is carried out */
static void
held_unlink(const struct conf *cf, const struct store_held *h)
{
	char	path[4096];

	if (h->maildir_file[0] == 0 || strstr(h->maildir_file, "..") != NULL)
		return;
	snprintf(path, sizeof(path), "%s/%s", cf->held_maildir, h->maildir_file);
	if (unlink(path) < 0 && errno != ENOENT)
		msg_warn("held post %lld: cannot remove %s: %s", h->id, path, strerror(errno));
}

/*
 * approve - the held post to its list, as any post: 0 done (outcome
 * says how), -1 to be tried again (the relay or the database cannot now)
 */
static int
approve(struct runner *rn, const struct store_held *h, char *outcome, size_t olen)
{
	struct deliver *d = rn->d;
	struct rewrite_limits lim = {rn->cf->max_header_fields, rn->cf->max_header_size};
	struct smtp_envelope env;
	struct smtp_reply r;
	struct store_group g;
	struct rewrite_msg *m = NULL;
	unsigned copies = 0;
	char   *msg;
	size_t	len = 0;
	int	rc;

	if ((rc = store_group(d->st, h->group, &g)) == STORE_ERROR) {
		snprintf(outcome, olen, "deferred: database: %s", store_errmsg(d->st));
		return (-1);
	}
	if (rc == STORE_NO || !g.is_group) {
		snprintf(outcome, olen, "not sent: the list is gone");
		return (0);
	}
	if ((msg = held_file(rn->cf, h, &len, outcome, olen)) == NULL)
		return (errno == ENOMEM ? -1 : 0);
	if (rewrite_parse(msg, len, &lim, &m) != REWRITE_OK) {
		free(msg);
		snprintf(outcome, olen, "not sent: the held file cannot be read as a message");
		return (0);
	}
	memset(&env, 0, sizeof(env));
	snprintf(env.id, sizeof(env.id), "held%lld", h->id);
	env.helo = "";
	env.sender = h->sender;
	env.body_8bit = h->eightbit;
	env.smtputf8 = h->smtputf8;
	memset(&r, 0, sizeof(r));
	rc = post_send(&rn->ds, &env, m, &g, h->digest, sockstream_now(), &r, &copies);
	rewrite_msg_free(m);
	free(msg);
	if (rc == 0) {
		snprintf(outcome, olen, "sent to the list");
		return (0);
	}
	snprintf(outcome, olen, "%s: %d %s", r.code >= 500 ? "not sent: the relay refused it"
		 : "deferred", r.code, r.text);
	return (r.code >= 500 ? 0 : -1);
}

/* load_template - a notice's text about list (NULL: several), the
 * administrator's (the list's own or the global one) or built in */
static char *
load_template(const struct conf *cf, const char *list, const char *name, const char **text)
{
	char	why[600], *t;

	if ((t = notice_load(cf->template_dir, list, name, why, sizeof(why))) == NULL && why[0])
		msg_warn("template %s: %s; the built-in text is used", name, why);
	*text = t ? t : notice_builtin(name);
	return (t);
}

/* base_vars - the variables every notice about list g has */
static void
base_vars(const struct conf *cf, const char *group, const char *description,
	  struct notice_vars *v, char *post, char *owner, size_t len)
{
	memset(v, 0, sizeof(*v));
	snprintf(post, len, "%s@%s", group, cf->domain);
	snprintf(owner, len, "%s@%s", cf->postmaster_local, cf->domain);
	v->list = group;
	v->description = description;
	v->domain = cf->domain;
	v->post = post;
	v->owner = owner;
}

/*
 * author_may - may an answer about held post h go to its author (kind:
 * 'rejected', 'held')?  Never to the null sender, automatic mail, an
 * address in a form mlistd does not answer, one the relay refused within
 * bounce-window, or one that had such a notice within the hour (any
 * list).  1 yes, 0 no (why set), -1 database error.
 */
static int
author_may(struct runner *rn, const struct store_held *h, const char *kind, char *norm,
	   size_t nlen, const char **why)
{
	long	n;

	*why = h->sender[0] == 0 ? "the null sender" : h->automatic ? "automatic mail"
		: !command_address_ok(h->sender) ? "an address mlistd does not answer" : NULL;
	if (*why || command_normalize(h->sender, norm, nlen) < 0)
		return (0);
	if ((n = store_evidence(rn->d->st, h->sender, rn->cf->bounce_window)) == STORE_ERROR)
		return (-1);
	if (n > 0) {
		*why = "the relay refused that address";
		return (0);
	}
	if ((n = store_notice_count(rn->d->st, norm, kind, (long long) time(NULL) - HOUR))
	    == STORE_ERROR)
		return (-1);
	*why = n > 0 ? "it had such a notice within the hour" : NULL;
	return (n == 0);
}

/*
 * tell_author - notice `name` (rejected, held) about h to its author,
 * where author_may lets it: 0 done (sent, or not to be sent), -1 retry
 */
static int
tell_author(struct runner *rn, const struct store_held *h, const char *name, char *outcome,
	    size_t olen)
{
	const struct conf *cf = rn->cf;
	struct notice_vars v;
	char	norm[STORE_ADDR_MAX], post[STORE_ADDR_MAX], owner[STORE_ADDR_MAX];
	char	id[32], *t, *msg;
	const char *why, *text;
	size_t	len;
	int	may, eightbit = 0, rc;

	if ((may = author_may(rn, h, name, norm, sizeof(norm), &why)) < 0)
		return (-1);
	if (may == 0) {
		snprintf(outcome, olen, "the author was not told: %s", why);
		return (0);
	}
	base_vars(cf, h->group, "", &v, post, owner, sizeof(post));
	v.address = h->sender;
	v.held_subject = h->subject;
	v.held_from = h->from_addr;
	t = load_template(cf, h->group, name, &text);
	msg = notice_build(text, &v, owner, NULL, NULL, &len, &eightbit);
	free(t);
	if (msg == NULL)
		return (-1);
	snprintf(id, sizeof(id), "held%lld", h->id);
	rc = flow_send_notice(rn->d, id, h->group, h->sender, name, msg, len, eightbit);
	free(msg);
	if (rc < 0)
		return (-1);
	if (store_notice_add(rn->d->st, norm, name, (long long) time(NULL)) == STORE_ERROR)
		msg_warn("%s: database: %s", id, store_errmsg(rn->d->st));
	snprintf(outcome, olen, "the author was told");
	return (0);
}

/* carry_out - one decided (or expired) post; 0 done, -1 retry later */
static int
carry_out(struct runner *rn, const struct store_held *h, char *outcome, size_t olen)
{
	if (strcmp(h->decision, "approve") == 0)
		return (approve(rn, h, outcome, olen));
	if (strcmp(h->decision, "reject") == 0) {
		char	told[256];

		if (tell_author(rn, h, "rejected", told, sizeof(told)) < 0) {
			snprintf(outcome, olen, "deferred: the author's notice cannot go now");
			return (-1);
		}
		snprintf(outcome, olen, "rejected; %s", told);
		return (0);
	}
	snprintf(outcome, olen, "%s: nothing sent", strcmp(h->decision, "expire") == 0
		 ? "expired undecided" : "discarded");
	return (0);
}

/* one_due - a post whose decision is due, or whose time is over */
static void
one_due(struct runner *rn, struct store_held *h)
{
	struct store *st = rn->d->st;
	char	outcome[600] = "";
	int	rc;

	if (h->decision[0] == 0) {
		if ((rc = store_held_expire(st, h->id)) != STORE_YES) {
			if (rc == STORE_ERROR)
				msg_warn("held post %lld: database: %s", h->id, store_errmsg(st));
			return;			/* decided meanwhile: next pass */
		}
		snprintf(h->decision, sizeof(h->decision), "expire");
	}
	if (strcmp(h->decision, "approve") != 0 && strcmp(h->decision, "reject") != 0
	    && strcmp(h->decision, "discard") != 0 && strcmp(h->decision, "expire") != 0)
		return;				/* the CHECK refuses others */
	if (carry_out(rn, h, outcome, sizeof(outcome)) < 0) {
		long long wait = 60LL << (h->attempts < 6 ? h->attempts : 6);

		if (wait > RETRY_MAX)
			wait = RETRY_MAX;
		msg_warn("held post %lld, group=%s: %s %s; trying again in %llds", h->id,
			 h->group, h->decision, outcome, wait);
		if (store_held_retry(st, h->id, (long long) time(NULL) + wait, outcome)
		    == STORE_ERROR)
			msg_warn("held post %lld: database: %s", h->id, store_errmsg(st));
		return;
	}
	if (store_held_done(st, h->id, outcome) == STORE_ERROR) {
		msg_warn("held post %lld: database: %s (carried out again at the next pass; "
			 "an approval is sent once all the same)", h->id, store_errmsg(st));
		return;
	}
	flow_crash_point("held-done", 0);
	held_unlink(rn->cf, h);
	msg_info("held post %lld, group=%s, from=<%s>: decision=%s by %s: %s", h->id, h->group,
		 h->sender, h->decision, h->decided_by[0] ? h->decided_by : "sqlite3", outcome);
}

/* due_pass - step 1 */
static void
due_pass(struct runner *rn)
{
	rn->n = 0;
	if (store_held_due(rn->d->st, (long long) time(NULL), RUNNER_BATCH, collect, rn)
	    == STORE_ERROR) {
		msg_warn("held posts: database: %s", store_errmsg(rn->d->st));
		return;
	}
	for (size_t i = 0; i < rn->n && !runner_stop; i++)
		one_due(rn, &rn->batch[i]);
}

/* A moderator notice in the making. */
struct mod_notice {
	struct runner *rn;
	const struct store_held *h;
	const struct store_group *g;
	const char *msg;		/* the held post */
	size_t	len;
	size_t	moderators, notified;	/* of them, with their notice */
	int	deferred;		/* the relay could not take one now */
};

/* command_with_token - LIST+WHAT+TOKEN@DOMAIN */
static void
command_with_token(const struct conf *cf, const char *group, const char *what,
		   const char *token, char *out, size_t len)
{
	char	w[TOKEN_MAX + 32];

	snprintf(w, sizeof(w), "%s%c%s", what, cf->delim, token);
	if (command_address(out, len, group, cf->delim, w, cf->domain) < 0)
		out[0] = 0;
}

/* moderator_build - the notice about mn->h to moderator; NULL: no memory */
static char *
moderator_build(struct mod_notice *mn, const char *moderator, size_t *len, int *eightbit)
{
	const struct conf *cf = mn->rn->cf;
	const struct store_held *h = mn->h;
	struct notice_vars v;
	char	post[STORE_ADDR_MAX], owner[STORE_ADDR_MAX], token[TOKEN_MAX + 1];
	char	appr[STORE_ADDR_MAX], rej[STORE_ADDR_MAX], disc[STORE_ADDR_MAX], when[64];
	char   *t, *msg;
	const char *text;
	time_t	exp = (time_t) h->expires;
	struct tm tm;

	if (token_held_make(mn->rn->d->key, h->group, h->id, moderator,
			    (unsigned long) h->expires, token, sizeof(token)) < 0)
		return (NULL);
	command_with_token(cf, h->group, "approve", token, appr, sizeof(appr));
	command_with_token(cf, h->group, "reject", token, rej, sizeof(rej));
	command_with_token(cf, h->group, "discard", token, disc, sizeof(disc));
	(void) gmtime_r(&exp, &tm);
	(void) strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
	base_vars(cf, h->group, mn->g->description, &v, post, owner, sizeof(post));
	v.address = moderator;
	v.approve = appr;
	v.reject = rej;
	v.discard = disc;
	v.held_subject = h->subject;
	v.held_from = h->from_addr[0] ? h->from_addr : h->sender;
	v.expires = when;
	t = load_template(cf, h->group, "moderate", &text);
	msg = notice_build_attached(text, &v, owner, NULL, NULL, mn->msg, mn->len, len,
				    eightbit);
	free(t);
	return (msg);
}

/* notify_moderator - store_moderators callback: one moderator's notice
 * about mn->h, unless it has it or had its hourly share */
static int
notify_moderator(void *arg, const char *moderator)
{
	struct mod_notice *mn = arg;
	struct runner *rn = mn->rn;
	struct store *st = rn->d->st;
	char	norm[STORE_ADDR_MAX], id[32], *msg;
	size_t	len;
	long	n;
	int	rc, eightbit = 0;

	mn->moderators++;
	if ((rc = store_held_notice(st, mn->h->id, moderator)) != STORE_NO) {
		mn->notified += rc == STORE_YES;
		return (rc == STORE_ERROR);
	}
	if (command_normalize(moderator, norm, sizeof(norm)) < 0)
		return (0);
	if ((n = store_notice_count(st, norm, "moderate", (long long) time(NULL) - HOUR))
	    == STORE_ERROR)
		return (1);
	if (n >= (long) rn->cf->moderator_notice_limit)
		return (0);			/* it waits for the next hour */
	snprintf(id, sizeof(id), "held%lld", mn->h->id);
	if ((msg = moderator_build(mn, moderator, &len, &eightbit)) == NULL)
		return (1);
	rc = flow_send_notice(rn->d, id, mn->h->group, moderator, "moderate", msg, len,
			      (eightbit ? 1 : 0) | (mn->h->smtputf8 ? 2 : 0));
	free(msg);
	if (rc < 0) {
		mn->deferred = 1;
		return (1);
	}
	if (store_held_notice_add(st, mn->h->id, moderator, (long long) time(NULL)) == STORE_ERROR
	    || store_notice_add(st, norm, "moderate", (long long) time(NULL)) == STORE_ERROR)
		return (1);
	mn->notified++;
	return (0);
}

/* notify_moderators - every moderator's notice about h; -1 when the
 * relay could not take one now */
static int
notify_moderators(struct runner *rn, const struct store_held *h, const struct store_group *g)
{
	struct mod_notice mn = {rn, h, g, NULL, 0, 0, 0, 0};
	char	why[600], *msg;
	long	n;

	if ((msg = held_file(rn->cf, h, &mn.len, why, sizeof(why))) == NULL) {
		msg_warn("held post %lld, group=%s: no notice to the moderators: %s", h->id,
			 h->group, why);
		return (0);
	}
	mn.msg = msg;
	n = store_moderators(rn->d->st, h->group, notify_moderator, &mn);
	free(msg);
	if (n == STORE_ERROR)
		msg_warn("held post %lld: database: %s", h->id, store_errmsg(rn->d->st));
	else if (n == 0) {
		msg_warn("held post %lld, group=%s: the list has no moderator: the post waits "
			 "for a decision with sqlite3 (UPDATE held SET decision = ...), or expires",
			 h->id, h->group);
		(void) store_held_notified(rn->d->st, h->id, HELD_NOTIFIED_MODERATORS);
	} else if (mn.notified == mn.moderators)
		(void) store_held_notified(rn->d->st, h->id, HELD_NOTIFIED_MODERATORS);
	return (mn.deferred ? -1 : 0);
}

/* notify_later - the relay cannot take notices now: pause them, 30 s
 * doubling up to NOTICE_BACKOFF (decisions go on being carried out) */
static void
notify_later(struct runner *rn)
{
	time_t	wait = (time_t) 30 << (rn->notify_fails < 5 ? rn->notify_fails : 5);

	if (wait > NOTICE_BACKOFF)
		wait = NOTICE_BACKOFF;
	rn->notify_fails++;
	rn->notify_after = time(NULL) + wait;
	msg_warn("notices about held posts paused for %lds: the relay cannot take them now",
		 (long) wait);
}

/* notify_pass - step 2 */
static void
notify_pass(struct runner *rn)
{
	if (time(NULL) < rn->notify_after)
		return;
	rn->n = 0;
	if (store_held_unnotified(rn->d->st, RUNNER_BATCH, collect, rn) == STORE_ERROR) {
		msg_warn("held posts: database: %s", store_errmsg(rn->d->st));
		return;
	}
	for (size_t i = 0; i < rn->n && !runner_stop; i++) {
		struct store_held *h = &rn->batch[i];
		struct store_group g;
		char	outcome[300];
		int	rc = store_group(rn->d->st, h->group, &g);

		if (rc != STORE_YES)
			continue;		/* the list is gone: it expires */
		if (!(h->notified & HELD_NOTIFIED_MODERATORS) && notify_moderators(rn, h, &g) < 0) {
			notify_later(rn);
			return;
		}
		if (h->notified & HELD_NOTIFIED_AUTHOR)
			continue;
		if (g.notify_held && tell_author(rn, h, "held", outcome, sizeof(outcome)) < 0) {
			notify_later(rn);
			return;
		}
		if (g.notify_held)
			msg_info("held post %lld, group=%s: %s", h->id, h->group, outcome);
		(void) store_held_notified(rn->d->st, h->id, HELD_NOTIFIED_AUTHOR);
	}
	rn->notify_fails = 0;
}

/*
 * sweep - files in held-maildir that no held row names, an hour old or
 * more: left by a crash between the file and its row (the post was
 * never accepted: Postfix retried it), or by a failed removal.  tmp/
 * files that old are half-written ones.
 */
static void
sweep(struct runner *rn)
{
	static const char *const sub[] = {"new", "tmp"};
	time_t	old = time(NULL) - HOUR;

	for (size_t k = 0; k < 2; k++) {
		char	dir[4096], path[4096 + 300], name[300];
		struct dirent *e;
		struct stat sb;
		DIR    *dp;

		snprintf(dir, sizeof(dir), "%s/%s", rn->cf->held_maildir, sub[k]);
		if ((dp = opendir(dir)) == NULL)
			continue;
		while ((e = readdir(dp)) != NULL && !runner_stop) {
			if (e->d_name[0] == '.' || strlen(e->d_name) >= 256)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			snprintf(name, sizeof(name), "%s/%s", sub[k], e->d_name);
			if (lstat(path, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_mtime > old
			    || (k == 0 && store_held_file(rn->d->st, name) != STORE_NO))
				continue;
			if (unlink(path) == 0)
				msg_info("held-maildir: removed %s: no held post names it", path);
		}
		(void) closedir(dp);
	}
}

/* Changes for one moderator's notice. */
struct changes {
	char	text[16 * 1024];
	size_t	len;
	long long last;
	char	first[STORE_NAME_MAX + 1];
	int	several;		/* of more than one list */
	unsigned n;
};

/* change_line - store_changes callback: one line per change */
static int
change_line(void *arg, const struct store_change *c)
{
	struct changes *ch = arg;
	time_t	t = (time_t) c->at;
	struct tm tm;
	char	when[32];
	int	w;

	if (ch->n == 0)
		snprintf(ch->first, sizeof(ch->first), "%s", c->group);
	else if (strcasecmp(ch->first, c->group) != 0)
		ch->several = 1;
	ch->last = c->id;
	ch->n++;
	(void) gmtime_r(&t, &tm);
	(void) strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	w = snprintf(ch->text + ch->len, sizeof(ch->text) - ch->len, "%s UTC  %s: %s %s (%s)\n",
		     when, c->group, c->address, c->what,
		     strcmp(c->how, "bounces") == 0 ? "after bounces" : "by mail");
	if (w > 0 && (size_t) w < sizeof(ch->text) - ch->len)
		ch->len += (size_t) w;
	return (0);
}

/* owner_notice - store_moderators_all callback: one moderator's notice
 * of changes, at most one an hour */
static int
owner_notice(void *arg, const char *moderator)
{
	struct runner *rn = arg;
	struct store *st = rn->d->st;
	struct changes ch;
	struct notice_vars v;
	char	post[STORE_ADDR_MAX], owner[STORE_ADDR_MAX], *t, *msg;
	const char *text;
	long long now = (long long) time(NULL);
	size_t	len;
	int	rc = STORE_NO, eightbit = 0;

	if (runner_stop || (rc = store_owner_notice_due(st, moderator, now - HOUR)) != STORE_YES)
		return (rc == STORE_ERROR);
	memset(&ch, 0, sizeof(ch));
	if (store_changes(st, moderator, 200, change_line, &ch) == STORE_ERROR)
		return (1);
	if (ch.n == 0)
		return (0);
	base_vars(rn->cf, ch.first, "", &v, post, owner, sizeof(post));
	if (ch.several)
		snprintf(post, sizeof(post), "your lists at %s", rn->cf->domain);
	v.address = moderator;
	v.changes = ch.text;
	t = load_template(rn->cf, ch.several ? NULL : ch.first, "changes", &text);
	msg = notice_build(text, &v, owner, NULL, NULL, &len, &eightbit);
	free(t);
	if (msg == NULL)
		return (1);
	rc = flow_send_notice(rn->d, "owners", ch.first, moderator, "changes", msg, len,
			      eightbit);
	free(msg);
	if (rc == 0 && store_owner_notice_sent(st, moderator, ch.last, now) == STORE_ERROR)
		return (1);
	return (0);
}

/* owners_pass - step 3 */
static void
owners_pass(struct runner *rn)
{
	if (store_moderators_all(rn->d->st, owner_notice, rn) == STORE_ERROR)
		msg_warn("owner notices: database: %s", store_errmsg(rn->d->st));
}

/* runner_signals - stop on SIGTERM/SIGINT/SIGHUP; no SIGPIPE */
static void
runner_signals(void)
{
	struct sigaction sa;
	sigset_t none;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0
	    || sigaction(SIGHUP, &sa, NULL) < 0)
		msg_fatal("sigaction: %s", strerror(errno));
	sa.sa_handler = SIG_IGN;
	(void) sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	(void) sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);
}

/*
 * runner_lock - one runner at a time: after a reload the new runner waits
 * here until the old one has finished its work in hand, so no notice is
 * sent twice.  An flock on mlistd.runner beside the database, released
 * by the kernel when its holder exits.  The descriptor, or -1 when the
 * runner is asked to stop first.
 */
static int
runner_lock(const struct conf *cf)
{
	char	path[4096];
	const char *slash = strrchr(cf->database, '/');
	int	fd;

	snprintf(path, sizeof(path), "%.*smlistd.runner",
		 slash ? (int) (slash - cf->database + 1) : 0, cf->database);
	if ((fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		msg_fatal("%s: %s", path, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		struct timespec nap = {0, 100 * 1000 * 1000};

		if (errno != EWOULDBLOCK && errno != EINTR)
			msg_fatal("lock %s: %s", path, strerror(errno));
		if (runner_stop) {
			(void) close(fd);
			return (-1);
		}
		(void) nanosleep(&nap, NULL);
	}
	return (fd);
}

void
runner_main(const struct conf *cf)
{
	struct runner rn;
	char	hostname[256], err[512];
	pid_t	master = getppid();
	time_t	owners_at = 0, swept_at = 0;
	int	lock;

	msg_syslog_probe();
	runner_signals();
#if defined(HAVE_PRCTL) && defined(PR_SET_NAME)
	(void) prctl(PR_SET_NAME, RUNNER_NAME);
#endif
	if (privs_drop(cf->user, err, sizeof(err)) < 0)
		msg_fatal("%s", err);
#if defined(HAVE_PRCTL) && defined(PR_SET_PDEATHSIG)
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
	if (gethostname(hostname, sizeof(hostname)) < 0 || hostname[0] == 0)
		snprintf(hostname, sizeof(hostname), "%s", cf->domain);
	hostname[sizeof(hostname) - 1] = 0;
	memset(&rn, 0, sizeof(rn));
	rn.cf = cf;
	if ((rn.d = deliver_create(cf, hostname, err, sizeof(err))) == NULL)
		msg_fatal("%s", err);
	rn.ds.d = rn.d;
	rn.ds.client = RUNNER_NAME;
	rn.ds.stop = &runner_stop;
	lock = runner_lock(cf);
	while (lock >= 0 && !runner_stop && getppid() == master) {
		due_pass(&rn);
		if (!runner_stop)
			notify_pass(&rn);
		if (!runner_stop && time(NULL) - owners_at >= OWNERS_EVERY) {
			owners_pass(&rn);
			owners_at = time(NULL);
		}
		if (!runner_stop && time(NULL) - swept_at >= HOUR) {
			sweep(&rn);
			swept_at = time(NULL);
		}
		for (int i = 0; i < RUNNER_INTERVAL * 10 && !runner_stop; i++) {
			struct timespec nap = {0, 100 * 1000 * 1000};

			(void) nanosleep(&nap, NULL);
		}
	}
	deliver_free(rn.d);
	if (lock >= 0)
		(void) close(lock);
	exit(0);
}
