/* store.h - the SQLite membership store (the only user of sqlite3.h) */
#ifndef MLISTD_STORE_H
#define MLISTD_STORE_H

#include <stddef.h>

#define STORE_SCHEMA_VERSION 8

/* Results: found/yes, not found/no, or a database problem (-> 451). */
enum {
	STORE_ERROR = -1,
	STORE_NO = 0,
	STORE_YES = 1
};

/* store_claim: what became of the copy */
enum {
	CLAIM_NEW = 10,		/* never seen: claimed, send to everyone */
	CLAIM_RESUME,		/* relayed in part before: claimed, send to
				 * the members not yet served */
	CLAIM_DONE,		/* relayed completely: send nothing */
	CLAIM_BUSY		/* being sent by a live worker: send nothing */
};

/* A copy (list, digest) in `relayed`. */
struct store_copy {
	long long id;
	char	when[64];		/* relayed_at, UTC */
	long	owner;			/* pid of the claim, 0: none */
	long long claimed_at;		/* Unix time */
};

/*
 * Who claims a copy, and on which clock.  A claim is a lease on the
 * host's boot clock (CLOCK_BOOTTIME: it never steps, and it goes on
 * while the machine sleeps), which the wall clock cannot move; boot
 * names the boot it belongs to, so a claim made before a reboot is dead.
 * store_claim sets generation; every later write of the claim (renewal,
 * checkpoint, completion, release) is fenced on pid and generation, so
 * a worker that lost its claim (stalled past its lease and taken over)
 * changes nothing.
 */
struct store_owner {
	long	pid;
	long long generation;	/* set by store_claim */
	char	boot[40];	/* the host's boot id ("" when unknown) */
	long long now;		/* boot clock, seconds */
	long long wall;		/* Unix time: claimed_at, for people to read */
	unsigned lease;		/* seconds a claim or renewal lasts */
};

enum store_posting {
	POST_MEMBERS,
	POST_GROUP,
	POST_ANYONE
};

/* Who may subscribe by mail (groups.subscribe). */
enum store_subscribe {
	SUB_CLOSED,		/* nobody: command mail goes to the postmaster */
	SUB_CONFIRM,		/* anyone who confirms */
	SUB_MEMBERS		/* addresses in members who confirm */
};

/* What becomes of a post that posting does not allow (groups.others). */
enum store_others {
	OTHERS_REJECT,		/* 550 */
	OTHERS_HOLD,		/* held for a moderator */
	OTHERS_DISCARD		/* 250, nothing sent */
};

#define STORE_NAME_MAX 64	/* a list name is a local part (RFC 5321) */

struct store_group {
	char	name[STORE_NAME_MAX + 1];	/* as stored */
	char	description[256];	/* "" when NULL */
	int	is_group;
	enum store_posting posting;
	enum store_subscribe subscribe;
	enum store_others others;
	int	moderated;		/* every post held but a moderator's */
	int	notify_owners;		/* moderators hear of (un)subscriptions */
	int	notify_held;		/* the author hears that a post is held */
	int	dmarc;			/* DMARC_MODE_* (conf.h); 0: the option's */
};

struct store_bounce {
	const char *envelope_to;
	const char *address;		/* NULL: none could be parsed */
	const char *status;
	const char *action;
	const char *diagnostic;
	const char *maildir_file;
	const char *group_name;
	int	evidence;		/* 1: a probe's bounce or a relay refusal */
};

struct store;

/*
 * store_open - open (creating if needed) the database, WAL mode, busy
 * timeout, foreign keys on; apply the schema to a new or empty database;
 * prepare the statements.  Returns NULL with a message in err.  Open it
 * after fork: a connection is never shared between processes.
 */
struct store *store_open(const char *path, unsigned busy_timeout_ms,
			 char *err, size_t errlen);
void	store_free(struct store *);

/* store_errmsg - text of the last error */
const char *store_errmsg(const struct store *);

/* store_busy - was the last error another connection's lock (worth
 * trying again), rather than a broken, full or read-only database? */
int	store_busy(const struct store *);

/* store_group - look a list up by local part */
int	store_group(struct store *, const char *name, struct store_group *);

/* store_is_member - address in members */
int	store_is_member(struct store *, const char *address);

/* store_in_group - address in the group's group_members */
int	store_in_group(struct store *, const char *group, const char *address);

