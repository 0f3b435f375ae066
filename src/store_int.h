/* store_int.h - what store.c shares with the store's other modules
 * (store_held.c); nothing outside the store includes it */
#ifndef MLISTD_STORE_INT_H
#define MLISTD_STORE_INT_H

#include <sqlite3.h>
#include <time.h>

#define STORE_MORE_MAX	40	/* statements of the other modules */

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[64];		/* store.c's, by its own enum */
	sqlite3_stmt *more[STORE_MORE_MAX];	/* prepared on first use */
	char	err[1024];
	int	errcode;		/* of the last failure (primary code) */
	unsigned marks;			/* store_mark_relayed calls, for pruning */
	unsigned busy_ms;		/* database-timeout */
	struct timespec busy_since;	/* first retry of the current wait */
};

/* store_fail - remember the error text of what failed; STORE_ERROR */
int	store_fail(struct store *, const char *what);

#endif
