/*
 * store.c - the SQLite membership store.
 *
 * The only module that includes sqlite3.h.  Each worker opens its own
 * connection after fork (never share one across fork).  The database runs
 * in WAL mode with a busy timeout, and every lookup is its own short read
 * transaction, so an edit made with the sqlite3 CLI while mlistd runs is
 * seen by the next message without a reload.  synchronous = FULL: every
 * commit that a 250 depends on (a claim, a checkpoint, a relayed copy, a
 * bounce) is on disk before the reply, even after a power loss.
 *
 * Every function returns STORE_YES/STORE_NO or a count, or STORE_ERROR
 * for any database problem (locked past the busy timeout, missing table,
 * corrupt file); callers answer 451 4.3.0 for that, never 5xx or 250.
 *
 * The schema is sql/schema.sql, compiled in as store_schema_sql (see
 * Makefile.am), applied to a new or empty database.  Statements are
 * prepared once per connection.
 *
 * An upgrade is never silent: before migrating a database that holds
 * lists, store_open copies it beside itself (PATH.vN-YYYYMMDDHHMMSS.bak,
 * mode 0640, owned like the database) and refuses to migrate when it
 * cannot; each step from version N to N + 1 is then logged at info level.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

extern const char store_schema_sql[];

enum {
	Q_GROUP,
	Q_MEMBER,
	Q_IN_GROUP,
	Q_RECIPIENTS,
	Q_RECIPIENTS_REST,
	Q_BOUNCE,
	Q_HARD,
	Q_MEMBER_GROUP,
	Q_PROBE_LAST,
	Q_PROBE_SENT,
	Q_PROBE_FIND,
	Q_PROBE_BOUNCED,
	Q_PROBE_ALIVE,
	Q_PROBE_PRUNE,
	Q_UNSUB,
	Q_IS_RCPT,
	Q_BLOCKED,
	Q_SUB_GROUP,
	Q_SUB_CLEAR,
	Q_REQ_RECENT,
	Q_REQ_SIBLING,
	Q_REQ_UNSUBS,
	Q_REQ_ADD,
	Q_REQ_CANCEL,
	Q_REQ_STATE,
	Q_REQ_DONE,
	Q_REQ_PRUNE,
	Q_GROUPS,
	Q_COPY,
	Q_CLAIM_NEW,
	Q_CLAIM_TAKE,
	Q_MARK_RCPT,
	Q_TOUCH,
	Q_COMPLETE,
	Q_FORGET_RCPT,
	Q_RELEASE,
	Q_FORGET_STALE,
	Q_PRUNE,
	Q_SYNC_NORMAL,
	Q_SYNC_FULL,
	Q_BEGIN,
	Q_BEGIN_READ,
	Q_COMMIT,
	Q_ROLLBACK,
	Q_COUNT
};

_Static_assert(Q_COUNT <= sizeof(((struct store *) 0)->stmt)
	       / sizeof(((struct store *) 0)->stmt[0]), "struct store: stmt too small");

static const char *const queries[Q_COUNT] = {
	"SELECT name, description, is_group, posting, subscribe, others, moderated,"
	" notify_owners, notify_held, dmarc FROM groups WHERE name = ?1",
	"SELECT 1 FROM members WHERE address = ?1",
	"SELECT 1 FROM group_members WHERE group_name = ?1 AND address = ?2",
	"SELECT gm.address FROM group_members gm WHERE gm.group_name = ?1"
	" AND NOT EXISTS (SELECT 1 FROM unsubscribes u WHERE u.address = gm.address"
	" AND (u.group_name = ?1 OR u.group_name = '*'))"
	" ORDER BY gm.address",
	/* The same, less the members a partly relayed copy already reached. */
	"SELECT gm.address FROM group_members gm WHERE gm.group_name = ?1"
	" AND NOT EXISTS (SELECT 1 FROM unsubscribes u WHERE u.address = gm.address"
	" AND (u.group_name = ?1 OR u.group_name = '*'))"
	" AND NOT EXISTS (SELECT 1 FROM relayed_rcpt r WHERE r.copy_id = ?2"
	" AND r.address = gm.address)"
	" ORDER BY gm.address",
	"INSERT INTO bounces (envelope_to, address, status, action, diagnostic,"
	" maildir_file, group_name, evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	/* Evidence since the address's latest proof of life only. */
	"SELECT count(*) FROM bounces WHERE address = ?1 AND evidence = 1"
	" AND action = 'failed' AND status LIKE '5.%' AND received >= datetime('now', ?2)"
	" AND received > coalesce((SELECT datetime(max(alive_at), 'unixepoch') FROM probes"
	" WHERE address = ?1), '')",
	/* The list to name in a probe: the one asked for, else any. */
	"SELECT group_name FROM group_members WHERE address = ?1"
	" ORDER BY group_name = ?2 DESC, group_name LIMIT 1",
	"SELECT max(sent_at) FROM probes WHERE address = ?1",
	"INSERT OR REPLACE INTO probes (address, group_name, sent_at, expires)"
	" VALUES (?1, ?2, ?3, ?4)",
	"SELECT group_name, bounced_at FROM probes WHERE address = ?1 AND expires = ?2",
	"UPDATE probes SET bounced_at = ?3 WHERE address = ?1 AND expires = ?2"
	" AND bounced_at IS NULL",
	"UPDATE probes SET alive_at = ?3 WHERE address = ?1 AND expires = ?2",
	/* Each address's latest proof of life stays: store_evidence reads it. */
	"DELETE FROM probes WHERE expires < ?1 AND (alive_at IS NULL OR alive_at <"
	" (SELECT max(p.alive_at) FROM probes p WHERE p.address = probes.address))",
	"INSERT OR IGNORE INTO unsubscribes (group_name, address, source) VALUES (?1, ?2, ?3)",
	"SELECT 1 FROM group_members gm WHERE gm.group_name = ?1 AND gm.address = ?2"
	" AND NOT EXISTS (SELECT 1 FROM unsubscribes u WHERE u.address = gm.address"
	" AND (u.group_name = ?1 OR u.group_name = '*'))",
	/* An opt-out mlistd did not make itself: an administrator's. */
	"SELECT 1 FROM unsubscribes WHERE address = ?2 AND (group_name = '*'"
	" OR (group_name = ?1 AND (source IS NULL OR source NOT IN ('request', 'bounces'))))",
	"INSERT OR IGNORE INTO group_members (group_name, address) VALUES (?1, ?2)",
	"DELETE FROM unsubscribes WHERE group_name = ?1 AND address = ?2"
	" AND source IN ('request', 'bounces')",
	"SELECT 1 FROM requests WHERE normalized = ?1 AND sent_at >= ?2"
	" AND (digest IS NULL OR digest <> ?3)",
	"SELECT 1 FROM requests WHERE digest = ?1"
	" AND NOT (group_name = ?2 AND address = ?3 AND action = ?4)",
	/* Counted per list (a recipient leaving several lists within the
	 * hour hears from each); not this list's own row of this message
	 * (its retry). */
	"SELECT (SELECT count(*) FROM requests WHERE normalized = ?5"
	" AND group_name = ?1 AND action = 'unsubscribe' AND sent_at >= ?3"
	" AND digest IS NOT ?4),"
	" coalesce(max(sent_at), 0), coalesce(max(expires), 0) FROM requests"
	" WHERE group_name = ?1 AND address = ?2 AND action = 'unsubscribe'"
	" AND sent_at >= ?3 AND (digest IS NULL OR digest <> ?4)",
	"INSERT OR REPLACE INTO requests (group_name, address, action, sent_at, expires,"
	" digest, normalized) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	"DELETE FROM requests WHERE group_name = ?1 AND address = ?2 AND action = ?3"
	" AND expires = ?4 AND done_at IS NULL",
	"SELECT coalesce(digest, ''), done_at FROM requests WHERE group_name = ?1"
	" AND address = ?2 AND action = ?3 AND expires = ?4",
	"INSERT INTO requests (group_name, address, action, sent_at, expires, done_at, digest,"
	" normalized) VALUES (?1, ?2, ?3, ?5, ?4, ?5, ?6, lower(?2)) ON CONFLICT DO UPDATE"
	" SET done_at = ?5, digest = ?6",
	"DELETE FROM requests WHERE expires < ?1",
	"SELECT name, NULL, is_group, posting, subscribe, others, moderated,"
	" notify_owners, notify_held, dmarc FROM groups ORDER BY name",
	"SELECT id, complete, relayed_at, owner, claimed_at, boot, lease, generation"
	" FROM relayed WHERE digest = ?2 AND group_name = ?1",
	"INSERT INTO relayed (group_name, digest, message_id, complete, owner, claimed_at,"
	" boot, lease, generation, touched) VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7, 1, ?8)",
	"UPDATE relayed SET owner = ?2, claimed_at = ?3, boot = ?4, lease = ?5,"
	" generation = generation + 1, touched = ?6 WHERE id = ?1 RETURNING generation",
	"INSERT OR IGNORE INTO relayed_rcpt (copy_id, address, refused) VALUES (?1, ?2, ?3)",
	/* Every write of a claim's owner is fenced on owner and generation. */
	"UPDATE relayed SET lease = ?4, touched = ?5"
	" WHERE id = ?1 AND owner = ?2 AND generation = ?3",
	"UPDATE relayed SET complete = 1, owner = NULL, claimed_at = NULL, lease = NULL,"
	" touched = ?4, relayed_at = strftime('%Y-%m-%d %H:%M:%S', 'now')"
	" WHERE id = ?1 AND owner = ?2 AND generation = ?3",
	"DELETE FROM relayed_rcpt WHERE copy_id = ?1",
	"UPDATE relayed SET owner = NULL, claimed_at = NULL, lease = NULL"
	" WHERE id = ?1 AND owner = ?2 AND generation = ?3",
	/*
	 * Old by the wall clock, and not young by this boot's clock: a step
	 * of the wall clock forward does not make mlistd forget a copy whose
	 * retry may still come.  Rows of an earlier boot stay until this boot
	 * is itself older than the window (the wall clock of a machine without
	 * a real-time clock is wrong at boot), and a claim never goes.
	 */
	"DELETE FROM relayed WHERE digest = ?2 AND group_name = ?1"
	" AND relayed_at < datetime('now', ?3) AND owner IS NULL"
	" AND NOT (boot IS ?4 AND touched > ?5) AND NOT (boot IS NOT ?4 AND ?6 < 0)",
	/* id grows with time: delete below the oldest row still wanted. */
	"DELETE FROM relayed WHERE id < coalesce((SELECT id FROM relayed"
	" WHERE relayed_at >= datetime('now', ?1) ORDER BY id LIMIT 1),"
	" (SELECT max(id) + 1 FROM relayed)) AND owner IS NULL"
	" AND NOT (boot IS ?2 AND touched > ?3) AND NOT (boot IS NOT ?2 AND ?3 < 0)",
	"PRAGMA synchronous = NORMAL",
	"PRAGMA synchronous = FULL",
	"BEGIN IMMEDIATE",
	"BEGIN",
	"COMMIT",
	"ROLLBACK",
};

