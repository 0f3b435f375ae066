/*
 * check_delivery.c - list delivery end to end through the real daemon:
 * SQLite membership, posting policy, list headers, fan-out to a relay
 * (tests/mlsink standing in for Postfix), batching, failure replies.
 */
#include "config.h"

#include <check.h>
#include <time.h>

#include "cklib.h"
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "probe.h"
#include "testlib.h"

#include <dirent.h>
#include <sqlite3.h>
#include <sys/mount.h>
#include <sys/stat.h>

static struct tl_daemon d;
static struct tl_sink k;
static char reply[4096];

static const char *seed =
"INSERT INTO members (address, name) VALUES"
" ('alice@example.org', 'Alice'), ('bob@example.org', 'Bob'),"
" ('carol@example.org', 'Carol');"
"INSERT INTO groups (name, description, is_group, posting) VALUES"
" ('group1', 'Club members', 1, 'members'),"
" ('group2', 'Board, \"inner\" circle', 1, 'group'),"
" ('open', NULL, 1, 'anyone'),"
" ('postmaster', 'Postmaster', 0, 'anyone'),"
" ('empty', NULL, 1, 'anyone');"
"INSERT INTO group_members (group_name, address) VALUES"
" ('group1', 'alice@example.org'), ('group1', 'bob@example.org'),"
" ('group2', 'carol@example.org'), ('group2', 'dave@example.net'),"
" ('open', 'alice@example.org'), ('postmaster', 'carol@example.org');";

#define POST(from) \
	"From: \"Alice Example\" <" from ">\r\n" \
	"To: group1@example.com\r\n" \
	"Subject: hello\r\n" \
	"Sender: old-sender@example.net\r\n" \
	"List-Id: Other list <other.example.net>\r\n" \
	"List-Post: <mailto:other@example.net>\r\n" \
	"Bcc: secret@example.net\r\n" \
	"X-Folded: one\r\n\ttwo\r\n" \
	"\r\n" \
	"Body line\r\n" \
	"..leading dot\r\n" \
	"\r\n" \
	"last line\r\n"
#define BODY "\r\nBody line\r\n.leading dot\r\n\r\nlast line\r\n"

/* start - sink with options, daemon relaying to it, seed data */
static void
start(const char *daemon_extra, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, daemon_extra);
	rc = tl_vstart_relayed(&d, &k, daemon_extra, seed, ap);
	va_end(ap);
	ck_assert_int_eq(rc, 0);
}

static void
stop(void)
{
	ck_assert_int_eq(tl_stop_relayed(&d, &k), 0);
}

/*
 * post - one transaction.  Each post gets its own X-Test-Seq header, so
 * that no two are the same message (an identical retry of a relayed
 * message is not sent again: see test_exactly_once).
 */
static int
post(const char *from, const char *rcpt0, const char *rcpt1, const char *data)
{
	const char *rcpt[] = {rcpt0, rcpt1, NULL};
	static unsigned seq;
	size_t	len = strlen(data) + 64;
	char   *unique = malloc(len);
	int	rc;

	ck_assert_ptr_nonnull(unique);
	snprintf(unique, len, "X-Test-Seq: %u\r\n%s", ++seq, data);
	rc = tl_post(&d, from, rcpt, unique, reply, sizeof(reply));
	free(unique);
	return (rc);
}

/* A member's post reaches every member once, with the list headers. */
START_TEST(test_fanout_and_headers)
{
	char   *m[8];
	int	n;
	const char *hdr;

	start(NULL, NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_ptr_nonnull(strstr(reply, "250 2.0.0 Ok: queued as "));
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	hdr = m[0];
	ck_assert_ptr_nonnull(strstr(hdr, "MAIL FROM:<bounce@example.com>"));
	ck_assert_int_eq(tl_count(hdr, "RCPT TO:"), 2);
	ck_assert_ptr_nonnull(strstr(hdr, "RCPT TO:<alice@example.org>"));
	ck_assert_ptr_nonnull(strstr(hdr, "RCPT TO:<bob@example.org>"));
	ck_assert_int_eq(tl_count(hdr, "Sender: "), 1);
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nSender: bounce@example.com\r\n"));
	ck_assert_ptr_null(strstr(hdr, "old-sender"));
	ck_assert_int_eq(tl_count(hdr, "List-Id: "), 1);
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nList-Id: Club members <group1.example.com>\r\n"));
	ck_assert_int_eq(tl_count(hdr, "List-Post: "), 1);
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nList-Post: <mailto:group1@example.com>\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nList-Help: <mailto:postmaster@example.com?subject=help>\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nList-Unsubscribe: <mailto:postmaster@example.com?subject=unsubscribe%20group1>\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nList-Subscribe: <mailto:postmaster@example.com?subject=subscribe%20group1>\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nPrecedence: bulk\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nX-Auto-Response-Suppress: OOF\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nX-BeenThere: group1@example.com\r\n"));
	ck_assert_ptr_null(strstr(hdr, "Bcc:"));
	ck_assert_ptr_null(strstr(hdr, "other.example.net"));
	/* Untouched fields and the body, byte for byte. */
	ck_assert_ptr_nonnull(strstr(hdr, "\nFrom: \"Alice Example\" <alice@example.org>\r\n"
				     "To: group1@example.com\r\nSubject: hello\r\n"));
	ck_assert_ptr_nonnull(strstr(hdr, "\r\nX-Folded: one\r\n\ttwo\r\n"));
	ck_assert_str_eq(hdr + strlen(hdr) - strlen(BODY), BODY);
	tl_free_messages(m, n);
	stop();
}
END_TEST

/* Unsubscribes for the group and for '*' suppress delivery. */
START_TEST(test_unsubscribes)
{
	char   *m[8];
	int	n;

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('group1', 'carol@example.org');"
				"INSERT INTO group_members VALUES ('group1', 'dave@example.net');"
				"INSERT INTO unsubscribes (group_name, address) VALUES"
				" ('group1', 'BOB@example.org'), ('*', 'carol@example.org'),"
				" ('group2', 'dave@example.net');"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 2);
	ck_assert_ptr_nonnull(strstr(m[0], "RCPT TO:<alice@example.org>"));
	ck_assert_ptr_nonnull(strstr(m[0], "RCPT TO:<dave@example.net>"));
	tl_free_messages(m, n);
	stop();
}
END_TEST

/* Posting policies, the null sender, and unknown lists. */
START_TEST(test_policies)
{
	char   *m[8];
	int	n;

	start(NULL, NULL);
	/* members: a stranger is refused, with a reason for the bounce. */
	ck_assert_int_eq(post("mallory@example.net", "group1@example.com", NULL,
			      POST("mallory@example.net")), 550);
	ck_assert_ptr_nonnull(strstr(reply, "550 5.7.1 "));
	ck_assert_ptr_nonnull(strstr(reply, "mallory@example.net is not allowed to post"));
	/* The From: header decides, not the envelope. */
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("mallory@example.net")), 550);
	/* Display name, comment and case variations still identify a member. */
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "From: =?UTF-8?B?QsO2Yg==?= (the builder) <BOB@Example.ORG>\r\n"
			      "Subject: hi\r\n\r\nhi\r\n"), 250);
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "Subject: no from\r\n\r\nhi\r\n"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "no valid From: address"));
	/* group: only the group's own members. */
	ck_assert_int_eq(post("alice@example.org", "group2@example.com", NULL,
			      POST("alice@example.org")), 550);
	ck_assert_int_eq(post("carol@example.org", "group2@example.com", NULL,
			      POST("carol@example.org")), 250);
	/* anyone */
	ck_assert_int_eq(post("zed@example.net", "open@example.com", NULL,
			      POST("zed@example.net")), 250);
	/* The null sender never reaches a list, but reaches an alias. */
	ck_assert_int_eq(post("", "open@example.com", NULL, POST("zed@example.net")), 550);
	ck_assert_ptr_nonnull(strstr(reply, "550 5.7.1 "));
	ck_assert_int_eq(post("", "postmaster@example.com", NULL, POST("zed@example.net")), 250);
	/* An empty list accepts and sends nothing. */
	ck_assert_int_eq(post("zed@example.net", "empty@example.com", NULL,
			      POST("zed@example.net")), 250);
	/* Unknown local part, other domain. */
	ck_assert_int_eq(post("alice@example.org", "nosuch@example.com", NULL, "x\r\n"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "550 5.1.1 "));
	ck_assert_int_eq(post("alice@example.org", "group1@example.net", NULL, "x\r\n"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "550 5.7.1 "));
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 4);		/* bob's, carol's, zed's, postmaster */
	/* The alias copy has list headers but no Precedence. */
	{
		int	alias = 0;

		for (int i = 0; i < n; i++)
			if (strstr(m[i], "<postmaster.example.com>")) {
				alias++;
				ck_assert_ptr_null(strstr(m[i], "Precedence:"));
				ck_assert_ptr_null(strstr(m[i], "X-Auto-Response-Suppress:"));
				ck_assert_ptr_nonnull(strstr(m[i], "RCPT TO:<carol@example.org>"));
			}
		ck_assert_int_eq(alias, 1);
	}
	tl_free_messages(m, n);
	/* Valid RFC 5322 forms real clients send are a member's post ... */
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "From: Alice <alice@example.org> (sent from my phone) \r\n"
			      "Subject: s\r\n\r\nhi\r\n"), 250);
	/* ... several mailboxes only when every one of them may post. */
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "From: alice@example.org, Bob <bob@example.org>\r\n\r\nhi\r\n"), 250);
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "From: alice@example.org, mallory@example.net\r\n\r\nhi\r\n"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "mallory@example.net is not allowed to post"));
	ck_assert_int_eq(post("x@example.net", "group1@example.com", NULL,
			      "From: alice@example.org\r\nFrom: mallory@example.net\r\n\r\nhi\r\n"),
			 550);
	stop();
}
END_TEST

/* Two lists in one transaction: one copy each, own headers, own members. */
START_TEST(test_two_groups_one_transaction)
{
	char   *m[8];
	int	n, g1 = -1, g2 = -1;

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET posting = 'anyone' WHERE name = 'group2'"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", "GROUP2@example.com",
			      POST("alice@example.org")), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++) {
		if (strstr(m[i], "<group1.example.com>"))
			g1 = i;
		if (strstr(m[i], "<group2.example.com>"))
			g2 = i;
	}
	ck_assert_int_ge(g1, 0);
	ck_assert_int_ge(g2, 0);
	ck_assert_int_ne(g1, g2);
	ck_assert_ptr_nonnull(strstr(m[g1], "RCPT TO:<bob@example.org>"));
	ck_assert_ptr_null(strstr(m[g1], "RCPT TO:<carol@example.org>"));
	ck_assert_ptr_nonnull(strstr(m[g2], "RCPT TO:<carol@example.org>"));
	ck_assert_ptr_nonnull(strstr(m[g2], "RCPT TO:<dave@example.net>"));
	ck_assert_ptr_nonnull(strstr(m[g2], "List-Id: \"Board, \\\"inner\\\" circle\" <group2.example.com>\r\n"));
	ck_assert_int_eq(tl_count(m[g2], "List-Id:"), 1);
	tl_free_messages(m, n);
	/* If one list refuses the post, nothing is sent for either. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET posting = 'group' WHERE name = 'group2'"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", "group2@example.com",
			      POST("alice@example.org")), 550);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 2);
	tl_free_messages(m, 2);
	stop();
}
END_TEST

/* A message that already went through the list is a loop. */
START_TEST(test_loop)
{
	char   *m[8];

	start(NULL, NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      "From: alice@example.org\r\n"
			      "List-Id: Club members <GROUP1.example.com>\r\n\r\nx\r\n"), 554);
	ck_assert_ptr_nonnull(strstr(reply, "554 5.4.6 "));
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	/* A loop through a second list: its copy replaced List-Id. */
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      "From: alice@example.org\r\nX-BeenThere: group1@example.com\r\n"
			      "X-BeenThere: open@example.com\r\n"
			      "List-Id: <open.example.com>\r\n\r\nx\r\n"), 554);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	stop();
}
END_TEST