/*
 * store_recipients - group_members minus unsubscribes for the group or
 * '*', in address order, and minus the members that the partly relayed
 * copy skip_copy already served or saw refused (0: none).  Calls fn for each; fn
 * returns 0 to go on.  Returns the count, or STORE_ERROR.
 */
long	store_recipients(struct store *, const char *group, long long skip_copy,
			 int (*fn) (void *, const char *), void *arg);

/* store_add_bounce - one bounces row; returns its id or STORE_ERROR */
long long store_add_bounce(struct store *, const struct store_bounce *);

/*
 * store_evidence - evidence rows (evidence = 1: probe bounces, relay
 * refusals) with action 'failed' and a 5.x.x status for the address
 * within the last `days` days and after its latest proof of life
 * (store_probe_alive); count or STORE_ERROR.  Hints never count.
 */
long	store_evidence(struct store *, const char *address, unsigned days);

/* store_member_group - a list the address receives, prefer if it is in
 * that one (prefer may be NULL); STORE_YES with group set, STORE_NO */
int	store_member_group(struct store *, const char *address, const char *prefer,
			   char *group, size_t len);

/* store_probe_due - no probe went to address in the last interval s */
int	store_probe_due(struct store *, const char *address, unsigned interval,
			long long now);

/* store_probe_sent - remember a probe (and prune long expired ones) */
int	store_probe_sent(struct store *, const char *address, const char *group,
			 long long now, long long expires);

/* store_probe_find - the probe to address with this expiry: STORE_YES
 * (group set, *bounced whether its bounce was counted), STORE_NO */
int	store_probe_find(struct store *, const char *address, long long expires,
			 char *group, size_t len, int *bounced);

/* store_probe_mark - its bounce is counted now */
int	store_probe_mark(struct store *, const char *address, long long expires,
			 long long now);

/* store_probe_alive - an answer at its tag showed the mailbox alive now:
 * the evidence before `now` no longer counts (store_evidence) */
int	store_probe_alive(struct store *, const char *address, long long expires,
			  long long now);

/* store_unsubscribe - INSERT OR IGNORE into unsubscribes, with source
 * ('request', 'bounces'; NULL: an administrator's); 1 if new, 0, or error */
int	store_unsubscribe(struct store *, const char *group, const char *address,
			  const char *source);

/* store_is_recipient - in the group's group_members and not unsubscribed
 * from it (or from '*') */
int	store_is_recipient(struct store *, const char *group, const char *address);

/* store_blocked - an opt-out mlistd did not make (an administrator's row
 * for the group, or any '*' row): a subscription by mail cannot lift it */
int	store_blocked(struct store *, const char *group, const char *address);

/*
 * store_subscribe - a confirmed subscription: INSERT OR IGNORE into
 * group_members, and remove the opt-outs mlistd made itself (source
 * 'request' or 'bounces') for this group.  It never touches members: a
 * subscription grants rights on that list only.
 */
int	store_subscribe(struct store *, const char *group, const char *address);

/*
 * Requests by mail (the requests table).  store_request_recent: STORE_YES
 * when a row for the normalized address (command_normalize), any list,
 * was sent at or after `since` for a message other than digest (the
 * hourly limit).  store_request_sibling: STORE_YES when the message
 * digest already made a row other than (group, address, action): another
 * command address of the same message was answered.
 * store_request_unsubs: how many unsubscribe confirmation requests for
 * group went to the normalized address at or after `since`, for any
 * message but this one (a retry), and the
 * newest one's sent_at and expires for group and address (0 when none).  store_request_add:
 * remember one sent (and prune rows expired a week ago).
 * store_request_cancel: forget a pending one that could not be sent.
 * store_request_state: REQUEST_PENDING or REQUEST_DONE with the digest of
 * the message that made or completed it, STORE_NO when there is no such
 * row.  store_request_done: mark it confirmed by the message digest (the
 * row is made if the database lost it).
 */
enum {
	REQUEST_PENDING = 20,
	REQUEST_DONE
};
int	store_request_recent(struct store *, const char *normalized, long long since,
			     const char *digest);
int	store_request_sibling(struct store *, const char *digest, const char *group,
			      const char *address, const char *action);
long	store_request_unsubs(struct store *, const char *group, const char *address,
			     const char *normalized, long long since, const char *digest,
			     long long *sent_at, long long *expires);