/* store_fail - remember the error text, return STORE_ERROR */
int
store_fail(struct store *st, const char *what)
{
	snprintf(st->err, sizeof(st->err), "%s: %s", what,
		 st->db ? sqlite3_errmsg(st->db) : "no database");
	st->errcode = st->db ? sqlite3_extended_errcode(st->db) & 0xff : SQLITE_ERROR;
	return (STORE_ERROR);
}

int
store_busy(const struct store *st)
{
	return (st->errcode == SQLITE_BUSY || st->errcode == SQLITE_LOCKED);
}

const char *
store_errmsg(const struct store *st)
{
	return (st->err);
}

/*
 * busy_wait - sqlite3_busy_handler: wait for another writer.  SQLite's
 * own handler sleeps 1, 2, 5, 10 ... ms between tries; a worker that
 * waits behind another's short write transaction then idles for
 * milliseconds while the lock was free after microseconds.  This one
 * retries every 100 us for the first 10 ms, then every 2 ms, until
 * database-timeout has passed (then the caller answers 451).
 */
static int
busy_wait(void *arg, int count)
{
	struct store *st = arg;
	struct timespec now, nap = {0, 100 * 1000};
	long	ms;

	(void) clock_gettime(CLOCK_MONOTONIC, &now);
	if (count == 0)
		st->busy_since = now;
	ms = (long) (now.tv_sec - st->busy_since.tv_sec) * 1000
		+ (now.tv_nsec - st->busy_since.tv_nsec) / 1000000;
	if (ms >= (long) st->busy_ms)
		return (0);
	if (ms >= 10)
		nap.tv_nsec = 2 * 1000 * 1000;
	(void) nanosleep(&nap, NULL);
	return (1);
}

/* has_column - does table have column? */
static int
has_column(struct store *st, const char *table, const char *column)
{
	sqlite3_stmt *q;
	char	sql[200];
	int	ok;

	snprintf(sql, sizeof(sql), "SELECT %s FROM %s LIMIT 0", column, table);
	ok = sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) == SQLITE_OK;
	sqlite3_finalize(q);
	return (ok);
}

/*
 * The in-place upgrades, in order.  Each runs when the database is older
 * than `below` (and at least `from`), and, where column is set, only if
 * table lacks that column (a table made by hand from a newer schema.sql
 * has it already; a missing table is made by schema.sql afterwards).
 *   3 -> 4: the claim columns (its rows are copies a retry must find);
 *   1, 2: `relayed` was another table, only a memory of recent copies:
 *     made anew;
 *   5: who may subscribe (groups.subscribe), who made an opt-out
 *     (unsubscribes.source); a name with the command delimiter "+" is
 *     refused by a trigger where the table predates the CHECK;
 *   6: fenced claims (relayed.boot, lease, generation: a claim left by
 *     an older mlistd has no boot and is judged by its claimed_at),
 *     requests.normalized (older rows: lower(address); gone within a
 *     week), probes.alive_at;
 *   7: moderation: groups.others, moderated, notify_owners,
 *     notify_held (their defaults change nothing: others = 'reject');
 *   8: deliverability: groups.dmarc (NULL: dmarc-mitigation decides).
 */
