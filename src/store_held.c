/*
 * store_held.c - the store's moderation tables: held posts, moderators,
 * the notices about them and their rate limits, and the subscription
 * changes the moderators hear of (schema version 7, sql/schema.sql).
 *
 * Same rules as store.c: STORE_YES/STORE_NO, a count, or STORE_ERROR for
 * any database problem.  Statements are prepared on first use and kept
 * in the connection (struct store's `more`).  Writes that belong together
 * are the caller's transaction (store_begin), except store_held_add and
 * store_held_decide, which are one statement or their own transaction.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "store.h"
#include "store_int.h"

enum {
	H_FIND,
	H_ADD,
	H_PENDING,
	H_GET,
	H_DECIDE,
	H_DUE,
	H_UNNOTIFIED,
	H_EXPIRE,
	H_DONE,
	H_RETRY,
	H_NOTIFIED,
	H_NOTICE,
	H_NOTICE_ADD,
	H_IS_MOD,
	H_MODS,
	H_MODS_ALL,
	H_NCOUNT,
	H_NADD,
	H_NPRUNE,
	H_CHANGE_ADD,
	H_CHANGE_PRUNE,
	H_CHANGES,
	H_OWNER_DUE,
	H_OWNER_SENT,
	H_FILE,
	H_COUNT
};

_Static_assert(H_COUNT <= STORE_MORE_MAX, "struct store: more too small");

#define HELD_COLUMNS \
	"id, group_name, sender, coalesce(from_addr, ''), coalesce(subject, ''),"	\
	" coalesce(reason, ''), digest, coalesce(maildir_file, ''),"			\
	" coalesce(decision, ''), coalesce(decided_by, ''), received, size,"		\
	" CAST(strftime('%s', expires) AS INTEGER), eightbit, smtputf8, automatic,"	\
	" attempts, notified"

static const char *const queries[H_COUNT] = {
	"SELECT " HELD_COLUMNS " FROM held WHERE group_name = ?1 AND digest = ?2",
	"INSERT OR IGNORE INTO held (group_name, sender, from_addr, subject, size, expires,"
	" reason, digest, maildir_file, eightbit, smtputf8, automatic)"
	" VALUES (?1, ?2, ?3, ?4, ?5, datetime(?6, 'unixepoch'), ?7, ?8, ?9, ?10, ?11, ?12)",
	"SELECT count(*) FROM held WHERE group_name = ?1 AND decision IS NULL"
	" AND done_at IS NULL",
	"SELECT " HELD_COLUMNS " FROM held WHERE id = ?1",
	"UPDATE held SET decision = ?3, decided_by = ?4,"
	" decided_at = strftime('%Y-%m-%d %H:%M:%S', 'now')"
	" WHERE id = ?1 AND group_name = ?2 AND decision IS NULL AND done_at IS NULL",
	/* Decided and not carried out, or waiting past its expiry. */
	"SELECT " HELD_COLUMNS " FROM held WHERE done_at IS NULL"
	" AND ((decision IS NOT NULL AND next_try <= ?1)"
	" OR (decision IS NULL AND expires <= datetime(?1, 'unixepoch')))"
	" ORDER BY id LIMIT ?2",
	"SELECT " HELD_COLUMNS " FROM held WHERE done_at IS NULL AND decision IS NULL"
	" AND notified <> 3 ORDER BY id LIMIT ?1",
	"UPDATE held SET decision = 'expire', decided_by = 'mlistd',"
	" decided_at = strftime('%Y-%m-%d %H:%M:%S', 'now')"
	" WHERE id = ?1 AND decision IS NULL AND done_at IS NULL",
	"UPDATE held SET done_at = strftime('%Y-%m-%d %H:%M:%S', 'now'), outcome = ?2,"
	" maildir_file = NULL, decided_by = coalesce(decided_by, 'sqlite3'),"
	" decided_at = coalesce(decided_at, strftime('%Y-%m-%d %H:%M:%S', 'now'))"
	" WHERE id = ?1 AND done_at IS NULL",
	"UPDATE held SET attempts = attempts + 1, next_try = ?2, outcome = ?3"
	" WHERE id = ?1 AND done_at IS NULL",
	"UPDATE held SET notified = notified | ?2 WHERE id = ?1",
	"SELECT 1 FROM held_notices WHERE held_id = ?1 AND address = ?2",
	"INSERT OR IGNORE INTO held_notices (held_id, address, sent_at) VALUES (?1, ?2, ?3)",
	"SELECT 1 FROM moderators WHERE group_name = ?1 AND address = ?2",
	"SELECT address FROM moderators WHERE group_name = ?1 ORDER BY address",
	"SELECT DISTINCT address FROM moderators ORDER BY address",
	"SELECT count(*) FROM notices WHERE normalized = ?1 AND kind = ?2 AND sent_at >= ?3",
	"INSERT INTO notices (normalized, kind, sent_at) VALUES (?1, ?2, ?3)",
	"DELETE FROM notices WHERE sent_at < ?1",
	"INSERT INTO changes (group_name, address, what, how, at) VALUES (?1, ?2, ?3, ?4, ?5)",
	"DELETE FROM changes WHERE at < ?1",
	/* A week at most: a new moderator is not told the whole history. */
	"SELECT c.id, c.group_name, c.address, c.what, c.how, c.at FROM changes c"
	" JOIN moderators m ON m.group_name = c.group_name AND m.address = ?1"
	" JOIN groups g ON g.name = c.group_name AND g.notify_owners = 1"
	" WHERE c.id > coalesce((SELECT last_change FROM owner_notices WHERE address = ?1), 0)"
	" AND c.at >= ?3 ORDER BY c.id LIMIT ?2",
	"SELECT 1 FROM owner_notices WHERE address = ?1 AND sent_at >= ?2",
	"INSERT INTO owner_notices (address, last_change, sent_at) VALUES (?1, ?2, ?3)"
	" ON CONFLICT (address) DO UPDATE SET last_change = max(last_change, ?2), sent_at = ?3",
	"SELECT 1 FROM held WHERE maildir_file = ?1",
};