int	store_request_add(struct store *, const char *group, const char *address,
			  const char *action, long long sent_at, long long expires,
			  const char *digest, const char *normalized);
int	store_request_cancel(struct store *, const char *group, const char *address,
			     const char *action, long long expires);
int	store_request_state(struct store *, const char *group, const char *address,
			    const char *action, long long expires, char *digest,
			    size_t len);
int	store_request_done(struct store *, const char *group, const char *address,
			   const char *action, long long expires, long long now,
			   const char *digest);

/* store_groups - every groups row, by name (description left empty); fn
 * returns 0 to go on.  The count, or STORE_ERROR. */
long	store_groups(struct store *, int (*fn) (void *, const struct store_group *),
		     void *arg);

/*
 * store_claim - in one write transaction: forget a row of this copy older
 * than `window` seconds, then look the copy up and, unless it is complete
 * or claimed by another live process (pid exists, same boot, lease not
 * over on the boot clock), claim it for o->pid until o->now + o->lease
 * with a new generation (o->generation).  Returns a CLAIM_ value with *c
 * filled in, or STORE_ERROR.
 */
int	store_claim(struct store *, const char *group, const char *digest,
		    const char *message_id, unsigned window, struct store_owner *o,
		    struct store_copy *c);

/* store_mark_rcpt - a member served (refused = 0) or refused for good
 * (1) by the relay for this copy; store_recipients() then skips it. */
int	store_mark_rcpt(struct store *, long long copy_id, const char *address,
			int refused);

/* store_touch - renew o's claim until o->now + o->lease: STORE_YES,
 * STORE_NO (the claim is no longer o's: it was taken over) or STORE_ERROR */
int	store_touch(struct store *, long long copy_id, const struct store_owner *o);

/*
 * store_release - end o's claim: complete (every member served: the copy
 * is a duplicate from now on, and old copies are pruned now and then), or
 * not (the retry resumes).  STORE_YES, STORE_NO (not o's claim any more:
 * nothing changed) or STORE_ERROR.
 */
int	store_release(struct store *, long long copy_id, int complete,
		      unsigned window, const struct store_owner *o);

/* store_pragma_int - PRAGMA name on this connection (diagnostics, tests);
 * its value, or STORE_ERROR */
long	store_pragma_int(struct store *, const char *name);

/* Transactions around several writes (bounce rows). */
int	store_begin(struct store *);
int	store_commit(struct store *);
void	store_rollback(struct store *);

/* A read transaction around several lookups: one snapshot, one round of
 * locks.  store_read_end() never fails (a read has nothing to lose). */
int	store_read_begin(struct store *);
void	store_read_end(struct store *);

/*
 * Moderation (store_held.c): held posts, moderators, the notices about
 * them and their rate limits.  Times are Unix seconds unless named _text.
 */
#define STORE_ADDR_MAX 320

struct store_held {
	long long id;
	char	group[STORE_NAME_MAX + 1];
	char	sender[STORE_ADDR_MAX];		/* envelope sender, "" for <> */
	char	from_addr[STORE_ADDR_MAX];	/* as the post says ("" none) */
	char	subject[256];			/* as the post says, one line */
	char	reason[32];			/* "moderated", "not allowed" */
	char	digest[41];
	char	maildir_file[512];		/* "" once carried out */
	char	decision[16];			/* "" while waiting */
	char	decided_by[STORE_ADDR_MAX];
	char	received_text[32];		/* UTC */
	long long size;
	long long expires;
	int	eightbit, smtputf8, automatic;
	int	attempts;
	int	notified;			/* HELD_NOTIFIED_ bits */
};

enum {
	HELD_NEW = 30,		/* stored now */
	HELD_EXISTS,		/* this post is held (or was decided) already */
	HELD_FULL		/* the list holds hold-limit posts already */
};

#define HELD_NOTIFIED_MODERATORS 1	/* every moderator has its notice */
#define HELD_NOTIFIED_AUTHOR	 2	/* the author's (notify_held) is done */

/* store_held_find - the row of (group, digest): STORE_YES with h filled
 * in, STORE_NO, STORE_ERROR */
int	store_held_find(struct store *, const char *group, const char *digest,
			struct store_held *h);