static const struct migration {
	int	from, below;
	const char *table, *column;	/* run only if table lacks column */
	const char *sql;
} migrations[] = {
	{3, 4, NULL, NULL,
	 "ALTER TABLE relayed ADD COLUMN owner INTEGER;"
	 " ALTER TABLE relayed ADD COLUMN claimed_at INTEGER;"
	 " ALTER TABLE relayed_rcpt ADD COLUMN refused INTEGER NOT NULL"
	 " DEFAULT 0 CHECK (refused IN (0, 1));"},
	{1, 4, "bounces", "evidence",
	 "ALTER TABLE bounces ADD COLUMN evidence INTEGER NOT NULL DEFAULT 0"
	 " CHECK (evidence IN (0, 1));"},
	{1, 3, NULL, NULL, "DROP TABLE IF EXISTS relayed_rcpt; DROP TABLE IF EXISTS relayed"},
	{1, 5, "groups", "subscribe",
	 "ALTER TABLE groups ADD COLUMN subscribe TEXT NOT NULL DEFAULT 'closed'"
	 " CHECK (subscribe IN ('closed', 'confirm', 'members'));"
	 " CREATE TRIGGER IF NOT EXISTS groups_name_insert BEFORE INSERT ON groups"
	 " WHEN NEW.name GLOB '*+*' BEGIN SELECT RAISE(ABORT,"
	 " 'a list name may not contain \"+\"'); END;"
	 " CREATE TRIGGER IF NOT EXISTS groups_name_update BEFORE UPDATE OF name"
	 " ON groups WHEN NEW.name GLOB '*+*' BEGIN SELECT RAISE(ABORT,"
	 " 'a list name may not contain \"+\"'); END;"},
	{1, 5, "unsubscribes", "source", "ALTER TABLE unsubscribes ADD COLUMN source TEXT"},
	{3, 6, "relayed", "generation",
	 "ALTER TABLE relayed ADD COLUMN boot TEXT;"
	 " ALTER TABLE relayed ADD COLUMN lease INTEGER;"
	 " ALTER TABLE relayed ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;"
	 " ALTER TABLE relayed ADD COLUMN touched INTEGER;"},
	{1, 6, "requests", "normalized",
	 "ALTER TABLE requests ADD COLUMN normalized TEXT;"
	 " UPDATE requests SET normalized = lower(address);"},
	{1, 6, "probes", "alive_at", "ALTER TABLE probes ADD COLUMN alive_at INTEGER"},
	{1, 7, "groups", "others",
	 "ALTER TABLE groups ADD COLUMN others TEXT NOT NULL DEFAULT 'reject'"
	 " CHECK (others IN ('reject', 'hold', 'discard'));"
	 " ALTER TABLE groups ADD COLUMN moderated INTEGER NOT NULL DEFAULT 0"
	 " CHECK (moderated IN (0, 1));"
	 " ALTER TABLE groups ADD COLUMN notify_owners INTEGER NOT NULL DEFAULT 1"
	 " CHECK (notify_owners IN (0, 1));"
	 " ALTER TABLE groups ADD COLUMN notify_held INTEGER NOT NULL DEFAULT 0"
	 " CHECK (notify_held IN (0, 1));"},
	{1, 8, "groups", "dmarc",
	 "ALTER TABLE groups ADD COLUMN dmarc TEXT"
	 " CHECK (dmarc IS NULL OR dmarc IN ('auto', 'always', 'never'));"},
};

/* What each version adds, for the log line of each step (index: to - 2). */
static const char *const steps[] = {
	"relayed: a memory of recent copies (dedup-window)",
	"relayed made anew, to resume a partly relayed copy",
	"claims on relayed copies (owner, claimed_at, refused), bounces.evidence",
	"self-service: groups.subscribe, unsubscribes.source, the requests table",
	"fenced claims (relayed.boot, lease, generation), requests.normalized,"
	" probes.alive_at",
	"moderation: groups.others, moderated, notify_owners, notify_held,"
	" the moderators and held tables",
	"deliverability: groups.dmarc",
};
_Static_assert(sizeof(steps) / sizeof(steps[0]) == STORE_SCHEMA_VERSION - 1,
	       "one line in steps[] for each schema version");

/* migrate - the upgrades a database of this version needs; 0 or -1 */
static int
migrate(struct store *st, int version, char **msg)
{
	for (size_t i = 0; i < sizeof(migrations) / sizeof(migrations[0]); i++) {
		const struct migration *mg = &migrations[i];

		if (version < mg->from || version >= mg->below)
			continue;
		/* A table that does not exist yet: schema.sql makes it. */
		if (mg->table && !has_column(st, mg->table, "*"))
			continue;
		if (mg->table && has_column(st, mg->table, mg->column))
			continue;
		if (sqlite3_exec(st->db, mg->sql, NULL, NULL, msg) != SQLITE_OK)
			return (-1);
	}
	return (0);
}

/* user_version - the database's schema version, or -1 */
static int
user_version(struct store *st)
{
	sqlite3_stmt *q;
	int	version = -1;

	if (sqlite3_prepare_v2(st->db, "PRAGMA user_version", -1, &q, NULL) != SQLITE_OK)
		return (-1);
	if (sqlite3_step(q) == SQLITE_ROW)
		version = sqlite3_column_int(q, 0);
	sqlite3_finalize(q);
	return (version);
}

/* has_lists - does the groups table hold a row?  1, 0, or -1 */
static int
has_lists(struct store *st)
{
	sqlite3_stmt *q;
	int	rc;

	if (!has_column(st, "groups", "*"))
		return (0);
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM groups LIMIT 1", -1, &q,
			       NULL) != SQLITE_OK)
		return (-1);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	return (rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
}

/*
 * backup_copy - copy the database (while the caller's transaction holds
 * the write lock, so what is copied is what will be migrated) to a new
 * file bak, mode 0640, owned like the database.  0, or -1 with st->err.
 */
