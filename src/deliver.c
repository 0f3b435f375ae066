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
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "bounce.h"
#include "command.h"
#include "deliver.h"
#include "log.h"
#include "notice.h"
#include "probe.h"
#include "relay.h"
#include "rewrite.h"
#include "sockstream.h"
#include "store.h"
#include "token.h"


struct deliver {
	const struct conf *cf;
	struct store *st;
	struct relay *relay;
	char	bounce_addr[512];
	int	verp_warned;		/* logged that the relay lacks XVERP */
	unsigned char key[PROBE_KEY_LEN];	/* signs probe addresses */
};

/* A growing list of recipient addresses for one copy. */
struct rcpt_list {
	char  **v;
	size_t	n, cap;
	const char *group;		/* for warnings */
};

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
	free(d);
}

/* A line of `mlistd -t` per list: who may post, who may subscribe. */
struct report {
	FILE   *fp;
	const struct conf *cf;
};

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
	/* A subscription never adds to members (it would grant posting on
	 * every 'members' list): such a list's subscribers cannot post. */
	if (g->subscribe != SUB_CLOSED && g->posting == POST_MEMBERS)
		fprintf(rp->fp, "mlistd: warning: list %s@%s: subscribe=%s with posting=members: "
			"its new subscribers cannot post (a subscription does not add to "
			"members); set posting = 'group' to let the list's recipients post\n",
			g->name, cf->domain, subscribe[g->subscribe]);
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
	if (maildir_create(cf->bounce_maildir, err, errlen) < 0)
		return (-1);
	if ((st = store_open(cf->database, cf->database_timeout * 1000, err, errlen)) == NULL)
		return (-1);
	if (report) {
		struct report rp = {report, cf};
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

/* split - local part and domain of an address (copy of the local part) */
static int
split(const char *addr, const char *mydomain, char *local, size_t llen,
      const char **domain)
{
	const char *at = strrchr(addr, '@');
	size_t	n;

	if (at == NULL) {
		/* RFC 5321: <postmaster> without a domain is ours. */
		*domain = mydomain;
		at = addr + strlen(addr);
	} else
		*domain = at + 1;
	n = (size_t) (at - addr);
	if (n == 0 || n >= llen)
		return (-1);
	memcpy(local, addr, n);
	local[n] = 0;
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

/* is_bounce - bounce or bounce+TAG */
static int
is_bounce(const struct conf *cf, const char *local)
{
	size_t	n = strlen(cf->bounce_local);

	return (strncasecmp(local, cf->bounce_local, n) == 0
		&& (local[n] == 0 || local[n] == '+'));
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
	if (rc == STORE_YES && g.is_group && g.subscribe == SUB_CLOSED) {
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

	if (split(rcpt, cf->domain, local, sizeof(local), &domain) < 0) {
		smtp_reply_set(r, 501, "5.1.3 <%s>: Bad recipient address syntax", rcpt);
		return;
	}
	if (strcasecmp(domain, cf->domain) != 0) {
		msg_info("%s: reject: RCPT from %s: 550 5.7.1 <%s>: Relay access denied; "
			 "from=<%s>", env->id, ds->client, rcpt, env->sender);
		smtp_reply_set(r, 550, "5.7.1 <%s>: Relay access denied", rcpt);
		return;
	}
	if (is_bounce(cf, local)) {
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

/* collect - store_recipients callback; a row that could not be sent
 * as it is (control characters, brackets, spaces, too long, no @) is
 * skipped with a warning, the other members still get the post */
static int
collect(void *arg, const char *addr)
{
	struct rcpt_list *l = arg;
	size_t	n = 0;
	int	bad = 0;

	for (; addr[n]; n++)
		if ((unsigned char) addr[n] <= 0x20 || addr[n] == 0x7f || addr[n] == '<'
		    || addr[n] == '>')
			bad = 1;
	if (bad || n > 254 || strchr(addr, '@') == NULL) {
		char	shown[80];
		size_t	i;

		for (i = 0; i < sizeof(shown) - 1 && addr[i]; i++)
			shown[i] = (unsigned char) addr[i] < 0x20 || addr[i] == 0x7f ? '?' : addr[i];
		shown[i] = 0;
		msg_warn("group %s: group_members row \"%s%s\" is not a valid address; "
			 "skipped (fix it with sqlite3)", l->group, shown, addr[i] ? "..." : "");
		return (0);
	}
	if (l->n == l->cap) {
		size_t	cap = l->cap ? l->cap * 2 : 64;
		char  **v = realloc(l->v, cap * sizeof(*v));

		if (v == NULL)
			return (-1);
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(addr)) == NULL)
		return (-1);
	l->n++;
	return (0);
}

static void
rcpt_list_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/*
 * crash_point - for the test suite: with MLISTD_CRASH_AT=NAME in the
 * environment, the worker ends at once (_exit, no clean-up) when it gets
 * to NAME, as a SIGKILL there would.  Names: claimed (the copy is claimed,
 * nothing sent), batch-K (the relay accepted transaction K and its
 * checkpoint is committed), before-mark (a copy sent in several
 * transactions: all committed, the copy not yet marked complete),
 * before-reply (all done, the 250 not yet written); for requests by mail,
 * answer-reserved (the answer is remembered, not yet sent) and confirmed
 * (the change is committed, the welcome or goodbye not yet sent).  NAME:FILE ends the
 * worker only if FILE can be created, i.e. once.  See mlistd(8),
 * ENVIRONMENT.
 */
static void
crash_point(const char *name, unsigned k)
{
	static const char *want;
	static int looked;
	char	here[32];
	const char *colon;
	size_t	n;

	if (!looked++)
		want = getenv("MLISTD_CRASH_AT");
	if (want == NULL)
		return;
	if (k > 0)
		snprintf(here, sizeof(here), "%s-%u", name, k);
	else
		snprintf(here, sizeof(here), "%s", name);
	colon = strchr(want, ':');
	n = colon ? (size_t) (colon - want) : strlen(want);
	if (strlen(here) == n && strncmp(want, here, n) == 0) {
		if (colon) {
			int	fd = open(colon + 1, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0600);

			if (fd < 0)
				return;		/* crashed here once already */
			(void) close(fd);
		}
		msg_warn("MLISTD_CRASH_AT=%s: exiting here, as a test asked", here);
		_exit(70);
	}
}

/* Seconds a claim's lease has beyond the work it covers. */
#define CLAIM_MARGIN	5

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
};

/* boot_now - the boot clock (CLOCK_BOOTTIME), seconds: claims' leases */
static double
boot_now(void)
{
	struct timespec ts;

#ifdef CLOCK_BOOTTIME
	if (clock_gettime(CLOCK_BOOTTIME, &ts) == 0)
		return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
#endif
	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

/*
 * owner_now - this worker as a claim's owner, now: pid, the host's boot
 * id (read once), the boot clock and the wall clock.  The lease covers
 * all a worker may still do after it claims: data-done-timeout of relay
 * work, two commits that may each wait database-timeout, and a margin.
 */
static void
owner_now(const struct conf *cf, struct store_owner *o)
{
	static char boot[40];
	static int looked;

	if (!looked++) {
		FILE   *fp = fopen("/proc/sys/kernel/random/boot_id", "r");

		if (fp == NULL || fgets(boot, sizeof(boot), fp) == NULL) {
			boot[0] = 0;
			msg_warn("cannot read the boot id (/proc/sys/kernel/random/boot_id): "
				 "a claim left by a worker before a reboot is taken over only "
				 "when its lease ends");
		}
		boot[strcspn(boot, "\n")] = 0;
		if (fp)
			(void) fclose(fp);
	}
	o->pid = (long) getpid();
	snprintf(o->boot, sizeof(o->boot), "%s", boot);
	o->now = (long long) boot_now();
	o->wall = (long long) time(NULL);
	o->lease = cf->data_done_timeout + 2 * cf->database_timeout + CLAIM_MARGIN;
}

/* enhanced_status - "5.1.1" from "550 5.1.1 text", or "" */
static void
enhanced_status(const char *reply, char *status, size_t len)
{
	const char *p = reply + strspn(reply, "0123456789");

	p += strspn(p, " ");
	status[0] = 0;
	if (isdigit((unsigned char) p[0]) && p[1] == '.')
		snprintf(status, len, "%.*s", (int) strcspn(p, " "), p);
}

/* refusal_row - an address of list `group` refused by the relay at RCPT
 * (a member, or the addressee of a notice): a bounces row, evidence */
static int
refusal_row(struct deliver *d, const char *id, const char *group, const char *rcpt,
	    const char *reply)
{
	struct store_bounce b;
	char	status[16], diag[512];

	enhanced_status(reply, status, sizeof(status));
	/* No enhanced code ("550 User unknown"): its class, so that it
	 * counts as a hard refusal (RFC 3463: X.0.0). */
	if (status[0] == 0 && (reply[0] == '5' || reply[0] == '4'))
		snprintf(status, sizeof(status), "%c.0.0", reply[0]);
	snprintf(diag, sizeof(diag), "smtp; %s", reply);
	memset(&b, 0, sizeof(b));
	b.envelope_to = d->bounce_addr;
	b.address = rcpt;
	b.status = status[0] ? status : NULL;
	b.action = "failed";
	b.diagnostic = diag;
	b.group_name = group;
	b.evidence = 1;			/* our own relay said so */
	msg_info("%s: to=<%s>, group=%s, relay refused: %s", id, rcpt, group, reply);
	return (store_add_bounce(d->st, &b) == STORE_ERROR ? -1 : 0);
}

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

	if (refusal_row(d, id, group, rcpt, reply) < 0)
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
		owner_now(cf, &cx->o);
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
 * took the copy over) records nothing and stops at once.  A database
 * error (an administrator's sqlite3 session holding a lock, say) is
 * tried again while the lease leaves room: nobody can take the copy over
 * before then, and forgetting whom the relay just served would send them
 * a second copy on the retry.
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
		if (cx->c.id == 0 || boot_now() + cf->database_timeout + 1 >= cx->lease_end) {
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
		crash_point("batch", ++cx->batches);
	return (0);
}

/* stop_requested - SIGTERM, SIGINT or SIGHUP arrived (blocked in a session) */
static int
stop_requested(const struct deliver_session *ds)
{
	sigset_t pending;

	if (ds->stop && *ds->stop)
		return (1);
	return (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1
					      || sigismember(&pending, SIGINT) == 1
					      || sigismember(&pending, SIGHUP) == 1));
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

	if (stop_requested(cx->ds)) {
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
	if (cx->c.id && boot_now() + last >= cx->lease_end) {
		msg_warn("%s: group=%s: stopping after %zu of %zu members: the claim's lease "
			 "is over (the worker was stopped or the machine slept); the retry "
			 "resumes", cx->env->id, cx->g->name, cx->done, cx->total);
		return (-1);
	}
	return (0);
}

/* needs_utf8 - any byte above 127 */
static int
needs_utf8(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x80)
			return (1);
	return (0);
}

/* lookup_failed - the database let us down: log it, answer 451 */
static void
lookup_failed(struct deliver *d, const struct smtp_envelope *env,
	      struct smtp_reply *r)
{
	msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	smtp_reply_set(r, 451, "4.3.0 Error: temporary lookup failure, try again later");
}

/*
 * check_post - may this message go to list g?  Returns 0, or fills in the
 * reply (5xx refusal or 451) and returns -1.
 */
static int
check_post(struct deliver_session *ds, const struct smtp_envelope *env,
	   const struct rewrite_msg *m, const struct store_group *g,
	   struct smtp_reply *r)
{
	const struct conf *cf = ds->d->cf;
	struct rewrite_from from;

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
	if (g->posting == POST_ANYONE)
		return (0);
	switch (rewrite_from(m, &from)) {
	case 0:
		break;
	case -2:
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return (-1);
	default:
		msg_info("%s: reject: no usable From: address for list %s", env->id, g->name);
		smtp_reply_set(r, 550, "5.7.1 <%s@%s>: the message has no valid From: "
			       "address", g->name, cf->domain);
		return (-1);
	}
	/*
	 * Several mailboxes in From: each of them must be allowed to post.
	 * posting = 'group' means the list's current recipients: in
	 * group_members and not unsubscribed from it or from every list.
	 */
	for (size_t i = 0; i < from.n; i++) {
		int	ok = g->posting == POST_MEMBERS ? store_is_member(ds->d->st, from.addr[i])
			: store_is_recipient(ds->d->st, g->name, from.addr[i]);

		if (ok == STORE_ERROR) {
			lookup_failed(ds->d, env, r);
			return (-1);
		}
		if (ok == STORE_NO) {
			msg_info("%s: reject: from=<%s> may not post to %s (posting=%s)", env->id,
				 from.addr[i], g->name,
				 g->posting == POST_MEMBERS ? "members" : "group");
			smtp_reply_set(r, 550, "5.7.1 <%s@%s>: %s is not allowed to post to this "
				       "list", g->name, cf->domain, from.addr[i]);
			return (-1);
		}
	}
	return (0);
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

/*
 * send_copy - one list: claim, recipients, rewrite, relay with a
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
static int
send_copy(struct deliver_session *ds, const struct smtp_envelope *env,
	  const struct rewrite_msg *m, const struct store_group *g,
	  const char *digest, double eod_start, struct smtp_reply *r,
	  unsigned *copies)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	struct rcpt_list rl = {NULL, 0, 0, g->name};
	struct rewrite_list l;
	struct relay_result res;
	struct copy_ctx cx;
	struct relay_hooks hooks;
	enum relay_status st;
	char   *copy, msgid[256];
	unsigned flags = 0;
	size_t	clen;
	long	n;
	int	claim = CLAIM_NEW, rc;

	memset(&cx, 0, sizeof(cx));
	cx.ds = ds;
	cx.env = env;
	cx.g = g;
	cx.deadline = eod_start + cf->data_done_timeout;
	if (cf->dedup_window > 0) {
		rewrite_message_id(m, msgid, sizeof(msgid));
		owner_now(cf, &cx.o);
		claim = store_claim(d->st, g->name, digest, msgid[0] ? msgid : NULL,
				    cf->dedup_window, &cx.o, &cx.c);
		cx.lease_end = (double) (cx.o.now + cx.o.lease);
		switch (claim) {
		case STORE_ERROR:
			lookup_failed(d, env, r);
			return (-1);
		case CLAIM_DONE:
			msg_info("%s: group=%s, from=<%s>, status=duplicate (already relayed at "
				 "%s UTC; not sent again)", env->id, g->name, env->sender, cx.c.when);
			(*copies)++;
			return (0);
		case CLAIM_BUSY:
			msg_info("%s: group=%s, from=<%s>, status=deferred (the same message is "
				 "being relayed by process %ld since %s UTC; not sent twice)",
				 env->id, g->name, env->sender, cx.c.owner, cx.c.when);
			smtp_reply_set(r, 451, "4.3.0 Error: this message is being sent to the "
				       "list right now, try again later");
			return (-1);
		case CLAIM_RESUME:
			msg_info("%s: group=%s, from=<%s>, resuming a copy first claimed at %s UTC: "
				 "members already served are skipped", env->id, g->name,
				 env->sender, cx.c.when);
			break;
		}
		crash_point("claimed", 0);
	}
	if (store_read_begin(d->st) == STORE_ERROR)
		n = STORE_ERROR;
	else
		n = store_recipients(d->st, g->name, claim == CLAIM_RESUME ? cx.c.id : 0,
				     collect, &rl);
	store_read_end(d->st);
	if (n == STORE_ERROR) {
		rcpt_list_free(&rl);
		lookup_failed(d, env, r);
		goto release;
	}
	if (rl.n == 0) {
		rcpt_list_free(&rl);
		if (cx.c.id && (rc = store_release(d->st, cx.c.id, 1, cf->dedup_window, &cx.o))
		    != STORE_YES) {
			if (rc == STORE_ERROR)
				lookup_failed(d, env, r);
			else
				claim_lost(env, g, r);
			return (-1);
		}
		msg_info("%s: group=%s, from=<%s>, nrcpt=0, status=sent (no %srecipients)",
			 env->id, g->name, env->sender, claim == CLAIM_RESUME ? "more " : "");
		(*copies)++;
		return (0);
	}
	l.group = g->name;
	l.description = g->description;
	l.domain = cf->domain;
	l.bounce_local = cf->bounce_local;
	l.postmaster_local = cf->postmaster_local;
	l.is_group = g->is_group;
	l.delim = g->is_group && g->subscribe != SUB_CLOSED ? cf->delim : 0;
	if ((copy = rewrite_copy(m, &l, &clen)) == NULL) {
		rcpt_list_free(&rl);
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		goto release;
	}
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
	if (env->body_8bit)
		flags |= RELAY_8BITMIME;
	if (env->smtputf8)
		flags |= RELAY_SMTPUTF8;
	for (size_t i = 0; i < rl.n && !(flags & RELAY_SMTPUTF8); i++)
		if (needs_utf8(rl.v[i]))
			flags |= RELAY_SMTPUTF8;
	cx.total = rl.n;
	/* The lease, again, right before the relay is contacted: the machine
	 * may have slept since the claim (later transactions: proceed). */
	if (cx.c.id && boot_now() >= cx.lease_end) {
		free(copy);
		rcpt_list_free(&rl);
		msg_warn("%s: group=%s: the claim's lease ended before the relay was contacted "
			 "(the worker was stopped or the machine slept); the retry sends",
			 env->id, g->name);
		smtp_reply_set(r, 451, "4.4.0 Error: cannot relay the list copy now, "
			       "try again later");
		goto release;
	}
	hooks.checkpoint = checkpoint;
	hooks.proceed = proceed;
	hooks.arg = &cx;
	hooks.hard_deadline = cx.deadline;
	st = relay_send(d->relay, d->bounce_addr, flags, rl.v, rl.n,
			cf->relay_recipient_limit, copy, clen, &hooks, &res);
	free(copy);
	if (st == RELAY_OK && cx.c.id && !cx.completed) {
		/* Sent in several transactions, each committed: now complete.
		 * Should this fail, the retry finds nobody left and says 250. */
		crash_point("before-mark", 0);
		if ((rc = store_release(d->st, cx.c.id, 1, cf->dedup_window, &cx.o)) == STORE_YES)
			cx.completed = 1;
		else if (rc == STORE_NO)
			cx.lost = 1;
		else
			msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	}
	if (st == RELAY_OK && (cx.completed || cx.c.id == 0)) {
		crash_point("before-reply", 0);
		msg_info("%s: group=%s, from=<%s>, nrcpt=%zu, refused=%zu, relay=%s, "
			 "status=sent (%s)", env->id, g->name, env->sender, res.accepted,
			 res.refused, cf->relay, res.accepted ? res.queued : "every member refused");
		(*copies)++;
		rcpt_list_free(&rl);
		return (0);
	}
	if (cx.lost) {
		rcpt_list_free(&rl);
		claim_lost(env, g, r);
		return (-1);
	}
	if (res.problem && (res.accepted > 0 || claim == CLAIM_RESUME)
	    && strncmp(res.reply, "every recipient refused: ", 25) == 0)
		/* The relay took this copy for others: an access rule may
		 * refuse these members alone, or its configuration changed. */
		msg_warn("%s: group=%s: the relay refused every recipient of a transaction "
			 "for a reason not about their mailboxes (%s) after it took this copy for "
			 "other members: either its access rules refuse these members (remove "
			 "them from the list, or change the rules) or its configuration changed; "
			 "the post gets 451 and is retried for them alone, never counted as "
			 "their bounce", env->id, g->name, res.reply + 25);
	else if (res.problem)
		msg_warn("%s: group=%s: the relay refuses mlistd itself: %s; every post gets "
			 "451 until the relay accepts mail from mlistd for any recipient "
			 "(Postfix: mynetworks or smtpd_relay_restrictions for mlistd's "
			 "address, smtpd_recipient_limit >= relay-recipient-limit)",
			 env->id, g->name, res.reply);
	msg_warn("%s: group=%s, from=<%s>, nrcpt=%zu, served=%zu, refused=%zu, "
		 "deferred=%zu, relay=%s, status=%s (%s)", env->id, g->name, env->sender,
		 rl.n, res.accepted, res.refused, res.deferred, cf->relay,
		 st == RELAY_PERM ? "bounced" : "deferred",
		 st == RELAY_OK ? "could not record the copy as complete" : res.reply);
	rcpt_list_free(&rl);
	/* 5xx upstream only when no member got anything, in any attempt. */
	if (st == RELAY_PERM && *copies == 0 && claim != CLAIM_RESUME)
		smtp_reply_set(r, 554, "5.3.0 Error: the relay refused the list copy: %s",
			       res.reply);
	else
		smtp_reply_set(r, 451, "4.4.0 Error: cannot relay the list copy now, "
			       "try again later");
release:
	/* The retry resumes where this attempt stopped. */
	if (cx.c.id && store_release(d->st, cx.c.id, 0, cf->dedup_window, &cx.o) == STORE_ERROR)
		msg_warn("%s: group=%s: cannot release the claim (a retry waits until its "
			 "lease ends): %s", env->id, g->name, store_errmsg(d->st));
	return (-1);
}

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
	if (relay_send(d->relay, sender, needs_utf8(member) ? RELAY_SMTPUTF8 : 0, rcpt, 1, 1,
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

/* A probe's bounce, as store_bounce sees it. */
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

/*
 * store_bounce - one bounce message, however many bounce addresses
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
static int
store_bounce(struct deliver_session *ds, const struct smtp_envelope *env,
	     const char *rcpt, const char *local, size_t nbounce, int verp_ok,
	     const char *msg, size_t len, const struct bounce_report *rep,
	     struct smtp_reply *r)
{
	struct deliver *d = ds->d;
	const struct conf *cf = d->cf;
	char	name[512], file[600], err[1024], verp[SMTP_ADDR_MAX + 1], group[128];
	const char *dir = cf->bounce_maildir, *probe_for[3];
	struct store_bounce b;
	struct probe_hit ph;
	enum probe_answer answer = ANSWER_UNCLEAR;
	const char *why = "";
	size_t	rows = 0, nprobe = 0;
	int	have_verp, have_group, ok = 1;

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
		/*
		 * The probe went to one member: one row.  Evidence only if the
		 * answer reports a failure; an answer from the mailbox itself
		 * (an auto-reply, a message from the member) is proof of life.
		 */
		const struct bounce_rcpt *x = NULL;
		char	diag[600];

		answer = probe_answer(cf, env, msg, len, rep, ph.member, &why);
		for (size_t i = 0; i < rep->nrcpt && x == NULL; i++)
			if (strcmp(rep->rcpt[i].action, "failed") == 0)
				x = &rep->rcpt[i];
		b.address = ph.member;
		b.group_name = ph.group;
		if (answer == ANSWER_FAILED && x) {
			b.status = x->status[0] ? x->status : NULL;
			b.action = "failed";
			b.diagnostic = x->diagnostic[0] ? x->diagnostic : NULL;
		} else if (answer == ANSWER_FAILED) {
			/* A failure notice that came back to a tag only we make. */
			b.status = "5.0.0";
			b.action = "failed";
			b.diagnostic = "probe returned in a failure notice without a "
				"delivery-status report";
		} else if (answer == ANSWER_ALIVE) {
			snprintf(diag, sizeof(diag), "probe answered by %s: proof of life", why);
			b.diagnostic = diag;
		} else if (rep->nrcpt > 0) {
			b.status = rep->rcpt[0].status[0] ? rep->rcpt[0].status : NULL;
			b.action = rep->rcpt[0].action[0] ? rep->rcpt[0].action : NULL;
			b.diagnostic = rep->rcpt[0].diagnostic[0] ? rep->rcpt[0].diagnostic : NULL;
		}
		b.evidence = answer == ANSWER_FAILED;
		ok = store_add_bounce(d->st, &b) != STORE_ERROR;
		if (ok && answer == ANSWER_FAILED)
			ok = store_probe_mark(d->st, ph.member, (long long) ph.expires,
					      (long long) time(NULL)) != STORE_ERROR;
		else if (ok && answer == ANSWER_ALIVE)
			ok = store_probe_alive(d->st, ph.member, (long long) ph.expires,
					       (long long) time(NULL)) != STORE_ERROR;
		rows++;
		/* Enough evidence unsubscribes the member from that list. */
		if (ok && b.evidence && cf->bounce_threshold > 0) {
			long	n = store_evidence(d->st, ph.member, cf->bounce_window);
			int	u = STORE_NO;

			if (n == STORE_ERROR)
				ok = 0;
			else if (n >= (long) cf->bounce_threshold
				 && (u = store_unsubscribe(d->st, ph.group, ph.member, "bounces")) == STORE_ERROR)
				ok = 0;
			else if (u == STORE_YES)
				msg_info("%s: unsubscribed <%s> from %s after %ld bounced probes in "
					 "%u days", env->id, ph.member, ph.group, n, cf->bounce_window);
		}
	}
	for (size_t i = 0; !ph.valid && i < rep->nrcpt && ok; i++) {
		const struct bounce_rcpt *x = &rep->rcpt[i];
		char	diag[1400];

		/* With VERP the envelope names the member, even if the report
		 * names a forwarding target. */
		b.address = (have_verp && rep->nrcpt == 1) ? verp : x->address;
		b.status = x->status[0] ? x->status : NULL;
		b.action = x->action[0] ? x->action : NULL;
		if (b.address == verp && strcasecmp(verp, x->address) != 0)
			snprintf(diag, sizeof(diag), "%s (reported for <%s>)", x->diagnostic,
				 x->address);
		else
			snprintf(diag, sizeof(diag), "%s", x->diagnostic);
		b.diagnostic = diag[0] ? diag : NULL;
		ok = store_add_bounce(d->st, &b) != STORE_ERROR;
		rows++;
		if (strcmp(x->action, "failed") == 0 && x->status[0] == '5'
		    && nprobe < sizeof(probe_for) / sizeof(probe_for[0]))
			probe_for[nprobe++] = b.address;
	}
	if (ok && !ph.valid && rep->nrcpt == 0) {
		/* Nothing parsable: one row, the member if VERP tells it. */
		b.address = have_verp ? verp : NULL;
		ok = store_add_bounce(d->st, &b) != STORE_ERROR;
		rows++;
		if (have_verp)
			probe_for[nprobe++] = verp;
	}
	if (!ok)
		goto db_failed;
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
	for (size_t i = 0; cf->bounce_threshold > 0 && i < nprobe; i++) {
		char	g[STORE_NAME_MAX + 1];
		int	due;

		if (store_member_group(d->st, probe_for[i], have_group ? group : NULL, g,
				       sizeof(g)) != STORE_YES)
			continue;		/* not ours to probe */
		due = store_probe_due(d->st, probe_for[i], cf->probe_interval,
				      (long long) time(NULL));
		if (due == STORE_YES)
			send_probe(ds, env, probe_for[i], g);
		else if (due == STORE_NO)
			msg_info("%s: no probe for <%s>: one was sent within probe-interval",
				 env->id, probe_for[i]);
	}
	return (0);
db_failed:
	msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	store_rollback(d->st);
	maildir_unlink(dir, "tmp", name);
	smtp_reply_set(r, 451, "4.3.0 Error: cannot record the bounce, try again later");
	return (-1);
}

/*
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
 */

/* A command address named in the transaction. */
struct cmd_rcpt {
	struct command c;
	const char *rcpt;
};

#define HOUR	3600
#define UNSUBSCRIBE_PER_HOUR 3	/* confirmation requests to a current
				 * recipient, per list and address */

/* expiry_text - "2026-12-04 15:00 UTC" */
static void
expiry_text(unsigned long t, char *buf, size_t len)
{
	time_t	tt = (time_t) t;
	struct tm tm;

	(void) gmtime_r(&tt, &tm);
	(void) strftime(buf, len, "%Y-%m-%d %H:%M UTC", &tm);
}

/* notice_refusal - relay hook: keep the reply that refused the addressee */
static int
notice_refusal(void *arg, const struct relay_outcome *o, size_t n)
{
	char   *reply = arg;

	for (size_t i = 0; i < n; i++)
		if (!o[i].accepted && o[i].reply)
			snprintf(reply, RELAY_LINE_MAX, "%s", o[i].reply);
	return (0);
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
	char	what[TOKEN_MAX + 16], when[64], why[600], msgid[256], *text, *msg, *rcpt[1];
	char	list[STORE_NAME_MAX + 1], refusal[RELAY_LINE_MAX] = "";
	struct relay_hooks hooks = {notice_refusal, NULL, refusal, 0};
	struct notice_vars v;
	struct relay_result res;
	enum relay_status st;
	size_t	len;
	int	eightbit = 0, rc = -1;

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
	if ((text = notice_load(cf->template_dir, name, why, sizeof(why))) == NULL && why[0])
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
	rcpt[0] = (char *) address;
	st = relay_send(d->relay, d->bounce_addr, (eightbit ? RELAY_8BITMIME : 0)
			| (needs_utf8(address) ? RELAY_SMTPUTF8 : 0), rcpt, 1, 1, msg, len,
			&hooks, &res);
	free(msg);
	if (st == RELAY_OK && res.accepted == 1) {
		msg_info("%s: group=%s, notice=%s, to=<%s>, relay=%s, status=sent (%s)", env->id,
			 g->name, name, address, cf->relay, res.queued);
		rc = 0;
	} else if (st == RELAY_OK && res.refused == 1) {
		msg_info("%s: group=%s, notice=%s, to=<%s>, status=bounced (the relay refused "
			 "the address)", env->id, g->name, name, address);
		if (refusal_row(d, env->id, g->name, address, refusal) < 0)
			msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
		rc = 0;
	} else
		msg_warn("%s: group=%s, notice=%s, to=<%s>, relay=%s, status=deferred (%s)",
			 env->id, g->name, name, address, cf->relay, res.reply);
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
 * its own instead: UNSUBSCRIBE_PER_HOUR per list and address.  The row in `requests` is committed
 * before the notice goes out (so two workers cannot both answer), and
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
		n = store_request_unsubs(d->st, g->name, address, (long long) now - HOUR, digest,
					 &last, &valid);
		if (n == STORE_ERROR)
			goto db_failed;
		if (n >= UNSUBSCRIBE_PER_HOUR) {
			char	sent[64], until[64];

			store_rollback(d->st);
			expiry_text((unsigned long) last, sent, sizeof(sent));
			expiry_text((unsigned long) valid, until, sizeof(until));
			msg_info("%s: group=%s: no %s notice for <%s>: %ld sent within the hour; a "
				 "valid confirmation request went out at %s and is valid until %s",
				 env->id, g->name, name, address, n, sent, until);
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
	crash_point("answer-reserved", 0);
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
	lookup_failed(d, env, r);
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
	crash_point("confirmed", 0);
notice:
	if ((ok = store_request_sibling(d->st, digest, g->name, who, action)) == STORE_ERROR) {
		lookup_failed(d, env, r);
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
	lookup_failed(d, env, r);
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
		lookup_failed(d, env, r);
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
 * command_mail - the end of data for one command address.  0 when done
 * with (answered, forwarded, or ignored on purpose), -1 with the reply set.
 */
static int
command_mail(struct deliver_session *ds, const struct smtp_envelope *env,
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
		lookup_failed(d, env, r);
		return (-1);
	}
	if (rc == STORE_NO || !g.is_group) {
		msg_info("%s: <%s>: the list is gone since RCPT; request ignored", env->id,
			 cr->rcpt);
		return (0);
	}
	if (g.subscribe == SUB_CLOSED) {
		/* As in the original design: a person handles it, and the
		 * mail is checked as mail to the postmaster alias would be. */
		if ((rc = store_group(d->st, cf->postmaster_local, &pm)) == STORE_YES)
			return (check_post(ds, env, m, &pm, r) < 0 ? -1
				: send_copy(ds, env, m, &pm, digest, eod_start, r, copies));
		if (rc == STORE_ERROR) {
			lookup_failed(d, env, r);
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
		owner_now(cf, &o);
		switch (store_claim(d->st, name, digest, NULL, cf->dedup_window, &o, &c)) {
		case STORE_ERROR:
			lookup_failed(d, env, r);
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

/* d_data - the end of data */
static void
d_data(void *vctx, const struct smtp_envelope *env, const char *msg,
       size_t len, struct smtp_reply *r)
{
	struct deliver_session *ds = vctx;
	const struct conf *cf = ds->d->cf;
	struct store_group *groups = NULL;
	struct cmd_rcpt *cmds = NULL;
	struct rewrite_msg *m = NULL;
	size_t	ngroups = 0, nbounce = 0, ncmds = 0;
	unsigned copies = 0;
	int	refused = 0;		/* r holds a refusal or a 4xx */
	char	digest[41];
	double	eod_start = sockstream_now();

	if ((groups = calloc(env->nrcpt, sizeof(*groups))) == NULL
	    || (cmds = calloc(env->nrcpt, sizeof(*cmds))) == NULL) {
		free(groups);
		smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
		return;
	}
	/*
	 * The lookups run in one read transaction: one round of locks
	 * instead of one per statement.  First the distinct lists of this
	 * transaction, then whether each of them takes the post.
	 */
	if (store_read_begin(ds->d->st) == STORE_ERROR) {
		lookup_failed(ds->d, env, r);
		goto done;
	}
	for (size_t i = 0; i < env->nrcpt && !refused; i++) {
		char	local[SMTP_ADDR_MAX + 1];
		const char *domain;
		size_t	k;
		int	rc;

		if (split(env->rcpt[i], cf->domain, local, sizeof(local), &domain) < 0)
			continue;
		if (is_bounce(cf, local)) {
			nbounce++;
			continue;
		}
		for (k = 0; k < ngroups; k++)
			if (strcasecmp(groups[k].name, local) == 0)
				break;
		if (k < ngroups)
			continue;
		rc = store_group(ds->d->st, local, &groups[ngroups]);
		if (rc == STORE_ERROR) {
			lookup_failed(ds->d, env, r);
			refused = 1;
		} else if (rc == STORE_NO && command_parse(local, cf->delim, &cmds[ncmds].c) == 0) {
			/* A command address: answered after the lists. */
			cmds[ncmds++].rcpt = env->rcpt[i];
		} else if (rc == STORE_NO) {
			/* Deleted between RCPT and DATA. */
			smtp_reply_set(r, 550, "5.1.1 <%s>: Recipient address rejected: "
				       "no such list or alias", env->rcpt[i]);
			refused = 1;
		} else
			ngroups++;
	}
	if (!refused && (ngroups > 0 || ncmds > 0)) {
		struct rewrite_limits lim = {cf->max_header_fields, cf->max_header_size};

		switch (rewrite_parse(msg, len, &lim, &m)) {
		case REWRITE_OK:
			break;
		case REWRITE_TOO_MANY:
		case REWRITE_TOO_BIG:
			msg_info("%s: reject: header over max-header-fields (%u) or "
				 "max-header-size (%lu)", env->id, cf->max_header_fields,
				 cf->max_header_size);
			smtp_reply_set(r, 552, "5.3.4 Error: message header too large "
				       "(limit %u fields, %lu bytes)", cf->max_header_fields,
				       cf->max_header_size);
			refused = 1;
			break;
		default:
			smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
			refused = 1;
		}
	}
	for (size_t k = 0; k < ngroups && !refused; k++)
		if (check_post(ds, env, m, &groups[k], r) < 0)
			refused = 1;
	store_read_end(ds->d->st);
	/* A temporary failure: Postfix retries the whole transaction. */
	if (refused && r->code < 500)
		goto done;
	/*
	 * Bounces before copies: should a list copy then fail, the retry
	 * records the bounce again, which is harmless; copies are never sent
	 * twice for a bounce's sake.  A post refused for good (5xx) is
	 * refused only after the bounce beside it was kept.
	 */
	if (nbounce > 0) {
		struct bounce_report rep;

		/* Anyone can send a bounce: a large one is not worth keeping. */
		if (len > cf->bounce_max_size) {
			msg_info("%s: reject: bounce of %zu bytes over bounce-max-size", env->id, len);
			smtp_reply_set(r, 552, "5.3.4 Error: bounce too large (limit %lu bytes)",
				       cf->bounce_max_size);
			goto done;
		}
		if (bounce_parse(msg, len, &rep) < 0) {
			smtp_reply_set(r, 452, "4.3.1 Error: insufficient system storage");
			goto done;
		}
		/*
		 * One file and one set of rows for the message, not one per
		 * bounce address it names (50 bounce+TAG recipients must not
		 * make 50 copies).  A VERP tag counts only if it is the only one.
		 */
		{
			char	first[SMTP_ADDR_MAX + 1] = "";
			const char *first_rcpt = NULL;
			int	tags_agree = 1;

			for (size_t i = 0; i < env->nrcpt; i++) {
				char	local[SMTP_ADDR_MAX + 1];
				const char *domain;

				if (split(env->rcpt[i], cf->domain, local, sizeof(local), &domain) < 0
				    || !is_bounce(cf, local))
					continue;
				if (first_rcpt == NULL) {
					first_rcpt = env->rcpt[i];
					snprintf(first, sizeof(first), "%s", local);
				} else if (strcasecmp(first, local) != 0)
					tags_agree = 0;
			}
			if (first_rcpt && store_bounce(ds, env, first_rcpt, first, nbounce,
						       tags_agree, msg, len, &rep, r) < 0) {
				bounce_report_free(&rep);
				goto done;
			}
		}
		bounce_report_free(&rep);
	}
	if (refused)
		goto done;
	if (ngroups > 0 || ncmds > 0)
		rewrite_digest(m, digest);
	for (size_t k = 0; k < ngroups; k++)
		if (send_copy(ds, env, m, &groups[k], digest, eod_start, r, &copies) < 0)
			goto done;
	for (size_t k = 0; k < ncmds; k++)
		if (command_mail(ds, env, m, &cmds[k], digest, eod_start, r, &copies) < 0)
			goto done;
	smtp_reply_set(r, 250, "2.0.0 Ok: queued as %s", env->id);
done:
	rewrite_msg_free(m);
	free(groups);
	free(cmds);
}