/* 2500 members: batches of relay-recipient-limit, and 452 from the relay
 * in the middle of a pipelined window of RCPTs. */
START_TEST(test_large_group_batches)
{
	char   *m[32];
	int	n, total = 0;
	char	sql[200];

	start("relay-recipient-limit = 1000\nrelay-pipelining = yes\n", "-n", "700", NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting) VALUES ('big', 'anyone')"), 0);
	ck_assert_int_eq(tl_sql(&d, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
				" FROM c WHERE i < 2500) INSERT INTO group_members"
				" SELECT 'big', 'm' || i || '@example.net' FROM c"), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM group_members WHERE group_name = 'big'");
	ck_assert_int_eq(tl_sql_int(&d, sql), 2500);
	ck_assert_int_eq(post("x@example.net", "big@example.com", NULL, "Subject: big\r\n\r\nhi\r\n"), 250);
	n = tl_sink_messages(&k, m, 32);
	/* 1000-recipient batches cut to 700 by the relay's 452: 700 x 3, 400. */
	ck_assert_int_eq(n, 4);
	for (int i = 0; i < n; i++) {
		int	c = tl_count(m[i], "RCPT TO:");

		ck_assert_int_le(c, 700);
		total += c;
	}
	ck_assert_int_eq(total, 2500);
	tl_free_messages(m, n);
	stop();
}
END_TEST

/*
 * Exactly once for large lists: the relay fails the second of three
 * batches.  The first batch is out, so the post gets 451; Postfix's retry
 * must reach only the members the first batch did not, each exactly once.
 */
START_TEST(test_large_group_partial_failure)
{
	char   *m[32], cmd[1200];
	int	n, total = 0;
	const char *msg = "From: x@example.net\r\nMessage-ID: <part@example.net>\r\n"
	"Subject: big\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};

	start("relay-recipient-limit = 1000\n", "-F", "2", NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting) VALUES ('big', 'anyone')"), 0);
	ck_assert_int_eq(tl_sql(&d, "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
				" FROM c WHERE i < 2500) INSERT INTO group_members"
				" SELECT 'big', 'm' || i || '@example.net' FROM c"), 0);
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 451);
	ck_assert_int_eq(tl_sink_messages(&k, m, 32), 1);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 1000);
	tl_free_messages(m, 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 1000);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 0"), 1);
	/* The retry: the other 1500, then the copy counts as relayed. */
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	n = tl_sink_messages(&k, m, 32);
	ck_assert_int_eq(n, 3);
	for (int i = 0; i < n; i++)
		total += tl_count(m[i], "RCPT TO:");
	ck_assert_int_eq(total, 2500);
	/* Nobody twice: 2500 distinct RCPT lines over the three transactions. */
	snprintf(cmd, sizeof(cmd), "test $(cat '%s'/msg.* | grep '^RCPT TO:' | sort -u | wc -l)"
		 " -eq 2500", k.dir);
	ck_assert_int_eq(system(cmd), 0);
	tl_free_messages(m, n);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"), 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'served=1000, ' '%s' && grep -q 'resuming a copy"
		 " first claimed at' '%s'", d.log, d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* A third try is a duplicate: nothing more is sent. */
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 32), 3);
	tl_free_messages(m, 3);
	stop();
}
END_TEST

/* The relay refusing one member permanently: others get it, a row records it.
 * Run without and with pipelined RCPTs. */
START_TEST(test_relay_refuses_member)
{
	char   *m[8];
	int	n;

	start(_i ? "relay-pipelining = yes\n" : NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('group1', 'rejectme@example.net')"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 2);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address = "
				    "'rejectme@example.net' AND status = '5.1.1' AND action = 'failed'"
				    " AND group_name = 'group1'"), 1);
	tl_free_messages(m, n);
	/*
	 * A 4xx at RCPT for one member: the others are served, the post gets
	 * 451, and the retry is for that member alone; the refused member's
	 * bounce row is written once, not once per attempt.
	 */
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('group1', 'deferme@example.net')"), 0);
	{
		const char *rcpt[] = {"group1@example.com", NULL};
		const char *msg = "From: alice@example.org\r\nSubject: defer\r\n\r\nd\r\n";

		for (int attempt = 0; attempt < 2; attempt++) {
			ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply,
						 sizeof(reply)), 451);
			ck_assert_int_eq(tl_sink_messages(&k, m, 8), 2);
			ck_assert_int_eq(tl_count(m[1], "RCPT TO:"), 2);
			ck_assert_int_eq(tl_count(m[1], "RCPT TO:<alice@example.org>"), 1);
			ck_assert_int_eq(tl_count(m[1], "RCPT TO:<bob@example.org>"), 1);
			tl_free_messages(m, 2);
		}
		ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address = "
					    "'rejectme@example.net'"), 2);
		/* The log names the 450 that deferred, not the last reply read. */
		{
			char	cmd[600];

			snprintf(cmd, sizeof(cmd), "grep 'status=deferred' '%s' | tail -1 | "
				 "grep -q '(450 4.2.1 <deferred>: try later)'", d.log);
			ck_assert_int_eq(system(cmd), 0);
		}
	}
	stop();
}
END_TEST