static int
backup_copy(struct store *st, const char *path, const char *bak)
{
	sqlite3 *dst = NULL, *src = NULL;
	sqlite3_backup *b;
	struct stat sb;
	int	fd, rc;

	if ((fd = open(bak, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
		       0640)) < 0) {
		snprintf(st->err, sizeof(st->err), "%s", strerror(errno));
		return (-1);
	}
	/* As root (mlistd -t before it drops privileges): the owner's. */
	if (geteuid() == 0 && stat(path, &sb) == 0
	    && fchown(fd, sb.st_uid, sb.st_gid) < 0) {
		snprintf(st->err, sizeof(st->err), "chown: %s", strerror(errno));
		(void) close(fd);
		(void) unlink(bak);
		return (-1);
	}
	(void) fchmod(fd, 0640);
	(void) close(fd);
	if (sqlite3_open_v2(bak, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		snprintf(st->err, sizeof(st->err), "%s",
			 dst ? sqlite3_errmsg(dst) : "out of memory");
		(void) sqlite3_close(dst);
		(void) unlink(bak);
		return (-1);
	}
	/*
	 * From a second connection: the caller's holds the write lock, and
	 * SQLite copies nothing from a connection that writes.  In WAL mode
	 * this one reads the last commit, which is what will be migrated.
	 */
	if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK
	    || (b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
		snprintf(st->err, sizeof(st->err), "%s",
			 src ? sqlite3_errmsg(src) : "out of memory");
		(void) sqlite3_close(src);
		(void) sqlite3_close(dst);
		(void) unlink(bak);
		return (-1);
	}
	rc = sqlite3_backup_step(b, -1);
	(void) sqlite3_backup_finish(b);
	(void) sqlite3_close(src);
	if (rc != SQLITE_DONE) {
		snprintf(st->err, sizeof(st->err), "%s", sqlite3_errstr(rc));
		(void) sqlite3_close(dst);
		(void) unlink(bak);
		return (-1);
	}
	if (sqlite3_close(dst) != SQLITE_OK) {
		snprintf(st->err, sizeof(st->err), "cannot close the copy");
		(void) unlink(bak);
		return (-1);
	}
	return (0);
}

/* newer_schema - what an older mlistd says of a newer database */
static void
newer_schema(struct store *st, const char *path, int version)
{
	char	pat[4200], bak[4200];
	glob_t	g;

	snprintf(pat, sizeof(pat), "%s.v%d-*.bak", path, STORE_SCHEMA_VERSION);
	if (glob(pat, 0, NULL, &g) == 0 && g.gl_pathc > 0)
		snprintf(bak, sizeof(bak), "%s", g.gl_pathv[g.gl_pathc - 1]);
	else
		snprintf(bak, sizeof(bak), "%s.v%d-YYYYMMDDHHMMSS.bak", path,
			 STORE_SCHEMA_VERSION);
	globfree(&g);
	snprintf(st->err, sizeof(st->err), "the database %s has schema version %d, "
		 "made by a newer mlistd; this mlistd knows version %d: run the newer "
		 "mlistd, or restore the backup taken before the upgrade (%.500s)", path,
		 version, STORE_SCHEMA_VERSION, bak);
}

/*
 * schema_apply - create tables in a new database, upgrade an older one
 * in place (after a backup, if it holds lists; one log line per step),
 * refuse a newer one.  The version is read again inside the write
 * transaction: of several workers starting at once, one migrates.
 */
static int
schema_apply(struct store *st, const char *path)
{
	int	version, lists = 0;
	char   *msg = NULL, bak[4200] = "";

	if ((version = user_version(st)) < 0)
		return (store_fail(st, "read schema version"));
	if (version == STORE_SCHEMA_VERSION)
		return (STORE_YES);
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->err, sizeof(st->err), "apply schema: %s",
			 msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return (STORE_ERROR);
	}
	if ((version = user_version(st)) < 0 || (lists = has_lists(st)) < 0) {
		(void) store_fail(st, "read schema version");
		(void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return (STORE_ERROR);
	}
	if (version > STORE_SCHEMA_VERSION) {
		(void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		newer_schema(st, path, version);
		return (STORE_ERROR);
	}
	if (version == STORE_SCHEMA_VERSION)
		return (sqlite3_exec(st->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK
			? STORE_YES : store_fail(st, "apply schema"));
	if (version > 0 && lists) {
		char	stamp[32];
		time_t	now = time(NULL);
		struct tm tm;

		if (localtime_r(&now, &tm) == NULL
		    || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
			snprintf(stamp, sizeof(stamp), "%lld", (long long) now);
		snprintf(bak, sizeof(bak), "%s.v%d-%s.bak", path, version, stamp);
		if (backup_copy(st, path, bak) < 0) {
			char	why[300];

			snprintf(why, sizeof(why), "%.299s", st->err);
			snprintf(st->err, sizeof(st->err), "cannot write a backup to %.500s "
				 "before upgrading from schema version %d to %d: %s; not "
				 "upgraded (free space, or let mlistd's user write in the "
				 "database's directory)", bak, version, STORE_SCHEMA_VERSION, why);
			(void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
			return (STORE_ERROR);
		}
		msg_info("database %s: schema version %d: backup written to %s before "
			 "upgrading", path, version, bak);
	}
	/* New, empty, or made by hand from schema.sql: it is idempotent. */
	if ((version > 0 && migrate(st, version, &msg) < 0)
	    || sqlite3_exec(st->db, store_schema_sql, NULL, NULL, &msg) != SQLITE_OK
	    || sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(st->err, sizeof(st->err), "upgrade from schema version %d "
			 "failed, nothing changed: %s", version,
			 msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		(void) sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		return (STORE_ERROR);
	}
	for (int v = version; v > 0 && v < STORE_SCHEMA_VERSION; v++)
		msg_info("database %s: schema version %d -> %d: %s", path, v, v + 1,
			 steps[v - 1]);
	return (STORE_YES);
}

/* store_open - connect, configure, migrate, prepare */
struct store *
store_open(const char *path, unsigned busy_timeout_ms, char *err, size_t errlen)
{
	struct store *st;
	char   *msg = NULL;

	if ((st = calloc(1, sizeof(*st))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	if (sqlite3_open_v2(path, &st->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
			    | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
		snprintf(err, errlen, "cannot open database %s: %s", path,
			 st->db ? sqlite3_errmsg(st->db) : "out of memory");
		store_free(st);
		return (NULL);
	}
	(void) sqlite3_extended_result_codes(st->db, 1);
	st->busy_ms = busy_timeout_ms;
	(void) sqlite3_busy_handler(st->db, busy_wait, st);
	if (sqlite3_exec(st->db, "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON;"
			 " PRAGMA synchronous = FULL", NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(err, errlen, "database %s: %s", path,
			 msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		store_free(st);
		return (NULL);
	}
	/*
	 * Keep the -wal and -shm files when the last connection closes, so
	 * they stay the files mlistd's user made: otherwise a root sqlite3
	 * session opened while no worker holds the database (at start, say)
	 * creates them as root, and the workers cannot write until a reload
	 * hands them over.
	 */
	{
		int	persist = 1;

		(void) sqlite3_file_control(st->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	}
	if (schema_apply(st, path) == STORE_ERROR) {
		if (strncmp(st->err, "the database ", 13) == 0)
			snprintf(err, errlen, "%s", st->err);
		else
			snprintf(err, errlen, "database %s: %s", path, st->err);
		store_free(st);
		return (NULL);
	}
	for (int i = 0; i < Q_COUNT; i++)
		if (sqlite3_prepare_v3(st->db, queries[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &st->stmt[i], NULL) != SQLITE_OK) {
			snprintf(err, errlen, "database %s: %s", path, sqlite3_errmsg(st->db));
			store_free(st);
			return (NULL);
		}
	return (st);
}

/* store_free - finalize and close; NULL is fine */
void
store_free(struct store *st)
{
	if (st == NULL)
		return;
	for (int i = 0; i < Q_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	for (int i = 0; i < STORE_MORE_MAX; i++)
		sqlite3_finalize(st->more[i]);
	if (st->db)
		(void) sqlite3_close(st->db);
	free(st);
}

/* step_once - one step of a statement that returns no column we keep;
 * the statement is reset and unbound for its next use */
static int
step_once(sqlite3_stmt *q)
{
	int	rc = sqlite3_step(q);

	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	return (rc);
}

/* exists - run a one-row probe */
static int
exists(struct store *st, sqlite3_stmt *q, const char *what)
{
	int	rc = step_once(q);

	if (rc == SQLITE_ROW)
		return (STORE_YES);
	if (rc == SQLITE_DONE)
		return (STORE_NO);
	return (store_fail(st, what));
}

/* text_is - column i of q is the text want */
static int
text_is(sqlite3_stmt *q, int i, const char *want)
{
	const unsigned char *s = sqlite3_column_text(q, i);

	return (s != NULL && strcmp((const char *) s, want) == 0);
}

/* group_row - a groups row (Q_GROUP, Q_GROUPS) into g; an unknown value
 * is read as the safe default (posting members, subscribe closed,
 * others reject) */
static void
group_row(sqlite3_stmt *q, struct store_group *g)
{
	const unsigned char *s;

	if ((s = sqlite3_column_text(q, 0)) != NULL)
		snprintf(g->name, sizeof(g->name), "%s", (const char *) s);
	if ((s = sqlite3_column_text(q, 1)) != NULL)
		snprintf(g->description, sizeof(g->description), "%s", (const char *) s);
	g->is_group = sqlite3_column_int(q, 2) != 0;
	g->posting = text_is(q, 3, "anyone") ? POST_ANYONE
		: text_is(q, 3, "group") ? POST_GROUP : POST_MEMBERS;
	g->subscribe = text_is(q, 4, "confirm") ? SUB_CONFIRM
		: text_is(q, 4, "members") ? SUB_MEMBERS : SUB_CLOSED;
	g->others = text_is(q, 5, "hold") ? OTHERS_HOLD
		: text_is(q, 5, "discard") ? OTHERS_DISCARD : OTHERS_REJECT;
	g->moderated = sqlite3_column_int(q, 6) != 0;
	g->notify_owners = sqlite3_column_int(q, 7) != 0;
	g->notify_held = sqlite3_column_int(q, 8) != 0;
	g->dmarc = text_is(q, 9, "auto") ? DMARC_MODE_AUTO
		: text_is(q, 9, "always") ? DMARC_MODE_ALWAYS
		: text_is(q, 9, "never") ? DMARC_MODE_NEVER : 0;
}

int
store_group(struct store *st, const char *name, struct store_group *g)
{
	sqlite3_stmt *q = st->stmt[Q_GROUP];
	int	rc;

	memset(g, 0, sizeof(*g));
	if (sqlite3_bind_text(q, 1, name, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up group"));
	if ((rc = sqlite3_step(q)) == SQLITE_ROW)
		group_row(q, g);
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return (STORE_YES);
	if (rc == SQLITE_DONE)
		return (STORE_NO);
	return (store_fail(st, "look up group"));
}

int
store_is_member(struct store *st, const char *address)
{
	sqlite3_stmt *q = st->stmt[Q_MEMBER];

	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up member"));
	return (exists(st, q, "look up member"));
}

int
store_in_group(struct store *st, const char *group, const char *address)
{
	sqlite3_stmt *q = st->stmt[Q_IN_GROUP];

	if (sqlite3_bind_text(q, 1, group, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, address, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up group member"));
	return (exists(st, q, "look up group member"));
}

long
store_recipients(struct store *st, const char *group, long long skip_copy,
		 int (*fn) (void *, const char *), void *arg)
{
	sqlite3_stmt *q = st->stmt[skip_copy ? Q_RECIPIENTS_REST : Q_RECIPIENTS];
	long	n = 0;
	int	rc;

	if (sqlite3_bind_text(q, 1, group, -1, SQLITE_STATIC) != SQLITE_OK
	    || (skip_copy && sqlite3_bind_int64(q, 2, skip_copy) != SQLITE_OK))
		return (store_fail(st, "list recipients"));
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const unsigned char *a = sqlite3_column_text(q, 0);

		if (a == NULL)
			continue;
		n++;
		if (fn(arg, (const char *) a) != 0) {
			rc = SQLITE_NOMEM;
			break;
		}
	}
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	if (rc == SQLITE_NOMEM) {
		snprintf(st->err, sizeof(st->err), "list recipients: out of memory");
		return (STORE_ERROR);
	}
	if (rc != SQLITE_DONE)
		return (store_fail(st, "list recipients"));
	return (n);
}

/* bind_opt - text or NULL */
static int
bind_opt(sqlite3_stmt *q, int i, const char *s)
{
	return (s ? sqlite3_bind_text(q, i, s, -1, SQLITE_STATIC)
		: sqlite3_bind_null(q, i));
}

long long
store_add_bounce(struct store *st, const struct store_bounce *b)
{
	sqlite3_stmt *q = st->stmt[Q_BOUNCE];

	if (bind_opt(q, 1, b->envelope_to ? b->envelope_to : "") != SQLITE_OK
	    || bind_opt(q, 2, b->address) != SQLITE_OK
	    || bind_opt(q, 3, b->status) != SQLITE_OK
	    || bind_opt(q, 4, b->action) != SQLITE_OK
	    || bind_opt(q, 5, b->diagnostic) != SQLITE_OK
	    || bind_opt(q, 6, b->maildir_file) != SQLITE_OK
	    || bind_opt(q, 7, b->group_name) != SQLITE_OK
	    || sqlite3_bind_int(q, 8, b->evidence != 0) != SQLITE_OK) {
		(void) sqlite3_clear_bindings(q);
		return (store_fail(st, "record bounce"));
	}
	if (step_once(q) != SQLITE_DONE)
		return (store_fail(st, "record bounce"));
	return (sqlite3_last_insert_rowid(st->db));
}

long
store_evidence(struct store *st, const char *address, unsigned days)
{
	sqlite3_stmt *q = st->stmt[Q_HARD];
	char	window[32];
	long	n = STORE_ERROR;

	snprintf(window, sizeof(window), "-%u days", days);
	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, window, -1, SQLITE_TRANSIENT) != SQLITE_OK)
		return (store_fail(st, "count bounces"));
	if (sqlite3_step(q) == SQLITE_ROW)
		n = (long) sqlite3_column_int64(q, 0);
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	return (n == STORE_ERROR ? store_fail(st, "count bounces") : n);
}

int
store_unsubscribe(struct store *st, const char *group, const char *address,
		  const char *source)
{
	sqlite3_stmt *q = st->stmt[Q_UNSUB];

	if (sqlite3_bind_text(q, 1, group, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || bind_opt(q, 3, source) != SQLITE_OK)
		return (store_fail(st, "unsubscribe"));
	if (step_once(q) != SQLITE_DONE)
		return (store_fail(st, "unsubscribe"));
	if (sqlite3_changes(st->db) == 0)
		return (STORE_NO);
	/* mlistd's own opt-outs are news for the list's moderators. */
	if (source && store_change_add(st, group, address, "unsubscribed", source,
				       (long long) time(NULL)) == STORE_ERROR)
		return (STORE_ERROR);
	return (STORE_YES);
}

/* bind_copy - ?1 group, ?2 digest, and ?3 "-N seconds" when window > 0 */
static int
bind_copy(sqlite3_stmt *q, const char *group, const char *digest, unsigned window)
{
	char	since[32];

	snprintf(since, sizeof(since), "-%u seconds", window);
	return (sqlite3_bind_text(q, 1, group, -1, SQLITE_STATIC) == SQLITE_OK
		&& sqlite3_bind_text(q, 2, digest, -1, SQLITE_STATIC) == SQLITE_OK
		&& (window == 0
		    || sqlite3_bind_text(q, 3, since, -1, SQLITE_TRANSIENT) == SQLITE_OK)
		? 0 : -1);
}

/* alive - does process pid exist (on this host)? */
static int
alive(long pid)
{
	return (pid > 0 && (kill((pid_t) pid, 0) == 0 || errno == EPERM));
}

/* A copy's claim as copy_row reads it. */
struct claim_row {
	int	complete;
	char	boot[40];		/* "" when NULL (a claim made before version 6) */
	long long lease;		/* boot clock */
	long long generation;
};

/* copy_row - Q_COPY for (group, digest): 1 row, 0 none, -1 error */
static int
copy_row(struct store *st, const char *group, const char *digest,
	 struct store_copy *c, struct claim_row *cr)
{
	sqlite3_stmt *q = st->stmt[Q_COPY];
	int	rc;

	if (bind_copy(q, group, digest, 0) < 0)
		return (-1);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(q, 2);
		const unsigned char *b = sqlite3_column_text(q, 5);

		c->id = sqlite3_column_int64(q, 0);
		cr->complete = sqlite3_column_int(q, 1) != 0;
		snprintf(c->when, sizeof(c->when), "%s", t ? (const char *) t : "");
		c->owner = sqlite3_column_type(q, 3) == SQLITE_NULL ? 0
			: (long) sqlite3_column_int64(q, 3);
		c->claimed_at = sqlite3_column_int64(q, 4);
		snprintf(cr->boot, sizeof(cr->boot), "%s", b ? (const char *) b : "");
		cr->lease = sqlite3_column_int64(q, 6);
		cr->generation = sqlite3_column_int64(q, 7);
	}
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	return (rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1);
}

/*
 * live - is the claim in row c another process's, still running?  Its
 * owner exists, and its lease is not over on this boot's clock.  A claim
 * made before version 6 (no boot) falls back to its wall-clock age.
 */
static int
live(const struct store_copy *c, const struct claim_row *cr, const struct store_owner *o)
{
	if (c->owner == 0 || c->owner == o->pid || !alive(c->owner))
		return (0);
	if (cr->boot[0] == 0)
		return (o->wall - c->claimed_at < (long long) o->lease);
	return (strcmp(cr->boot, o->boot) == 0 && o->now < cr->lease);
}

static int claim(struct store *, const char *, const char *, const char *,
		 unsigned, struct store_owner *, struct store_copy *);

int
store_claim(struct store *st, const char *group, const char *digest,
	    const char *message_id, unsigned window, struct store_owner *o,
	    struct store_copy *c)
{
	int	result;

	memset(c, 0, sizeof(*c));
	/*
	 * The claim need not reach the disk by itself: the next commit that
	 * matters (a checkpoint, the copy complete) syncs it with its own
	 * WAL frames, and a claim lost with the OS before any of them stood
	 * for nothing sent.  That spares one fsync per post.
	 */
	(void) step_once(st->stmt[Q_SYNC_NORMAL]);
	result = claim(st, group, digest, message_id, window, o, c);
	(void) step_once(st->stmt[Q_SYNC_FULL]);
	return (result);
}

/* claim - store_claim's transaction */
static int
claim(struct store *st, const char *group, const char *digest,
      const char *message_id, unsigned window, struct store_owner *o,
      struct store_copy *c)
{
	struct claim_row cr;
	sqlite3_stmt *q;
	int	rc, result;

	memset(&cr, 0, sizeof(cr));
	if (store_begin(st) == STORE_ERROR)
		return (STORE_ERROR);
	/* A row from an earlier copy outside the window is not this one. */
	q = st->stmt[Q_FORGET_STALE];
	if (bind_copy(q, group, digest, window) < 0
	    || sqlite3_bind_text(q, 4, o->boot, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 5, o->now - (long long) window) != SQLITE_OK
	    || sqlite3_bind_int64(q, 6, o->now - (long long) window) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		goto failed;
	if ((rc = copy_row(st, group, digest, c, &cr)) < 0)
		goto failed;
	if (rc == 1 && cr.complete) {
		result = CLAIM_DONE;
	} else if (rc == 1 && live(c, &cr, o)) {
		result = CLAIM_BUSY;
	} else if (rc == 1) {
		/* Nobody's, or its owner died or overran its lease: ours now. */
		q = st->stmt[Q_CLAIM_TAKE];
		if (sqlite3_bind_int64(q, 1, c->id) != SQLITE_OK
		    || sqlite3_bind_int64(q, 2, o->pid) != SQLITE_OK
		    || sqlite3_bind_int64(q, 3, o->wall) != SQLITE_OK
		    || sqlite3_bind_text(q, 4, o->boot, -1, SQLITE_STATIC) != SQLITE_OK
		    || sqlite3_bind_int64(q, 5, o->now + o->lease) != SQLITE_OK
		    || sqlite3_bind_int64(q, 6, o->now) != SQLITE_OK
		    || sqlite3_step(q) != SQLITE_ROW) {
			(void) sqlite3_reset(q);
			(void) sqlite3_clear_bindings(q);
			goto failed;
		}
		o->generation = sqlite3_column_int64(q, 0);
		if (step_once(q) != SQLITE_DONE)
			goto failed;
		result = CLAIM_RESUME;
	} else {
		q = st->stmt[Q_CLAIM_NEW];
		if (bind_copy(q, group, digest, 0) < 0 || bind_opt(q, 3, message_id) != SQLITE_OK
		    || sqlite3_bind_int64(q, 4, o->pid) != SQLITE_OK
		    || sqlite3_bind_int64(q, 5, o->wall) != SQLITE_OK
		    || sqlite3_bind_text(q, 6, o->boot, -1, SQLITE_STATIC) != SQLITE_OK
		    || sqlite3_bind_int64(q, 7, o->now + o->lease) != SQLITE_OK
		    || sqlite3_bind_int64(q, 8, o->now) != SQLITE_OK
		    || step_once(q) != SQLITE_DONE)
			goto failed;
		c->id = sqlite3_last_insert_rowid(st->db);
		o->generation = 1;
		result = CLAIM_NEW;
	}
	if (store_commit(st) == STORE_ERROR)
		goto failed;
	return (result);
failed:
	(void) store_fail(st, "claim copy");
	store_rollback(st);
	return (STORE_ERROR);
}

int
store_mark_rcpt(struct store *st, long long copy_id, const char *address, int refused)
{
	sqlite3_stmt *q = st->stmt[Q_MARK_RCPT];

	if (sqlite3_bind_int64(q, 1, copy_id) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int(q, 3, refused != 0) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "remember served member"));
	return (STORE_YES);
}

/* bind_owner - ?1 the copy, ?2 pid, ?3 generation: the fence */
static int
bind_owner(sqlite3_stmt *q, long long copy_id, const struct store_owner *o)
{
	return (sqlite3_bind_int64(q, 1, copy_id) == SQLITE_OK
		&& sqlite3_bind_int64(q, 2, o->pid) == SQLITE_OK
		&& sqlite3_bind_int64(q, 3, o->generation) == SQLITE_OK ? 0 : -1);
}

int
store_touch(struct store *st, long long copy_id, const struct store_owner *o)
{
	sqlite3_stmt *q = st->stmt[Q_TOUCH];

	if (bind_owner(q, copy_id, o) < 0
	    || sqlite3_bind_int64(q, 4, o->now + o->lease) != SQLITE_OK
	    || sqlite3_bind_int64(q, 5, o->now) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "renew claim"));
	return (sqlite3_changes(st->db) > 0 ? STORE_YES : STORE_NO);
}

/* prune - forget copies older than the window, now and then */
static void
prune(struct store *st, unsigned window, const struct store_owner *o)
{
	sqlite3_stmt *q = st->stmt[Q_PRUNE];
	char	since[32];

	/* A failure here is harmless: old rows are ignored by the lookup. */
	if (++st->marks % 100 != 1)
		return;
	snprintf(since, sizeof(since), "-%u seconds", window);
	if (sqlite3_bind_text(q, 1, since, -1, SQLITE_TRANSIENT) == SQLITE_OK
	    && sqlite3_bind_text(q, 2, o->boot, -1, SQLITE_STATIC) == SQLITE_OK
	    && sqlite3_bind_int64(q, 3, o->now - (long long) window) == SQLITE_OK)
		(void) step_once(q);
	else
		(void) sqlite3_clear_bindings(q);
}

int
store_release(struct store *st, long long copy_id, int complete, unsigned window,
	      const struct store_owner *o)
{
	sqlite3_stmt *q = st->stmt[complete ? Q_COMPLETE : Q_RELEASE];

	if (bind_owner(q, copy_id, o) < 0
	    || (complete && sqlite3_bind_int64(q, 4, o->now) != SQLITE_OK)
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, complete ? "remember relayed copy" : "release claim"));
	if (sqlite3_changes(st->db) == 0)
		return (STORE_NO);		/* taken over: not ours to end */
	if (complete) {
		/* Complete: who was served no longer matters. */
		q = st->stmt[Q_FORGET_RCPT];
		if (sqlite3_bind_int64(q, 1, copy_id) != SQLITE_OK || step_once(q) != SQLITE_DONE)
			return (store_fail(st, "remember relayed copy"));
		prune(st, window, o);
	}
	return (STORE_YES);
}

/*
 * text_row - step q for at most one row: its first column copied to out,
 * and *flag (if not NULL) whether column 1 is not NULL.  STORE_YES,
 * STORE_NO or STORE_ERROR; q is reset and unbound.
 */
static int
text_row(struct store *st, sqlite3_stmt *q, char *out, size_t len, int *flag,
	 const char *what)
{
	int	rc = sqlite3_step(q);

	if (rc == SQLITE_ROW) {
		const unsigned char *t = sqlite3_column_text(q, 0);

		snprintf(out, len, "%s", t ? (const char *) t : "");
		if (flag)
			*flag = sqlite3_column_type(q, 1) != SQLITE_NULL;
	}
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return (STORE_YES);
	return (rc == SQLITE_DONE ? STORE_NO : store_fail(st, what));
}

int
store_member_group(struct store *st, const char *address, const char *prefer,
		   char *group, size_t len)
{
	sqlite3_stmt *q = st->stmt[Q_MEMBER_GROUP];

	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || bind_opt(q, 2, prefer) != SQLITE_OK)
		return (store_fail(st, "look up member's list"));
	return (text_row(st, q, group, len, NULL, "look up member's list"));
}

int
store_probe_due(struct store *st, const char *address, unsigned interval, long long now)
{
	sqlite3_stmt *q = st->stmt[Q_PROBE_LAST];
	long long last = -1;
	int	rc;

	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up probes"));
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW && sqlite3_column_type(q, 0) != SQLITE_NULL)
		last = sqlite3_column_int64(q, 0);
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW)
		return (store_fail(st, "look up probes"));
	return (last < 0 || now - last >= (long long) interval ? STORE_YES : STORE_NO);
}

int
store_probe_sent(struct store *st, const char *address, const char *group,
		 long long now, long long expires)
{
	sqlite3_stmt *q = st->stmt[Q_PROBE_SENT];

	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, group, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 3, now) != SQLITE_OK
	    || sqlite3_bind_int64(q, 4, expires) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "record probe"));
	q = st->stmt[Q_PROBE_PRUNE];
	if (sqlite3_bind_int64(q, 1, now - 30 * 86400LL) == SQLITE_OK)
		(void) step_once(q);	/* harmless if it fails */
	return (STORE_YES);
}

int
store_probe_find(struct store *st, const char *address, long long expires,
		 char *group, size_t len, int *bounced)
{
	sqlite3_stmt *q = st->stmt[Q_PROBE_FIND];

	*bounced = 0;
	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, expires) != SQLITE_OK)
		return (store_fail(st, "look up probe"));
	return (text_row(st, q, group, len, bounced, "look up probe"));
}

/* probe_stamp - Q_PROBE_BOUNCED or Q_PROBE_ALIVE: ?1 address, ?2 expires,
 * ?3 now */
static int
probe_stamp(struct store *st, int which, const char *address, long long expires,
	    long long now, const char *what)
{
	sqlite3_stmt *q = st->stmt[which];

	if (sqlite3_bind_text(q, 1, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, expires) != SQLITE_OK
	    || sqlite3_bind_int64(q, 3, now) != SQLITE_OK || step_once(q) != SQLITE_DONE)
		return (store_fail(st, what));
	return (STORE_YES);
}

int
store_probe_mark(struct store *st, const char *address, long long expires, long long now)
{
	return (probe_stamp(st, Q_PROBE_BOUNCED, address, expires, now, "record probe bounce"));
}

int
store_probe_alive(struct store *st, const char *address, long long expires, long long now)
{
	return (probe_stamp(st, Q_PROBE_ALIVE, address, expires, now, "record proof of life"));
}

long
store_pragma_int(struct store *st, const char *name)
{
	sqlite3_stmt *q;
	char	sql[128];
	long	v = STORE_ERROR;

	snprintf(sql, sizeof(sql), "PRAGMA %s", name);
	if (sqlite3_prepare_v2(st->db, sql, -1, &q, NULL) != SQLITE_OK)
		return (store_fail(st, "pragma"));
	if (sqlite3_step(q) == SQLITE_ROW)
		v = (long) sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return (v);
}

/* step_simple - BEGIN/COMMIT/ROLLBACK */
static int
step_simple(struct store *st, int which, const char *what)
{
	return (step_once(st->stmt[which]) == SQLITE_DONE ? STORE_YES : store_fail(st, what));
}

int
store_begin(struct store *st)
{
	return (step_simple(st, Q_BEGIN, "begin transaction"));
}

int
store_commit(struct store *st)
{
	return (step_simple(st, Q_COMMIT, "commit"));
}

int
store_read_begin(struct store *st)
{
	return (step_simple(st, Q_BEGIN_READ, "begin read transaction"));
}

void
store_read_end(struct store *st)
{
	/* Ending a read transaction cannot lose anything; just end it. */
	if (sqlite3_get_autocommit(st->db) == 0
	    && step_once(st->stmt[Q_COMMIT]) != SQLITE_DONE)
		store_rollback(st);
}

void
store_rollback(struct store *st)
{
	if (sqlite3_get_autocommit(st->db) == 0)
		(void) step_simple(st, Q_ROLLBACK, "rollback");
}

/* bind_pair - ?1 group, ?2 address */
static int
bind_pair(sqlite3_stmt *q, const char *group, const char *address)
{
	return (sqlite3_bind_text(q, 1, group, -1, SQLITE_STATIC) == SQLITE_OK
		&& sqlite3_bind_text(q, 2, address, -1, SQLITE_STATIC) == SQLITE_OK ? 0 : -1);
}

int
store_is_recipient(struct store *st, const char *group, const char *address)
{
	sqlite3_stmt *q = st->stmt[Q_IS_RCPT];

	if (bind_pair(q, group, address) < 0)
		return (store_fail(st, "look up recipient"));
	return (exists(st, q, "look up recipient"));
}

int
store_blocked(struct store *st, const char *group, const char *address)
{
	sqlite3_stmt *q = st->stmt[Q_BLOCKED];

	if (bind_pair(q, group, address) < 0)
		return (store_fail(st, "look up unsubscribes"));
	return (exists(st, q, "look up unsubscribes"));
}

int
store_subscribe(struct store *st, const char *group, const char *address)
{
	sqlite3_stmt *q = st->stmt[Q_SUB_GROUP];

	int	changed;

	if (bind_pair(q, group, address) < 0 || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "subscribe"));
	changed = sqlite3_changes(st->db) > 0;
	q = st->stmt[Q_SUB_CLEAR];
	if (bind_pair(q, group, address) < 0 || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "subscribe"));
	changed |= sqlite3_changes(st->db) > 0;
	if (changed && store_change_add(st, group, address, "subscribed", "request",
					(long long) time(NULL)) == STORE_ERROR)
		return (STORE_ERROR);
	return (STORE_YES);
}

int
store_request_recent(struct store *st, const char *normalized, long long since,
		     const char *digest)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_RECENT];

	if (sqlite3_bind_text(q, 1, normalized, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 2, since) != SQLITE_OK
	    || bind_opt(q, 3, digest) != SQLITE_OK)
		return (store_fail(st, "look up requests"));
	return (exists(st, q, "look up requests"));
}

int
store_request_sibling(struct store *st, const char *digest, const char *group,
		      const char *address, const char *action)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_SIBLING];

	if (sqlite3_bind_text(q, 1, digest, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 2, group, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 3, address, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_text(q, 4, action, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up requests"));
	return (exists(st, q, "look up requests"));
}

long
store_request_unsubs(struct store *st, const char *group, const char *address,
		     const char *normalized, long long since, const char *digest,
		     long long *sent_at, long long *expires)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_UNSUBS];
	long	n = STORE_ERROR;

	*sent_at = *expires = 0;
	if (bind_pair(q, group, address) < 0 || sqlite3_bind_int64(q, 3, since) != SQLITE_OK
	    || bind_opt(q, 4, digest) != SQLITE_OK
	    || sqlite3_bind_text(q, 5, normalized, -1, SQLITE_STATIC) != SQLITE_OK)
		return (store_fail(st, "look up requests"));
	if (sqlite3_step(q) == SQLITE_ROW) {
		n = (long) sqlite3_column_int64(q, 0);
		*sent_at = sqlite3_column_int64(q, 1);
		*expires = sqlite3_column_int64(q, 2);
	}
	(void) sqlite3_reset(q);
	(void) sqlite3_clear_bindings(q);
	return (n == STORE_ERROR ? store_fail(st, "look up requests") : n);
}

