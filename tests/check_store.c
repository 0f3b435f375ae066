/*
 * check_store.c - the SQLite store: schema, lookups, recipient
 * computation (group_members minus unsubscribes), bounce rows.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <fcntl.h>
#include <glob.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "store.h"

static char dir[] = "/tmp/check_store.XXXXXX";
static char path[300];
static struct store *st;

static void
exec_sql(const char *sql)
{
	sqlite3 *db;
	char   *msg = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK, "%s: %s", sql, msg);
	sqlite3_close(db);
}

/* count_sql - the integer a query returns */
static long
count_sql(const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long	n;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s", sql);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	n = (long) sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return (n);
}

static void
setup(void)
{
	char	err[512];

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/t.db", dir);
	st = store_open(path, 1000, err, sizeof(err));
	ck_assert_msg(st != NULL, "%s", err);
	exec_sql("INSERT INTO members (address) VALUES ('Alice@Example.org'), ('bob@example.org');"
		 "INSERT INTO groups (name, description, is_group, posting) VALUES"
		 " ('Group1', 'Club', 1, 'members'), ('board', NULL, 1, 'group'),"
		 " ('open', NULL, 1, 'anyone'), ('postmaster', NULL, 0, 'anyone');"
		 "INSERT INTO group_members VALUES ('group1', 'alice@example.org'),"
		 " ('group1', 'bob@example.org'), ('group1', 'carol@example.org'),"
		 " ('group1', 'dave@example.org'), ('board', 'carol@example.org');");
}

static void
teardown(void)
{
	char	cmd[400];

	store_free(st);
	st = NULL;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
	strcpy(dir, "/tmp/check_store.XXXXXX");
}

START_TEST(test_schema_version)
{
	sqlite3 *db;
	sqlite3_stmt *q;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_int_eq(sqlite3_column_int(q, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(q);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &q, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *) sqlite3_column_text(q, 0), "wal");
	sqlite3_finalize(q);
	/* CHECK constraints help an administrator typing SQL. */
	ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO groups (name, posting) VALUES ('x', 'all')",
				      NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO members (address) VALUES ('no-at-sign')",
				      NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

START_TEST(test_newer_schema_refused)
{
	char	err[512];
	struct store *s2;

	char	bak[400], want[900];
	FILE   *fp;

	exec_sql("PRAGMA user_version = 99");
	s2 = store_open(path, 1000, err, sizeof(err));
	ck_assert_ptr_null(s2);
	ck_assert_ptr_nonnull(strstr(err, "newer"));
	/* What happened and what to do, naming the backup of the upgrade. */
	snprintf(bak, sizeof(bak), "%s.v%d-20260101120000.bak", path, STORE_SCHEMA_VERSION);
	ck_assert_ptr_nonnull(fp = fopen(bak, "w"));
	fclose(fp);
	s2 = store_open(path, 1000, err, sizeof(err));
	ck_assert_ptr_null(s2);
	snprintf(want, sizeof(want), "the database %s has schema version 99, made by a newer "
		 "mlistd; this mlistd knows version %d: run the newer mlistd, or restore the "
		 "backup taken before the upgrade (%s)", path, STORE_SCHEMA_VERSION, bak);
	ck_assert_str_eq(err, want);
}
END_TEST

/* dump_db - user_version and every row of every table, as text */
static char *
dump_db(const char *file)
{
	sqlite3 *db;
	sqlite3_stmt *t, *q;
	size_t	len = 0, cap = 1 << 16;
	char   *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	out[0] = 0;
	ck_assert_int_eq(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT 'version', user_version FROM"
					    " pragma_user_version UNION ALL SELECT type || ' '"
					    " || name, sql FROM sqlite_master ORDER BY 1, 2",
					    -1, &t, NULL), SQLITE_OK);
	while (sqlite3_step(t) == SQLITE_ROW) {
		const char *what = (const char *) sqlite3_column_text(t, 0);

		len += snprintf(out + len, cap - len, "%s: %s\n", what,
				(const char *) sqlite3_column_text(t, 1));
		if (strncmp(what, "table ", 6) != 0)
			continue;
		{
			char	sql[200];

			snprintf(sql, sizeof(sql), "SELECT * FROM \"%s\" ORDER BY 1, 2", what + 6);
			ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
		}
		while (sqlite3_step(q) == SQLITE_ROW) {
			for (int i = 0; i < sqlite3_column_count(q); i++)
				len += snprintf(out + len, cap - len, "%s|",
						sqlite3_column_type(q, i) == SQLITE_NULL ? "NULL"
						: (const char *) sqlite3_column_text(q, i));
			len += snprintf(out + len, cap - len, "\n");
		}
		sqlite3_finalize(q);
		ck_assert_uint_lt(len, cap);
	}
	sqlite3_finalize(t);
	sqlite3_close(db);
	return (out);
}

/*
 * The oldest schema (tests/schema-v1.sql, frozen) with lists in it goes
 * through every migration: the data are kept, a backup identical to the
 * old database is written beside it first (0640), and each step and the
 * backup are logged.
 */