/*
 * store_held_add - one held row for h (its file written already), unless
 * the post is there already (HELD_EXISTS, h->id set to that row) or the
 * list has `limit` undecided posts (HELD_FULL).  expires = now +
 * hold-expiry.  HELD_NEW with h->id set, or STORE_ERROR.
 */
int	store_held_add(struct store *, struct store_held *h, unsigned limit);

/* store_held_pending - undecided posts of group: count or STORE_ERROR */
long	store_held_pending(struct store *, const char *group);

/* store_held_file - a held row names this file ("new/NAME") */
int	store_held_file(struct store *, const char *maildir_file);

/* store_held_get - the row with this id: STORE_YES, STORE_NO */
int	store_held_get(struct store *, long long id, struct store_held *h);

/*
 * store_held_decide - the first decision on held post id of group wins:
 * STORE_YES when this one is it; STORE_NO when there is no such post
 * (h->id 0) or it was decided already (h holds the row: decision and
 * decided_by say by whom); STORE_ERROR.
 */
int	store_held_decide(struct store *, long long id, const char *group,
			  const char *decision, const char *by, struct store_held *h);

/*
 * store_held_due - the runner's work, at most max rows, oldest first:
 * decisions not carried out whose next_try has come, and undecided posts
 * past expires (their decision then reads "expire").  fn returns 0 to go
 * on.  The count, or STORE_ERROR.
 */
long	store_held_due(struct store *, long long now, unsigned max,
		       int (*fn) (void *, const struct store_held *), void *arg);

/* store_held_unnotified - undecided posts whose notices are not all
 * sent (notified lacks a bit of want), at most max */
long	store_held_unnotified(struct store *, unsigned max,
			      int (*fn) (void *, const struct store_held *), void *arg);

/* store_held_expire - an undecided post past its time: decision
 * 'expire' by mlistd; STORE_YES, STORE_NO (decided meanwhile) */
int	store_held_expire(struct store *, long long id);

/* store_held_done - the decision carried out: done_at, outcome, the
 * file forgotten (decided_by 'sqlite3' when nobody is named) */
int	store_held_done(struct store *, long long id, const char *outcome);

/* store_held_retry - carrying it out failed now: try again at next_try */
int	store_held_retry(struct store *, long long id, long long next_try,
			 const char *outcome);

/* store_held_notified - set bits in notified */
int	store_held_notified(struct store *, long long id, int bits);

/* store_held_notice - STORE_YES if address has its notice about held_id;
 * store_held_notice_add remembers one sent */
int	store_held_notice(struct store *, long long held_id, const char *address);
int	store_held_notice_add(struct store *, long long held_id, const char *address,
			      long long now);

/* store_is_moderator - address moderates group */
int	store_is_moderator(struct store *, const char *group, const char *address);

/* store_moderators - a group's moderators, in address order; fn returns
 * 0 to go on.  The count, or STORE_ERROR. */
long	store_moderators(struct store *, const char *group,
			 int (*fn) (void *, const char *), void *arg);

/* store_notice_count - notices of kind to the normalized address at or
 * after since; store_notice_add - one sent now (prunes week-old rows) */
long	store_notice_count(struct store *, const char *normalized, const char *kind,
			   long long since);
int	store_notice_add(struct store *, const char *normalized, const char *kind,
			 long long now);

/* store_change_add - a subscription change for the moderators' notice
 * (what 'subscribed' or 'unsubscribed', how 'request' or 'bounces') */
int	store_change_add(struct store *, const char *group, const char *address,
			 const char *what, const char *how, long long now);

/* A change, for store_changes. */
struct store_change {
	long long id;
	const char *group, *address, *what, *how;
	long long at;
};

/*
 * store_changes - the changes of lists that moderator moderates with
 * notify_owners = 1, after the last one it heard of (owner_notices), at
 * most max; fn returns 0 to go on.  The count or STORE_ERROR.
 * store_owner_notice_due - STORE_YES when moderator heard nothing since
 * `since`.  store_owner_notice_sent - it heard of changes up to last.
 */
long	store_changes(struct store *, const char *moderator, unsigned max,
		      int (*fn) (void *, const struct store_change *), void *arg);
int	store_owner_notice_due(struct store *, const char *moderator, long long since);
int	store_owner_notice_sent(struct store *, const char *moderator, long long last,
				long long now);

/* store_moderators_all - every address in moderators once; fn as above */
long	store_moderators_all(struct store *, int (*fn) (void *, const char *), void *arg);

#endif
