/* store.h - the SQLite membership store (the only user of sqlite3.h) */
#ifndef MLISTD_STORE_H
#define MLISTD_STORE_H

#include <stddef.h>

#define STORE_SCHEMA_VERSION 3

/* Results: found/yes, not found/no, or a database problem (-> 451). */
enum {
	STORE_ERROR = -1,
	STORE_NO = 0,
	STORE_YES = 1,
	STORE_PARTIAL = 2		/* store_relayed: relayed in part */
};

enum store_posting {
	POST_MEMBERS,
	POST_GROUP,
	POST_ANYONE
};

struct store_group {
	char	name[128];		/* as stored */
	char	description[256];	/* "" when NULL */
	int	is_group;
	enum store_posting posting;
};

struct store_bounce {
	const char *envelope_to;
	const char *address;		/* NULL: none could be parsed */
	const char *status;
	const char *action;
	const char *diagnostic;
	const char *maildir_file;
	const char *group_name;
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

/* store_group - look a list up by local part */
int	store_group(struct store *, const char *name, struct store_group *);

/* store_is_member - address in members */
int	store_is_member(struct store *, const char *address);

/* store_in_group - address in the group's group_members */
int	store_in_group(struct store *, const char *group, const char *address);

/*
 * store_recipients - group_members minus unsubscribes for the group or
 * '*', in address order, and minus the members that the partly relayed
 * copy skip_copy already reached (0: none).  Calls fn for each; fn
 * returns 0 to go on.  Returns the count, or STORE_ERROR.
 */
long	store_recipients(struct store *, const char *group, long long skip_copy,
			 int (*fn) (void *, const char *), void *arg);

/* store_add_bounce - one bounces row; returns its id or STORE_ERROR */
long long store_add_bounce(struct store *, const struct store_bounce *);

/*
 * store_hard_bounces - rows with action 'failed' and a 5.x.x status for
 * the address within the last `days` days; count or STORE_ERROR.
 */
long	store_hard_bounces(struct store *, const char *address, unsigned days);

/* store_unsubscribe - INSERT OR IGNORE into unsubscribes; 1 if new, 0, or error */
int	store_unsubscribe(struct store *, const char *group, const char *address);

/*
 * store_relayed - was this copy (list, digest) relayed within the last
 * `window` seconds?  STORE_YES: completely, at `when`; STORE_PARTIAL: to
 * some members only, *copy_id names them for store_recipients();
 * STORE_NO; or STORE_ERROR.
 */
int	store_relayed(struct store *, const char *group, const char *digest,
		      unsigned window, long long *copy_id, char *when, size_t whenlen);

/* store_mark_relayed - remember a completely relayed copy; prunes rows
 * older than `window` now and then.  STORE_YES or STORE_ERROR. */
int	store_mark_relayed(struct store *, const char *group, const char *digest,
			   const char *message_id, unsigned window);

/*
 * store_mark_partial - remember that a copy reached these members before
 * the relay failed for the others, so that Postfix's retry skips them.
 * One transaction: all recorded, or STORE_ERROR and nothing.
 */
int	store_mark_partial(struct store *, const char *group, const char *digest,
			   const char *message_id, unsigned window,
			   char *const *addr, size_t naddr);

/* Transactions around several writes (bounce rows). */
int	store_begin(struct store *);
int	store_commit(struct store *);
void	store_rollback(struct store *);

/* A read transaction around several lookups: one snapshot, one round of
 * locks.  store_read_end() never fails (a read has nothing to lose). */
int	store_read_begin(struct store *);
void	store_read_end(struct store *);

#endif