START_TEST(test_upgrade_v1)
{
	char	err[1024], logf[400], pat[400], *before, *after, *log;
	struct store *s2;
	struct store_group g;
	struct stat sb;
	glob_t	gl;
	int	saved;

	store_free(st);
	st = NULL;
	ck_assert_int_eq(unlink(path), 0);
	(void) unlink(strcat(strcpy(logf, path), "-wal"));
	(void) unlink(strcat(strcpy(logf, path), "-shm"));
	{
		char   *v1 = ck_slurp(ck_srcfile("tests/schema-v1.sql"), NULL);

		exec_sql(v1);
		free(v1);
	}
	exec_sql("INSERT INTO members (address, name) VALUES ('alice@example.org', 'Alice');"
		 "INSERT INTO groups (name, description, posting) VALUES ('club', 'The club',"
		 " 'group'), ('postmaster', NULL, 'anyone');"
		 "UPDATE groups SET is_group = 0 WHERE name = 'postmaster';"
		 "INSERT INTO group_members VALUES ('club', 'alice@example.org'),"
		 " ('club', 'bob@example.org'), ('club', 'carol@example.org'),"
		 " ('postmaster', 'root@example.org');"
		 "INSERT INTO unsubscribes (group_name, address) VALUES ('club', 'carol@example.org');"
		 "INSERT INTO bounces (envelope_to, address, status, group_name) VALUES"
		 " ('bounce@example.org', 'bob@example.org', '5.1.1', 'club');");
	ck_assert_int_eq(count_sql("PRAGMA user_version"), 1);
	before = dump_db(path);

	/* The log lines: stderr, into a file. */
	snprintf(logf, sizeof(logf), "%s/log", dir);
	fflush(stderr);
	saved = dup(2);
	{
		int	fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		ck_assert_int_ge(fd, 0);
		ck_assert_int_eq(dup2(fd, 2), 2);
		close(fd);
	}
	msg_open("check_store", 1);
	msg_set_syslog(0);
	s2 = store_open(path, 1000, err, sizeof(err));
	fflush(stderr);
	ck_assert_int_eq(dup2(saved, 2), 2);
	close(saved);
	ck_assert_msg(s2 != NULL, "%s", err);
	st = s2;

	/* Every migration ran, the data are there. */
	ck_assert_int_eq(count_sql("PRAGMA user_version"), STORE_SCHEMA_VERSION);
	ck_assert_int_eq(store_group(st, "club", &g), STORE_YES);
	ck_assert_str_eq(g.description, "The club");
	ck_assert_int_eq(g.posting, POST_GROUP);
	ck_assert_int_eq(g.subscribe, SUB_CLOSED);
	ck_assert_int_eq(store_is_member(st, "alice@example.org"), STORE_YES);
	ck_assert_int_eq(store_blocked(st, "club", "carol@example.org"), STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM group_members"), 4);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM bounces WHERE address ="
				   " 'bob@example.org' AND evidence = 0"), 1);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM groups WHERE others = 'reject'"
				   " AND moderated = 0 AND dmarc IS NULL"), 2);

	/* The backup: one file, 0640, identical to the old database. */
	snprintf(pat, sizeof(pat), "%s.v1-*.bak", path);
	ck_assert_int_eq(glob(pat, 0, NULL, &gl), 0);
	ck_assert_uint_eq(gl.gl_pathc, 1);
	ck_assert_int_eq(stat(gl.gl_pathv[0], &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	after = dump_db(gl.gl_pathv[0]);
	ck_assert_str_eq(after, before);
	ck_assert_ptr_nonnull(strstr(after, "version: 1\n"));
	ck_assert_ptr_nonnull(strstr(after, "club|bob@example.org|"));

	/* The log: the backup, then one line per step. */
	log = ck_slurp(logf, NULL);
	{
		char	want[600];

		snprintf(want, sizeof(want), "database %s: schema version 1: backup written"
			 " to %s before upgrading", path, gl.gl_pathv[0]);
		ck_assert_msg(strstr(log, want) != NULL, "%s", log);
		for (int v = 1; v < STORE_SCHEMA_VERSION; v++) {
			snprintf(want, sizeof(want), "database %s: schema version %d -> %d: ",
				 path, v, v + 1);
			ck_assert_msg(strstr(log, want) != NULL, "no \"%s\" in %s", want, log);
		}
		ck_assert(strstr(log, "backup written") < strstr(log, "1 -> 2"));
	}
	globfree(&gl);
	free(log);
	free(before);
	free(after);
}
END_TEST

/* A database without lists is upgraded without a backup, still logged. */
START_TEST(test_upgrade_empty_no_backup)
{
	char	err[1024], pat[400];
	struct store *s2;
	glob_t	gl;

	store_free(st);
	st = NULL;
	exec_sql("DELETE FROM group_members; DELETE FROM groups; PRAGMA user_version = 7;"
		 " ALTER TABLE groups DROP COLUMN dmarc;");
	s2 = store_open(path, 1000, err, sizeof(err));
	ck_assert_msg(s2 != NULL, "%s", err);
	st = s2;
	ck_assert_int_eq(count_sql("PRAGMA user_version"), STORE_SCHEMA_VERSION);
	snprintf(pat, sizeof(pat), "%s.v*.bak", path);
	ck_assert_int_eq(glob(pat, 0, NULL, &gl), GLOB_NOMATCH);
	globfree(&gl);
}
END_TEST

START_TEST(test_group_lookup)
{
	struct store_group g;

	ck_assert_int_eq(store_group(st, "GROUP1", &g), STORE_YES);
	ck_assert_str_eq(g.name, "Group1");
	ck_assert_str_eq(g.description, "Club");
	ck_assert_int_eq(g.is_group, 1);
	ck_assert_int_eq(g.posting, POST_MEMBERS);
	ck_assert_int_eq(store_group(st, "board", &g), STORE_YES);
	ck_assert_int_eq(g.posting, POST_GROUP);
	ck_assert_str_eq(g.description, "");
	ck_assert_int_eq(store_group(st, "postmaster", &g), STORE_YES);
	ck_assert_int_eq(g.is_group, 0);
	ck_assert_int_eq(g.posting, POST_ANYONE);
	ck_assert_int_eq(store_group(st, "nosuch", &g), STORE_NO);
	ck_assert_int_eq(store_group(st, "group1' OR '1'='1", &g), STORE_NO);
}
END_TEST

/* Posting policy inputs: members and group membership, any case. */
static const struct {
	const char *group, *addr;
	int	member, in_group;
} policy[] = {
	{"group1", "alice@example.org", STORE_YES, STORE_YES},
	{"group1", "ALICE@EXAMPLE.ORG", STORE_YES, STORE_YES},
	{"group1", "carol@example.org", STORE_NO, STORE_YES},
	{"board", "carol@example.org", STORE_NO, STORE_YES},
	{"board", "alice@example.org", STORE_YES, STORE_NO},
	{"open", "zed@example.net", STORE_NO, STORE_NO},
};

START_TEST(test_policy_lookups)
{
	ck_assert_int_eq(store_is_member(st, policy[_i].addr), policy[_i].member);
	ck_assert_int_eq(store_in_group(st, policy[_i].group, policy[_i].addr),
			 policy[_i].in_group);
}
END_TEST

static int
append(void *arg, const char *addr)
{
	char   *buf = arg;

	strcat(buf, addr);
	strcat(buf, " ");
	return (0);
}

/* Recipient computation: table of unsubscribes and the expected list. */
static const struct {
	const char *unsub;		/* SQL values, or NULL */
	const char *want;
} rcpts[] = {
	{NULL, "alice@example.org bob@example.org carol@example.org dave@example.org "},
	{"('group1', 'bob@example.org')", "alice@example.org carol@example.org dave@example.org "},
	{"('GROUP1', 'BOB@example.ORG')", "alice@example.org carol@example.org dave@example.org "},
	{"('*', 'carol@example.org')", "alice@example.org bob@example.org dave@example.org "},
	{"('board', 'alice@example.org')",
	"alice@example.org bob@example.org carol@example.org dave@example.org "},
	{"('group1', 'alice@example.org'), ('*', 'bob@example.org'), ('group1', 'carol@example.org'),"
	" ('*', 'dave@example.org')", ""},
};

START_TEST(test_recipients)
{
	char	buf[1024] = "", sql[512];
	long	n;

	if (rcpts[_i].unsub) {
		snprintf(sql, sizeof(sql), "INSERT INTO unsubscribes (group_name, address) VALUES %s",
			 rcpts[_i].unsub);
		exec_sql(sql);
	}
	n = store_recipients(st, "Group1", 0, append, buf);
	ck_assert_str_eq(buf, rcpts[_i].want);
	{
		long	words = 0;

		for (const char *p = buf; *p; p++)
			words += *p == ' ';
		ck_assert_int_eq(n, words);
	}
}
END_TEST

START_TEST(test_bounce_row)
{
	struct store_bounce b = {"bounce@lists.test", "x@example.net", "5.1.1", "failed",
	"smtp; 550 5.1.1 no", NULL, "group1", 1};
	struct store_bounce nul = {"bounce@lists.test", NULL, NULL, NULL, NULL, "new/123", NULL, 0};
	long long id1, id2;

	ck_assert_int_eq(store_begin(st), STORE_YES);
	id1 = store_add_bounce(st, &b);
	id2 = store_add_bounce(st, &nul);
	ck_assert_int_eq(store_commit(st), STORE_YES);
	ck_assert_int_gt(id1, 0);
	ck_assert_int_gt(id2, id1);
	{
		sqlite3 *db;
		sqlite3_stmt *q;

		ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM bounces WHERE address"
						    " IS NULL AND maildir_file = 'new/123'", -1, &q,
						    NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(q, 0), 1);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
}
END_TEST

/* The example data loads into a fresh database. */
START_TEST(test_example_sql)
{
	char   *sql = ck_slurp(ck_srcfile("sql/example.sql"), NULL);
	struct store_group g;
	char	buf[512] = "";

	exec_sql("DELETE FROM group_members; DELETE FROM groups; DELETE FROM members;");
	exec_sql(sql);
	free(sql);
	ck_assert_int_eq(store_group(st, "group1", &g), STORE_YES);
	ck_assert_int_eq(store_recipients(st, "group1", 0, append, buf), 2);
	ck_assert_int_eq(store_group(st, "postmaster", &g), STORE_YES);
	ck_assert_int_eq(g.posting, POST_ANYONE);
	ck_assert_int_eq(g.is_group, 0);
	ck_assert_int_eq(store_is_member(st, "carol@example.org"), STORE_YES);
	ck_assert_int_eq(store_group(st, "news", &g), STORE_YES);
	ck_assert_int_eq(g.subscribe, SUB_CONFIRM);
	ck_assert_int_eq(store_group(st, "group1", &g), STORE_YES);
	ck_assert_int_eq(g.subscribe, SUB_CLOSED);
}
END_TEST

/*
 * queries.sql runs cleanly against the schema (no syntax slips), and
 * running it as its header says changes nothing.
 */
START_TEST(test_queries_sql)
{
	char   *sql = ck_slurp(ck_srcfile("sql/queries.sql"), NULL);
	const char *dump = "SELECT (SELECT count(*) FROM bounces) || ',' ||"
	" (SELECT count(*) FROM unsubscribes) || ',' || (SELECT count(*) FROM group_members)"
	" || ',' || (SELECT count(*) FROM members) || ',' || (SELECT count(*) FROM probes)";

	exec_sql("INSERT INTO bounces (envelope_to, address, status, action, evidence) VALUES"
		 " ('bounce@x', 'bob@example.org', '5.1.1', 'failed', 1),"
		 " ('bounce@x', 'bob@example.org', '5.1.1', 'failed', 1),"
		 " ('bounce@x', 'bob@example.org', '5.1.1', 'failed', 1),"
		 " ('bounce@x', 'carol@example.org', '5.1.1', 'failed', 0),"
		 " ('bounce@x', 'carol@example.org', '5.1.1', 'failed', 0),"
		 " ('bounce@x', 'carol@example.org', '5.1.1', 'failed', 0),"
		 " ('bounce@x', 'alice@example.org', '4.4.1', 'delayed', 1),"
		 " ('bounce@x', 'alice@example.org', '4.4.1', 'delayed', 1),"
		 " ('bounce@x', 'alice@example.org', '4.4.1', 'delayed', 1);");
	{
		sqlite3 *db;
		sqlite3_stmt *q;
		char	before[128], after[128];

		ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, dump, -1, &q, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		snprintf(before, sizeof(before), "%s", sqlite3_column_text(q, 0));
		sqlite3_reset(q);
		ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_total_changes(db), 0);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		snprintf(after, sizeof(after), "%s", sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
		sqlite3_close(db);
		ck_assert_str_eq(before, after);
	}
	free(sql);
	/* Evidence counts; hints and delayed reports do not. */
	ck_assert_int_eq(store_evidence(st, "bob@example.org", 30), 3);
	ck_assert_int_eq(store_evidence(st, "carol@example.org", 30), 0);
	ck_assert_int_eq(store_evidence(st, "alice@example.org", 30), 0);
	/* A proof of life: only the evidence after it counts; rows stay. */
	{
		long long now = (long long) time(NULL);

		ck_assert_int_eq(store_probe_sent(st, "Bob@example.org", "group1", now, now + 600),
				 STORE_YES);
		ck_assert_int_eq(store_probe_alive(st, "bob@example.org", now + 600, now + 1),
				 STORE_YES);
		ck_assert_int_eq(store_evidence(st, "bob@example.org", 30), 0);
		exec_sql("INSERT INTO bounces (envelope_to, address, status, action, evidence,"
			 " received) VALUES ('bounce@x', 'bob@example.org', '5.1.1', 'failed', 1,"
			 " datetime('now', '+1 minute'))");
		ck_assert_int_eq(store_evidence(st, "bob@example.org", 30), 1);
		ck_assert_int_eq(count_sql("SELECT count(*) FROM bounces WHERE address ="
					   " 'bob@example.org' AND evidence = 1"), 4);
	}
}
END_TEST

/*
 * who - the claim owner `pid` at `now` (boot clock and wall clock alike,
 * boot "boot-a", a 60 s lease); each pid keeps the generation of its
 * last claim, as a worker does.
 */
static struct store_owner *
who(long pid, long long now)
{
	static struct store_owner o[16];
	size_t	i;

	for (i = 0; i < 15 && o[i].pid != 0 && o[i].pid != pid; i++)
		;
	o[i].pid = pid;
	snprintf(o[i].boot, sizeof(o[i].boot), "boot-a");
	o[i].now = o[i].wall = now;
	o[i].lease = 60;
	return (&o[i]);
}

/*
 * Older databases are migrated in place: version 1 had no `relayed`,
 * version 2 one without `id` and `complete` (and no relayed_rcpt),
 * version 3 no claim columns; its copies must survive the upgrade.
 */
static const struct {
	const char *label;
	const char *sql;
} old_versions[] = {
	{"v1", "DROP TABLE relayed_rcpt; DROP TABLE relayed; PRAGMA user_version = 1;"},
	{"v2", "DROP TABLE relayed_rcpt; DROP TABLE relayed;"
	 " CREATE TABLE relayed (group_name TEXT NOT NULL COLLATE NOCASE,"
	 " digest TEXT NOT NULL, message_id TEXT, relayed_at TEXT NOT NULL"
	 " DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')), PRIMARY KEY (group_name, digest));"
	 " INSERT INTO relayed (group_name, digest) VALUES ('group1', 'old');"
	 " PRAGMA user_version = 2;"},
	{"v3", "DROP TABLE relayed_rcpt; DROP TABLE relayed;"
	 " CREATE TABLE relayed (id INTEGER PRIMARY KEY, group_name TEXT NOT NULL COLLATE NOCASE,"
	 " digest TEXT NOT NULL, message_id TEXT, relayed_at TEXT NOT NULL"
	 " DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')), complete INTEGER NOT NULL DEFAULT 1"
	 " CHECK (complete IN (0, 1)));"
	 " CREATE UNIQUE INDEX relayed_by_copy ON relayed (digest, group_name);"
	 " CREATE TABLE relayed_rcpt (copy_id INTEGER NOT NULL REFERENCES relayed (id)"
	 " ON DELETE CASCADE, address TEXT NOT NULL COLLATE NOCASE,"
	 " PRIMARY KEY (copy_id, address)) WITHOUT ROWID;"
	 " INSERT INTO relayed (group_name, digest) VALUES ('group1', 'kept');"
	 " INSERT INTO relayed (group_name, digest, complete) VALUES ('group1', 'half', 0);"
	 " INSERT INTO relayed_rcpt VALUES (2, 'alice@example.org');"
	 " PRAGMA user_version = 3;"},
	/* Version 4: no groups.subscribe (nor the CHECK against "+"), no
	 * unsubscribes.source, no requests. */
	{"v4", "DROP TABLE requests; DROP TABLE group_members; DROP TABLE groups;"
	 " CREATE TABLE groups (name TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,"
	 " description TEXT, is_group INTEGER NOT NULL DEFAULT 1, posting TEXT NOT NULL"
	 " DEFAULT 'members');"
	 " INSERT INTO groups (name, posting) VALUES ('Group1', 'members');"
	 " CREATE TABLE group_members (group_name TEXT NOT NULL COLLATE NOCASE REFERENCES"
	 " groups (name) ON UPDATE CASCADE ON DELETE CASCADE, address TEXT NOT NULL"
	 " COLLATE NOCASE, PRIMARY KEY (group_name, address));"
	 " INSERT INTO group_members VALUES ('group1', 'alice@example.org'),"
	 " ('group1', 'bob@example.org'), ('group1', 'carol@example.org'),"
	 " ('group1', 'dave@example.org');"
	 " ALTER TABLE unsubscribes DROP COLUMN source;"
	 " INSERT INTO unsubscribes (group_name, address) VALUES ('group1', 'dave@example.org');"
	 " PRAGMA user_version = 4;"},
	/* Version 5: claims without boot, lease and generation (one claim
	 * of a live process, pid 1, made at wall-clock time 1000); no
	 * requests.normalized (nor its indexes), no probes.alive_at. */
	{"v5", "DROP TABLE relayed_rcpt; DROP TABLE relayed;"
	 " CREATE TABLE relayed (id INTEGER PRIMARY KEY, group_name TEXT NOT NULL COLLATE NOCASE,"
	 " digest TEXT NOT NULL, message_id TEXT, relayed_at TEXT NOT NULL"
	 " DEFAULT (strftime('%Y-%m-%d %H:%M:%S', 'now')), complete INTEGER NOT NULL DEFAULT 1"
	 " CHECK (complete IN (0, 1)), owner INTEGER, claimed_at INTEGER);"
	 " CREATE UNIQUE INDEX relayed_by_copy ON relayed (digest, group_name);"
	 " CREATE TABLE relayed_rcpt (copy_id INTEGER NOT NULL REFERENCES relayed (id)"
	 " ON DELETE CASCADE, address TEXT NOT NULL COLLATE NOCASE, refused INTEGER NOT NULL"
	 " DEFAULT 0 CHECK (refused IN (0, 1)), PRIMARY KEY (copy_id, address)) WITHOUT ROWID;"
	 " INSERT INTO relayed (group_name, digest, complete, owner, claimed_at)"
	 " VALUES ('group1', 'legacy', 0, 1, 1000);"
	 " DROP TABLE requests; DROP TABLE probes;"
	 " CREATE TABLE probes (address TEXT NOT NULL COLLATE NOCASE, group_name TEXT NOT NULL"
	 " COLLATE NOCASE, sent_at INTEGER NOT NULL, expires INTEGER NOT NULL, bounced_at"
	 " INTEGER, PRIMARY KEY (address, expires)) WITHOUT ROWID;"
	 " CREATE TABLE requests (group_name TEXT NOT NULL COLLATE NOCASE, address TEXT NOT NULL"
	 " COLLATE NOCASE, action TEXT NOT NULL, sent_at INTEGER NOT NULL, expires INTEGER NOT"
	 " NULL, done_at INTEGER, digest TEXT, PRIMARY KEY (address, group_name, action,"
	 " expires)) WITHOUT ROWID;"
	 " INSERT INTO requests VALUES ('group1', 'Old@Example.org', 'help', 7, 7, NULL, 'old');"
	 " PRAGMA user_version = 5;"},
};

START_TEST(test_migrate)
{
	char	err[512], buf[1024] = "";
	struct store *s2;
	struct store_copy c;

	store_free(st);
	st = NULL;
	exec_sql(old_versions[_i].sql);
	s2 = store_open(path, 1000, err, sizeof(err));
	ck_assert_msg(s2 != NULL, "%s: %s", old_versions[_i].label, err);
	st = s2;
	ck_assert_int_eq(store_claim(st, "group1", "abc", "<m@x>", 60, who(1, 1000), &c), CLAIM_NEW);
	ck_assert_int_gt(c.id, 0);
	ck_assert_int_eq(store_release(st, c.id, 1, 60, who(1, 1000)), STORE_YES);
	ck_assert_int_eq(store_claim(st, "GROUP1", "abc", NULL, 60, who(2, 1000), &c), CLAIM_DONE);
	ck_assert_int_eq(store_claim(st, "group1", "abd", NULL, 60, who(2, 1000), &c), CLAIM_NEW);
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 60, who(2, 1000), &c), CLAIM_NEW);
	if (strcmp(old_versions[_i].label, "v4") == 0) {
		struct store_group g;

		/* Every list is closed, the old opt-out is an administrator's,
		 * and "+" can no longer enter a list name. */
		ck_assert_int_eq(store_group(st, "group1", &g), STORE_YES);
		ck_assert_int_eq(g.subscribe, SUB_CLOSED);
		ck_assert_int_eq(store_blocked(st, "group1", "dave@example.org"), STORE_YES);
		ck_assert_int_eq(store_request_add(st, "group1", "x@example.org", "help", 5, 5,
						   "d", "x@example.org"), STORE_YES);
		{
			sqlite3 *db;

			ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
			ck_assert_int_ne(sqlite3_exec(db, "INSERT INTO groups (name) VALUES ('a+b')",
						      NULL, NULL, NULL), SQLITE_OK);
			ck_assert_int_ne(sqlite3_exec(db, "UPDATE groups SET name = 'g+1'",
						      NULL, NULL, NULL), SQLITE_OK);
			ck_assert_int_eq(sqlite3_exec(db, "UPDATE groups SET subscribe = 'confirm'",
						      NULL, NULL, NULL), SQLITE_OK);
			sqlite3_close(db);
		}
	}
	if (strcmp(old_versions[_i].label, "v5") == 0) {
		/* A claim left by the older mlistd is judged by its age. */
		ck_assert_int_eq(store_claim(st, "group1", "legacy", NULL, 60, who(2, 1010), &c),
				 CLAIM_BUSY);
		ck_assert_int_eq(store_claim(st, "group1", "legacy", NULL, 60, who(2, 1061), &c),
				 CLAIM_RESUME);
		ck_assert_int_eq(store_release(st, c.id, 1, 60, who(2, 1061)), STORE_YES);
		/* Its answers still count for the hourly limit; probes take a
		 * proof of life. */
		ck_assert_int_eq(store_request_recent(st, "old@example.org", 0, "new"), STORE_YES);
		ck_assert_int_eq(store_probe_sent(st, "a@example.org", "group1", 10, 20), STORE_YES);
		ck_assert_int_eq(store_probe_alive(st, "a@example.org", 20, 15), STORE_YES);
	}
	if (strcmp(old_versions[_i].label, "v3") == 0) {
		/* Version 3's memory is kept: a duplicate stays a duplicate,
		 * a partial copy resumes without its served member. */
		ck_assert_int_eq(store_claim(st, "group1", "kept", NULL, 60, who(2, 1000), &c),
				 CLAIM_DONE);
		ck_assert_int_eq(store_claim(st, "group1", "half", NULL, 60, who(2, 1000), &c),
				 CLAIM_RESUME);
		ck_assert_int_eq(store_recipients(st, "group1", c.id, append, buf), 3);
		ck_assert_ptr_null(strstr(buf, "alice"));
	}
	/* The lists themselves are untouched. */
	ck_assert_int_eq(store_is_member(st, "bob@example.org"), STORE_YES);
	{
		sqlite3 *db;
		sqlite3_stmt *q;

		ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &q, NULL),
				 SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		ck_assert_int_eq(sqlite3_column_int(q, 0), STORE_SCHEMA_VERSION);
		sqlite3_finalize(q);
		sqlite3_close(db);
	}
}
END_TEST