/* Relay down, relay 451 at end of data, relay dropping after the dot. */
START_TEST(test_relay_failures)
{
	char   *m[8];

	/* No relay listening. */
	start(NULL, NULL);
	tl_sink_stop(&k);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	ck_assert_ptr_nonnull(strstr(reply, "451 4."));
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);

	start(NULL, "-D", "451", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	stop();

	start(NULL, "-x", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	stop();

	/* 5xx at end of data, nothing sent before: the sender gets a bounce. */
	start(NULL, "-D", "554", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 554);
	stop();
}
END_TEST

/*
 * A database that cannot be read (here: a table dropped by hand) gives
 * 451 4.3.0, never 5xx or 250; once repaired, mail flows again.  (Readers
 * are never blocked by a writer in WAL mode; lock waits on the write
 * path are tested with the bounce store.)
 */
START_TEST(test_broken_database)
{
	char   *m[8];

	start("database-timeout = 1\n", NULL);
	ck_assert_int_eq(tl_sql(&d, "DROP TABLE unsubscribes"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	ck_assert_ptr_nonnull(strstr(reply, "451 4.3.0"));
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	ck_assert_int_eq(tl_sql(&d, "CREATE TABLE unsubscribes (group_name TEXT NOT NULL"
				" COLLATE NOCASE, address TEXT NOT NULL COLLATE NOCASE,"
				" created TEXT, PRIMARY KEY (address, group_name))"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	stop();
}
END_TEST

/* An edit with the sqlite3 CLI takes effect on the next message. */
START_TEST(test_live_sqlite3_edit)
{
	char   *m[8], db[400], out[4096];
	char   *argv[] = {"/usr/bin/sqlite3", db,
		"INSERT INTO group_members VALUES ('group1', 'newbie@example.net');", NULL};
	int	n;

	start(NULL, NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	snprintf(db, sizeof(db), "%s/mlistd.db", d.dir);
	ck_assert_msg(access(argv[0], X_OK) == 0, "the sqlite3 CLI is missing (apt-get install sqlite3)");
	ck_assert_int_eq(tl_run(argv, out, sizeof(out)), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 2);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:") + tl_count(m[1], "RCPT TO:"), 5);
	ck_assert_int_eq(tl_count(m[0], "newbie@") + tl_count(m[1], "newbie@"), 1);
	tl_free_messages(m, n);
	stop();
}
END_TEST

/* A worker that cannot open its database dies; the master throttles. */
START_TEST(test_worker_backoff)
{
	pid_t	w[8];
	int	n, seen = 0;
	char	cmd[600], path[400];

	start(NULL, NULL);
	/* Make the database unreadable for new connections: replace it with junk. */
	snprintf(path, sizeof(path), "%s/mlistd.db", d.dir);
	{
		FILE   *fp;

		ck_assert_int_eq(unlink(path), 0);
		fp = fopen(path, "w");
		ck_assert_ptr_nonnull(fp);
		fputs("this is not a database, it is a text file that goes on for a while\n", fp);
		for (int i = 0; i < 200; i++)
			fputs("junk junk junk junk junk junk junk junk junk junk\n", fp);
		fclose(fp);
	}
	/* Kill the workers: their replacements fail at start. */
	n = tl_workers(d.pid, w, 8);
	for (int i = 0; i < n; i++)
		kill(w[i], SIGKILL);
	tl_sleep_ms(3000);
	snprintf(cmd, sizeof(cmd), "grep -c 'throttling' %s", d.log);
	{
		FILE   *p = popen(cmd, "r");

		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(fscanf(p, "%d", &seen), 1);
		pclose(p);
	}
	/* Back-off: far fewer restarts than 3 s of free forking would give. */
	ck_assert_int_ge(seen, 2);
	ck_assert_int_le(seen, 20);
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
	tl_sink_stop(&k);
}
END_TEST

/* smtp_data - a corpus file as SMTP DATA: CR LF, dot-stuffed (malloc'd) */
static char *
smtp_data(const char *name)
{
	char	rel[256], *raw, *out;
	long	len;
	size_t	n = 0;
	int	bol = 1;

	snprintf(rel, sizeof(rel), "tests/bounces/%s", name);
	raw = ck_slurp(ck_srcfile(rel), &len);
	out = malloc(3 * (size_t) len + 8);
	ck_assert_ptr_nonnull(out);
	for (long i = 0; i < len; i++) {
		if (bol && raw[i] == '.')
			out[n++] = '.';
		if (raw[i] == '\n')
			out[n++] = '\r';
		out[n++] = raw[i];
		bol = raw[i] == '\n';
	}
	if (!bol) {
		out[n++] = '\r';
		out[n++] = '\n';
	}
	out[n] = 0;
	free(raw);
	return (out);
}

/* count_files - entries in DIR/bounces/SUB */
static int
count_files(const char *sub)
{
	char	path[400];
	DIR    *dp;
	struct dirent *e;
	int	n = 0;

	snprintf(path, sizeof(path), "%s/bounces/%s", d.dir, sub);
	if ((dp = opendir(path)) == NULL)
		return (-1);
	while ((e = readdir(dp)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(dp);
	return (n);
}

/* bounce_refused - the bounce got 451 4.3.0: no row, no file in tmp/ or new/ */
static void
bounce_refused(const char *data)
{
	ck_assert_int_eq(post("", "bounce@example.com", NULL, data), 451);
	ck_assert_ptr_nonnull(strstr(reply, "451 4.3.0"));
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 0);
	ck_assert_int_eq(count_files("tmp"), 0);
	ck_assert_int_eq(count_files("new"), 0);
}

/* bounce_stored - Postfix's retry of it: 250, one file, one row */
static void
bounce_stored(const char *data)
{
	ck_assert_int_eq(post("", "bounce@example.com", NULL, data), 250);
	ck_assert_int_eq(count_files("new"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 1);
}

/* A Postfix DSN to a VERP address: a Maildir file and a row naming the member. */
/*
 * No amplification: one bounce message sent to 50 bounce addresses is one
 * file and one set of rows; an address named three times in one report is
 * one row; a report of 5000 recipients is at most 100 rows; a bounce over
 * bounce-max-size is refused (552), at RCPT when SIZE says so.
 */
START_TEST(test_bounce_bounded)
{
	char   *data = smtp_data("postfix.eml"), *big, *rep;
	const char *rcpt[52];
	char	addrs[50][64], buf[1024];
	size_t	n = 0;
	int	fd;

	start("bounce-max-size = 65536\n", NULL);
	for (int i = 0; i < 50; i++) {
		snprintf(addrs[i], sizeof(addrs[i]), "bounce+m%d=example.net@example.com", i);
		rcpt[i] = addrs[i];
	}
	rcpt[50] = NULL;
	ck_assert_int_eq(tl_post(&d, "", rcpt, data, reply, sizeof(reply)), 250);
	ck_assert_int_eq(count_files("new"), 1);
	/* The report names alice once: one row, and no VERP member (50 tags). */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address ="
				    " 'alice@example.org'"), 1);
	/* Three blocks for one address, and 5000 distinct ones. */
	rep = malloc(600000);
	ck_assert_ptr_nonnull(rep);
	n = (size_t) sprintf(rep, "From: MAILER-DAEMON@x.test\r\nSubject: report\r\n"
			     "Content-Type: multipart/report; report-type=delivery-status;"
			     " boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n"
			     "--b\r\nContent-Type: message/delivery-status\r\n\r\n"
			     "Reporting-MTA: dns; x.test\r\n\r\n");
	for (int i = 0; i < 3; i++)
		n += (size_t) sprintf(rep + n, "Final-Recipient: rfc822; Bob@example.org\r\n"
				      "Action: failed\r\nStatus: 5.1.1\r\n\r\n");
	sprintf(rep + n, "--b--\r\n");
	rcpt[0] = "bounce@example.com";
	rcpt[1] = NULL;
	ck_assert_int_eq(tl_post(&d, "", rcpt, rep, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address ="
				    " 'bob@example.org'"), 1);
	for (int i = 0; i < 2000; i++)
		n += (size_t) sprintf(rep + n, "Final-Recipient: rfc822; u%d@example.org\r\n"
				      "Action: failed\r\nStatus: 5.1.1\r\n\r\n", i);
	sprintf(rep + n, "--b--\r\n");
	ck_assert_int_gt(strlen(rep), 65536);
	/* Over bounce-max-size: 552 at the end of data ... */
	ck_assert_int_eq(tl_post(&d, "", rcpt, rep, reply, sizeof(reply)), 552);
	ck_assert_ptr_nonnull(strstr(reply, "552 5.3.4"));
	ck_assert_int_eq(count_files("new"), 2);
	/* ... and at RCPT when SIZE announces it. */
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<> SIZE=100000\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<bounce@example.com>\r\n", buf, sizeof(buf)), 552);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@example.com>\r\n", buf, sizeof(buf)), 250);
	close(fd);
	/* Under the cap, with the default of 100 rows per report. */
	tl_write_conf(&d, "relay = smtp://127.0.0.1:9\n");
	{
		pid_t	old[8], now[8];
		int	nold = tl_workers(d.pid, old, 8), nnow = 0, stale = 1;

		ck_assert_int_eq(kill(d.pid, SIGHUP), 0);
		/* Reloaded when every worker is a new one. */
		for (int i = 0; i < 200 && stale; i++) {
			tl_sleep_ms(50);
			nnow = tl_workers(d.pid, now, 8);
			stale = nnow == 0;
			for (int a = 0; a < nnow; a++)
				for (int b = 0; b < nold; b++)
					stale |= now[a] == old[b];
		}
		ck_assert_int_eq(stale, 0);
	}
	big = rep;
	ck_assert_int_eq(tl_post(&d, "", rcpt, big, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address LIKE"
				    " 'u%@example.org'"), 99);
	ck_assert_int_eq(count_files("new"), 3);
	free(rep);
	free(data);
	stop();
}
END_TEST

START_TEST(test_bounce_dsn)
{
	char   *data = smtp_data("postfix.eml"), sql[600];

	start(NULL, NULL);
	ck_assert_int_eq(post("", "bounce+alice=example.org@example.com", NULL, data), 250);
	ck_assert_int_eq(count_files("new"), 1);
	ck_assert_int_eq(count_files("tmp"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'alice@example.org' AND status = '5.1.1'"
				    " AND action = 'failed' AND group_name = 'group1'"
				    " AND envelope_to = 'bounce+alice=example.org@example.com'"
				    " AND diagnostic LIKE 'smtp; 550 5.1.1%'"
				    " AND maildir_file LIKE 'new/%'"), 1);
	/* The row names the file that holds the bounce, unchanged but for LF. */
	{
		sqlite3 *db;
		sqlite3_stmt *q;
		char	path[800];
		long	len;
		char   *got, *want;

		snprintf(path, sizeof(path), "%s/mlistd.db", d.dir);
		ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
		ck_assert_int_eq(sqlite3_prepare_v2(db, "SELECT maildir_file FROM bounces", -1,
						    &q, NULL), SQLITE_OK);
		ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
		snprintf(path, sizeof(path), "%s/bounces/%s", d.dir, sqlite3_column_text(q, 0));
		sqlite3_finalize(q);
		sqlite3_close(db);
		got = ck_slurp(path, &len);
		want = ck_slurp(ck_srcfile("tests/bounces/postfix.eml"), NULL);
		/* post() put its X-Test-Seq line first. */
		ck_assert_int_eq(strncmp(got, "X-Test-Seq: ", 12), 0);
		ck_assert_uint_ge(strlen(got), strlen(want));
		ck_assert_int_eq(strcmp(got + strlen(got) - strlen(want), want), 0);
		ck_assert_ptr_nonnull(strchr(got, '\n'));
		ck_assert_ptr_eq(strchr(got, '\n') + 1, got + strlen(got) - strlen(want));
		free(got);
		free(want);
	}
	/* Two recipients in one report: two rows, the delayed one marked so. */
	free(data);
	data = smtp_data("multi.eml");
	ck_assert_int_eq(post("", "bounce@example.com", NULL, data), 250);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM bounces WHERE (address = 'hank@example.org'"
		 " AND action = 'failed') OR (address = 'ida@example.org' AND action = 'delayed'"
		 " AND status = '4.2.2')");
	ck_assert_int_eq(tl_sql_int(&d, sql), 2);
	ck_assert_int_eq(count_files("new"), 2);
	free(data);
	stop();
}
END_TEST

/* No DSN: one row with address NULL, or the VERP member. */
START_TEST(test_bounce_unparsable)
{
	char   *data = smtp_data("nonstandard.eml");

	start(NULL, NULL);
	ck_assert_int_eq(post("", "bounce@EXAMPLE.com", NULL, data), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address IS NULL"
				    " AND action IS NULL AND maildir_file LIKE 'new/%'"), 1);
	ck_assert_int_eq(post("", "bounce+alice=example.org@example.com", NULL, data), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'alice@example.org' AND action IS NULL"
				    " AND group_name IS NULL"), 1);
	ck_assert_int_eq(count_files("new"), 2);
	free(data);
	stop();
}
END_TEST

/* bounce and a list in one transaction: each handled, not refused. */
START_TEST(test_bounce_and_list)
{
	char   *m[8];
	char   *data = smtp_data("exim.eml");

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "UPDATE groups SET posting = 'anyone' WHERE name = 'group1'"), 0);
	ck_assert_int_eq(post("mailer@example.net", "bounce@example.com", "group1@example.com",
			      data), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'carol@example.net' AND group_name = 'group2'"), 1);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	free(data);
	stop();
}
END_TEST

/* A Maildir that cannot be written: 451, no row. */
START_TEST(test_bounce_maildir_broken)
{
	char   *data = smtp_data("postfix.eml"), cmd[700];

	start(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/bounces/tmp' && echo x > '%s/bounces/tmp'",
		 d.dir, d.dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(post("", "bounce@example.com", NULL, data), 451);
	ck_assert_ptr_nonnull(strstr(reply, "451 4.3.0"));
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 0);
	ck_assert_int_eq(count_files("new"), 0);
	free(data);
	stop();
}
END_TEST

/* A read-only Maildir: 451, no row, nothing left in tmp/ or new/. */
START_TEST(test_bounce_maildir_readonly)
{
	char   *data = smtp_data("postfix.eml"), path[400];

	start(NULL, NULL);
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/bounces/%s", d.dir, i ? "new" : "tmp");
		ck_assert_int_eq(chmod(path, 0555), 0);
	}
	bounce_refused(data);
	/* Writable again: Postfix's retry is stored. */
	for (int i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/bounces/%s", d.dir, i ? "new" : "tmp");
		ck_assert_int_eq(chmod(path, 0700), 0);
	}
	bounce_stored(data);
	free(data);
	stop();
}
END_TEST

/* The tmpfs mounted by test_bounce_maildir_full, unmounted even on failure. */
static char mounted[400];

static void
unmount_at_exit(void)
{
	if (mounted[0])
		(void) umount2(mounted, MNT_DETACH);
	mounted[0] = 0;
}

/*
 * The bounce Maildir on a full filesystem (a 16 KB tmpfs, filled up):
 * 451, no row, no partial file; once there is room, the retry is stored.
 * Needs root for mount(8); main() adds it only then.
 */
