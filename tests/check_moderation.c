/*
 * check_moderation.c - held posts and their moderators, through the real
 * daemon with tests/mlsink as the relay: a post held (row and file, no
 * copy), the moderator's notice caught at the sink and its addresses
 * used, decisions by mail and with sqlite3 carried out by the runner
 * exactly once (also when two moderators approve at once, or the runner
 * dies while it sends), the author's DKIM signature kept, forged and
 * replayed tokens, expiry, the caps, moderated lists, the author's and
 * the owners' notices, and the upgrade of a version-6 database.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <dirent.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testlib.h"
#include "../src/store.h"

static struct tl_daemon d;
static struct tl_sink k;
static char reply[4096];

#define MEMBERS	3
static const char *const members[MEMBERS] = {
	"alice@example.org", "bob@example.org", "carol@example.org"
};

static const char *seed =
"INSERT INTO groups (name, description, is_group, posting, subscribe, others) VALUES"
" ('club', 'Chess club', 1, 'group', 'closed', 'hold'),"
" ('other', NULL, 1, 'group', 'closed', 'hold');"
"INSERT INTO group_members (group_name, address) VALUES"
" ('club', 'alice@example.org'), ('club', 'bob@example.org'),"
" ('club', 'carol@example.org'), ('other', 'alice@example.org');"
"INSERT INTO moderators (group_name, address) VALUES"
" ('club', 'mod@example.org'), ('club', 'mod2@example.org'),"
" ('other', 'mod@example.org');";

/* start - a sink with options (NULL-terminated), the daemon relaying to
 * it (built-in templates), the seed */
static void
start(const char *extra, ...)
{
	char	conf[1024];
	va_list	ap;
	int	rc;

	snprintf(conf, sizeof(conf), "template-dir = /nonexistent/mlistd-templates\n%s",
		 extra ? extra : "");
	va_start(ap, extra);
	rc = tl_vstart_relayed(&d, &k, conf, seed, ap);
	va_end(ap);
	ck_assert_int_eq(rc, 0);
}

static void
stop(void)
{
	ck_assert_int_eq(tl_stop_relayed(&d, &k), 0);
}

/* post - a message from `from` (envelope and From:) to rcpt with this
 * subject; Message-ID <SUBJECT@example.net> (no spaces in subjects) */
static int
post(const char *from, const char *rcpt, const char *subject)
{
	const char *to[] = {rcpt, NULL};
	char	msg[2048];

	snprintf(msg, sizeof(msg), "From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n"
		 "Message-ID: <%s@example.net>\r\n\r\nhello\r\n", from, rcpt, subject, subject);
	return (tl_post(&d, from, to, msg, reply, sizeof(reply)));
}

/* count_but - the relayed transactions to rcpt (NULL: any) that contain
 * needle (NULL: any) and not but (NULL: no exception) */
static int
count_but(const char *rcpt, const char *needle, const char *but)
{
	char   *m[256], want[300];
	int	n = tl_sink_messages(&k, m, 256), hits = 0;

	ck_assert_int_ge(n, 0);
	snprintf(want, sizeof(want), "RCPT TO:<%s>\r\n", rcpt ? rcpt : "");
	for (int i = 0; i < n; i++)
		if ((rcpt == NULL || strstr(m[i], want)) && (needle == NULL || strstr(m[i], needle))
		    && (but == NULL || !strstr(m[i], but)))
			hits++;
	tl_free_messages(m, n);
	return (hits);
}

/* count - the relayed transactions to rcpt (NULL: any) that contain needle */
static int
count(const char *rcpt, const char *needle)
{
	return (count_but(rcpt, needle, NULL));
}

/* wait_count - poll (at most 20 s) until count() reaches want; it must
 * be want exactly */
static void
wait_count(const char *rcpt, const char *needle, int want)
{
	for (int i = 0; i < 200 && count(rcpt, needle) < want; i++)
		tl_sleep_ms(100);
	ck_assert_msg(count(rcpt, needle) == want, "%d messages to %s with \"%s\", not %d",
		      count(rcpt, needle), rcpt ? rcpt : "anybody", needle ? needle : "",
		      want);
}

/* wait_sql - poll (at most secs) until the query gives want */
static void
wait_sql_for(const char *sql, long want, int secs)
{
	for (int i = 0; i < secs * 10 && tl_sql_int(&d, sql) != want; i++)
		tl_sleep_ms(100);
	ck_assert_msg(tl_sql_int(&d, sql) == want, "%s: %ld, not %ld", sql, tl_sql_int(&d, sql),
		      want);
}

static void
wait_sql(const char *sql, long want)
{
	wait_sql_for(sql, want, 20);
}