/* bind_request - ?1 group, ?2 address, ?3 action, ?4 expires */
static int
bind_request(sqlite3_stmt *q, const char *group, const char *address,
	     const char *action, long long expires)
{
	return (bind_pair(q, group, address) == 0
		&& sqlite3_bind_text(q, 3, action, -1, SQLITE_STATIC) == SQLITE_OK
		&& sqlite3_bind_int64(q, 4, expires) == SQLITE_OK ? 0 : -1);
}

int
store_request_add(struct store *st, const char *group, const char *address,
		  const char *action, long long sent_at, long long expires,
		  const char *digest, const char *normalized)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_ADD];

	if (bind_pair(q, group, address) < 0
	    || sqlite3_bind_text(q, 3, action, -1, SQLITE_STATIC) != SQLITE_OK
	    || sqlite3_bind_int64(q, 4, sent_at) != SQLITE_OK
	    || sqlite3_bind_int64(q, 5, expires) != SQLITE_OK
	    || bind_opt(q, 6, digest) != SQLITE_OK || bind_opt(q, 7, normalized) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "record request"));
	q = st->stmt[Q_REQ_PRUNE];
	if (sqlite3_bind_int64(q, 1, sent_at - 7 * 86400LL) != SQLITE_OK
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "prune requests"));
	return (STORE_YES);
}