START_TEST(test_bounce_maildir_full)
{
	char   *data = smtp_data("postfix.eml"), cmd[1200], path[500];

	start(NULL, NULL);
	snprintf(mounted, sizeof(mounted), "%s/bounces", d.dir);
	atexit(unmount_at_exit);
	snprintf(cmd, sizeof(cmd), "mount -t tmpfs -o size=16k,mode=0700 tmpfs '%s'", mounted);
	ck_assert_int_eq(system(cmd), 0);
	for (int i = 0; i < 4; i++) {
		static const char *const sub[] = {"", "/tmp", "/new", "/cur"};

		snprintf(path, sizeof(path), "%s%s", mounted, sub[i]);
		ck_assert(i == 0 || mkdir(path, 0700) == 0);
		ck_assert_int_eq(tl_give_dir(path), 0);
	}
	snprintf(cmd, sizeof(cmd), "dd if=/dev/zero of='%s/filler' bs=1k count=64 2>/dev/null;"
		 " test -s '%s/filler'", mounted, mounted);
	ck_assert_int_eq(system(cmd), 0);
	bounce_refused(data);
	snprintf(cmd, sizeof(cmd), "grep -q 'No space left on device' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* Room again: the retry is stored. */
	snprintf(path, sizeof(path), "%s/filler", mounted);
	ck_assert_int_eq(unlink(path), 0);
	bounce_stored(data);
	unmount_at_exit();
	free(data);
	stop();
}
END_TEST

/* A database locked by another writer: 451, and no file is left behind. */
START_TEST(test_bounce_database_locked)
{
	char   *data = smtp_data("postfix.eml"), path[400];
	sqlite3 *db;

	start("database-timeout = 1\n", NULL);
	snprintf(path, sizeof(path), "%s/mlistd.db", d.dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN IMMEDIATE; INSERT INTO members (address)"
				      " VALUES ('lock@example.org');", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(post("", "bounce@example.com", NULL, data), 451);
	ck_assert_ptr_nonnull(strstr(reply, "451 4.3.0"));
	ck_assert_int_eq(count_files("new"), 0);
	ck_assert_int_eq(count_files("tmp"), 0);
	ck_assert_int_eq(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 0);
	/* Once the lock is gone, the retry is stored. */
	bounce_stored(data);
	free(data);
	stop();
}
END_TEST

/*
 * No XVERP by default, even where the relay offers it; with verp = yes,
 * XVERP; any VERP tag accepted at RCPT.
 */
START_TEST(test_verp_and_callout)
{
	char   *m[8], buf[1024];
	int	fd;

	start(NULL, "-X", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_ptr_nonnull(strstr(m[0], "MAIL FROM:<bounce@example.com>\r\n"));
	tl_free_messages(m, 1);
	stop();
	start("verp = yes\n", "-X", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_ptr_nonnull(strstr(m[0], "MAIL FROM:<bounce@example.com> XVERP=+="));
	tl_free_messages(m, 1);
	/* A sender-verify callout: RCPT without DATA. */
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "HELO mx\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<bounce+any.thing=x.y@example.com>\r\n", buf,
				sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<BOUNCE+@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<bouncer@example.com>\r\n", buf, sizeof(buf)), 550);
	ck_assert_int_eq(tl_cmd(fd, "RSET\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf)), 221);
	close(fd);
	stop();
}
END_TEST

/*
 * verp-interval 3: about one post in three goes with XVERP, the others
 * without, and the same post sent again (dedup off here, so it is sent)
 * makes the same choice, as a retry does.
 */
START_TEST(test_verp_interval)
{
	const char *rcpt[] = {"group1@example.com", NULL};
	char   *m[64], data[2048], seq[32];
	int	n, with = 0;

	start("verp = yes\nverp-interval = 3\ndedup-window = 0\n", "-X", NULL);
	for (int i = 0; i < 30; i++) {
		snprintf(data, sizeof(data), "X-Verp-Seq: %d\r\n%s", i, POST("alice@example.org"));
		ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, data, reply,
					 sizeof(reply)), 250);
		ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, data, reply,
					 sizeof(reply)), 250);
	}
	n = tl_sink_messages(&k, m, 64);
	ck_assert_int_eq(n, 60);
	for (int i = 0; i < 30; i++) {
		int	copies = 0, verp = 0;

		snprintf(seq, sizeof(seq), "X-Verp-Seq: %d\r\n", i);
		for (int j = 0; j < n; j++)
			if (strstr(m[j], seq)) {
				copies++;
				verp += strstr(m[j], " XVERP=+=") != NULL;
			}
		ck_assert_int_eq(copies, 2);
		ck_assert_msg(verp == 0 || verp == 2, "post %d: XVERP on one copy only", i);
		with += verp / 2;
	}
	tl_free_messages(m, n);
	/* 30 distinct posts; "about one in three" as a hash spreads them. */
	ck_assert_msg(with >= 3 && with <= 18, "%d of 30 posts with XVERP", with);
	stop();
}
END_TEST

/* verp = yes, and no XVERP on offer: sent anyway, and the log says why. */
START_TEST(test_no_xverp_logged)
{
	char   *m[8], cmd[400];

	start("verp = yes\n", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_ptr_null(strstr(m[0], "XVERP"));
	tl_free_messages(m, 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'does not offer XVERP' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	stop();
}
END_TEST

/* bounce-threshold: hard bounces unsubscribe; delayed ones never do. */
/* probe_address - the envelope sender of the newest probe at the sink */
static void
probe_address(char *out, size_t len)
{
	char   *m[16], *p, *e;
	int	n = tl_sink_messages(&k, m, 16);

	unsigned long newest = 0;

	/* The newest by its expiry (hex, first in the tag), not by the
	 * sink's file names, which sort by worker pid. */
	out[0] = 0;
	for (int i = 0; i < n; i++)
		if ((p = strstr(m[i], "MAIL FROM:<bounce+probe-")) != NULL
		    && (e = strchr(p, '>')) != NULL
		    && strtoul(p + 24, NULL, 16) >= newest) {
			newest = strtoul(p + 24, NULL, 16);
			snprintf(out, len, "%.*s", (int) (e - p - 11), p + 11);
		}
	tl_free_messages(m, n);
}

/* probes_at_sink - how many probes the relay got */
static int
probes_at_sink(void)
{
	char   *m[16];
	int	n = tl_sink_messages(&k, m, 16), c = 0;

	for (int i = 0; i < n; i++)
		c += strstr(m[i], "MAIL FROM:<bounce+probe-") != NULL
			&& strstr(m[i], "RCPT TO:<alice@example.org>") != NULL
			&& strstr(m[i], "Subject: Delivery check for the list group1@example.com")
			!= NULL;
	tl_free_messages(m, n);
	return (c);
}

/*
 * Forged bounces cannot unsubscribe anyone: reports at the plain bounce
 * address (alice three times in one) and at her XVERP address are hints;
 * the first makes mlistd probe her, the rest are rate-limited.  Only the
 * bounce of the probe at its signed tag is evidence, once per probe; a
 * tampered or expired tag is not.  Two bounced probes (threshold 2)
 * unsubscribe her from the list.  Non-members are never probed.
 */
START_TEST(test_bounce_probes)
{
	char   *hard = smtp_data("postfix.eml"), *forged, probe[300], bad[300], key_path[400];
	const char *rcpt[] = {NULL, NULL};
	const char *ev = "SELECT count(*) FROM bounces WHERE address = 'alice@example.org'"
	" AND evidence = 1";
	size_t	n;

	start("bounce-threshold = 2\nprobe-interval = 2\n", NULL);
	forged = malloc(4096);
	ck_assert_ptr_nonnull(forged);
	n = (size_t) sprintf(forged, "From: MAILER-DAEMON@evil.test\r\nSubject: report\r\n"
			     "Content-Type: multipart/report; report-type=delivery-status;"
			     " boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\n"
			     "Reporting-MTA: dns; evil.test\r\n\r\n");
	for (int i = 0; i < 3; i++)
		n += (size_t) sprintf(forged + n, "Final-Recipient: rfc822; alice@example.org\r\n"
				      "Action: failed\r\nStatus: 5.1.1\r\n\r\n");
	sprintf(forged + n, "--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
		"List-Id: Club members <group1.example.com>\r\n\r\n--b--\r\n");
	rcpt[0] = "bounce@example.com";
	ck_assert_int_eq(tl_post(&d, "", rcpt, forged, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE address ="
				    " 'alice@example.org' AND evidence = 0"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes"), 0);
	ck_assert_int_eq(probes_at_sink(), 1);
	/* Three more hints at the XVERP address: no unsubscribe, no new probe. */
	rcpt[0] = "bounce+alice=example.org@example.com";
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes"), 0);
	ck_assert_int_eq(probes_at_sink(), 1);
	/* A non-member is never probed. */
	forged[0] = 0;
	sprintf(forged, "Subject: x\r\nContent-Type: multipart/report; boundary=\"b\"\r\n\r\n"
		"--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
		"Final-Recipient: rfc822; stranger@example.net\r\nAction: failed\r\n"
		"Status: 5.1.1\r\n\r\n--b--\r\n");
	rcpt[0] = "bounce@example.com";
	tl_sleep_ms(2100);
	ck_assert_int_eq(tl_post(&d, "", rcpt, forged, reply, sizeof(reply)), 250);
	ck_assert_int_eq(probes_at_sink(), 1);
	/* The probe's tag, tampered: a hint. */
	probe_address(probe, sizeof(probe));
	ck_assert_int_eq(strncmp(probe, "bounce+probe-", 13), 0);
	snprintf(bad, sizeof(bad), "%s", probe);
	bad[23] = bad[23] == 'a' ? 'b' : 'a';
	rcpt[0] = bad;
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 0);
	/* The real one: evidence, once however often it comes back. */
	rcpt[0] = probe;
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 1);
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes"), 0);
	/* An expired tag, signed with the real key: a hint. */
	{
		unsigned char key[PROBE_KEY_LEN];
		char	err[512], local[300], addr[400], sql[600];
		long	past = (long) time(NULL) - 10;

		snprintf(key_path, sizeof(key_path), "%s/mlistd.key", d.dir);
		ck_assert_int_eq(probe_key_load(key_path, key, err, sizeof(err)), 0);
		ck_assert_int_eq(probe_local(key, "bounce", "alice@example.org", "group1",
					     (unsigned long) past, local, sizeof(local)), 0);
		snprintf(sql, sizeof(sql), "INSERT INTO probes (address, group_name, sent_at,"
			 " expires) VALUES ('alice@example.org', 'group1', %ld, %ld)", past - 100,
			 past);
		ck_assert_int_eq(tl_sql(&d, sql), 0);
		snprintf(addr, sizeof(addr), "%s@example.com", local);
		rcpt[0] = addr;
		ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
		ck_assert_int_eq(tl_sql_int(&d, ev), 1);
	}
	/*
	 * That hint came after probe-interval: a new probe.  Its bounce is
	 * the second piece of evidence.
	 */
	ck_assert_int_eq(probes_at_sink(), 2);
	probe_address(probe, sizeof(probe));
	rcpt[0] = probe;
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 2);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes WHERE"
				    " group_name = 'group1' AND address = 'alice@example.org'"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes"), 1);
	free(forged);
	free(hard);
	stop();
}
END_TEST

/* logged - lines of the daemon's log with needle */
static int
logged(const char *needle)
{
	int	hits = tl_logged(&d, needle);

	ck_assert_int_ge(hits, 0);
	return (hits);
}

/* hint_about_alice - a forged hard report naming alice, at the plain
 * bounce address: a hint, which makes mlistd probe her when due */
static void
hint_about_alice(void)
{
	const char *rcpt[] = {"bounce@example.com", NULL};
	static unsigned seq;
	char	msg[1024];

	snprintf(msg, sizeof(msg), "From: MAILER-DAEMON@evil.test\r\nSubject: report %u\r\n"
		 "Content-Type: multipart/report; report-type=delivery-status; boundary=\"b\"\r\n"
		 "\r\n--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns;"
		 " evil.test\r\n\r\nFinal-Recipient: rfc822; alice@example.org\r\nAction: failed"
		 "\r\nStatus: 5.1.1\r\n\r\n--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
		 "List-Id: <group1.example.com>\r\n\r\n--b--\r\n", ++seq);
	ck_assert_int_eq(tl_post(&d, "", rcpt, msg, reply, sizeof(reply)), 250);
}

/* next_probe - hint (after probe-interval, 2 s, unless first) and the
 * address of the probe it made, the n-th */
static void
next_probe(int n, char *probe, size_t len)
{
	if (n > 1)
		tl_sleep_ms(2100);	/* probe-interval must pass: time, not luck */
	hint_about_alice();
	ck_assert_int_eq(probes_at_sink(), n);
	probe_address(probe, len);
}

/*
 * Probe evidence by content.  What comes back to a probe's valid tag is
 * evidence only when it reports a failure: a delivery-status report with
 * a failed action, or a failure notice in no standard form from a
 * mailer-daemon with the null sender.  The member's own out-of-office
 * reply, or any message from the probed address, is no evidence but
 * proof of life: the evidence before it no longer counts for
 * bounce-threshold (its rows stay).
 */
START_TEST(test_probe_proof_of_life)
{
	char   *hard = smtp_data("postfix.eml"), *qmail = smtp_data("nonstandard.eml");
	char	probe[300];
	const char *rcpt[] = {probe, NULL};
	const char *ev = "SELECT count(*) FROM bounces WHERE address = 'alice@example.org'"
	" AND evidence = 1";
	const char *unsub = "SELECT count(*) FROM unsubscribes WHERE address = 'alice@example.org'";
	const char *vacation = "From: Alice <alice@example.org>\r\nTo: <bounce@example.com>\r\n"
		"Subject: Out of office: Delivery check\r\nAuto-Submitted: auto-replied\r\n"
		"\r\nI am away until Monday.\r\n";
	const char *person = "From: alice@example.org\r\nSubject: Re: Delivery check\r\n"
		"\r\nYes, this reached me.\r\n";

	start("bounce-threshold = 2\nprobe-interval = 2\n", NULL);
	/* Evidence from before: the relay refused her yesterday. */
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO bounces (received, envelope_to, address, status,"
				" action, group_name, evidence) VALUES (datetime('now', '-1 day'),"
				" 'bounce@example.com', 'alice@example.org', '5.1.1', 'failed',"
				" 'group1', 1)"), 0);
	next_probe(1, probe, sizeof(probe));
	/* Her out-of-office answers the probe: no evidence, proof of life. */
	ck_assert_int_eq(tl_post(&d, "", rcpt, vacation, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 1);
	ck_assert_int_eq(tl_sql_int(&d, unsub), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM probes WHERE address ="
				    " 'alice@example.org' AND alive_at IS NOT NULL"), 1);
	ck_assert_int_eq(logged("proof of life; the evidence before it no longer counts"), 1);
	/* The next probe bounces for real: evidence, but the row from before
	 * the proof of life no longer counts (1 < 2). */
	next_probe(2, probe, sizeof(probe));
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 2);
	ck_assert_int_eq(tl_sql_int(&d, unsub), 0);
	/* A person's message from the probed address: no evidence either. */
	next_probe(3, probe, sizeof(probe));
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, person, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 2);
	ck_assert_int_eq(logged("proof of life; the evidence before it no longer counts"), 2);
	/* A failure notice in no standard form, from a mailer-daemon with the
	 * null sender: evidence.  Two since the last proof of life. */
	next_probe(4, probe, sizeof(probe));
	ck_assert_int_eq(tl_post(&d, "", rcpt, hard, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, unsub), 0);
	next_probe(5, probe, sizeof(probe));
	ck_assert_int_eq(tl_post(&d, "", rcpt, qmail, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sql_int(&d, ev), 4);
	ck_assert_int_eq(tl_sql_int(&d, unsub), 1);
	free(hard);
	free(qmail);
	stop();
}
END_TEST

/*
 * Exactly once: the connection drops after the final dot, before the
 * client sees our reply; the client retries the same message, and the
 * members do not get a second copy.
 */
START_TEST(test_exactly_once)
{
	char   *m[8], buf[1024], cmd[400];
	const char *msg = "From: alice@example.org\r\nMessage-ID: <once@example.org>\r\n"
	"Subject: once\r\n\r\nonly once\r\n";
	const char *rcpt[] = {"group1@example.com", NULL};
	int	fd, n = 0;

	start(NULL, NULL);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<alice@example.org>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_send(fd, msg), 0);
	ck_assert_int_eq(tl_send(fd, ".\r\n"), 0);
	close(fd);			/* gone before the 250 */
	/* The first attempt goes on without its client, to the end. */
	for (int i = 0; i < 200 && tl_sql_int(&d, "SELECT count(*) FROM relayed"
					     " WHERE complete = 1") != 1; i++)
		tl_sleep_ms(50);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	tl_free_messages(m, n);
	/* The retry: 250, and nothing is sent again (the 250 comes only
	 * after anything it sent, so there is nothing to wait for). */
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'status=duplicate' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE group_name = 'group1'"
				    " AND message_id = '<once@example.org>'"), 1);
	/* A different message is of course sent. */
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL, msg), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 2);
	tl_free_messages(m, 2);
	stop();
}
END_TEST

