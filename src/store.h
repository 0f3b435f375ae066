/* store.h - the SQLite membership store (the only user of sqlite3.h) */
#ifndef MLISTD_STORE_H
#define MLISTD_STORE_H

#include <stddef.h>

#define STORE_SCHEMA_VERSION 2

/* Results: found/yes, not found/no, or a database problem (-> 451). */
enum {
	STORE_ERROR = -1,
	STORE_NO = 0,
	STORE_YES = 1
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
 * '*', in address order.  Calls fn for each; fn returns 0 to go on.
 * Returns the count, or STORE_ERROR.
 */
long	store_recipients(struct store *, const char *group,
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
 * store_relayed_at - when this copy (list, digest) was relayed within the
 * last `window` seconds: STORE_YES with the time in `when`, STORE_NO, or
 * STORE_ERROR.
 */
int	store_relayed_at(struct store *, const char *group, const char *digest,
			 unsigned window, char *when, size_t whenlen);

/* store_mark_relayed - remember a relayed copy; prunes old rows now and
 * then.  STORE_YES or STORE_ERROR. */
int	store_mark_relayed(struct store *, const char *group, const char *digest,
			   const char *message_id, unsigned window);

/* Transactions around several writes (bounce rows). */
int	store_begin(struct store *);
int	store_commit(struct store *);
void	store_rollback(struct store *);

#endif