/* stmt - query i, prepared on first use; NULL on failure (error set) */
static sqlite3_stmt *
stmt(struct store *st, int i)
{
	if (st->more[i] == NULL
	    && sqlite3_prepare_v3(st->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT,
				  &st->more[i], NULL) != SQLITE_OK) {
		(void) store_fail(st, "prepare");
		st->more[i] = NULL;
	}
	return (st->more[i]);
}

/* done - reset and unbind q after use */
static void
done(sqlite3_stmt *q)
{
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
}

/* bind_text - bind s (NULL: SQL NULL) */
static int
bind_text(sqlite3_stmt *q, int i, const char *s)
{
	return (s ? sqlite3_bind_text(q, i, s, -1, SQLITE_TRANSIENT) : sqlite3_bind_null(q, i));
}

/* write_one - run a write statement to its end; STORE_YES if it changed
 * a row, STORE_NO, STORE_ERROR */
static int
write_one(struct store *st, sqlite3_stmt *q, const char *what)
{
	int	rc = sqlite3_step(q);

	done(q);
	if (rc != SQLITE_DONE)
		return (store_fail(st, what));
	return (sqlite3_changes(st->db) > 0 ? STORE_YES : STORE_NO);
}

/* copy_col - column i of q into buf */
static void
copy_col(sqlite3_stmt *q, int i, char *buf, size_t len)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	snprintf(buf, len, "%s", s ? (const char *) s : "");
}

/* held_row - a row of HELD_COLUMNS into h */
static void
held_row(sqlite3_stmt *q, struct store_held *h)
{
	memset(h, 0, sizeof(*h));
	h->id = sqlite3_column_int64(q, 0);
	copy_col(q, 1, h->group, sizeof(h->group));
	copy_col(q, 2, h->sender, sizeof(h->sender));
	copy_col(q, 3, h->from_addr, sizeof(h->from_addr));
	copy_col(q, 4, h->subject, sizeof(h->subject));
	copy_col(q, 5, h->reason, sizeof(h->reason));
	copy_col(q, 6, h->digest, sizeof(h->digest));
	copy_col(q, 7, h->maildir_file, sizeof(h->maildir_file));
	copy_col(q, 8, h->decision, sizeof(h->decision));
	copy_col(q, 9, h->decided_by, sizeof(h->decided_by));
	copy_col(q, 10, h->received_text, sizeof(h->received_text));
	h->size = sqlite3_column_int64(q, 11);
	h->expires = sqlite3_column_int64(q, 12);
	h->eightbit = sqlite3_column_int(q, 13) != 0;
	h->smtputf8 = sqlite3_column_int(q, 14) != 0;
	h->automatic = sqlite3_column_int(q, 15) != 0;
	h->attempts = sqlite3_column_int(q, 16);
	h->notified = sqlite3_column_int(q, 17);
}