/*
 * A copy relayed in part: the members served or refused are remembered,
 * the next claim resumes and lists only the others, and a complete copy
 * is then a duplicate.
 */
START_TEST(test_partial_copy)
{
	char	buf[1024] = "";
	struct store_copy c, c2;
	long	me = (long) getpid();

	ck_assert_int_eq(store_claim(st, "group1", "d1", "<p@x>", 60, who(me, 1000), &c), CLAIM_NEW);
	ck_assert_int_eq(store_begin(st), STORE_YES);
	ck_assert_int_eq(store_mark_rcpt(st, c.id, "alice@example.org", 0), STORE_YES);
	ck_assert_int_eq(store_mark_rcpt(st, c.id, "BOB@example.org", 1), STORE_YES);
	/* Idempotent: the same member again changes nothing. */
	ck_assert_int_eq(store_mark_rcpt(st, c.id, "alice@example.org", 0), STORE_YES);
	ck_assert_int_eq(store_touch(st, c.id, who(me, 1010)), STORE_YES);
	ck_assert_int_eq(store_commit(st), STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed_rcpt"), 2);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed_rcpt WHERE refused = 1"), 1);
	ck_assert_int_eq(store_release(st, c.id, 0, 60, who(me, 1020)), STORE_YES);
	ck_assert_int_eq(store_claim(st, "group1", "d1", NULL, 60, who(me, 1020), &c2), CLAIM_RESUME);
	ck_assert_int_eq(c2.id, c.id);
	ck_assert_int_eq(store_recipients(st, "group1", c.id, append, buf), 2);
	ck_assert_str_eq(buf, "carol@example.org dave@example.org ");
	/* Another message to the same list is not affected. */
	buf[0] = 0;
	ck_assert_int_eq(store_recipients(st, "group1", 0, append, buf), 4);
	/* Complete: from now on the copy is a duplicate, its members forgotten. */
	ck_assert_int_eq(store_release(st, c.id, 1, 60, who(me, 1030)), STORE_YES);
	ck_assert_int_eq(store_claim(st, "group1", "d1", NULL, 60, who(me, 1030), &c2), CLAIM_DONE);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed"), 1);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed_rcpt"), 0);
}
END_TEST