/* dedup-window = 0 turns the memory off: an identical message is sent again. */
START_TEST(test_dedup_off)
{
	char   *m[8];
	const char *msg = "From: alice@example.org\r\nSubject: twice\r\n\r\nx\r\n";
	const char *rcpt[] = {"group1@example.com", NULL};

	start("dedup-window = 0\n", NULL);
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 2);
	tl_free_messages(m, 2);
	stop();
}
END_TEST

/* The relay answering 421, or with garbage: 451 upstream, never 250. */
START_TEST(test_relay_misbehaves)
{
	char   *m[8];

	start(NULL, "-Q", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	stop();
	start(NULL, "-G", NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 451);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	/* The worker survived both and still answers. */
	ck_assert_int_eq(post("alice@example.org", "nosuch@example.com", NULL, "x\r\n"), 550);
	stop();
}
END_TEST

/* Workers killed in the middle of DATA: nothing relayed, nothing kept. */
START_TEST(test_worker_killed_mid_data)
{
	char   *m[8], buf[1024];
	pid_t	w[8];
	int	fd, n;

	start(NULL, NULL);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<alice@example.org>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_send(fd, "From: alice@example.org\r\nSubject: cut\r\n\r\nhalf a"), 0);
	n = tl_workers(d.pid, w, 8);
	ck_assert_int_eq(n, 2);
	for (int i = 0; i < n; i++)
		ck_assert_int_eq(kill(w[i], SIGKILL), 0);
	/* The client sees the connection end without any final reply. */
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), -1);
	close(fd);
	/* Killed: nothing of theirs can reach the relay any more. */
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 200 && kill(w[i], 0) == 0; j++)
			tl_sleep_ms(10);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed"), 0);
	/* Replaced: the next post goes through. */
	for (int i = 0; i < 50 && tl_workers(d.pid, w, 8) != 2; i++)
		tl_sleep_ms(100);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	stop();
}
END_TEST

/* More idle clients than workers: a real session completes once they time out. */
START_TEST(test_idle_clients_do_not_starve)
{
	char	buf[1024];
	int	idle[2];
	double	t0;
	struct timespec ts;

	start("timeout = 2\n", NULL);
	for (int i = 0; i < 2; i++) {
		idle[i] = tl_connect(&d);
		ck_assert_int_eq(tl_reply(idle[i], buf, sizeof(buf)), 220);
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	t0 = ts.tv_sec + ts.tv_nsec / 1e9;
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ck_assert_double_ge(ts.tv_sec + ts.tv_nsec / 1e9 - t0, 1.0);	/* it had to wait */
	ck_assert_double_le(ts.tv_sec + ts.tv_nsec / 1e9 - t0, 8.0);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(tl_reply(idle[i], buf, sizeof(buf)), 421);
		close(idle[i]);
	}
	stop();
}
END_TEST

/*
 * The relay dialogue, table-driven: what the relay answers, and what
 * mlistd must make of it.  List "t" (posting anyone) gets the members of
 * the row; the post's reply code, the copies the sink kept, their RCPT
 * lines, the bounces rows and, where it matters, a log line are checked.
 */