/* one_held - a query that returns at most one held row */
static int
one_held(struct store *st, sqlite3_stmt *q, struct store_held *h, const char *what)
{
	int	rc = sqlite3_step(q);

	if (rc == SQLITE_ROW)
		held_row(q, h);
	done(q);
	if (rc == SQLITE_ROW)
		return (STORE_YES);
	return (rc == SQLITE_DONE ? STORE_NO : store_fail(st, what));
}

int
store_held_find(struct store *st, const char *group, const char *digest,
		struct store_held *h)
{
	sqlite3_stmt *q = stmt(st, H_FIND);

	if (q == NULL || bind_text(q, 1, group) != SQLITE_OK
	    || bind_text(q, 2, digest) != SQLITE_OK)
		return (store_fail(st, "look up held post"));
	return (one_held(st, q, h, "look up held post"));
}

int
store_held_get(struct store *st, long long id, struct store_held *h)
{
	sqlite3_stmt *q = stmt(st, H_GET);

	if (q == NULL || sqlite3_bind_int64(q, 1, id) != SQLITE_OK)
		return (store_fail(st, "look up held post"));
	return (one_held(st, q, h, "look up held post"));
}

/* store_held_pending - undecided posts of group; count or STORE_ERROR */
long
store_held_pending(struct store *st, const char *group)
{
	sqlite3_stmt *q = stmt(st, H_PENDING);
	long	n;
	int	rc;

	if (q == NULL || bind_text(q, 1, group) != SQLITE_OK)
		return (store_fail(st, "count held posts"));
	rc = sqlite3_step(q);
	n = rc == SQLITE_ROW ? (long) sqlite3_column_int64(q, 0) : 0;
	done(q);
	return (rc == SQLITE_ROW ? n : store_fail(st, "count held posts"));
}

/* held_insert - the INSERT OR IGNORE of h; STORE_YES, STORE_NO (there) */
static int
held_insert(struct store *st, struct store_held *h)
{
	sqlite3_stmt *q = stmt(st, H_ADD);

	if (q == NULL || bind_text(q, 1, h->group) != SQLITE_OK
	    || bind_text(q, 2, h->sender) != SQLITE_OK
	    || bind_text(q, 3, h->from_addr[0] ? h->from_addr : NULL) != SQLITE_OK
	    || bind_text(q, 4, h->subject) != SQLITE_OK
	    || sqlite3_bind_int64(q, 5, h->size) != SQLITE_OK
	    || sqlite3_bind_int64(q, 6, h->expires) != SQLITE_OK
	    || bind_text(q, 7, h->reason) != SQLITE_OK
	    || bind_text(q, 8, h->digest) != SQLITE_OK
	    || bind_text(q, 9, h->maildir_file) != SQLITE_OK
	    || sqlite3_bind_int(q, 10, h->eightbit) != SQLITE_OK
	    || sqlite3_bind_int(q, 11, h->smtputf8) != SQLITE_OK
	    || sqlite3_bind_int(q, 12, h->automatic) != SQLITE_OK)
		return (store_fail(st, "hold post"));
	return (write_one(st, q, "hold post"));
}