int
store_request_cancel(struct store *st, const char *group, const char *address,
		     const char *action, long long expires)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_CANCEL];

	if (bind_request(q, group, address, action, expires) < 0
	    || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "cancel request"));
	return (STORE_YES);
}

int
store_request_state(struct store *st, const char *group, const char *address,
		    const char *action, long long expires, char *digest, size_t len)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_STATE];
	int	done = 0, rc;

	if (bind_request(q, group, address, action, expires) < 0)
		return (store_fail(st, "look up request"));
	rc = text_row(st, q, digest, len, &done, "look up request");
	if (rc != STORE_YES)
		return (rc);
	return (done ? REQUEST_DONE : REQUEST_PENDING);
}

int
store_request_done(struct store *st, const char *group, const char *address,
		   const char *action, long long expires, long long now,
		   const char *digest)
{
	sqlite3_stmt *q = st->stmt[Q_REQ_DONE];

	if (bind_request(q, group, address, action, expires) < 0
	    || sqlite3_bind_int64(q, 5, now) != SQLITE_OK
	    || bind_opt(q, 6, digest) != SQLITE_OK || step_once(q) != SQLITE_DONE)
		return (store_fail(st, "record confirmation"));
	return (STORE_YES);
}

long
store_groups(struct store *st, int (*fn) (void *, const struct store_group *), void *arg)
{
	sqlite3_stmt *q = st->stmt[Q_GROUPS];
	struct store_group g;
	long	n = 0;
	int	rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		memset(&g, 0, sizeof(g));
		group_row(q, &g);
		n++;
		if (fn(arg, &g) != 0)
			break;
	}
	(void) sqlite3_reset(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return (store_fail(st, "list groups"));
	return (n);
}