/* sql_text - first column of the first row as text into buf ("" if none) */
static void
sql_text(const char *db_path, const char *sql, char *buf, size_t len)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *q;

	buf[0] = 0;
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_int_eq(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0))
		snprintf(buf, len, "%s", (const char *) sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* held_text - a column of the held row whose subject is subject */
static void
held_text(const char *column, const char *subject, char *buf, size_t len)
{
	char	path[400], sql[400];

	snprintf(path, sizeof(path), "%s/mlistd.db", d.dir);
	snprintf(sql, sizeof(sql), "SELECT %s FROM held WHERE subject = '%s'", column, subject);
	sql_text(path, sql, buf, len);
}

/* held_id - the held row of the post with this subject (one, or fail) */
static long
held_id(const char *subject)
{
	char	sql[300];

	snprintf(sql, sizeof(sql), "SELECT count(*) FROM held WHERE subject = '%s'", subject);
	ck_assert_int_eq(tl_sql_int(&d, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT id FROM held WHERE subject = '%s'", subject);
	return (tl_sql_int(&d, sql));
}

/* wait_done - the runner carried out held post id's decision */
static void
wait_done(long id)
{
	char	sql[200];

	snprintf(sql, sizeof(sql), "SELECT done_at IS NOT NULL FROM held WHERE id = %ld", id);
	wait_sql(sql, 1);
}

/* held_files - files in the test's held-maildir new/ */
static int
held_files(void)
{
	char	path[400];
	DIR    *dp;
	struct dirent *e;
	int	n = 0;

	snprintf(path, sizeof(path), "%s/held/new", d.dir);
	if ((dp = opendir(path)) == NULL)
		return (0);
	while ((e = readdir(dp)) != NULL)
		n += e->d_name[0] != '.';
	(void) closedir(dp);
	return (n);
}

/* held_file_exists - the held post's file (maildir_file, "new/NAME") */
static int
held_file_exists(const char *maildir_file)
{
	char	path[600];

	snprintf(path, sizeof(path), "%s/held/%s", d.dir, maildir_file);
	return (access(path, F_OK) == 0);
}

/* copies - how many copies of the post with this subject member got
 * (a moderator's notice, which has it attached, is no copy) */
static int
copies(const char *member, const char *subject)
{
	char	needle[300];

	snprintf(needle, sizeof(needle), "\r\nMessage-ID: <%s@example.net>\r\n", subject);
	return (count_but(member, needle, "Content-Type: message/rfc822"));
}

/* each_member_got - every member has exactly n copies of the post */
static void
each_member_got(const char *subject, int n)
{
	for (int i = 0; i < MEMBERS; i++)
		ck_assert_msg(copies(members[i], subject) == n, "%s has %d copies of %s, not %d",
			      members[i], copies(members[i], subject), subject, n);
}

/* notice_for - the moderator's one notice about the held post `subject`,
 * waited for (at most 20 s); malloc'd */
static char *
notice_for(const char *moderator, const char *subject)
{
	char   *m[256], want[300], needle[300], *found = NULL;
	int	n, hits = 0;

	snprintf(needle, sizeof(needle), "\r\nSubject: Held for club@example.com: %s\r\n",
		 subject);
	wait_count(moderator, needle, 1);
	snprintf(want, sizeof(want), "RCPT TO:<%s>\r\n", moderator);
	n = tl_sink_messages(&k, m, 256);
	for (int i = 0; i < n; i++)
		if (strstr(m[i], want) && strstr(m[i], needle)) {
			hits++;
			found = strdup(m[i]);
		}
	tl_free_messages(m, n);
	ck_assert_int_eq(hits, 1);
	ck_assert_ptr_nonnull(found);
	return (found);
}

/* command_in - the address LIST+WHAT+TOKEN@example.com in a notice */
static void
command_in(const char *notice, const char *list, const char *what, char *out, size_t len)
{
	char	pat[100];
	const char *p, *e;

	snprintf(pat, sizeof(pat), "%s+%s+h", list, what);
	ck_assert_ptr_nonnull(p = strstr(notice, pat));
	e = p + strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789+.-");
	ck_assert_int_eq(strncmp(e, "@example.com", 12), 0);
	snprintf(out, len, "%.*s@example.com", (int) (e - p), p);
}

/* address_from - the moderator's notice about `subject`: its WHAT address */
static void
address_from(const char *moderator, const char *subject, const char *what, char *out,
	     size_t len)
{
	char   *notice = notice_for(moderator, subject);

	command_in(notice, "club", what, out, len);
	free(notice);
}

/* decide_as - a moderator's (or anybody's) message to a command address */
static int
decide_as(const char *from, const char *hdr_from, const char *addr)
{
	const char *to[] = {addr, NULL};
	static unsigned seq;
	char	msg[1024];

	snprintf(msg, sizeof(msg), "From: <%s>\r\nTo: <%s>\r\nSubject: ok\r\n"
		 "Message-ID: <decide.%u.%ld@example.org>\r\n\r\nok\r\n", hdr_from, addr,
		 ++seq, (long) getpid());
	return (tl_post(&d, from, to, msg, reply, sizeof(reply)));
}

/* decide - the same, From: the envelope sender */
static int
decide(const char *from, const char *addr)
{
	return (decide_as(from, from, addr));
}

/* logged - lines of the daemon's log with needle */
static int
logged(const char *needle)
{
	int	hits = tl_logged(&d, needle);

	ck_assert_int_ge(hits, 0);
	return (hits);
}

/* hold_one - a stranger's post to club, held; its id */
static long
hold_one(const char *subject)
{
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", subject), 250);
	return (held_id(subject));
}

/*
 * others = hold: a non-member's post is kept (row and file, 250, no
 * copy); the moderator's notice carries it and the addresses; approve
 * by mail sends it to every member once, and the row says so.
 */
START_TEST(test_hold_approve)
{
	char	file[300], buf[300], addr[300], *notice;
	long	id;

	start(NULL, NULL);
	id = hold_one("first-post");
	held_text("reason", "first-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "not allowed");
	held_text("sender", "first-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "stranger@example.net");
	held_text("maildir_file", "first-post", file, sizeof(file));
	ck_assert_int_eq(strncmp(file, "new/", 4), 0);
	ck_assert(held_file_exists(file));
	ck_assert_int_eq(held_files(), 1);
	ck_assert_int_eq(logged("status=held (id="), 1);
	/* The moderators' notices. */
	notice = notice_for("mod@example.org", "first-post");
	ck_assert_ptr_nonnull(strstr(notice, "MAIL FROM:<bounce@example.com>"));
	ck_assert_ptr_nonnull(strstr(notice, "\r\nTo: <mod@example.org>\r\n"));
	ck_assert_ptr_nonnull(strstr(notice, "\r\nAuto-Submitted: auto-replied\r\n"));
	ck_assert_ptr_nonnull(strstr(notice, "\r\nContent-Type: multipart/mixed;"));
	{
		const char *att = strstr(notice, "Content-Type: message/rfc822");

		ck_assert_ptr_nonnull(att);
		ck_assert_ptr_nonnull(strstr(att, "\r\nMessage-ID: <first-post@example.net>\r\n"));
		ck_assert_ptr_nonnull(strstr(att, "\r\nFrom: <stranger@example.net>\r\n"));
	}
	command_in(notice, "club", "approve", addr, sizeof(addr));
	free(notice);
	wait_count("mod2@example.org", "Held for club@example.com: first-post", 1);
	/* Nothing for the members yet. */
	each_member_got("first-post", 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE decision IS NULL"), 1);
	/* Approve. */
	ck_assert_int_eq(decide("mod@example.org", addr), 250);
	wait_done(id);
	held_text("decision", "first-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "approve");
	held_text("decided_by", "first-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "mod@example.org");
	held_text("outcome", "first-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "sent to the list");
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE done_at IS NOT NULL"
				    " AND decided_at IS NOT NULL AND maildir_file IS NULL"), 1);
	ck_assert(!held_file_exists(file));
	ck_assert_int_eq(held_files(), 0);
	each_member_got("first-post", 1);
	ck_assert_int_eq(copies("stranger@example.net", "first-post"), 0);
	ck_assert_int_eq(copies("mod@example.org", "first-post"), 0);
	stop();
}
END_TEST

/* write_all - s into path */
static void
write_all(const char *path, const char *s, size_t len)
{
	FILE   *fp = fopen(path, "wb");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_eq(fwrite(s, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * The author's DKIM signature (over From, To, Subject, Date and
 * Message-ID) still verifies on the members' copies of an approved post.
 */
START_TEST(test_dkim_kept)
{
	const char *to[] = {"club@example.com", NULL};
	const char *post_text = "From: Stranger <stranger@example.net>\r\n"
		"To: club@example.com\r\nSubject: signed-post\r\n"
		"Date: Mon, 07 Dec 2026 19:00:00 +0000\r\n"
		"Message-ID: <signed-post@example.net>\r\n\r\n"
		"A signed message.\r\n\r\nWith two paragraphs.\r\n";
	char	tmp[] = "/tmp/mlistd-dkim.XXXXXX", script[600], cmd[2400], path[400];
	char	addr[300], *m[256], *signed_msg;
	int	n, verified = 0;

	snprintf(script, sizeof(script), "%s", ck_srcfile("tests/dkim.py"));
	ck_assert_int_eq(access(script, R_OK), 0);
	ck_assert_ptr_nonnull(mkdtemp(tmp));
	snprintf(cmd, sizeof(cmd), "cd '%s' && /usr/bin/dknewkey sel >/dev/null 2>&1"
		 " || openssl genrsa -out sel.key 2048 2>/dev/null", tmp);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/sel.dns", tmp);
	ck_assert_int_eq(access(path, R_OK), 0);
	snprintf(path, sizeof(path), "%s/post", tmp);
	write_all(path, post_text, strlen(post_text));
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' sign '%s/sel.key' sel example.net"
		 " < '%s/post' > '%s/signed' && /usr/bin/python3 '%s' verify '%s/sel.dns'"
		 " < '%s/signed' >/dev/null", script, tmp, tmp, tmp, script, tmp, tmp);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(path, sizeof(path), "%s/signed", tmp);
	signed_msg = ck_slurp(path, NULL);
	ck_assert_int_eq(strncmp(signed_msg, "DKIM-Signature: ", 16), 0);

	start(NULL, NULL);
	ck_assert_int_eq(tl_post(&d, "stranger@example.net", to, signed_msg, reply,
				 sizeof(reply)), 250);
	free(signed_msg);
	(void) held_id("signed-post");
	address_from("mod@example.org", "signed-post", "approve", addr, sizeof(addr));
	ck_assert_int_eq(decide("mod@example.org", addr), 250);
	wait_done(held_id("signed-post"));
	each_member_got("signed-post", 1);
	/* Each member's copy, without the sink's envelope lines, verifies. */
	n = tl_sink_messages(&k, m, 256);
	for (int i = 0; i < n; i++) {
		const char *body = strstr(m[i], "\r\n\n");

		if (!strstr(m[i], "\r\nMessage-ID: <signed-post@example.net>\r\n")
		    || strstr(m[i], "Content-Type: message/rfc822"))
			continue;
		ck_assert_ptr_nonnull(body);
		body += 3;
		ck_assert_ptr_nonnull(strstr(body, "\r\nList-Id: "));
		snprintf(path, sizeof(path), "%s/copy", tmp);
		write_all(path, body, strlen(body));
		snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s' verify '%s/sel.dns' < '%s'"
			 " >/dev/null", script, tmp, path);
		ck_assert_msg(system(cmd) == 0, "the copy's DKIM signature does not verify");
		verified++;
		/* And a changed body does not (the check can fail). */
		snprintf(cmd, sizeof(cmd), "sed -i 's/two paragraphs/2 paragraphs/' '%s' &&"
			 " ! /usr/bin/python3 '%s' verify '%s/sel.dns' < '%s' >/dev/null", path,
			 script, tmp, path);
		ck_assert_int_eq(system(cmd), 0);
	}
	tl_free_messages(m, n);
	ck_assert_int_ge(verified, 1);
	stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/*
 * Reject: the author gets one "rejected" notice, the members nothing.
 * Discard: nobody gets anything.  others = discard: 250, nothing held,
 * nothing sent.
 */
START_TEST(test_reject_discard)
{
	char	addr[300], buf[100];
	long	id;
	int	total;

	start(NULL, NULL);
	id = hold_one("to-reject");
	address_from("mod@example.org", "to-reject", "reject", addr, sizeof(addr));
	wait_count("mod2@example.org", "Held for club@example.com: to-reject", 1);
	ck_assert_int_eq(decide("mod@example.org", addr), 250);
	wait_done(id);
	held_text("decision", "to-reject", buf, sizeof(buf));
	ck_assert_str_eq(buf, "reject");
	ck_assert_int_eq(count("stranger@example.net", "\r\nSubject: Your message to "
			       "club@example.com was not sent\r\n"), 1);
	ck_assert_int_eq(count("stranger@example.net", NULL), 1);
	each_member_got("to-reject", 0);
	ck_assert_int_eq(held_files(), 0);

	/* Discard. */
	id = hold_one("to-discard");
	address_from("mod@example.org", "to-discard", "discard", addr, sizeof(addr));
	wait_count("mod2@example.org", "Held for club@example.com: to-discard", 1);
	total = count(NULL, NULL);
	ck_assert_int_eq(decide("mod@example.org", addr), 250);
	wait_done(id);
	held_text("decision", "to-discard", buf, sizeof(buf));
	ck_assert_str_eq(buf, "discard");
	ck_assert_int_eq(held_files(), 0);
	ck_assert_int_eq(count(NULL, NULL), total);
	ck_assert_int_eq(count("stranger@example.net", NULL), 1);

	/* others = discard. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET others = 'discard' WHERE name = 'club'"),
			 0);
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", "dropped"), 250);
	ck_assert_int_eq(logged("discard: from=<stranger@example.net> may not post to club"
				" (posting=group, others=discard)"), 1);
	ck_assert_int_eq(logged("from=<stranger@example.net>, status=discarded (not allowed"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE subject = 'dropped'"), 0);
	ck_assert_int_eq(held_files(), 0);
	ck_assert_int_eq(count(NULL, NULL), total);
	/* The members still post. */
	ck_assert_int_eq(post("alice@example.org", "club@example.com", "member-post"), 250);
	each_member_got("member-post", 1);
	stop();
}
END_TEST

/*
 * A real token used by a non-moderator, a forged one, one for another
 * list: nothing changes.  A replay after the approval sends nothing
 * more; another moderator's later decision gets one "decided" answer.
 */
START_TEST(test_forged_replayed)
{
	char	approve[300], reject2[300], forged[300], foreign[310], buf[300];
	char	*last;
	long	id;

	start(NULL, NULL);
	id = hold_one("guarded");
	address_from("mod@example.org", "guarded", "approve", approve, sizeof(approve));
	address_from("mod2@example.org", "guarded", "reject", reject2, sizeof(reject2));
	/* A non-moderator with a real token. */
	ck_assert_int_eq(decide("stranger@example.net", approve), 250);
	ck_assert_int_eq(logged("a token made for nobody who wrote this"), 1);
	ck_assert_int_eq(decide("alice@example.org", approve), 250);
	ck_assert_int_eq(logged("a token made for nobody who wrote this"), 2);
	/* Another moderator's token: each token is its moderator's only. */
	ck_assert_int_eq(decide("mod2@example.org", approve), 250);
	ck_assert_int_eq(logged("a token made for nobody who wrote this"), 3);
	/* A moderator removed from the list cannot use the token it kept, even
	 * with mail that names a current moderator in From:. */
	ck_assert_int_eq(tl_sql(&d, "DELETE FROM moderators WHERE address = 'mod2@example.org'"
				" AND group_name = 'club'"), 0);
	ck_assert_int_eq(decide_as("mod2@example.org", "mod@example.org", reject2), 250);
	ck_assert_int_eq(logged("the token's moderator no longer moderates the list"), 1);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO moderators VALUES ('club', 'mod2@example.org')"),
			 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE decision IS NULL"
				    " AND done_at IS NULL"), 1);
	/* A forged token: one hex digit of the MAC changed. */
	snprintf(forged, sizeof(forged), "%s", approve);
	ck_assert_ptr_nonnull(last = strchr(forged, '@'));
	last--;
	*last = *last == '0' ? '1' : '0';
	ck_assert_str_ne(forged, approve);
	ck_assert_int_eq(decide("mod@example.org", forged), 250);
	ck_assert_int_eq(logged("a token made for nobody who wrote this"), 4);
	/* The token of club's post at other's address (mod moderates both). */
	snprintf(foreign, sizeof(foreign), "other%s", approve + strlen("club"));
	ck_assert_int_eq(decide("mod@example.org", foreign), 250);
	ck_assert_int_eq(logged("group=other: approve from=<mod@example.org>: a token made for "
				"nobody"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE decision IS NULL"
				    " AND done_at IS NULL"), 1);
	ck_assert_int_eq(held_files(), 1);
	each_member_got("guarded", 0);
	/* Nobody heard of it. */
	ck_assert_int_eq(count("stranger@example.net", NULL), 0);
	ck_assert_int_eq(count("alice@example.org", NULL), 0);
	/* The moderator approves; the approval again changes nothing. */
	ck_assert_int_eq(decide("mod@example.org", approve), 250);
	wait_done(id);
	each_member_got("guarded", 1);
	ck_assert_int_eq(decide("mod@example.org", approve), 250);
	ck_assert_int_eq(logged("decided already (approve by mod@example.org)"), 1);
	ck_assert_int_eq(count("mod@example.org", "Already decided"), 0);
	/* Another moderator's different decision: one short answer. */
	ck_assert_int_eq(decide("mod2@example.org", reject2), 250);
	ck_assert_int_eq(count("mod2@example.org", "\r\nSubject: Already decided: guarded\r\n"),
			 1);
	ck_assert_int_eq(count("mod2@example.org", "decided by mod@example.org: approve"), 1);
	held_text("decision || ' ' || decided_by", "guarded", buf, sizeof(buf));
	ck_assert_str_eq(buf, "approve mod@example.org");
	ck_assert_int_eq(count("stranger@example.net", NULL), 0);
	each_member_got("guarded", 1);
	stop();
}
END_TEST

/* send_dot - a whole transaction up to the final dot (MAIL FROM with
 * params, may be ""), reply not read; msg NULL: a short one */
static int
send_dot(const char *from, const char *params, const char *to, const char *msg)
{
	char	buf[1024], cmd[600], text[600];
	int	fd = tl_connect(&d);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>%s\r\n", from, params);
	ck_assert_int_eq(tl_cmd(fd, cmd, buf, sizeof(buf)), 250);
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", to);
	ck_assert_int_eq(tl_cmd(fd, cmd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	snprintf(text, sizeof(text), "From: <%s>\r\nSubject: yes\r\nMessage-ID: <at-once.%s>"
		 "\r\n\r\nyes\r\n", from, from);
	ck_assert_int_eq(tl_send(fd, msg ? msg : text), 0);
	ck_assert_int_eq(tl_send(fd, ".\r\n"), 0);
	return (fd);
}

/* Two moderators approve at the same time: one copy per member. */
START_TEST(test_concurrent_approvals)
{
	char	a1[300], a2[300], buf[1024], who[300];
	const char *loser;
	long	id;
	int	f1, f2;

	start(NULL, NULL);
	id = hold_one("at-once");
	address_from("mod@example.org", "at-once", "approve", a1, sizeof(a1));
	address_from("mod2@example.org", "at-once", "approve", a2, sizeof(a2));
	f1 = send_dot("mod@example.org", "", a1, NULL);
	f2 = send_dot("mod2@example.org", "", a2, NULL);
	ck_assert_int_eq(tl_reply(f1, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_reply(f2, buf, sizeof(buf)), 250);
	(void) close(f1);
	(void) close(f2);
	wait_done(id);
	each_member_got("at-once", 1);
	held_text("decided_by", "at-once", who, sizeof(who));
	ck_assert(strcmp(who, "mod@example.org") == 0 || strcmp(who, "mod2@example.org") == 0);
	loser = strcmp(who, "mod@example.org") == 0 ? "mod2@example.org" : "mod@example.org";
	/* The second one is told, once; the first one nothing. */
	ck_assert_int_eq(count(loser, "Already decided"), 1);
	ck_assert_int_eq(count(who, "Already decided"), 0);
	ck_assert_int_eq(logged(": decision=approve by <"), 1);
	stop();
}
END_TEST

/*
 * An 8-bit post (BODY=8BITMIME): the moderator's notice that carries it
 * says 8bit and goes to the relay with BODY=8BITMIME, as does the
 * approved post.
 */
START_TEST(test_eightbit)
{
	const char *msg = "From: <stranger@example.net>\r\nTo: <club@example.com>\r\n"
		"Subject: eight-bit\r\nMessage-ID: <eight-bit@example.net>\r\n"
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
		"Content-Transfer-Encoding: 8bit\r\n\r\nGr\xc3\xbc\xc3\x9f e\r\n";
	char	buf[1024], addr[300], *notice;
	const char *att;
	long	id;
	int	fd;

	start(NULL, NULL);
	fd = send_dot("stranger@example.net", " BODY=8BITMIME", "club@example.com", msg);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	(void) close(fd);
	id = held_id("eight-bit");
	ck_assert_int_eq(tl_sql_int(&d, "SELECT eightbit FROM held"), 1);
	notice = notice_for("mod@example.org", "eight-bit");
	ck_assert_ptr_nonnull(strstr(notice, "\r\nGr\xc3\xbc\xc3\x9f e\r\n"));
	ck_assert_msg(strncmp(notice, "MAIL FROM:<bounce@example.com> BODY=8BITMIME\r\n", 46) == 0,
		      "an 8-bit notice went to the relay without BODY=8BITMIME");
	ck_assert_ptr_nonnull(strstr(notice, "\"\r\nContent-Transfer-Encoding: 8bit\r\n"));
	ck_assert_ptr_nonnull(att = strstr(notice, "Content-Type: message/rfc822\r\n"));
	ck_assert_ptr_nonnull(strstr(att, "\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"));
	command_in(notice, "club", "approve", addr, sizeof(addr));
	free(notice);
	ck_assert_int_eq(decide("mod@example.org", addr), 250);
	wait_done(id);
	each_member_got("eight-bit", 1);
	ck_assert_int_eq(count("alice@example.org", "BODY=8BITMIME\r\nRCPT TO:"), 1);
	ck_assert_int_eq(count("alice@example.org", "\r\nGr\xc3\xbc\xc3\x9f e\r\n"), 1);
	stop();
}
END_TEST

/* UPDATE held SET decision = 'approve' with sqlite3: carried out, no reload. */
START_TEST(test_sqlite3_decision)
{
	char	sql[200], buf[100];
	long	id;

	start(NULL, NULL);
	id = hold_one("by-hand");
	wait_count("mod@example.org", "Held for club@example.com: by-hand", 1);
	wait_count("mod2@example.org", "Held for club@example.com: by-hand", 1);
	each_member_got("by-hand", 0);
	snprintf(sql, sizeof(sql), "UPDATE held SET decision = 'approve' WHERE id = %ld", id);
	ck_assert_int_eq(tl_sql(&d, sql), 0);
	wait_done(id);
	held_text("decided_by", "by-hand", buf, sizeof(buf));
	ck_assert_str_eq(buf, "sqlite3");
	held_text("outcome", "by-hand", buf, sizeof(buf));
	ck_assert_str_eq(buf, "sent to the list");
	each_member_got("by-hand", 1);
	ck_assert_int_eq(held_files(), 0);
	/* The first decision wins with sqlite3 too. */
	snprintf(sql, sizeof(sql), "UPDATE held SET decision = 'reject' WHERE id = %ld", id);
	ck_assert_int_ne(tl_sql(&d, sql), 0);
	held_text("decision", "by-hand", buf, sizeof(buf));
	ck_assert_str_eq(buf, "approve");
	ck_assert_int_eq(logged("reload"), 0);
	stop();
}
END_TEST

/* runner_pid - the master's child named mlistd-runner (0: none) */
static pid_t
runner_pid(void)
{
	DIR    *dp = opendir("/proc");
	struct dirent *e;
	pid_t	found = 0;

	ck_assert_ptr_nonnull(dp);
	while (found == 0 && (e = readdir(dp)) != NULL) {
		char	path[300], comm[64] = "", stat[512], *p, state;
		long	ppid;
		FILE   *fp;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(comm, sizeof(comm), fp) == NULL)
			comm[0] = 0;
		fclose(fp);
		comm[strcspn(comm, "\n")] = 0;
		if (strcmp(comm, "mlistd-runner") != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((fp = fopen(path, "r")) == NULL)
			continue;
		if (fgets(stat, sizeof(stat), fp) != NULL && (p = strrchr(stat, ')')) != NULL
		    && sscanf(p + 1, " %c %ld", &state, &ppid) == 2 && ppid == (long) d.pid
		    && state != 'Z')
			found = (pid_t) atol(e->d_name);
		fclose(fp);
	}
	(void) closedir(dp);
	return (found);
}

/* wait_sink_file - the sink made DIR/name (at most 20 s) */
static void
wait_sink_file(const char *name)
{
	char	path[400];

	snprintf(path, sizeof(path), "%s/%s", k.dir, name);
	for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++)
		tl_sleep_ms(10);
	ck_assert_msg(access(path, F_OK) == 0, "the sink never made %s", name);
}

/*
 * The runner killed (SIGKILL) with the first relay transaction of an
 * approved post at the final dot: the master starts a new runner, which
 * takes the claim over and sends to the members not yet served.  As in
 * check_delivery's test_stalled_worker_fenced, the members of the
 * transaction in flight get a second copy (nothing can know whether it
 * arrived); everybody else exactly one.
 */
START_TEST(test_runner_killed)
{
	char	sql[200], path[400];
	pid_t	runner, again = 0;
	int	twice = 0;
	long	id;
	FILE   *fp;

	/* Transactions 1 and 2 are the moderators' notices; 3 the first of
	 * the post's two (relay-recipient-limit = 2, three members). */
	start("relay-recipient-limit = 2\n", "-W", "3", NULL);
	id = hold_one("crash-post");
	wait_count("mod@example.org", "Held for club@example.com: crash-post", 1);
	wait_count("mod2@example.org", "Held for club@example.com: crash-post", 1);
	ck_assert_int_eq(count(NULL, NULL), 2);
	snprintf(sql, sizeof(sql), "UPDATE held SET decision = 'approve' WHERE id = %ld", id);
	ck_assert_int_eq(tl_sql(&d, sql), 0);
	wait_sink_file(".held");
	ck_assert_int_gt(runner = runner_pid(), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT owner FROM relayed"), runner);
	ck_assert_int_eq(kill(runner, SIGKILL), 0);
	for (int i = 0; i < 200 && ((again = runner_pid()) == 0 || again == runner); i++)
		tl_sleep_ms(100);
	ck_assert_int_gt(again, 0);
	ck_assert_int_ne(again, runner);
	snprintf(path, sizeof(path), "%s/.go", k.dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_eq(fclose(fp), 0);
	wait_done(id);
	snprintf(sql, sizeof(sql), "SELECT outcome = 'sent to the list' FROM held WHERE id = %ld",
		 id);
	ck_assert_int_eq(tl_sql_int(&d, sql), 1);
	/* Let the held transaction's file land: 2 notices + 3 of the post. */
	wait_count(NULL, NULL, 5);
	/* Two members were in flight: two copies; the third one. */
	for (int i = 0; i < MEMBERS; i++) {
		int	c = copies(members[i], "crash-post");

		ck_assert_msg(c == 1 || c == 2, "%s has %d copies", members[i], c);
		twice += c == 2;
	}
	ck_assert_int_eq(twice, 2);
	ck_assert_int_eq(count_but(NULL, "\r\nMessage-ID: <crash-post@example.net>\r\n",
				   "Content-Type: message/rfc822"), 3);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"
				    " AND owner IS NULL"), 1);
	ck_assert_int_eq(held_files(), 0);
	stop();
}
END_TEST

/*
 * Expiry: an undecided post past expires becomes 'expire', done, its
 * file removed, nothing sent.  Caps: hold-max-size (552 5.2.3);
 * hold-limit: a stranger's post over it is discarded (250: no 4xx that
 * would end as a DSN to a likely forged sender), an allowed poster's to
 * a moderated list deferred (452 4.2.2); room again once a post is
 * decided.
 */
START_TEST(test_expiry_caps)
{
	char	sql[300], buf[100], big[4096];
	const char *to[] = {"club@example.com", NULL};
	long	id;
	int	total;

	start("hold-limit = 1\nhold-max-size = 2048\n", NULL);
	id = hold_one("old-post");
	/* Too big to be held. */
	snprintf(big, sizeof(big), "From: <stranger@example.net>\r\nSubject: big-post\r\n"
		 "Message-ID: <big-post@example.net>\r\n\r\n");
	while (strlen(big) < 3000)
		strcat(big, "0123456789012345678901234567890123456789012345678901234567890123\r\n");
	ck_assert_int_eq(tl_post(&d, "stranger@example.net", to, big, reply, sizeof(reply)), 552);
	ck_assert_ptr_nonnull(strstr(reply, "5.2.3"));
	/* Over hold-limit. */
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", "second-post"), 250);
	ck_assert_int_eq(logged("a post from a sender not allowed to post is discarded"), 1);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting, moderated) VALUES"
				" ('news', 'group', 1); INSERT INTO group_members VALUES"
				" ('news', 'alice@example.org'), ('news', 'bob@example.org');"
				" INSERT INTO moderators VALUES ('news', 'mod@example.org')"), 0);
	ck_assert_int_eq(post("alice@example.org", "news@example.com", "news-1"), 250);
	ck_assert_int_eq(post("alice@example.org", "news@example.com", "news-2"), 452);
	ck_assert_ptr_nonnull(strstr(reply, "4.2.2"));
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held"), 2);
	ck_assert_int_eq(held_files(), 2);
	/* Expired. */
	wait_count("mod2@example.org", "Held for club@example.com: old-post", 1);
	wait_count("mod@example.org", "Held for club@example.com: old-post", 1);
	wait_count("mod@example.org", "Held for news@example.com: news-1", 1);
	total = count(NULL, NULL);
	snprintf(sql, sizeof(sql), "UPDATE held SET expires = '2000-01-01 00:00:00' WHERE id = %ld",
		 id);
	ck_assert_int_eq(tl_sql(&d, sql), 0);
	wait_done(id);
	held_text("decision || ' ' || decided_by", "old-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "expire mlistd");
	ck_assert_int_eq(held_files(), 1);
	ck_assert_int_eq(count(NULL, NULL), total);
	each_member_got("old-post", 0);
	ck_assert_int_eq(count("stranger@example.net", NULL), 0);
	/* Room again. */
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", "third-post"), 250);
	(void) held_id("third-post");
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held WHERE subject = 'second-post'"
				    " OR subject LIKE 'big-post'"), 0);
	stop();
}
END_TEST

/* moderated = 1: a member's post is held; a moderator's own is sent. */
START_TEST(test_moderated)
{
	char	buf[100];

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET moderated = 1, others = 'reject'"
				" WHERE name = 'club'"), 0);
	ck_assert_int_eq(post("alice@example.org", "club@example.com", "member-post"), 250);
	(void) held_id("member-post");
	held_text("reason", "member-post", buf, sizeof(buf));
	ck_assert_str_eq(buf, "moderated");
	wait_count("mod@example.org", "Held for club@example.com: member-post", 1);
	each_member_got("member-post", 0);
	/* A moderator's own post goes out at once. */
	ck_assert_int_eq(post("mod@example.org", "club@example.com", "mod-post"), 250);
	each_member_got("mod-post", 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held"), 1);
	/* Others are still refused (others = reject). */
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", "refused"), 550);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM held"), 1);
	stop();
}
END_TEST

/* notify_held = 1: the author hears once an hour that a post waits. */
START_TEST(test_notify_held)
{
	const char *note = "\r\nSubject: Your message to club@example.com awaits approval\r\n";
	char	sql[200];
	long	id;

	start(NULL, NULL);
	id = hold_one("quiet-post");
	snprintf(sql, sizeof(sql), "SELECT notified FROM held WHERE id = %ld", id);
	wait_sql(sql, 3);
	ck_assert_int_eq(count("stranger@example.net", NULL), 0);
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET notify_held = 1 WHERE name = 'club'"), 0);
	hold_one("told-post");
	wait_count("stranger@example.net", note, 1);
	ck_assert_int_eq(count("stranger@example.net", "told-post"), 1);
	id = hold_one("untold-post");
	snprintf(sql, sizeof(sql), "SELECT notified FROM held WHERE id = %ld", id);
	wait_sql(sql, 3);
	ck_assert_int_eq(count("stranger@example.net", note), 1);
	ck_assert_int_eq(count("stranger@example.net", NULL), 1);
	ck_assert_int_eq(logged("it had such a notice within the hour"), 1);
	stop();
}
END_TEST

/* A confirmed subscription: the list's moderator hears of it. */
START_TEST(test_owner_notice)
{
	const char *to[] = {"chess+subscribe@example.com", NULL};
	const char *msg = "From: <new@example.net>\r\nSubject: join\r\n"
		"Message-ID: <join@example.net>\r\n\r\nplease\r\n";
	char   *m[64], confirm[300] = "";
	int	n;

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting, subscribe) VALUES"
				" ('chess', 'group', 'confirm'); INSERT INTO moderators VALUES"
				" ('chess', 'mod@example.org')"), 0);
	ck_assert_int_eq(tl_post(&d, "new@example.net", to, msg, reply, sizeof(reply)), 250);
	n = tl_sink_messages(&k, m, 64);
	for (int i = 0; i < n; i++) {
		const char *p = strstr(m[i], "\nFrom: \"chess\" <chess+confirm+s"), *e;

		if (p == NULL)
			continue;
		p = strchr(p, '<') + 1;
		ck_assert_ptr_nonnull(e = strchr(p, '>'));
		snprintf(confirm, sizeof(confirm), "%.*s", (int) (e - p), p);
	}
	tl_free_messages(m, n);
	ck_assert_int_ne(confirm[0], 0);
	ck_assert_int_eq(decide("new@example.net", confirm), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " group_name = 'chess' AND address = 'new@example.net'"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM changes WHERE group_name = 'chess'"
				    " AND what = 'subscribed' AND how = 'request'"), 1);
	/* Within a minute and the runner's interval. */
	for (int i = 0; i < 900 && count("mod@example.org", "Changes to the members") == 0; i++)
		tl_sleep_ms(100);
	ck_assert_int_eq(count("mod@example.org", "\r\nSubject: Changes to the members of "
			       "chess@example.com\r\n"), 1);
	ck_assert_int_eq(count("mod@example.org", "chess: new@example.net subscribed (by mail)"),
			 1);
	/* Not to the moderators of other lists about it. */
	ck_assert_int_eq(count("mod2@example.org", "Changes to the members"), 0);
	stop();
}
END_TEST