int
store_held_add(struct store *st, struct store_held *h, unsigned limit)
{
	struct store_held old;
	long	n;
	int	rc;

	if (store_begin(st) == STORE_ERROR)
		return (STORE_ERROR);
	if ((rc = store_held_find(st, h->group, h->digest, &old)) == STORE_YES) {
		store_rollback(st);
		h->id = old.id;
		return (HELD_EXISTS);
	}
	if (rc == STORE_ERROR || (n = store_held_pending(st, h->group)) == STORE_ERROR)
		goto failed;
	if (n >= (long) limit) {
		store_rollback(st);
		return (HELD_FULL);
	}
	if (held_insert(st, h) != STORE_YES)
		goto failed;
	h->id = (long long) sqlite3_last_insert_rowid(st->db);
	if (store_commit(st) == STORE_ERROR)
		goto failed;
	return (HELD_NEW);
failed:
	store_rollback(st);
	return (STORE_ERROR);
}

int
store_held_decide(struct store *st, long long id, const char *group,
		  const char *decision, const char *by, struct store_held *h)
{
	sqlite3_stmt *q = stmt(st, H_DECIDE);
	int	rc;

	memset(h, 0, sizeof(*h));
	if (q == NULL || sqlite3_bind_int64(q, 1, id) != SQLITE_OK
	    || bind_text(q, 2, group) != SQLITE_OK || bind_text(q, 3, decision) != SQLITE_OK
	    || bind_text(q, 4, by) != SQLITE_OK)
		return (store_fail(st, "decide on held post"));
	if ((rc = write_one(st, q, "decide on held post")) != STORE_NO)
		return (rc);
	/* Decided already, or no such post of this list. */
	if ((rc = store_held_get(st, id, h)) == STORE_YES && strcasecmp(h->group, group) != 0) {
		memset(h, 0, sizeof(*h));
		rc = STORE_NO;
	}
	return (rc == STORE_ERROR ? STORE_ERROR : STORE_NO);
}

/* each_held - rows of q to fn; count or STORE_ERROR */
static long
each_held(struct store *st, sqlite3_stmt *q, int (*fn) (void *, const struct store_held *),
	  void *arg, const char *what)
{
	struct store_held h;
	long	n = 0;
	int	rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		held_row(q, &h);
		n++;
		if (fn(arg, &h) != 0)
			break;
	}
	done(q);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? n : store_fail(st, what));
}

long
store_held_due(struct store *st, long long now, unsigned max,
	       int (*fn) (void *, const struct store_held *), void *arg)
{
	sqlite3_stmt *q = stmt(st, H_DUE);

	if (q == NULL || sqlite3_bind_int64(q, 1, now) != SQLITE_OK
	    || sqlite3_bind_int(q, 2, (int) max) != SQLITE_OK)
		return (store_fail(st, "list held posts"));
	return (each_held(st, q, fn, arg, "list held posts"));
}

long
store_held_unnotified(struct store *st, unsigned max,
		      int (*fn) (void *, const struct store_held *), void *arg)
{
	sqlite3_stmt *q = stmt(st, H_UNNOTIFIED);

	if (q == NULL || sqlite3_bind_int(q, 1, (int) max) != SQLITE_OK)
		return (store_fail(st, "list held posts"));
	return (each_held(st, q, fn, arg, "list held posts"));
}

/* by_id - a write statement on held post id with up to one more
 * argument, an integer (when text is NULL) or a text */
static int
by_id(struct store *st, int which, long long id, long long num, const char *text,
      int nargs, const char *what)
{
	sqlite3_stmt *q = stmt(st, which);

	if (q == NULL || sqlite3_bind_int64(q, 1, id) != SQLITE_OK
	    || (nargs >= 2 && (text ? bind_text(q, 2, text) : sqlite3_bind_int64(q, 2, num))
		!= SQLITE_OK))
		return (store_fail(st, what));
	return (write_one(st, q, what));
}

int
store_held_expire(struct store *st, long long id)
{
	return (by_id(st, H_EXPIRE, id, 0, NULL, 1, "expire held post"));
}

int
store_held_done(struct store *st, long long id, const char *outcome)
{
	return (by_id(st, H_DONE, id, 0, outcome, 2, "carry out decision"));
}

int
store_held_retry(struct store *st, long long id, long long next_try, const char *outcome)
{
	sqlite3_stmt *q = stmt(st, H_RETRY);

	if (q == NULL || sqlite3_bind_int64(q, 1, id) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, next_try) != SQLITE_OK
	    || bind_text(q, 3, outcome) != SQLITE_OK)
		return (store_fail(st, "postpone decision"));
	return (write_one(st, q, "postpone decision"));
}

