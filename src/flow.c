/*
 * flow.c - what the flows below deliver.c share: the worker's context
 * (struct deliver, flow.h), addresses, recipient lists, the claim's
 * owner and clocks, refusal rows, the 451 on a failed lookup, and the
 * test suite's crash points.
 *
 * Public: flow_split, flow_is_bounce, flow_collect and flow_rcpt_free,
 * flow_crash_point, flow_boot_now, flow_owner_now, flow_refusal_row,
 * flow_needs_utf8, flow_stop_requested, flow_lookup_failed.
 *
 * Memory: a struct rcpt_list owns its addresses (flow_collect copies
 * them); flow_rcpt_free frees them.  Nothing else here allocates.
 */
#include "config.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "flow.h"
#include "log.h"
#include "relay.h"
#include "store.h"

/* flow_split - local part and domain of an address (copy of the local part) */
int
flow_split(const char *addr, const char *mydomain, char *local, size_t llen,
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

/* flow_is_bounce - bounce or bounce+TAG */
int
flow_is_bounce(const struct conf *cf, const char *local)
{
	size_t	n = strlen(cf->bounce_local);

	return (strncasecmp(local, cf->bounce_local, n) == 0
		&& (local[n] == 0 || local[n] == '+'));
}

/* flow_collect - store_recipients callback; a row that could not be sent
 * as it is (control characters, brackets, spaces, too long, no @) is
 * skipped with a warning, the other members still get the post */
int
flow_collect(void *arg, const char *addr)
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

/* flow_rcpt_free - free the addresses, empty the list */
void
flow_rcpt_free(struct rcpt_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}

/*
 * flow_crash_point - for the test suite: with MLISTD_CRASH_AT=NAME in the
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
void
flow_crash_point(const char *name, unsigned k)
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

/* flow_boot_now - the boot clock (CLOCK_BOOTTIME), seconds: claims' leases */
double
flow_boot_now(void)
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
 * flow_owner_now - this worker as a claim's owner, now: pid, the host's boot
 * id (read once), the boot clock and the wall clock.  The lease covers
 * all a worker may still do after it claims: data-done-timeout of relay
 * work, two commits that may each wait database-timeout, and a margin.
 */
void
flow_owner_now(const struct conf *cf, struct store_owner *o)
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
	o->now = (long long) flow_boot_now();
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

/* flow_refusal_row - an address of list `group` refused by the relay at RCPT
 * (a member, or the addressee of a notice): a bounces row, evidence */
int
flow_refusal_row(struct deliver *d, const char *id, const char *group,
		 const char *rcpt, const char *reply)
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

/* flow_stop_requested - SIGTERM, SIGINT or SIGHUP arrived (blocked in a session) */
int
flow_stop_requested(const struct deliver_session *ds)
{
	sigset_t pending;

	if (ds->stop && *ds->stop)
		return (1);
	return (sigpending(&pending) == 0 && (sigismember(&pending, SIGTERM) == 1
					      || sigismember(&pending, SIGINT) == 1
					      || sigismember(&pending, SIGHUP) == 1));
}

/* flow_needs_utf8 - any byte above 127 */
int
flow_needs_utf8(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x80)
			return (1);
	return (0);
}

/* flow_lookup_failed - the database let us down: log it, answer 451 */
void
flow_lookup_failed(struct deliver *d, const struct smtp_envelope *env,
		   struct smtp_reply *r)
{
	msg_warn("%s: database: %s", env->id, store_errmsg(d->st));
	smtp_reply_set(r, 451, "4.3.0 Error: temporary lookup failure, try again later");
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

int
flow_send_notice(struct deliver *d, const char *id, const char *group,
		 const char *address, const char *name, const char *msg, size_t len,
		 int eightbit)
{
	const struct conf *cf = d->cf;
	char	refusal[RELAY_LINE_MAX] = "", *rcpt[1];
	struct relay_hooks hooks = {.checkpoint = notice_refusal, .arg = refusal};
	struct relay_result res;
	enum relay_status st;

	rcpt[0] = (char *) address;
	st = relay_send(d->relay, d->bounce_addr, (eightbit & 1 ? RELAY_8BITMIME : 0)
			| (eightbit & 2 || flow_needs_utf8(address) ? RELAY_SMTPUTF8 : 0), rcpt,
			1, 1, msg, len, &hooks, &res);
	if (st == RELAY_OK && res.accepted == 1) {
		msg_info("%s: group=%s, notice=%s, to=<%s>, relay=%s, status=sent (%s)", id,
			 group, name, address, cf->relay, res.queued);
		return (0);
	}
	if (st == RELAY_OK && res.refused == 1) {
		msg_info("%s: group=%s, notice=%s, to=<%s>, status=bounced (the relay refused "
			 "the address)", id, group, name, address);
		if (flow_refusal_row(d, id, group, address, refusal) < 0)
			msg_warn("%s: database: %s", id, store_errmsg(d->st));
		return (0);
	}
	msg_warn("%s: group=%s, notice=%s, to=<%s>, relay=%s, status=deferred (%s)", id,
		 group, name, address, cf->relay, res.reply);
	return (-1);
}