static const struct relay_case {
	const char *label;
	const char *conf;		/* daemon configuration lines */
	const char *sink[3];		/* mlsink options */
	const char *members;		/* comma-separated */
	int	code;			/* reply to the post */
	int	copies;			/* transactions the sink kept */
	int	rcpts;			/* RCPT lines in them */
	int	rows;			/* bounces rows */
	const char *logged;		/* grep -F for this in the log, or NULL */
	double	max_secs;		/* the post must be answered within */
} relay_cases[] = {
	{"first RCPT of the window refused", NULL, {NULL},
	 "reject1@example.net,zz1@example.net,zz2@example.net", 250, 1, 2, 1,
	 "to=<reject1@example.net>, group=t, relay refused: 550 5.1.1", 10},
	{"first refused, lock-step", "relay-pipelining = no\n", {NULL},
	 "reject1@example.net,zz1@example.net,zz2@example.net", 250, 1, 2, 1, NULL, 10},
	{"last RCPT refused", NULL, {NULL},
	 "a1@example.net,a2@example.net,rejectz@example.net", 250, 1, 2, 1, NULL, 10},
	{"last refused, lock-step", "relay-pipelining = no\n", {NULL},
	 "a1@example.net,a2@example.net,rejectz@example.net", 250, 1, 2, 1, NULL, 10},
	{"the only member refused for its mailbox", NULL, {NULL},
	 "reject1@example.net", 250, 0, 0, 1, "status=sent (every member refused)", 10},
	{"every RCPT refused alike: the relay refuses mlistd", NULL, {"-A", NULL},
	 "a1@example.net,a2@example.net,a3@example.net", 451, 0, 0, 0,
	 "the relay refuses mlistd itself: every recipient refused: 554 5.7.1", 10},
	{"one member, refused by relay policy", NULL, {"-A", NULL},
	 "a1@example.net", 451, 0, 0, 0, "the relay refuses mlistd itself", 10},
	{"greeting refused", NULL, {"-B", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0,
	 "the relay refuses mlistd itself: 554 5.7.1 mlsink: no service", 10},
	{"MAIL refused", NULL, {"-M", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0,
	 "the relay refuses mlistd itself: 550 5.7.1", 10},
	{"MAIL refused, lock-step", "relay-pipelining = no\n", {"-M", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0, "the relay refuses mlistd itself", 10},
	{"421 in the middle of a window", NULL, {"-K", "2", NULL},
	 "a1@example.net,a2@example.net,a3@example.net", 451, 0, 0, 0,
	 "421 4.4.2 mlsink: closing", 10},
	{"replies of 10,000 continuation lines", NULL, {"-C", "10000", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0, "malformed or oversized reply", 10},
	{"reply to the dot trickled past the deadline", "relay-timeout = 2\n", {"-T", "300", NULL},
	 "a1@example.net,a2@example.net", 451, 1, 2, 0, "timed out waiting for a reply", 6},
	{"relay hangs after the final dot", "relay-timeout = 2\n", {"-H", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0, "timed out waiting for a reply", 6},
	/* Members all dead, refused alike for their mailboxes: their bounces,
	 * not a relay problem (issue 18, case 5). */
	{"every member dead: refused alike for the mailbox", NULL, {NULL},
	 "reject1@example.net,reject2@example.net", 250, 0, 0, 2,
	 "status=sent (every member refused)", 10},
	{"the first batch all dead, the next alive", "relay-recipient-limit = 2\n", {NULL},
	 "reject1@example.net,reject2@example.net,zz1@example.net", 250, 1, 1, 2,
	 "to=<reject2@example.net>, group=t, relay refused: 550 5.1.1", 10},
	{"two batches all dead: still the members'", "relay-recipient-limit = 2\n",
	 {NULL}, "reject1@example.net,reject2@example.net,reject3@example.net,"
	 "reject4@example.net", 250, 0, 0, 4, "status=sent (every member refused)", 10},
	{"the first batch refused for a policy reason: the relay", "relay-recipient-limit = 2\n",
	 {"-A", NULL}, "a1@example.net,a2@example.net,a3@example.net", 451, 0, 0, 0,
	 "the relay refuses mlistd itself: every recipient refused: 554 5.7.1", 10},
	{"a later batch refused for a policy reason: the relay, too",
	 "relay-recipient-limit = 2\n", {NULL},
	 "a1@example.net,a2@example.net,deny1@example.net,deny2@example.net", 451, 1, 2, 0,
	 "either its access rules refuse these members (remove them", 10},
	{"refused for policy beside an accepted member: that member's",
	 "relay-recipient-limit = 2\n", {NULL},
	 "a1@example.net,deny1@example.net", 250, 1, 1, 1,
	 "to=<deny1@example.net>, group=t, relay refused: 554 5.7.1", 10},
	/* The relay refusing mlistd's envelope sender at RCPT (Postfix with
	 * smtpd_delay_reject): nobody's bounce, even as 5.1.0. */
	{"the sender refused at every RCPT: the relay, not the members", NULL, {"-R", NULL},
	 "a1@example.net,a2@example.net", 451, 0, 0, 0, "Sender address rejected", 10},
	{"the sender refused, a list of one", NULL, {"-R", NULL},
	 "a1@example.net", 451, 0, 0, 0, "the relay refuses mlistd itself", 10},
	{"a member's refusal quoting a remote server about 'the sender': the member's",
	 NULL, {NULL}, "a1@example.net,quoted1@example.net", 250, 1, 1, 1,
	 "to=<quoted1@example.net>, group=t, relay refused: 550 5.1.1", 10},
	/* Refusals in a transaction cut by 421 are in doubt (case 1). */
	{"RCPTs refused, then 421: nobody refused for good", NULL, {"-A", "-K", "3"},
	 "a1@example.net,a2@example.net,a3@example.net,a4@example.net", 451, 0, 0, 0,
	 "421 4.4.2 mlsink: closing", 10},
	{"a UTF-8 member address: SMTPUTF8 to the relay", NULL, {NULL},
	 "a1@example.net,j\xc3\xb6rg@example.net", 250, 1, 2, 0, NULL, 10},
	{"a UTF-8 member, relay without SMTPUTF8", NULL, {"-U", NULL},
	 "a1@example.net,j\xc3\xb6rg@example.net", 451, 0, 0, 0, "does not offer SMTPUTF8", 10},
};

static double
mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

START_TEST(test_relay_table)
{
	const struct relay_case *c = &relay_cases[_i];
	char	sql[1024], *m[8], members[512], *save = NULL;
	int	n, rcpts = 0;
	double	t0;

	start(c->conf, c->sink[0], c->sink[1], c->sink[2], NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting) VALUES ('t', 'anyone')"), 0);
	snprintf(members, sizeof(members), "%s", c->members);
	for (char *a = strtok_r(members, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		snprintf(sql, sizeof(sql), "INSERT INTO group_members VALUES ('t', '%s')", a);
		ck_assert_int_eq(tl_sql(&d, sql), 0);
	}
	t0 = mono();
	ck_assert_msg(post("x@example.net", "t@example.com", NULL, "Subject: t\r\n\r\nt\r\n")
		      == c->code, "%s: reply %s", c->label, reply);
	ck_assert_msg(mono() - t0 < c->max_secs, "%s: took %.1f s", c->label, mono() - t0);
	n = tl_sink_messages(&k, m, 8);
	if (n != c->copies) {
		char	cmd[1000];

		snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2; head -c 600 '%s'/msg.* >&2",
			 d.log, k.dir);
		(void) system(cmd);
	}
	ck_assert_msg(n == c->copies, "%s: %d copies", c->label, n);
	for (int i = 0; i < n; i++)
		rcpts += tl_count(m[i], "RCPT TO:");
	ck_assert_msg(rcpts == c->rcpts, "%s: %d RCPT lines", c->label, rcpts);
	if (strstr(c->members, "\xc3\xb6") && n > 0)
		ck_assert_ptr_nonnull(strstr(m[0], " SMTPUTF8"));
	tl_free_messages(m, n);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), c->rows);
	if (c->logged) {
		char	cmd[800];

		snprintf(cmd, sizeof(cmd), "grep -qF '%s' '%s'", c->logged, d.log);
		ck_assert_msg(system(cmd) == 0, "%s: log lacks \"%s\"", c->label, c->logged);
	}
	/* Nothing left behind: no claim is held, and the worker still answers. */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE owner IS NOT NULL"), 0);
	ck_assert_int_eq(post("x@example.net", "nosuch@example.com", NULL, "x\r\n"), 550);
	stop();
}
END_TEST

/* The incoming BODY=8BITMIME and SMTPUTF8 go on to the relay. */
START_TEST(test_relay_esmtp_params)
{
	char   *m[8], buf[1024];
	int	fd;

	start(NULL, NULL);
	fd = tl_connect(&d);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<alice@example.org> BODY=8BITMIME SMTPUTF8\r\n",
				buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "RCPT TO:<group1@example.com>\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_send(fd, "From: alice@example.org\r\nSubject: caf\xc3\xa9\r\n\r\n"
				 "\xc3\xa9t\xc3\xa9\r\n"), 0);
	ck_assert_int_eq(tl_cmd(fd, ".\r\n", buf, sizeof(buf)), 250);
	close(fd);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_ptr_nonnull(strstr(m[0], "MAIL FROM:<bounce@example.com> BODY=8BITMIME SMTPUTF8"));
	tl_free_messages(m, 1);
	/* A plain post carries neither. */
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 2);
	ck_assert_ptr_null(strstr(m[1], "BODY="));
	ck_assert_ptr_null(strstr(m[1], "SMTPUTF8"));
	tl_free_messages(m, 2);
	stop();
}
END_TEST

/* send_dot - a whole transaction up to the final dot, reply not read */
static int
send_dot(const char *from, const char *to, const char *msg)
{
	char	buf[1024], cmd[600];
	int	fd = tl_connect(&d);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO mx\r\n", buf, sizeof(buf)), 250);
	snprintf(cmd, sizeof(cmd), "MAIL FROM:<%s>\r\n", from);
	ck_assert_int_eq(tl_cmd(fd, cmd, buf, sizeof(buf)), 250);
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", to);
	ck_assert_int_eq(tl_cmd(fd, cmd, buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)), 354);
	ck_assert_int_eq(tl_send(fd, msg), 0);
	ck_assert_int_eq(tl_send(fd, ".\r\n"), 0);
	return (fd);
}

/* wait_sql - poll until the query gives want (at most 20 s) */
static void
wait_sql(const char *sql, long want)
{
	for (int i = 0; i < 200 && tl_sql_int(&d, sql) != want; i++)
		tl_sleep_ms(100);
	ck_assert_int_eq(tl_sql_int(&d, sql), want);
}

/* wait_file - poll until the sink's directory has name (at most 20 s) */
static void
wait_file(const char *name)
{
	char	path[400];

	snprintf(path, sizeof(path), "%s/%s", k.dir, name);
	for (int i = 0; i < 2000 && access(path, F_OK) != 0; i++)
		tl_sleep_ms(10);
	ck_assert_msg(access(path, F_OK) == 0, "the sink never made %s", name);
}

/* release_held - let the sink answer the transaction it holds (-W) */
static void
release_held(void)
{
	char	path[400];
	FILE   *fp;

	snprintf(path, sizeof(path), "%s/.go", k.dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * Two sessions with the same message while the relay is slow at the
 * final dot (Postfix retrying after its end-of-data timeout): the second
 * finds the first one's claim, gets 451 and sends nothing; every member
 * gets exactly one copy; the next retry is a duplicate.
 */
START_TEST(test_concurrent_same_message)
{
	const char *msg = "From: alice@example.org\r\nMessage-ID: <conc@example.org>\r\n"
	"Subject: twice at once\r\n\r\nx\r\n";
	const char *rcpt[] = {"group1@example.com", NULL};
	char	buf[1024], *m[8];
	int	a, b;

	start(NULL, "-S", "3000", NULL);
	a = send_dot("alice@example.org", "group1@example.com", msg);
	wait_sql("SELECT count(*) FROM relayed WHERE owner IS NOT NULL AND complete = 0", 1);
	b = send_dot("alice@example.org", "group1@example.com", msg);
	ck_assert_int_eq(tl_reply(b, buf, sizeof(buf)), 451);
	ck_assert_ptr_nonnull(strstr(buf, "being sent to the list right now"));
	close(b);
	ck_assert_int_eq(tl_reply(a, buf, sizeof(buf)), 250);
	close(a);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 2);
	tl_free_messages(m, 1);
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	stop();
}
END_TEST

/* big_list - list "big" (posting anyone) of n members */
static void
big_list(int n)
{
	char	sql[300];

	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting) VALUES ('big', 'anyone')"), 0);
	snprintf(sql, sizeof(sql), "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1"
		 " FROM c WHERE i < %d) INSERT INTO group_members"
		 " SELECT 'big', 'm' || i || '@example.net' FROM c", n);
	ck_assert_int_eq(tl_sql(&d, sql), 0);
}

/* exactly_once_at_sink - every one of n members got one copy */
static void
exactly_once_at_sink(int n)
{
	char	cmd[1200];

	snprintf(cmd, sizeof(cmd), "test $(cat '%s'/msg.* | grep -c '^RCPT TO:') -eq %d"
		 " && test $(cat '%s'/msg.* | grep '^RCPT TO:' | sort -u | wc -l) -eq %d",
		 k.dir, n, k.dir, n);
	ck_assert_msg(system(cmd) == 0, "not exactly one copy for each of %d members", n);
}

/*
 * Issue 18, case 1: the relay refuses RCPTs (554 5.7.1, Relay access
 * denied) and then hangs up with 421 while replies are still due, as
 * Postfix does at smtpd_hard_error_limit.  Nothing of that transaction
 * is final: no refused member, no evidence row; the retry, once the
 * relay behaves, reaches every member once.
 */
START_TEST(test_refusals_cut_by_421)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <cut@example.net>\r\n"
	"Subject: cut\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};

	start(NULL, "-A", "-K", "5", "-O", "1", NULL);
	big_list(6);
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 451);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 0);
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	exactly_once_at_sink(6);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"
				    " AND owner IS NULL"), 1);
	stop();
}
END_TEST

/*
 * Issue 18, case 8: bounce-threshold counts every piece of evidence,
 * also the relay's refusals at RCPT time: a member refused on every post
 * is unsubscribed from that list (source 'bounces') at the threshold,
 * and the next post no longer goes to it.
 */
START_TEST(test_threshold_counts_refusals)
{
	char   *m[8];
	int	n;

	start("bounce-threshold = 2\n", NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES"
				" ('group1', 'rejectme@example.net'), ('group1', 'plainme@example.net')"), 0);
	for (int i = 0; i < 2; i++)
		ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
				      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE evidence = 1"
				    " AND address = 'rejectme@example.net'"), 2);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes WHERE group_name ="
				    " 'group1' AND address = 'rejectme@example.net'"
				    " AND source = 'bounces'"), 1);
	/* "550 User unknown", without an enhanced code, counts too (5.0.0). */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE evidence = 1"
				    " AND address = 'plainme@example.net' AND status = '5.0.0'"), 2);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes WHERE"
				    " address = 'plainme@example.net' AND source = 'bounces'"), 1);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 3);
	ck_assert_int_eq(tl_count(m[2], "RCPT TO:"), 2);
	tl_free_messages(m, n);
	/* Not even asked for: no third refusal. */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'rejectme@example.net'"), 2);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'plainme@example.net'"), 2);
	stop();
}
END_TEST