int
store_held_notified(struct store *st, long long id, int bits)
{
	return (by_id(st, H_NOTIFIED, id, bits, NULL, 2, "mark held post notified"));
}

/* exists2 - a one-row probe with two bound values (text or id) */
static int
exists_q(struct store *st, sqlite3_stmt *q, const char *what)
{
	int	rc = sqlite3_step(q);

	done(q);
	if (rc == SQLITE_ROW)
		return (STORE_YES);
	return (rc == SQLITE_DONE ? STORE_NO : store_fail(st, what));
}

int
store_held_notice(struct store *st, long long held_id, const char *address)
{
	sqlite3_stmt *q = stmt(st, H_NOTICE);

	if (q == NULL || sqlite3_bind_int64(q, 1, held_id) != SQLITE_OK
	    || bind_text(q, 2, address) != SQLITE_OK)
		return (store_fail(st, "look up notice"));
	return (exists_q(st, q, "look up notice"));
}

int
store_held_notice_add(struct store *st, long long held_id, const char *address,
		      long long now)
{
	sqlite3_stmt *q = stmt(st, H_NOTICE_ADD);

	if (q == NULL || sqlite3_bind_int64(q, 1, held_id) != SQLITE_OK
	    || bind_text(q, 2, address) != SQLITE_OK || sqlite3_bind_int64(q, 3, now) != SQLITE_OK)
		return (store_fail(st, "remember notice"));
	return (write_one(st, q, "remember notice") == STORE_ERROR ? STORE_ERROR : STORE_YES);
}

int
store_is_moderator(struct store *st, const char *group, const char *address)
{
	sqlite3_stmt *q = stmt(st, H_IS_MOD);

	if (q == NULL || bind_text(q, 1, group) != SQLITE_OK
	    || bind_text(q, 2, address) != SQLITE_OK)
		return (store_fail(st, "look up moderator"));
	return (exists_q(st, q, "look up moderator"));
}

/* each_text - the first column of q's rows to fn; count or STORE_ERROR */
static long
each_text(struct store *st, sqlite3_stmt *q, int (*fn) (void *, const char *), void *arg,
	  const char *what)
{
	long	n = 0;
	int	rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const unsigned char *s = sqlite3_column_text(q, 0);

		if (s == NULL)
			continue;
		n++;
		if (fn(arg, (const char *) s) != 0)
			break;
	}
	done(q);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? n : store_fail(st, what));
}

long
store_moderators(struct store *st, const char *group, int (*fn) (void *, const char *),
		 void *arg)
{
	sqlite3_stmt *q = stmt(st, H_MODS);

	if (q == NULL || bind_text(q, 1, group) != SQLITE_OK)
		return (store_fail(st, "list moderators"));
	return (each_text(st, q, fn, arg, "list moderators"));
}

long
store_moderators_all(struct store *st, int (*fn) (void *, const char *), void *arg)
{
	sqlite3_stmt *q = stmt(st, H_MODS_ALL);

	if (q == NULL)
		return (STORE_ERROR);
	return (each_text(st, q, fn, arg, "list moderators"));
}

long
store_notice_count(struct store *st, const char *normalized, const char *kind,
		   long long since)
{
	sqlite3_stmt *q = stmt(st, H_NCOUNT);
	long	n;
	int	rc;

	if (q == NULL || bind_text(q, 1, normalized) != SQLITE_OK
	    || bind_text(q, 2, kind) != SQLITE_OK || sqlite3_bind_int64(q, 3, since) != SQLITE_OK)
		return (store_fail(st, "count notices"));
	rc = sqlite3_step(q);
	n = rc == SQLITE_ROW ? (long) sqlite3_column_int64(q, 0) : 0;
	done(q);
	return (rc == SQLITE_ROW ? n : store_fail(st, "count notices"));
}