/* db_exec - SQL on a database file */
static void
db_exec(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	char   *err = NULL;

	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	ck_assert_msg(sqlite3_exec(db, sql, NULL, NULL, &err) == SQLITE_OK, "%s: %s", sql,
		      err ? err : "?");
	sqlite3_close(db);
}

/* db_int - the first column of the first row */
static long
db_int(const char *path, const char *sql)
{
	char	buf[64];

	sql_text(path, sql, buf, sizeof(buf));
	return (buf[0] ? atol(buf) : -1);
}

/*
 * A version-6 database (tests/schema-v6.sql, the schema before
 * moderation) gets the new columns with defaults that change nothing:
 * others = 'reject', moderated = 0; a non-member's post is refused.
 */
START_TEST(test_upgrade_v6)
{
	char	dir[] = "/tmp/mlistd-v6.XXXXXX", db[300], schema[600], cmd[1400], conf[600];
	char	buf[100];

	snprintf(schema, sizeof(schema), "%s", ck_srcfile("tests/schema-v6.sql"));
	ck_assert_int_eq(access(schema, R_OK), 0);
	ck_assert_ptr_nonnull(mkdtemp(dir));
	ck_assert_int_eq(tl_give_dir(dir), 0);
	snprintf(db, sizeof(db), "%s/old.db", dir);
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' < '%s'", db, schema);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(db_int(db, "PRAGMA user_version"), 6);
	db_exec(db, "INSERT INTO groups (name, posting) VALUES ('club', 'group');"
		" INSERT INTO group_members VALUES ('club', 'alice@example.org'),"
		" ('club', 'bob@example.org')");
	ck_assert_int_eq(tl_give_dir(db), 0);
	ck_assert_int_eq(tl_sink_start(&k, (char *) NULL), 0);
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\ndatabase = %s\n", k.port, db);
	ck_assert_int_eq(tl_daemon_start(&d, conf, 0), 0);
	ck_assert_int_eq(db_int(db, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	sql_text(db, "SELECT others || ' ' || moderated || ' ' || notify_owners || ' ' ||"
		 " notify_held || ' ' || ifnull(dmarc, 'NULL') FROM groups WHERE name = 'club'",
		 buf, sizeof(buf));
	ck_assert_str_eq(buf, "reject 0 1 0 NULL");
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM held"), 0);
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM moderators"), 0);
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
				" AND name = 'held_decided'"), 1);
	ck_assert_int_eq(post("stranger@example.net", "club@example.com", "old-refused"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "5.7.1"));
	ck_assert_int_eq(db_int(db, "SELECT count(*) FROM held"), 0);
	ck_assert_int_eq(post("alice@example.org", "club@example.com", "old-post"), 250);
	ck_assert_int_eq(copies("bob@example.org", "old-post"), 1);
	ck_assert_int_eq(copies("alice@example.org", "old-post"), 1);
	stop();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("moderation");
	TCase  *tc = tcase_create("moderation");

	tcase_set_timeout(tc, 150);
	tcase_add_test(tc, test_hold_approve);
	tcase_add_test(tc, test_dkim_kept);
	tcase_add_test(tc, test_reject_discard);
	tcase_add_test(tc, test_forged_replayed);
	tcase_add_test(tc, test_concurrent_approvals);
	tcase_add_test(tc, test_eightbit);
	tcase_add_test(tc, test_sqlite3_decision);
	tcase_add_test(tc, test_runner_killed);
	tcase_add_test(tc, test_expiry_caps);
	tcase_add_test(tc, test_moderated);
	tcase_add_test(tc, test_notify_held);
	tcase_add_test(tc, test_owner_notice);
	tcase_add_test(tc, test_upgrade_v6);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