/* boot_clock - CLOCK_BOOTTIME, the clock of claims' leases */
static double
boot_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (ts.tv_sec + ts.tv_nsec / 1e9);
}

/* faketime - the daemon started next runs under libfaketime, its wall
 * clock (only) offset by what `file` says ("+0", "+600") */
static void
faketime(const char *file)
{
	char	asan[600];
	const char *old = getenv("ASAN_OPTIONS");

	ck_assert_msg(LIBFAKETIME[0] != 0, "libfaketime not found by configure "
		      "(Debian package libfaketime)");
	ck_assert_int_eq(access(LIBFAKETIME, R_OK), 0);
	ck_assert_int_eq(setenv("LD_PRELOAD", LIBFAKETIME, 1), 0);
	ck_assert_int_eq(setenv("FAKETIME_TIMESTAMP_FILE", file, 1), 0);
	ck_assert_int_eq(setenv("FAKETIME_NO_CACHE", "1", 1), 0);
	ck_assert_int_eq(setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1), 0);
	/* An AddressSanitizer build must not insist on coming first. */
	snprintf(asan, sizeof(asan), "%s%sverify_asan_link_order=0", old ? old : "",
		 old ? ":" : "");
	ck_assert_int_eq(setenv("ASAN_OPTIONS", asan, 1), 0);
}

/* write_file - replace file's content with s */
static void
write_file(const char *file, const char *s)
{
	FILE   *fp = fopen(file, "w");

	ck_assert_ptr_nonnull(fp);
	ck_assert_int_ge(fputs(s, fp), 0);
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * Issue 18, case 2: a wall-clock step of ten minutes (NTP, a VM resumed)
 * while a worker is sending must not make its claim look stale: the
 * concurrent retry gets 451 and sends nothing, and every member gets one
 * copy.  The daemon runs under libfaketime, which moves only its wall
 * clock.
 */
START_TEST(test_clock_step_keeps_claim)
{
	const char *msg = "From: alice@example.org\r\nMessage-ID: <step@example.org>\r\n"
	"Subject: clock step\r\n\r\nx\r\n";
	char	buf[1024], clock[300], *m[8];
	int	a, b, n;

	snprintf(clock, sizeof(clock), "/tmp/mlistd-clock.%ld", (long) getpid());
	write_file(clock, "+0\n");
	faketime(clock);
	start(NULL, "-W", "1", NULL);
	ck_assert_int_eq(unsetenv("LD_PRELOAD"), 0);
	a = send_dot("alice@example.org", "group1@example.com", msg);
	wait_file(".held");
	/* The daemon's wall clock jumps (libfaketime reads the file at
	 * every clock call); its clock of claims does not. */
	write_file(clock, "+600\n");
	b = send_dot("alice@example.org", "group1@example.com", msg);
	ck_assert_int_eq(tl_reply(b, buf, sizeof(buf)), 451);
	ck_assert_ptr_nonnull(strstr(buf, "being sent to the list right now"));
	close(b);
	release_held();
	ck_assert_int_eq(tl_reply(a, buf, sizeof(buf)), 250);
	close(a);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 2);
	tl_free_messages(m, n);
	stop();
	(void) unlink(clock);
}
END_TEST

/*
 * stalled_then_taken_over - post msg to list big; when the sink holds it
 * (-W or -V), stop the worker (SIGSTOP), let the sink answer, wait for
 * the claim's lease to end on the boot clock, retry (the retry takes the
 * copy over: 250), then let the worker go on: its attempt gets 451.
 */
static void
stalled_then_taken_over(const char *msg)
{
	const char *rcpt[] = {"big@example.com", NULL};
	char	buf[1024];
	pid_t	worker;
	int	a;

	a = send_dot("x@example.net", "big@example.com", msg);
	wait_file(".held");
	worker = (pid_t) tl_sql_int(&d, "SELECT owner FROM relayed");
	ck_assert_int_gt(worker, 0);
	ck_assert_int_eq(kill(worker, SIGSTOP), 0);
	release_held();
	for (int i = 0; i < 300 && boot_clock() <= tl_sql_int(&d, "SELECT lease FROM relayed"); i++)
		tl_sleep_ms(100);
	ck_assert_double_gt(boot_clock(), tl_sql_int(&d, "SELECT lease FROM relayed"));
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(kill(worker, SIGCONT), 0);
	ck_assert_int_eq(tl_reply(a, buf, sizeof(buf)), 451);
	close(a);
}

/*
 * Issue 18, case 2, without the clock: a worker stopped (SIGSTOP) with
 * the relay's 250 to the dot on its way, past its lease; a retry takes
 * the copy over and sends it.  When the first worker continues, its
 * claim is gone: it records nothing, sends nothing more, answers 451.
 * The members of the transaction that was in flight get a second copy
 * (nothing can know whether it arrived); nobody else does.
 */
START_TEST(test_stalled_worker_fenced)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <stall@example.net>\r\n"
	"Subject: stall\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};
	char	cmd[1200];

	start("relay-recipient-limit = 2\ndata-done-timeout = 3\ndatabase-timeout = 1\n",
	      "-W", "1", NULL);
	big_list(4);
	stalled_then_taken_over(msg);
	snprintf(cmd, sizeof(cmd), "grep -q 'this worker lost its claim on the copy' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* m1 and m2 were in flight: two copies; m3 and m4: one. */
	snprintf(cmd, sizeof(cmd), "cat '%s'/msg.* | grep '^RCPT TO:' | tr -d '\\r' | sort"
		 " | uniq -c | tr -s ' ' | tr '\\n' , | grep -qx ' 2 RCPT TO:<m1@example.net>,"
		 " 2 RCPT TO:<m2@example.net>, 1 RCPT TO:<m3@example.net>, 1 RCPT"
		 " TO:<m4@example.net>,'", k.dir);
	ck_assert_msg(system(cmd) == 0, "copies at the sink are not 2, 2, 1, 1");
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"
				    " AND owner IS NULL"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 0);
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	stop();
}
END_TEST

/*
 * A checkpoint that meets a locked database (an administrator's sqlite3
 * session in BEGIN EXCLUSIVE) tries again while the claim's lease leaves
 * room, instead of forgetting whom the relay just served: every member
 * gets one copy, and the post its 250.
 */
START_TEST(test_checkpoint_waits_for_lock)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <lock@example.net>\r\n"
	"Subject: lock\r\n\r\nhi\r\n";
	char	buf[1024], path[400];
	sqlite3 *db;
	int	fd;

	start("relay-recipient-limit = 2\ndata-done-timeout = 20\ndatabase-timeout = 1\n",
	      "-W", "1", NULL);
	big_list(3);
	fd = send_dot("x@example.net", "big@example.com", msg);
	wait_file(".held");
	snprintf(path, sizeof(path), "%s/mlistd.db", d.dir);
	ck_assert_int_eq(sqlite3_open(path, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	release_held();
	for (int i = 0; i < 200 && tl_logged(&d, "just served or refused yet") < 1; i++)
		tl_sleep_ms(50);
	ck_assert_int_eq(tl_logged(&d, "just served or refused yet"), 1);
	ck_assert_int_eq(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	ck_assert_int_eq(sqlite3_close(db), SQLITE_OK);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 250);
	close(fd);
	exactly_once_at_sink(3);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"
				    " AND owner IS NULL"), 1);
	stop();
}
END_TEST

/*
 * A wall-clock step forward past dedup-window (NTP correcting a machine
 * without a real-time clock) between two attempts of one post: the copy
 * relayed in part is still remembered (by the boot clock), and the retry
 * sends only to the member not yet served.
 */
START_TEST(test_clock_step_keeps_memory)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <mem@example.net>\r\n"
	"Subject: memory\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};
	char	clock[300];

	snprintf(clock, sizeof(clock), "/tmp/mlistd-clock.%ld", (long) getpid());
	write_file(clock, "+0\n");
	faketime(clock);
	start("relay-recipient-limit = 1\n", "-F", "2", NULL);
	ck_assert_int_eq(unsetenv("LD_PRELOAD"), 0);
	big_list(2);
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 451);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 1);
	write_file(clock, "+8d\n");
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	exactly_once_at_sink(2);
	stop();
	(void) unlink(clock);
}
END_TEST

/*
 * A worker stopped past its lease before its message went out (here:
 * waiting for the relay's 354) must not send it late: when it goes on, it
 * hangs up before the dot, and the members the retry served get one copy.
 */
START_TEST(test_stalled_worker_sends_nothing_late)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <late@example.net>\r\n"
	"Subject: late\r\n\r\nhi\r\n";

	start("data-done-timeout = 3\ndatabase-timeout = 1\n", "-V", "1", NULL);
	big_list(2);
	stalled_then_taken_over(msg);
	exactly_once_at_sink(2);
	ck_assert_int_ge(tl_logged(&d, "the message not sent: the deadline or the claim's lease "
				   "passed"), 1);
	stop();
}
END_TEST

/*
 * Crash points: the worker _exit()s at a named point of a 2500-member
 * fan-out in three relay transactions (MLISTD_CRASH_AT, once); Postfix's
 * retry then gives every member exactly one copy.
 */
static const char *const crash_points[] = {
	"claimed", "batch-1", "batch-2", "before-mark", "before-reply"
};

START_TEST(test_crash_points)
{
	const char *msg = "From: x@example.net\r\nMessage-ID: <crash@example.net>\r\n"
	"Subject: crash\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};
	char	env[300], once[200], cmd[700];
	int	code = -1;

	snprintf(once, sizeof(once), "/tmp/mlistd-crash-%ld-%d", (long) getpid(), _i);
	(void) unlink(once);
	snprintf(env, sizeof(env), "%s:%s", crash_points[_i], once);
	ck_assert_int_eq(setenv("MLISTD_CRASH_AT", env, 1), 0);
	start("relay-recipient-limit = 1000\n", NULL);
	ck_assert_int_eq(unsetenv("MLISTD_CRASH_AT"), 0);
	big_list(2500);
	/* The first attempt dies without a reply. */
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), -1);
	snprintf(cmd, sizeof(cmd), "grep -qF 'MLISTD_CRASH_AT=%s: exiting here' '%s'",
		 crash_points[_i], d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* Postfix retries until it gets 250. */
	for (int i = 0; i < 30 && code != 250; i++) {
		code = tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply));
		if (code != 250)
			tl_sleep_ms(300);
	}
	ck_assert_int_eq(code, 250);
	exactly_once_at_sink(2500);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE complete = 1"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 0);
	/* And once more: a duplicate, nothing sent. */
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 250);
	exactly_once_at_sink(2500);
	(void) unlink(once);
	stop();
}
END_TEST

/*
 * data-done-timeout: a fan-out that cannot finish in time stops between
 * transactions with 451, checkpointed; the retries resume it, and nobody
 * gets two copies.
 */