int
store_notice_add(struct store *st, const char *normalized, const char *kind, long long now)
{
	sqlite3_stmt *q = stmt(st, H_NADD), *p = stmt(st, H_NPRUNE);

	if (q == NULL || p == NULL || bind_text(q, 1, normalized) != SQLITE_OK
	    || bind_text(q, 2, kind) != SQLITE_OK || sqlite3_bind_int64(q, 3, now) != SQLITE_OK
	    || sqlite3_bind_int64(p, 1, now - 7 * 86400) != SQLITE_OK)
		return (store_fail(st, "remember notice"));
	if (write_one(st, q, "remember notice") == STORE_ERROR
	    || write_one(st, p, "prune notices") == STORE_ERROR)
		return (STORE_ERROR);
	return (STORE_YES);
}

int
store_change_add(struct store *st, const char *group, const char *address,
		 const char *what, const char *how, long long now)
{
	sqlite3_stmt *q = stmt(st, H_CHANGE_ADD), *p = stmt(st, H_CHANGE_PRUNE);

	if (q == NULL || p == NULL || bind_text(q, 1, group) != SQLITE_OK
	    || bind_text(q, 2, address) != SQLITE_OK || bind_text(q, 3, what) != SQLITE_OK
	    || bind_text(q, 4, how) != SQLITE_OK || sqlite3_bind_int64(q, 5, now) != SQLITE_OK
	    || sqlite3_bind_int64(p, 1, now - 7 * 86400) != SQLITE_OK)
		return (store_fail(st, "remember change"));
	if (write_one(st, q, "remember change") == STORE_ERROR
	    || write_one(st, p, "prune changes") == STORE_ERROR)
		return (STORE_ERROR);
	return (STORE_YES);
}

long
store_changes(struct store *st, const char *moderator, unsigned max,
	      int (*fn) (void *, const struct store_change *), void *arg)
{
	sqlite3_stmt *q = stmt(st, H_CHANGES);
	struct store_change c;
	long	n = 0;
	int	rc;

	if (q == NULL || bind_text(q, 1, moderator) != SQLITE_OK
	    || sqlite3_bind_int(q, 2, (int) max) != SQLITE_OK
	    || sqlite3_bind_int64(q, 3, (long long) time(NULL) - 7 * 86400) != SQLITE_OK)
		return (store_fail(st, "list changes"));
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		c.id = sqlite3_column_int64(q, 0);
		c.group = (const char *) sqlite3_column_text(q, 1);
		c.address = (const char *) sqlite3_column_text(q, 2);
		c.what = (const char *) sqlite3_column_text(q, 3);
		c.how = (const char *) sqlite3_column_text(q, 4);
		c.at = sqlite3_column_int64(q, 5);
		if (!c.group || !c.address || !c.what || !c.how)
			continue;
		n++;
		if (fn(arg, &c) != 0)
			break;
	}
	done(q);
	return (rc == SQLITE_ROW || rc == SQLITE_DONE ? n : store_fail(st, "list changes"));
}

int
store_owner_notice_due(struct store *st, const char *moderator, long long since)
{
	sqlite3_stmt *q = stmt(st, H_OWNER_DUE);
	int	rc;

	if (q == NULL || bind_text(q, 1, moderator) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, since) != SQLITE_OK)
		return (store_fail(st, "look up owner notice"));
	rc = exists_q(st, q, "look up owner notice");
	return (rc == STORE_ERROR ? rc : rc == STORE_YES ? STORE_NO : STORE_YES);
}

int
store_owner_notice_sent(struct store *st, const char *moderator, long long last,
			long long now)
{
	sqlite3_stmt *q = stmt(st, H_OWNER_SENT);

	if (q == NULL || bind_text(q, 1, moderator) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, last) != SQLITE_OK
	    || sqlite3_bind_int64(q, 3, now) != SQLITE_OK)
		return (store_fail(st, "remember owner notice"));
	return (write_one(st, q, "remember owner notice") == STORE_ERROR ? STORE_ERROR
		: STORE_YES);
}

int
store_held_file(struct store *st, const char *maildir_file)
{
	sqlite3_stmt *q = stmt(st, H_FILE);

	if (q == NULL || bind_text(q, 1, maildir_file) != SQLITE_OK)
		return (store_fail(st, "look up held file"));
	return (exists_q(st, q, "look up held file"));
}