/*
 * Claims: a live owner's claim keeps others out; a dead owner's, or one
 * older than `stale`, is taken over; the owner itself may take it again.
 */
START_TEST(test_claims)
{
	struct store_copy c;
	pid_t	child;
	int	status;
	long	me = (long) getpid();

	/* A live process (us) owns it: another pid is kept out. */
	ck_assert_int_eq(store_claim(st, "group1", "c1", NULL, 600, who(me, 1000), &c), CLAIM_NEW);
	ck_assert_int_eq(store_claim(st, "group1", "c1", NULL, 600, who(me + 1, 1010), &c),
			 CLAIM_BUSY);
	ck_assert_int_eq(c.owner, me);
	ck_assert_int_eq(c.claimed_at, 1000);
	/* ... until the claim is older than stale. */
	ck_assert_int_eq(store_claim(st, "group1", "c1", NULL, 600, who(me + 1, 1061), &c),
			 CLAIM_RESUME);
	/* Renewing is for the owner only: me lost it. */
	ck_assert_int_eq(store_touch(st, c.id, who(me, 1062)), STORE_NO);
	ck_assert_int_eq(store_touch(st, c.id, who(me + 1, 1062)), STORE_YES);
	/* A dead owner's claim is taken over at once. */
	child = fork();
	ck_assert_int_ge(child, 0);
	if (child == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(child, &status, 0), child);
	ck_assert_int_eq(store_claim(st, "group1", "c2", NULL, 600, who((long) child, 1000), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(store_claim(st, "group1", "c2", NULL, 600, who(me, 1001), &c),
			 CLAIM_RESUME);
	ck_assert_int_eq(count_sql("SELECT owner FROM relayed WHERE digest = 'c2'"), me);
	/* Released: anyone may resume it. */
	ck_assert_int_eq(store_release(st, c.id, 0, 600, who(me, 1001)), STORE_YES);
	ck_assert_int_eq(store_claim(st, "group1", "c2", NULL, 600, who(me + 7, 1002), &c),
			 CLAIM_RESUME);
}
END_TEST

/*
 * Fencing: a claim is a lease on the boot clock, which a wall-clock step
 * cannot end; an owner that overran its lease and was taken over can
 * neither renew, record, complete nor release; a claim from an earlier
 * boot is dead.
 */
START_TEST(test_claim_fencing)
{
	struct store_copy c;
	struct store_owner *a, *b;
	long	me = (long) getpid(), other = (long) getppid();

	a = who(me, 1000);
	ck_assert_int_eq(store_claim(st, "group1", "f1", NULL, 600, a, &c), CLAIM_NEW);
	ck_assert_int_eq(a->generation, 1);
	/* The wall clock steps ten minutes forward: the claim still holds. */
	b = who(other, 1010);
	b->wall = 1000 + 600;
	ck_assert_int_eq(store_claim(st, "group1", "f1", NULL, 600, b, &c), CLAIM_BUSY);
	/* The owner renews its lease, so it holds past the first one. */
	a = who(me, 1050);
	ck_assert_int_eq(store_touch(st, c.id, a), STORE_YES);
	ck_assert_int_eq(store_claim(st, "group1", "f1", NULL, 600, who(other, 1070), &c),
			 CLAIM_BUSY);
	/* The owner stalls past its lease: taken over, a new generation. */
	b = who(other, 1111);
	ck_assert_int_eq(store_claim(st, "group1", "f1", NULL, 600, b, &c), CLAIM_RESUME);
	ck_assert_int_eq(b->generation, 2);
	/* The stalled owner wakes up: nothing it writes holds. */
	a = who(me, 1112);
	ck_assert_int_eq(store_touch(st, c.id, a), STORE_NO);
	ck_assert_int_eq(store_release(st, c.id, 1, 600, a), STORE_NO);
	ck_assert_int_eq(store_release(st, c.id, 0, 600, a), STORE_NO);
	ck_assert_int_eq(count_sql("SELECT owner FROM relayed WHERE digest = 'f1'"), other);
	ck_assert_int_eq(count_sql("SELECT complete FROM relayed WHERE digest = 'f1'"), 0);
	/* The same pid with an older generation is fenced out too. */
	{
		struct store_owner stale = *b;

		stale.generation = 1;
		ck_assert_int_eq(store_touch(st, c.id, &stale), STORE_NO);
	}
	ck_assert_int_eq(store_release(st, c.id, 1, 600, b), STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed WHERE digest = 'f1'"
				   " AND complete = 1 AND owner IS NULL AND lease IS NULL"), 1);
	/* A claim from before a reboot (another boot id) is dead at once,
	 * whatever the boot clock says. */
	a = who(me, 5000);
	ck_assert_int_eq(store_claim(st, "group1", "f2", NULL, 600, a, &c), CLAIM_NEW);
	b = who(other, 3);
	snprintf(b->boot, sizeof(b->boot), "boot-b");
	ck_assert_int_eq(store_claim(st, "group1", "f2", NULL, 600, b, &c), CLAIM_RESUME);
}
END_TEST

/* Rows older than the window are ignored, and pruned with their members. */
START_TEST(test_relayed_window)
{
	struct store_copy c;

	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 60, who(1, 1000), &c), CLAIM_NEW);
	ck_assert_int_eq(store_mark_rcpt(st, c.id, "alice@example.org", 0), STORE_YES);
	ck_assert_int_eq(store_release(st, c.id, 0, 60, who(1, 1000)), STORE_YES);
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours')");
	/* Outside a 3-hour window it is still this copy ... */
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3 * 3600, who(1, 8200), &c),
			 CLAIM_RESUME);
	ck_assert_int_eq(store_release(st, c.id, 0, 60, who(1, 8200)), STORE_YES);
	/*
	 * ... outside a 1-hour window by the wall clock, but not by this
	 * boot's clock (the wall clock stepped forward): still this copy ...
	 */
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours')");
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3600, who(1, 9000), &c),
			 CLAIM_RESUME);
	ck_assert_int_eq(store_release(st, c.id, 0, 60, who(1, 9000)), STORE_YES);
	/* ... and by both clocks (the claim at 9000 touched it last), or
	 * from an earlier boot, a new one without the old members. */
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3600, who(1, 9000 + 3601), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed_rcpt"), 0);
	/* A claimed copy is never forgotten, however old. */
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours'), touched = 1");
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3600, who(1, 12700), &c),
			 CLAIM_RESUME);
	ck_assert_int_eq(store_release(st, c.id, 0, 3600, who(1, 12700)), STORE_YES);
	/* Of an earlier boot: kept while this boot is younger than the
	 * window (its wall clock may have been wrong), forgotten after. */
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours'),"
		 " boot = 'boot-0'");
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3600, who(1, 600), &c),
			 CLAIM_RESUME);
	ck_assert_int_eq(store_release(st, c.id, 0, 3600, who(1, 600)), STORE_YES);
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours'),"
		 " boot = 'boot-0'");
	ck_assert_int_eq(store_claim(st, "group1", "old", NULL, 3600, who(1, 12700), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(store_release(st, c.id, 0, 3600, who(1, 12700)), STORE_YES);
	/* The first completion of a connection prunes, by both clocks:
	 * "young" (touched 100 s ago on the boot clock) stays despite its
	 * wall-clock age, "stale" (touched long ago) goes. */
	ck_assert_int_eq(store_claim(st, "group1", "young", NULL, 3600, who(1, 12700), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(store_release(st, c.id, 0, 3600, who(1, 12700)), STORE_YES);
	ck_assert_int_eq(store_claim(st, "group1", "stale", NULL, 3600, who(1, 12700), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(store_release(st, c.id, 0, 3600, who(1, 12700)), STORE_YES);
	exec_sql("UPDATE relayed SET relayed_at = datetime('now', '-2 hours')");
	exec_sql("UPDATE relayed SET touched = 1 WHERE digest = 'stale'");
	ck_assert_int_eq(store_claim(st, "group1", "new", NULL, 3600, who(1, 12800), &c),
			 CLAIM_NEW);
	ck_assert_int_eq(store_release(st, c.id, 1, 3600, who(1, 12800)), STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed WHERE digest = 'stale'"), 0);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed WHERE digest = 'young'"), 1);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed WHERE digest = 'old'"), 1);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM relayed WHERE digest = 'new'"), 1);
}
END_TEST

/* The schema refuses, at INSERT, text mlistd could not send on. */
static const char *const hostile_rows[] = {
	"INSERT INTO members (address) VALUES ('a@b' || char(13, 10) || 'RCPT TO:<x@y>')",
	"INSERT INTO members (address) VALUES ('a<b>@example.org')",
	"INSERT INTO members (address) VALUES ('a' || char(9) || 'b@example.org')",
	"INSERT INTO members (address) VALUES ('no-at-sign')",
	"INSERT INTO members (address) VALUES (printf('%.250c@example.org', 'a'))",
	"INSERT INTO group_members VALUES ('group1', 'x@y' || char(127))",
	"INSERT INTO group_members VALUES ('group1', 'two words@example.org')",
	"INSERT INTO groups (name) VALUES (printf('%.65c', 'g'))",
	"INSERT INTO groups (name) VALUES ('bad' || char(10) || 'name')",
	"INSERT INTO groups (name) VALUES ('a@b')",
	"INSERT INTO groups (name) VALUES ('<x>')",
	"INSERT INTO groups (name) VALUES ('club+subscribe')",
	"INSERT INTO groups (name, subscribe) VALUES ('g', 'open')",
};

START_TEST(test_schema_refuses_hostile_rows)
{
	sqlite3 *db;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_msg(sqlite3_exec(db, hostile_rows[_i], NULL, NULL, NULL) == SQLITE_CONSTRAINT,
		      "accepted: %s", hostile_rows[_i]);
	/* What is right still goes in. */
	ck_assert_int_eq(sqlite3_exec(db, "INSERT INTO groups (name) VALUES"
				      " (printf('%.64c', 'g'));"
				      " INSERT INTO members (address) VALUES"
				      " ('j\xc3\xb6rg+tag@example.org')", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}
END_TEST

/*
 * Self-service: who is a recipient, which opt-outs a subscription may lift
 * (only mlistd's own), the hourly limit and used tokens.
 */
static int
group_names(void *arg, const struct store_group *g)
{
	char   *buf = arg;

	snprintf(buf + strlen(buf), 256 - strlen(buf), "%s:%d ", g->name, g->subscribe);
	return (0);
}

START_TEST(test_self_service)
{
	char	digest[64], names[256] = "";

	exec_sql("UPDATE groups SET subscribe = 'confirm' WHERE name = 'group1';"
		 "UPDATE groups SET subscribe = 'members' WHERE name = 'board';"
		 "INSERT INTO unsubscribes (group_name, address) VALUES ('group1', 'carol@example.org');"
		 "INSERT INTO unsubscribes (group_name, address) VALUES ('*', 'erin@example.org');");
	ck_assert_int_eq(store_groups(st, group_names, names), 4);
	ck_assert_str_eq(names, "board:2 Group1:1 open:0 postmaster:0 ");
	ck_assert_int_eq(store_is_recipient(st, "group1", "ALICE@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_recipient(st, "group1", "carol@example.org"), STORE_NO);
	ck_assert_int_eq(store_is_recipient(st, "board", "alice@example.org"), STORE_NO);
	/* A confirmed unsubscribe is mlistd's: a re-subscription lifts it. */
	ck_assert_int_eq(store_unsubscribe(st, "group1", "bob@example.org", "request"), STORE_YES);
	ck_assert_int_eq(store_is_recipient(st, "group1", "bob@example.org"), STORE_NO);
	ck_assert_int_eq(store_blocked(st, "group1", "bob@example.org"), STORE_NO);
	ck_assert_int_eq(store_subscribe(st, "Group1", "bob@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_recipient(st, "group1", "bob@example.org"), STORE_YES);
	/* The administrator's opt-outs stay, for the group or for all. */
	ck_assert_int_eq(store_blocked(st, "group1", "carol@example.org"), STORE_YES);
	ck_assert_int_eq(store_subscribe(st, "Group1", "carol@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_recipient(st, "group1", "carol@example.org"), STORE_NO);
	ck_assert_int_eq(store_blocked(st, "group1", "erin@example.org"), STORE_YES);
	/* A new address: group_members, never members. */
	ck_assert_int_eq(store_subscribe(st, "Group1", "frank@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_recipient(st, "group1", "frank@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_member(st, "frank@example.org"), STORE_NO);
	ck_assert_int_eq(store_subscribe(st, "Group1", "gina@example.org"), STORE_YES);
	ck_assert_int_eq(store_is_member(st, "gina@example.org"), STORE_NO);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM unsubscribes"), 2);

	/* The hourly limit, per normalized address whatever the list:
	 * another message's row counts, the same one's not. */
	ck_assert_int_eq(store_request_recent(st, "x@example.org", 1000, "m1"), STORE_NO);
	ck_assert_int_eq(store_request_add(st, "group1", "x@example.org", "subscribe", 1000,
					   1000 + 259200, "m1", "x@example.org"), STORE_YES);
	ck_assert_int_eq(store_request_recent(st, "x@example.org", 1000, "m1"), STORE_NO);
	ck_assert_int_eq(store_request_recent(st, "x@example.org", 1000, "m2"), STORE_YES);
	ck_assert_int_eq(store_request_recent(st, "x@example.org", 1001, "m2"), STORE_NO);
	ck_assert_int_eq(store_request_recent(st, "x2@example.org", 1000, "m2"), STORE_NO);
	/* One answer per message: its own row is no sibling of itself. */
	ck_assert_int_eq(store_request_sibling(st, "m1", "GROUP1", "X@example.org", "subscribe"),
			 STORE_NO);
	ck_assert_int_eq(store_request_sibling(st, "m1", "board", "x@example.org", "subscribe"),
			 STORE_YES);
	ck_assert_int_eq(store_request_sibling(st, "m1", "group1", "x@example.org", "help"),
			 STORE_YES);
	ck_assert_int_eq(store_request_sibling(st, "m2", "board", "x@example.org", "help"),
			 STORE_NO);
	/* Pending, then used by the confirming message, then a replay. */
	ck_assert_int_eq(store_request_state(st, "group1", "x@example.org", "subscribe",
					     1000 + 259200, digest, sizeof(digest)), REQUEST_PENDING);
	ck_assert_str_eq(digest, "m1");
	ck_assert_int_eq(store_request_state(st, "group1", "x@example.org", "unsubscribe",
					     1000 + 259200, digest, sizeof(digest)), STORE_NO);
	ck_assert_int_eq(store_request_done(st, "group1", "x@example.org", "subscribe",
					    1000 + 259200, 2000, "c1"), STORE_YES);
	ck_assert_int_eq(store_request_state(st, "group1", "x@example.org", "subscribe",
					     1000 + 259200, digest, sizeof(digest)), REQUEST_DONE);
	ck_assert_str_eq(digest, "c1");
	/* A token the database forgot: confirmed, and remembered from now on. */
	ck_assert_int_eq(store_request_done(st, "group1", "y@example.org", "unsubscribe",
					    5000, 2000, "c2"), STORE_YES);
	ck_assert_int_eq(store_request_state(st, "group1", "y@example.org", "unsubscribe",
					     5000, digest, sizeof(digest)), REQUEST_DONE);
	/* Cancel forgets a pending row only. */
	ck_assert_int_eq(store_request_add(st, "board", "z@example.org", "subscribe", 1000,
					   7000, "m3", "z@example.org"), STORE_YES);
	ck_assert_int_eq(store_request_cancel(st, "board", "z@example.org", "subscribe", 7000),
			 STORE_YES);
	ck_assert_int_eq(store_request_cancel(st, "group1", "y@example.org", "unsubscribe", 5000),
			 STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM requests"), 2);
	/* Rows expired over a week ago are pruned. */
	ck_assert_int_eq(store_request_add(st, "open", "w@example.org", "help", 5000 + 8 * 86400,
					   5000 + 8 * 86400, NULL, NULL), STORE_YES);
	ck_assert_int_eq(count_sql("SELECT count(*) FROM requests"), 2);
	/* Unsubscribe confirmations per list and normalized address (this
	 * message's row aside), and the newest of the list. */
	{
		long long sent, until, t = 900000;
		const char *u = "u@example.org";

		ck_assert_int_eq(store_request_unsubs(st, "group1", u, u, t, "m3", &sent, &until), 0);
		ck_assert_int_eq(sent, 0);
		ck_assert_int_eq(store_request_add(st, "group1", u, "unsubscribe", t, t + 5000, "m3",
						   u), STORE_YES);
		ck_assert_int_eq(store_request_add(st, "group1", u, "unsubscribe", t + 100,
						   t + 5100, "m4", u), STORE_YES);
		ck_assert_int_eq(store_request_add(st, "board", u, "unsubscribe", t + 200, t + 5200,
						   "m5", u), STORE_YES);
		ck_assert_int_eq(store_request_unsubs(st, "Group1", "U@example.org", u, t, "m6",
						      &sent, &until), 2);
		ck_assert_int_eq(sent, t + 100);
		ck_assert_int_eq(until, t + 5100);
		ck_assert_int_eq(store_request_unsubs(st, "group1", u, u, t, "m4", &sent, &until), 1);
		ck_assert_int_eq(store_request_unsubs(st, "board", u, u, t, "m4", &sent, &until), 1);
		ck_assert_int_eq(store_request_unsubs(st, "group1", u, u, t + 1, "m6", &sent, &until),
				 1);
	}
}
END_TEST

/* Commits that back a 250 survive a power loss: synchronous = FULL. */
START_TEST(test_synchronous_full)
{
	ck_assert_int_eq(store_pragma_int(st, "synchronous"), 2);	/* FULL */
	ck_assert_int_eq(store_pragma_int(st, "foreign_keys"), 1);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("store");
	TCase  *tc = tcase_create("store");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_schema_version);
	tcase_add_test(tc, test_newer_schema_refused);
	tcase_add_test(tc, test_upgrade_v1);
	tcase_add_test(tc, test_upgrade_empty_no_backup);
	tcase_add_test(tc, test_group_lookup);
	tcase_add_loop_test(tc, test_policy_lookups, 0, sizeof(policy) / sizeof(policy[0]));
	tcase_add_loop_test(tc, test_recipients, 0, sizeof(rcpts) / sizeof(rcpts[0]));
	tcase_add_test(tc, test_bounce_row);
	tcase_add_test(tc, test_example_sql);
	tcase_add_test(tc, test_queries_sql);
	tcase_add_loop_test(tc, test_migrate, 0, sizeof(old_versions) / sizeof(old_versions[0]));
	tcase_add_test(tc, test_partial_copy);
	tcase_add_test(tc, test_claims);
	tcase_add_test(tc, test_claim_fencing);
	tcase_add_test(tc, test_relayed_window);
	tcase_add_test(tc, test_synchronous_full);
	tcase_add_test(tc, test_self_service);
	tcase_add_loop_test(tc, test_schema_refuses_hostile_rows, 0,
			    sizeof(hostile_rows) / sizeof(hostile_rows[0]));
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