START_TEST(test_data_done_timeout)
{
	const char *msg = "From: x@example.net\r\nSubject: slow\r\n\r\nhi\r\n";
	const char *rcpt[] = {"big@example.com", NULL};
	char	cmd[600];
	int	code = 0, attempts = 0;
	double	t0;

	start("relay-recipient-limit = 1000\ndata-done-timeout = 2\n", "-S", "1200", NULL);
	big_list(2500);
	t0 = mono();
	ck_assert_int_eq(tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply)), 451);
	ck_assert_double_lt(mono() - t0, 2.5);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 1000);
	snprintf(cmd, sizeof(cmd), "grep -q 'data-done-timeout (2s) is near' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	while (code != 250 && attempts++ < 5)
		code = tl_post(&d, "x@example.net", rcpt, msg, reply, sizeof(reply));
	ck_assert_int_eq(code, 250);
	ck_assert_int_eq(attempts, 2);
	exactly_once_at_sink(2500);
	stop();
}
END_TEST

/*
 * SIGTERM during a fan-out: the worker finishes the transaction in
 * flight, commits it, answers 451 for the rest and exits; nobody gets a
 * half-sent copy counted as sent.
 */
/* sigterm_pending - pid has SIGTERM pending (blocked while it serves) */
static int
sigterm_pending(pid_t pid)
{
	char	path[64], line[256];
	FILE   *fp;
	int	yes = 0;

	snprintf(path, sizeof(path), "/proc/%ld/status", (long) pid);
	if ((fp = fopen(path, "r")) == NULL)
		return (0);
	while (fgets(line, sizeof(line), fp) != NULL)
		if (strncmp(line, "SigPnd:", 7) == 0 || strncmp(line, "ShdPnd:", 7) == 0)
			yes |= (strtoull(line + 7, NULL, 16) & (1ULL << (SIGTERM - 1))) != 0;
	fclose(fp);
	return (yes);
}

START_TEST(test_sigterm_mid_fanout)
{
	const char *msg = "From: x@example.net\r\nSubject: stop\r\n\r\nhi\r\n";
	char	buf[1024];
	pid_t	worker;
	int	fd;

	start("relay-recipient-limit = 1000\n", "-W", "1", NULL);
	big_list(2500);
	fd = send_dot("x@example.net", "big@example.com", msg);
	wait_file(".held");		/* the first transaction is at the relay */
	worker = (pid_t) tl_sql_int(&d, "SELECT owner FROM relayed");
	ck_assert_int_gt(worker, 0);
	ck_assert_int_eq(kill(d.pid, SIGTERM), 0);
	/* The master passes it on; the worker holds it while it serves. */
	for (int i = 0; i < 1000 && !sigterm_pending(worker); i++)
		tl_sleep_ms(10);
	ck_assert(sigterm_pending(worker));
	release_held();
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 451);
	close(fd);
	ck_assert_int_eq(tl_daemon_wait(&d, 20), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed_rcpt"), 1000);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM relayed WHERE owner IS NULL"
				    " AND complete = 0"), 1);
	exactly_once_at_sink(1000);
	tl_sink_stop(&k);
}
END_TEST

/* A hostile group_members row never reaches the relay as a command. */
START_TEST(test_hostile_member_row)
{
	char   *m[8], cmd[600];

	start(NULL, NULL);
	/* The schema refuses it ... */
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('group1',"
				" 'evil@example.net>' || char(13, 10) || 'RCPT' || char(9)"
				" || 'TO:<injected@victim.example')"), -1);
	/* ... but a database made before the CHECK constraints may hold it. */
	ck_assert_int_eq(tl_sql(&d, "PRAGMA ignore_check_constraints = ON;"
				" INSERT INTO group_members VALUES ('group1',"
				" 'evil@example.net>' || char(13, 10) || 'RCPT' || char(9)"
				" || 'TO:<injected@victim.example')"), 0);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	ck_assert_ptr_null(strstr(m[0], "injected"));
	ck_assert_int_eq(tl_count(m[0], "RCPT TO:"), 2);
	tl_free_messages(m, 1);
	snprintf(cmd, sizeof(cmd), "grep -q 'group group1: group_members row .* is not a valid"
		 " address; skipped' '%s'", d.log);
	ck_assert_int_eq(system(cmd), 0);
	/* The next post is in step with the relay too. */
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      POST("alice@example.org")), 250);
	/*
	 * A list name longer than a local part: refused by the schema; one
	 * from an older database is refused at RCPT, never truncated into a
	 * list without members (250 and lost).
	 */
	{
		char	name[80], sql[600], addr[120];

		memset(name, 'n', 65);
		name[65] = 0;
		snprintf(sql, sizeof(sql), "INSERT INTO groups (name, posting) VALUES ('%s',"
			 " 'anyone')", name);
		ck_assert_int_eq(tl_sql(&d, sql), -1);
		snprintf(sql, sizeof(sql), "PRAGMA ignore_check_constraints = ON;"
			 " INSERT INTO groups (name, posting) VALUES ('%s', 'anyone');"
			 " INSERT INTO group_members VALUES ('%s', 'alice@example.org')", name, name);
		ck_assert_int_eq(tl_sql(&d, sql), 0);
		snprintf(addr, sizeof(addr), "%s@example.com", name);
		ck_assert_int_eq(post("alice@example.org", addr, NULL, "Subject: x\r\n\r\nx\r\n"),
				 550);
		ck_assert_ptr_nonnull(strstr(reply, "550 5.1.1"));
	}
	stop();
}
END_TEST

/*
 * One header parser for every decision: a line without a colon ends the
 * header for mlistd as for the members, so the list copy of such a post,
 * fed back to the list, is recognised as a loop (554 5.4.6).
 */
START_TEST(test_malformed_header_loop)
{
	const char *rcpt[] = {"group1@example.com", NULL};
	char   *m[8], *copy;
	int	n;

	start(NULL, NULL);
	ck_assert_int_eq(post("alice@example.org", "group1@example.com", NULL,
			      "From: alice@example.org\r\nSubject: odd\r\nthis line has no colon\r\n"
			      "X-Later: field\r\n\r\nbody\r\n"), 250);
	n = tl_sink_messages(&k, m, 8);
	ck_assert_int_eq(n, 1);
	/* The copy as the relay got it: after the envelope lines. */
	copy = strstr(m[0], "\n\n");
	ck_assert_ptr_nonnull(copy);
	copy += 2;
	ck_assert_ptr_nonnull(strstr(copy, "List-Id: Club members <group1.example.com>\r\n"));
	/* The list headers come before the line that ended the header. */
	ck_assert_ptr_nonnull(strstr(copy, "this line has no colon"));
	ck_assert(strstr(copy, "List-Id:") < strstr(copy, "this line has no colon"));
	ck_assert_int_eq(tl_post(&d, "bounce@example.com", rcpt, copy, reply, sizeof(reply)), 554);
	ck_assert_ptr_nonnull(strstr(reply, "554 5.4.6"));
	tl_free_messages(m, n);
	ck_assert_int_eq(tl_sink_messages(&k, m, 8), 1);
	tl_free_messages(m, 1);
	stop();
}
END_TEST

/* A header over max-header-fields is refused (552), not parsed for minutes. */
START_TEST(test_header_caps)
{
	const char *rcpt[] = {"group1@example.com", NULL};
	size_t	n = 1001, one = strlen("List-Id: <x.example.net>\r\n");
	char   *msg = malloc(n * one + 200), *p;

	ck_assert_ptr_nonnull(msg);
	p = msg + sprintf(msg, "From: alice@example.org\r\n");
	for (size_t i = 0; i < n; i++)
		p += sprintf(p, "List-Id: <x.example.net>\r\n");
	sprintf(p, "\r\nbody\r\n");
	start(NULL, NULL);
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 552);
	ck_assert_ptr_nonnull(strstr(reply, "552 5.3.4"));
	ck_assert_ptr_nonnull(strstr(reply, "header too large"));
	ck_assert_int_eq(tl_daemon_stop(&d, 10), 0);
	tl_sink_stop(&k);
	/* Raised by the administrator: accepted. */
	start("max-header-fields = 2000\n", NULL);
	ck_assert_int_eq(tl_post(&d, "alice@example.org", rcpt, msg, reply, sizeof(reply)), 250);
	free(msg);
	stop();
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("delivery");
	TCase  *tc = tcase_create("delivery");

	tcase_set_timeout(tc, 90);
	tcase_add_test(tc, test_fanout_and_headers);
	tcase_add_test(tc, test_unsubscribes);
	tcase_add_test(tc, test_policies);
	tcase_add_test(tc, test_two_groups_one_transaction);
	tcase_add_test(tc, test_loop);
	tcase_add_test(tc, test_large_group_batches);
	tcase_add_test(tc, test_large_group_partial_failure);
	tcase_add_loop_test(tc, test_relay_refuses_member, 0, 2);
	tcase_add_test(tc, test_relay_failures);
	tcase_add_test(tc, test_broken_database);
	tcase_add_test(tc, test_live_sqlite3_edit);
	tcase_add_test(tc, test_worker_backoff);
	tcase_add_test(tc, test_bounce_dsn);
	tcase_add_test(tc, test_bounce_bounded);
	tcase_add_test(tc, test_bounce_unparsable);
	tcase_add_test(tc, test_bounce_and_list);
	tcase_add_test(tc, test_bounce_maildir_broken);
	tcase_add_test(tc, test_bounce_maildir_readonly);
	if (geteuid() == 0)
		tcase_add_test(tc, test_bounce_maildir_full);
	else
		fprintf(stderr, "test_bounce_maildir_full not run: mounting its tmpfs "
			"needs root (CI runs as root)\n");
	tcase_add_test(tc, test_bounce_database_locked);
	tcase_add_test(tc, test_verp_and_callout);
	tcase_add_test(tc, test_no_xverp_logged);
	tcase_add_test(tc, test_verp_interval);
	tcase_add_test(tc, test_bounce_probes);
	tcase_add_test(tc, test_probe_proof_of_life);
	tcase_add_test(tc, test_exactly_once);
	tcase_add_test(tc, test_dedup_off);
	tcase_add_test(tc, test_relay_misbehaves);
	tcase_add_test(tc, test_worker_killed_mid_data);
	tcase_add_test(tc, test_idle_clients_do_not_starve);
	tcase_add_test(tc, test_malformed_header_loop);
	tcase_add_test(tc, test_header_caps);
	suite_add_tcase(s, tc);
	tc = tcase_create("relay");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_relay_table, 0, sizeof(relay_cases) / sizeof(relay_cases[0]));
	tcase_add_test(tc, test_relay_esmtp_params);
	tcase_add_test(tc, test_concurrent_same_message);
	tcase_add_loop_test(tc, test_crash_points, 0, sizeof(crash_points) / sizeof(crash_points[0]));
	tcase_add_test(tc, test_data_done_timeout);
	tcase_add_test(tc, test_sigterm_mid_fanout);
	tcase_add_test(tc, test_hostile_member_row);
	tcase_add_test(tc, test_refusals_cut_by_421);
	tcase_add_test(tc, test_threshold_counts_refusals);
	tcase_add_test(tc, test_clock_step_keeps_claim);
	tcase_add_test(tc, test_stalled_worker_fenced);
	tcase_add_test(tc, test_checkpoint_waits_for_lock);
	tcase_add_test(tc, test_clock_step_keeps_memory);
	tcase_add_test(tc, test_stalled_worker_sends_nothing_late);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
