/*
 * check_selfserve.c - subscribe and unsubscribe by mail, through the real
 * daemon: command addresses at RCPT, the confirmation request caught at
 * the relay (tests/mlsink), the reply to its address, and what the
 * database and the next post then show.  Forged requests, replays,
 * auto-replies, mail bombs and relay failures change nothing they must
 * not.
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <pwd.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "probe.h"
#include "testlib.h"

static struct tl_daemon d;
static struct tl_sink k;
static char reply[4096];

static const char *seed =
"INSERT INTO members (address) VALUES ('alice@example.org'), ('carol@example.org');"
"INSERT INTO groups (name, description, is_group, posting, subscribe) VALUES"
" ('club', 'Chess club', 1, 'members', 'confirm'),"
" ('board', NULL, 1, 'group', 'members'),"
" ('quiet', NULL, 1, 'anyone', 'closed'),"
" ('postmaster', NULL, 0, 'anyone', 'closed');"
"INSERT INTO group_members (group_name, address) VALUES"
" ('club', 'alice@example.org'), ('quiet', 'alice@example.org'),"
" ('postmaster', 'carol@example.org');";

/* start_seeded - the daemon and its sink, with sd (NULL: none) run once up */
static void
start_seeded(const char *extra, const char *sd, ...)
{
	char	conf[1024];
	va_list	ap;
	int	rc;

	snprintf(conf, sizeof(conf), "template-dir = /nonexistent/mlistd-templates\n%s",
		 extra ? extra : "");
	va_start(ap, sd);
	rc = tl_vstart_relayed(&d, &k, conf, sd, ap);
	va_end(ap);
	ck_assert_int_eq(rc, 0);
}

#define start(extra, ...) start_seeded((extra), seed, __VA_ARGS__)

static void
stop(void)
{
	ck_assert_int_eq(tl_stop_relayed(&d, &k), 0);
}

/* send - one message from envelope sender `from` to rcpt; extra header
 * lines (CR LF each) may be NULL; every call makes a distinct message */
static int
send(const char *from, const char *rcpt, const char *extra)
{
	const char *to[] = {rcpt, NULL};
	static unsigned seq;
	char	msg[2048];

	snprintf(msg, sizeof(msg), "From: <%s>\r\nTo: <%s>\r\nSubject: request\r\n"
		 "Message-ID: <req.%u.%ld@example.org>\r\n%s\r\nplease\r\n",
		 from[0] ? from : "mailer-daemon@example.org", rcpt, ++seq, (long) getpid(),
		 extra ? extra : "");
	return (tl_post(&d, from, to, msg, reply, sizeof(reply)));
}

/* rcpt_code - the reply to RCPT TO:<rcpt> in a fresh transaction */
static int
rcpt_code(const char *rcpt)
{
	char	cmd[512], buf[512];
	int	fd = tl_connect(&d), code;

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(tl_reply(fd, buf, sizeof(buf)), 220);
	ck_assert_int_eq(tl_cmd(fd, "EHLO test\r\n", buf, sizeof(buf)), 250);
	ck_assert_int_eq(tl_cmd(fd, "MAIL FROM:<x@example.org>\r\n", buf, sizeof(buf)), 250);
	snprintf(cmd, sizeof(cmd), "RCPT TO:<%s>\r\n", rcpt);
	code = tl_cmd(fd, cmd, reply, sizeof(reply));
	(void) tl_cmd(fd, "QUIT\r\n", buf, sizeof(buf));
	(void) close(fd);
	return (code);
}

/* notices - the relayed messages to rcpt that contain needle */
static int
notices(const char *rcpt, const char *needle)
{
	char   *m[64], want[300];
	int	n = tl_sink_messages(&k, m, 64), hits = 0;

	snprintf(want, sizeof(want), "RCPT TO:<%s>", rcpt);
	for (int i = 0; i < n; i++)
		if (strstr(m[i], want) && (needle == NULL || strstr(m[i], needle)))
			hits++;
	tl_free_messages(m, n);
	return (hits);
}

/* confirm_for - out of the one confirmation request to rcpt whose token
 * is for action ('s', 'u'; 0: either) */
static void
confirm_for(const char *rcpt, const char *list, char action, char *out, size_t len)
{
	char   *m[64], want[300], pat[100];
	int	n = tl_sink_messages(&k, m, 64), found = 0;

	snprintf(want, sizeof(want), "RCPT TO:<%s>", rcpt);
	snprintf(pat, sizeof(pat), "\nFrom: \"%s\" <%s+confirm+%.1s", list, list,
		 action ? &action : "");
	for (int i = 0; i < n; i++) {
		const char *p = strstr(m[i], pat), *e;

		if (!strstr(m[i], want) || p == NULL)
			continue;
		p = strchr(p, '<') + 1;
		e = strchr(p, '>');
		ck_assert_ptr_nonnull(e);
		snprintf(out, len, "%.*s", (int) (e - p), p);
		found++;
	}
	tl_free_messages(m, n);
	ck_assert_msg(found == 1, "%d confirmation requests to %s", found, rcpt);
}

/* confirm_address - out of the one confirmation request to rcpt */
static void
confirm_address(const char *rcpt, const char *list, char *out, size_t len)
{
	confirm_for(rcpt, list, 0, out, len);
}

/* logged - the daemon's log has needle */
static int
logged(const char *needle)
{
	int	hits = tl_logged(&d, needle);

	ck_assert_int_ge(hits, 0);
	return (hits);
}

/* post_reaches - a post to club from alice; is rcpt among its recipients? */
static int
post_reaches(const char *rcpt)
{
	int	before = notices(rcpt, "Subject: request");

	ck_assert_int_eq(send("alice@example.org", "club@example.com", "X-Post: yes\r\n"), 250);
	return (notices(rcpt, "Subject: request") - before);
}

/* Command addresses at RCPT: only for lists, 550 for anything else. */
START_TEST(test_rcpt)
{
	start(NULL, NULL);
	ck_assert_int_eq(rcpt_code("club+subscribe@example.com"), 250);
	ck_assert_int_eq(rcpt_code("Club+Unsubscribe@example.com"), 250);
	ck_assert_int_eq(rcpt_code("club+help@example.com"), 250);
	ck_assert_int_eq(rcpt_code("club+confirm+s5f000000-0123456789abcdef0123@example.com"), 250);
	ck_assert_int_eq(rcpt_code("quiet+subscribe@example.com"), 250);
	ck_assert_int_eq(rcpt_code("nosuch+subscribe@example.com"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "5.1.1"));
	ck_assert_int_eq(rcpt_code("postmaster+subscribe@example.com"), 550);
	ck_assert_int_eq(rcpt_code("club+confirm+junk@example.com"), 550);
	ck_assert_int_eq(rcpt_code("club+confirm@example.com"), 550);
	ck_assert_int_eq(rcpt_code("club+other@example.com"), 550);
	ck_assert_int_eq(rcpt_code("club-subscribe@example.com"), 550);
	/* A closed list with nobody to take its requests refuses them. */
	ck_assert_int_eq(tl_sql(&d, "DELETE FROM groups WHERE name = 'postmaster'"), 0);
	ck_assert_int_eq(rcpt_code("quiet+subscribe@example.com"), 550);
	ck_assert_ptr_nonnull(strstr(reply, "5.7.1"));
	ck_assert_int_eq(rcpt_code("club+subscribe@example.com"), 250);
	/* "+" can never be part of a list name. */
	ck_assert_int_ne(tl_sql(&d, "INSERT INTO groups (name) VALUES ('club+help')"), 0);
	stop();
	/* With "-" as the delimiter, names with "-" still work. */
	start("command-delimiter = -\nconfirm-expiry = 2h\n", NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, subscribe) VALUES"
				" ('chess-club', 'confirm')"), 0);
	ck_assert_int_eq(rcpt_code("chess-club@example.com"), 250);
	ck_assert_int_eq(rcpt_code("chess-club-subscribe@example.com"), 250);
	ck_assert_int_eq(rcpt_code("chess-club-confirm-u5f000000-0123456789abcdef0123@example.com"),
			 250);
	ck_assert_int_eq(rcpt_code("club+subscribe@example.com"), 550);
	ck_assert_int_eq(send("new@example.net", "chess-club-subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "\nFrom: \"chess-club\" "
				 "<chess-club-confirm-s"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT expires - sent_at FROM requests"), 7200);
	stop();
}
END_TEST

/* Subscribe, confirm, receive; the token then never works again. */
START_TEST(test_subscribe)
{
	char	addr[256], sql[512];

	start(NULL, NULL);
	ck_assert_int_eq(send("new@example.net", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", NULL), 1);
	ck_assert_int_eq(notices("new@example.net", "MAIL FROM:<bounce@example.com>"), 1);
	ck_assert_int_eq(notices("new@example.net", "\r\nAuto-Submitted: auto-replied\r\n"), 1);
	ck_assert_int_eq(notices("new@example.net", "\r\nSubject: Confirm: subscribe to "
				 "club@example.com\r\n"), 1);
	ck_assert_int_eq(notices("new@example.net", "\r\nIn-Reply-To: <req."), 1);
	confirm_address("new@example.net", "club", addr, sizeof(addr));
	/* The reply address is in the text too, for clients that hide From. */
	ck_assert_int_eq(notices("new@example.net", addr), 1);
	/* Nothing changed yet. */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(post_reaches("new@example.net"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests WHERE done_at IS NULL"
				    " AND action = 'subscribe' AND expires - sent_at = 3 * 86400"), 1);
	/* The reply: any content. */
	ck_assert_int_eq(send("new@example.net", addr, "In-Reply-To: <x@example.com>\r\n"), 250);
	ck_assert_int_eq(notices("new@example.net", "\r\nSubject: Welcome to club@example.com"),
			 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " group_name = 'club' AND address = 'new@example.net'"), 1);
	/* A subscription grants no posting rights beyond the list's own
	 * (test_subscribe_list_only). */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests WHERE done_at IS NOT NULL"),
			 1);
	ck_assert_int_eq(post_reaches("new@example.net"), 1);
	ck_assert_int_eq(logged("subscribed <new@example.net> (confirmed by mail"), 1);
	/* Replayed (a second reply, a copy of the first): nothing more. */
	ck_assert_int_eq(tl_sql(&d, "DELETE FROM group_members WHERE address = 'new@example.net'"),
			 0);
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(notices("new@example.net", "Welcome"), 1);
	ck_assert_int_eq(logged("was used already"), 1);
	/* Even after the hour, when the answer is "start again". */
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 7200"), 0);
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(notices("new@example.net", "did not work"), 1);
	/* A token for club does not work for another list. */
	snprintf(sql, sizeof(sql), "board%s", addr + strlen("club"));
	ck_assert_int_eq(send("new@example.net", sql, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(logged("group=board: confirmation from=<new@example.net> with a forged"),
			 1);
	stop();
}
END_TEST

/*
 * A confirmed subscription makes a recipient of that list, nothing more:
 * it never adds the subscriber to members, which would let them post to
 * every list whose posting is 'members'.  mlistd -t warns about a
 * self-service list whose own subscribers therefore cannot post.
 */
START_TEST(test_subscribe_list_only)
{
	char	addr[256], out[8192];
	char   *argv[] = {(char *) tl_mlistd(), "-t", "-c", NULL, NULL};

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, posting) VALUES ('talk',"
				" 'members'); INSERT INTO group_members VALUES ('talk',"
				" 'alice@example.org')"), 0);
	ck_assert_int_eq(send("new@example.net", "club+subscribe@example.com", NULL), 250);
	confirm_for("new@example.net", "club", 's', addr, sizeof(addr));
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " group_name = 'club' AND address = 'new@example.net'"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM members WHERE"
				    " address = 'new@example.net'"), 0);
	/* Not a poster on another 'members' list, nor on club itself. */
	ck_assert_int_eq(send("new@example.net", "talk@example.com", NULL), 550);
	ck_assert_int_eq(send("new@example.net", "club@example.com", NULL), 550);
	ck_assert_int_eq(notices("alice@example.org", "From: <new@example.net>"), 0);
	argv[3] = d.conf;
	ck_assert_int_eq(tl_run(argv, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "mlistd: warning: list club@example.com: subscribe="
				     "confirm with posting=members: its new subscribers cannot post"));
	ck_assert_ptr_null(strstr(out, "warning: list talk@"));
	ck_assert_ptr_null(strstr(out, "warning: list board@"));
	stop();
}
END_TEST

/*
 * posting = 'group' lets the list's current recipients post: a member
 * who unsubscribed (by mail, or an administrator's '*' row) no longer
 * may, although the group_members row stays.
 */
START_TEST(test_unsubscribed_cannot_post)
{
	char	addr[256];

	start(NULL, NULL);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('board',"
				" 'carol@example.org'), ('board', 'dave@example.org')"), 0);
	ck_assert_int_eq(send("carol@example.org", "board@example.com", NULL), 250);
	ck_assert_int_eq(send("dave@example.org", "board@example.com", NULL), 250);
	ck_assert_int_eq(send("carol@example.org", "board+unsubscribe@example.com", NULL), 250);
	confirm_for("carol@example.org", "board", 'u', addr, sizeof(addr));
	ck_assert_int_eq(send("carol@example.org", addr, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " group_name = 'board' AND address = 'carol@example.org'"), 1);
	ck_assert_int_eq(send("carol@example.org", "board@example.com", NULL), 550);
	ck_assert_ptr_nonnull(strstr(reply, "5.7.1"));
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO unsubscribes (group_name, address) VALUES"
				" ('*', 'dave@example.org')"), 0);
	ck_assert_int_eq(send("dave@example.org", "board@example.com", NULL), 550);
	ck_assert_int_eq(logged("reject: from=<carol@example.org> may not post to board"), 1);
	ck_assert_int_eq(logged("reject: from=<dave@example.org> may not post to board"), 1);
	stop();
}
END_TEST

/* Unsubscribe, confirm, no more posts; a re-subscription lifts only it. */
START_TEST(test_unsubscribe)
{
	char	addr[256];

	start(NULL, NULL);
	ck_assert_int_eq(post_reaches("alice@example.org"), 1);
	ck_assert_int_eq(send("alice@example.org", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "\r\nSubject: Confirm: unsubscribe from "
				 "club@example.com\r\n"), 1);
	confirm_address("alice@example.org", "club", addr, sizeof(addr));
	ck_assert_int_eq(post_reaches("alice@example.org"), 1);
	ck_assert_int_eq(send("alice@example.org", addr, NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "\r\nSubject: You have left club@"), 1);
	ck_assert_int_eq(post_reaches("alice@example.org"), 0);
	/* In the administrator's tables: an opt-out, the membership kept. */
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes WHERE group_name ="
				    " 'club' AND address = 'alice@example.org' AND source ="
				    " 'request'"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'alice@example.org'"), 2);
	ck_assert_int_eq(logged("unsubscribed <alice@example.org> (confirmed by mail"), 1);
	/* Not a recipient any more: a second request is answered so. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 7200"), 0);
	ck_assert_int_eq(send("alice@example.org", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "You do not receive"), 1);
	/* Back again: mlistd's own opt-out goes, the administrator's stays. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 7200;"
				" INSERT INTO unsubscribes (group_name, address) VALUES"
				" ('*', 'carol@example.org')"), 0);
	ck_assert_int_eq(send("alice@example.org", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "Confirm: subscribe"), 1);
	confirm_for("alice@example.org", "club", 's', addr, sizeof(addr));
	ck_assert_int_eq(send("alice@example.org", addr, NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "Welcome"), 1);
	ck_assert_int_eq(post_reaches("alice@example.org"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM unsubscribes"), 1);
	/* carol is opted out of everything by the administrator. */
	ck_assert_int_eq(send("carol@example.org", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("carol@example.org", "cannot subscribe"), 1);
	ck_assert_int_eq(notices("carol@example.org", "Confirm"), 0);
	stop();
}
END_TEST

/*
 * A forged request (the envelope sender is somebody else) reaches only
 * that somebody, and without the token nobody can complete it.
 */
START_TEST(test_forged)
{
	char	addr[256], fake[256];

	start(NULL, NULL);
	ck_assert_int_eq(send("victim@example.net", "club+subscribe@example.com",
			      "Reply-To: <attacker@example.net>\r\n"), 250);
	ck_assert_int_eq(notices("victim@example.net", "Confirm"), 1);
	ck_assert_int_eq(notices("attacker@example.net", NULL), 0);
	confirm_address("victim@example.net", "club", addr, sizeof(addr));
	/* The attacker guesses: same expiry, another MAC. */
	snprintf(fake, sizeof(fake), "%s", addr);
	{
		char   *mac = strrchr(fake, '-') + 1;

		mac[0] = mac[0] == '0' ? '1' : '0';
	}
	ck_assert_int_eq(send("victim@example.net", fake, NULL), 250);
	/* The real token, sent from another address. */
	ck_assert_int_eq(send("attacker@example.net", addr, NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'victim@example.net'"), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM members WHERE"
				    " address = 'victim@example.net'"), 0);
	ck_assert_int_eq(logged("forged or misdirected token: nothing changes"), 2);
	/* The attacker got one "start again", never the victim's token. */
	ck_assert_int_eq(notices("attacker@example.net", "did not work"), 1);
	ck_assert_int_eq(notices("attacker@example.net", "+confirm+"), 0);
	/* The victim's own reply still works (a rewritten envelope sender,
	 * such as SRS, is matched by From:). */
	ck_assert_int_eq(send("srs0=ab=cd=example.net=victim@forwarder.example", addr,
			      NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'victim@example.net'"), 0);
	{
		const char *to[] = {addr, NULL};
		char	msg[1024];

		snprintf(msg, sizeof(msg), "From: Victim <victim@example.net>\r\nSubject: Re: x\r\n"
			 "\r\nyes\r\n");
		ck_assert_int_eq(tl_post(&d, "srs0=ab=cd=example.net=victim@forwarder.example",
					 to, msg, reply, sizeof(reply)), 250);
	}
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'victim@example.net'"), 1);
	stop();
}
END_TEST

/* 20 requests in a minute from one address, over two connections at
 * once: one confirmation request. */
START_TEST(test_mail_bomb)
{
	pid_t	pid;
	int	status;

	start(NULL, NULL);
	fflush(NULL);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	for (int i = 0; i < 10; i++)
		if (send("target@example.net", i % 3 ? "club+subscribe@example.com"
			 : "club+help@example.com", NULL) != 250)
			_exit(1);
	if (pid == 0)
		_exit(0);
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_int_eq(notices("target@example.net", NULL), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests"), 1);
	ck_assert_int_eq(logged("it was answered within the hour"), 19);
	/* Half an hour later: still nothing; past the hour: one more. */
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 1800"), 0);
	ck_assert_int_eq(send("target@example.net", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("target@example.net", NULL), 1);
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 1900"), 0);
	ck_assert_int_eq(send("target@example.net", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("target@example.net", NULL), 2);
	/* Another list within the hour: still nothing (per address, whatever
	 * the list: test_one_answer_per_address). */
	ck_assert_int_eq(send("target@example.net", "board+help@example.com", NULL), 250);
	ck_assert_int_eq(notices("target@example.net", NULL), 2);
	stop();
}
END_TEST

/* post_to - one message from `from` to every address in rcpt */
static int
post_to(const char *from, const char *const *rcpt)
{
	static unsigned seq;
	char	msg[1024];

	snprintf(msg, sizeof(msg), "From: <%s>\r\nSubject: request\r\n"
		 "Message-ID: <multi.%u.%ld@example.org>\r\n\r\nplease\r\n", from, ++seq,
		 (long) getpid());
	return (tl_post(&d, from, rcpt, msg, reply, sizeof(reply)));
}

/*
 * The notice limit is per normalized address (lower case, no
 * subaddress), whatever the list, and one request message gets at most
 * one answer: a forged message naming 20 lists' command addresses, 19
 * help addresses, or victim+N subaddresses cost their victim one notice
 * an hour.  A retry of the message still sends its one answer.
 */
START_TEST(test_one_answer_per_address)
{
	const char *rcpt[21];
	char	names[20][64], sql[256];

	start(NULL, NULL);
	for (int i = 0; i < 20; i++) {
		snprintf(sql, sizeof(sql), "INSERT INTO groups (name, subscribe) VALUES"
			 " ('list%d', 'confirm')", i);
		ck_assert_int_eq(tl_sql(&d, sql), 0);
	}
	/* One message, 20 lists' subscribe addresses. */
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "list%d+subscribe@example.com", i);
		rcpt[i] = names[i];
	}
	rcpt[20] = NULL;
	ck_assert_int_eq(post_to("victim@example.net", rcpt), 250);
	ck_assert_int_eq(notices("victim@example.net", NULL), 1);
	ck_assert_int_eq(logged("answered already (one answer per message)"), 19);
	/* 19 help addresses. */
	for (int i = 0; i < 19; i++) {
		snprintf(names[i], sizeof(names[i]), "list%d+help@example.com", i);
		rcpt[i] = names[i];
	}
	rcpt[19] = NULL;
	ck_assert_int_eq(post_to("helpme@example.net", rcpt), 250);
	ck_assert_int_eq(notices("helpme@example.net", NULL), 1);
	/* Subaddresses and case are one address. */
	ck_assert_int_eq(send("Victim+1@Example.NET", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(send("victim+2@example.net", "board+help@example.com", NULL), 250);
	ck_assert_int_eq(notices("Victim+1@Example.NET", NULL), 0);
	ck_assert_int_eq(notices("victim+2@example.net", NULL), 0);
	/* Spellings of one mailbox that only quoting, escapes, the percent
	 * hack or a trailing dot make different: no answer at all. */
	{
		static const char *const spelt[] = {"\"victim\"@example.net",
			"\"vi\\ctim\"@example.net", "victim@example.net.",
			"victim%example.net@example.org", "host!victim@example.net"};
		char   *m[64];
		int	before = tl_sink_messages(&k, m, 64);

		tl_free_messages(m, before);
		for (size_t i = 0; i < sizeof(spelt) / sizeof(spelt[0]); i++)
			ck_assert_int_eq(send(spelt[i], "board+subscribe@example.com", NULL), 250);
		ck_assert_int_eq(tl_sink_messages(&k, m, 64), before);
		tl_free_messages(m, before);
		ck_assert_int_ge(logged("in a form mlistd does not answer"), 5);
	}
	/* Dots in the local part count as one address too. */
	ck_assert_int_eq(send("v.ictim@example.net", "board+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("v.ictim@example.net", NULL), 0);
	/* Across lists, in separate messages. */
	ck_assert_int_eq(send("solo@example.net", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(send("solo@example.net", "list3+help@example.com", NULL), 250);
	ck_assert_int_eq(notices("solo@example.net", NULL), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests WHERE normalized ="
				    " 'victim@example.net'"), 1);
	stop();
	/* The relay fails the first answer: 451; the retry sends the one. */
	start(NULL, "-F", "1", NULL);
	rcpt[0] = "club+help@example.com";
	rcpt[1] = "board+help@example.com";
	rcpt[2] = "club+subscribe@example.com";
	rcpt[3] = NULL;
	{
		const char *msg = "From: <late@example.net>\r\nSubject: x\r\n"
			"Message-ID: <late-multi@example.net>\r\n\r\nplease\r\n";

		ck_assert_int_eq(tl_post(&d, "late@example.net", rcpt, msg, reply, sizeof(reply)),
				 451);
		ck_assert_int_eq(tl_post(&d, "late@example.net", rcpt, msg, reply, sizeof(reply)),
				 250);
		ck_assert_int_eq(tl_post(&d, "late@example.net", rcpt, msg, reply, sizeof(reply)),
				 250);
	}
	ck_assert_int_eq(notices("late@example.net", NULL), 1);
	ck_assert_int_eq(notices("late@example.net", "\r\nSubject: Help for club@"), 1);
	stop();
}
END_TEST

/*
 * A current recipient's unsubscribe always gets its confirmation
 * request, even within the hour of another answer; at most 3 an hour
 * per list and address, and the fourth logs the one still valid.
 */
START_TEST(test_unsubscribe_always_answered)
{
	char	addr[256];

	start(NULL, NULL);
	ck_assert_int_eq(send("new@example.net", "club+subscribe@example.com", NULL), 250);
	confirm_for("new@example.net", "club", 's', addr, sizeof(addr));
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "Welcome"), 1);
	ck_assert_int_eq(send("new@example.net", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "Confirm: unsubscribe"), 1);
	ck_assert_int_eq(send("new@example.net", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(send("new@example.net", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "Confirm: unsubscribe"), 3);
	ck_assert_int_eq(send("new@example.net", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "Confirm: unsubscribe"), 3);
	ck_assert_int_eq(logged("a valid confirmation request went out at "), 1);
	ck_assert_int_eq(logged(" UTC and is valid until "), 1);
	/* One message to the unsubscribe addresses of two lists the member
	 * is on: each is answered (the one-answer rule is for strangers). */
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO group_members VALUES ('club', 'two@example.net'),"
				" ('board', 'two@example.net')"), 0);
	{
		const char *both[] = {"club+unsubscribe@example.com", "board+unsubscribe@example.com",
			NULL};

		ck_assert_int_eq(post_to("two@example.net", both), 250);
	}
	ck_assert_int_eq(notices("two@example.net", "Confirm: unsubscribe"), 2);
	/* A member leaving five lists at once hears from each; a forged
	 * flood naming them is bounded by 3 an hour per list and address. */
	{
		const char *five[6];
		char	names[5][64], sql[200];

		for (int i = 0; i < 5; i++) {
			snprintf(sql, sizeof(sql), "INSERT INTO groups (name, subscribe) VALUES"
				 " ('l%d', 'confirm'); INSERT INTO group_members VALUES ('l%d',"
				 " 'bombed@example.net')", i, i);
			ck_assert_int_eq(tl_sql(&d, sql), 0);
			snprintf(names[i], sizeof(names[i]), "l%d+unsubscribe@example.com", i);
			five[i] = names[i];
		}
		five[5] = NULL;
		ck_assert_int_eq(post_to("bombed@example.net", five), 250);
		ck_assert_int_eq(notices("bombed@example.net", "Confirm: unsubscribe"), 5);
		for (int i = 0; i < 3; i++)
			ck_assert_int_eq(post_to("bombed@example.net", five), 250);
		ck_assert_int_eq(notices("bombed@example.net", "Confirm: unsubscribe"), 15);
		ck_assert_int_eq(post_to("Bombed+x@example.net", five), 250);
		ck_assert_int_eq(notices("bombed@example.net", "Confirm: unsubscribe"), 15);
		ck_assert_int_eq(notices("Bombed+x@example.net", NULL), 0);
	}
	/* Strangers stay under the hourly limit. */
	ck_assert_int_eq(send("stranger@example.net", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(send("stranger@example.net", "club+unsubscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("stranger@example.net", NULL), 1);
	stop();
}
END_TEST

/* Machines never trigger anything: auto-replies, bounces, lists, us. */
START_TEST(test_automatic)
{
	static const char *const hdr[] = {
		"Auto-Submitted: auto-replied\r\n",
		"Auto-Submitted: auto-generated (vacation)\r\n",
		"Precedence: bulk\r\n",
		"Precedence: junk\r\n",
		"Precedence: list\r\n",
		"List-Id: <other.example.net>\r\n",
		"X-Autoreply: yes\r\n",
	};
	char	addr[256];
	int	before;

	start(NULL, NULL);
	ck_assert_int_eq(send("new@example.net", "club+subscribe@example.com", NULL), 250);
	confirm_address("new@example.net", "club", addr, sizeof(addr));
	before = notices("new@example.net", NULL);
	for (size_t i = 0; i < sizeof(hdr) / sizeof(hdr[0]); i++) {
		ck_assert_int_eq(send("new@example.net", addr, hdr[i]), 250);
		ck_assert_int_eq(send("other@example.net", "club+subscribe@example.com", hdr[i]),
				 250);
	}
	ck_assert_int_eq(send("", addr, NULL), 250);
	ck_assert_int_eq(send("", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(send("club@example.com", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(send("bounce@example.com", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 0);
	ck_assert_int_eq(notices("new@example.net", NULL), before);
	ck_assert_int_eq(notices("other@example.net", NULL), 0);
	ck_assert_int_eq(logged(" ignored: "), 2 * 7 + 4);
	/* Auto-Submitted: no is a person. */
	ck_assert_int_eq(send("new@example.net", addr, "Auto-Submitted: no\r\n"), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'new@example.net'"), 1);
	stop();
}
END_TEST

/* A closed list's command mail goes to the postmaster alias, unanswered;
 * a 'members' list answers non-members with a refusal. */
START_TEST(test_policies)
{
	start(NULL, NULL);
	ck_assert_int_eq(send("new@example.net", "quiet+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("carol@example.org", "\r\nTo: <quiet+subscribe@example.com>"),
			 1);
	ck_assert_int_eq(notices("new@example.net", NULL), 0);
	/* Checked as mail to the postmaster: a loop through it is refused. */
	ck_assert_int_eq(send("new@example.net", "quiet+help@example.com",
			      "X-BeenThere: postmaster@example.com\r\n"), 554);
	ck_assert_int_eq(notices("carol@example.org", "quiet+help@example.com"), 0);
	/* A closed list's copies point at the postmaster, the others at
	 * their command addresses. */
	ck_assert_int_eq(send("alice@example.org", "quiet@example.com", NULL), 250);
	ck_assert_int_eq(notices("alice@example.org", "\r\nList-Unsubscribe: <mailto:postmaster"
				 "@example.com?subject=unsubscribe%20quiet>\r\n"), 1);
	ck_assert_int_eq(post_reaches("alice@example.org"), 1);
	ck_assert_int_eq(notices("alice@example.org", "\r\nList-Unsubscribe: <mailto:club+"
				 "unsubscribe@example.com>\r\nList-Help: <mailto:club+help@example.com>"
				 "\r\nList-Subscribe: <mailto:club+subscribe@example.com>\r\n"), 1);
	/* board: only addresses in members. */
	ck_assert_int_eq(send("new@example.net", "board+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "cannot subscribe to the list board@"), 1);
	ck_assert_int_eq(send("carol@example.org", "board+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("carol@example.org", "Confirm: subscribe to board@"), 1);
	/* Help, with the addresses. */
	ck_assert_int_eq(send("help@example.net", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(notices("help@example.net", "club+unsubscribe@example.com"), 1);
	stop();
}
END_TEST

/* The notice must reach the relay before 250: a relay failure is 451,
 * the retry answers once, and a retry of an answered request is silent. */
START_TEST(test_retry)
{
	const char *to[] = {"club+subscribe@example.com", NULL};
	const char *msg = "From: <late@example.net>\r\nSubject: sub\r\n"
		"Message-ID: <retry@example.net>\r\n\r\nplease\r\n";

	start(NULL, "-F", "1", NULL);
	ck_assert_int_eq(tl_post(&d, "late@example.net", to, msg, reply, sizeof(reply)), 451);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests"), 0);
	ck_assert_int_eq(tl_post(&d, "late@example.net", to, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(tl_post(&d, "late@example.net", to, msg, reply, sizeof(reply)), 250);
	ck_assert_int_eq(notices("late@example.net", "Confirm"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM requests"), 1);
	ck_assert_int_eq(logged("status=duplicate (answered at"), 1);
	/* The relay refuses the address for good: no retry, and no more
	 * answers to it. */
	ck_assert_int_eq(send("reject-me@example.net", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM bounces WHERE"
				    " address = 'reject-me@example.net' AND evidence = 1"
				    " AND status = '5.1.1' AND diagnostic LIKE 'smtp; 550 5.1.1 %'"), 1);
	ck_assert_int_eq(tl_sql(&d, "UPDATE requests SET sent_at = sent_at - 7200"), 0);
	ck_assert_int_eq(send("reject-me@example.net", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(logged("the relay refused that address"), 1);
	stop();
}
END_TEST

/*
 * Crash points: a worker killed after the answer is remembered but before
 * it went out, or after a confirmed change but before its welcome: the
 * retry sends the one message that is owed, once.
 */
START_TEST(test_crash_points)
{
	const char *req = "From: <crash@example.net>\r\nSubject: s\r\n"
		"Message-ID: <crash-req@example.net>\r\n\r\nplease\r\n";
	const char *to[] = {"club+subscribe@example.com", NULL};
	char	env[300], once[200], addr[256], reply_msg[600];
	const char *cto[] = {addr, NULL};
	int	code = -1;

	snprintf(once, sizeof(once), "/tmp/mlistd-crash-ss-%ld", (long) getpid());
	(void) unlink(once);
	snprintf(env, sizeof(env), "answer-reserved:%s", once);
	ck_assert_int_eq(setenv("MLISTD_CRASH_AT", env, 1), 0);
	start(NULL, NULL);
	ck_assert_int_eq(unsetenv("MLISTD_CRASH_AT"), 0);
	ck_assert_int_eq(tl_post(&d, "crash@example.net", to, req, reply, sizeof(reply)), -1);
	ck_assert_int_eq(logged("MLISTD_CRASH_AT=answer-reserved: exiting here"), 1);
	ck_assert_int_eq(notices("crash@example.net", NULL), 0);
	for (int i = 0; i < 30 && code != 250; i++)
		if ((code = tl_post(&d, "crash@example.net", to, req, reply, sizeof(reply))) != 250)
			tl_sleep_ms(300);
	ck_assert_int_eq(code, 250);
	ck_assert_int_eq(notices("crash@example.net", "Confirm: subscribe"), 1);
	ck_assert_int_eq(tl_post(&d, "crash@example.net", to, req, reply, sizeof(reply)), 250);
	ck_assert_int_eq(notices("crash@example.net", NULL), 1);
	stop();
	/* The same for the confirmation. */
	(void) unlink(once);
	snprintf(env, sizeof(env), "confirmed:%s", once);
	ck_assert_int_eq(setenv("MLISTD_CRASH_AT", env, 1), 0);
	start(NULL, NULL);
	ck_assert_int_eq(unsetenv("MLISTD_CRASH_AT"), 0);
	ck_assert_int_eq(tl_post(&d, "crash@example.net", to, req, reply, sizeof(reply)), 250);
	confirm_address("crash@example.net", "club", addr, sizeof(addr));
	snprintf(reply_msg, sizeof(reply_msg), "From: <crash@example.net>\r\nSubject: Re\r\n"
		 "Message-ID: <crash-conf@example.net>\r\n\r\nyes\r\n");
	ck_assert_int_eq(tl_post(&d, "crash@example.net", cto, reply_msg, reply, sizeof(reply)),
			 -1);
	ck_assert_int_eq(logged("MLISTD_CRASH_AT=confirmed: exiting here"), 1);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT count(*) FROM group_members WHERE"
				    " address = 'crash@example.net'"), 1);
	ck_assert_int_eq(notices("crash@example.net", "Welcome"), 0);
	code = -1;
	for (int i = 0; i < 30 && code != 250; i++)
		if ((code = tl_post(&d, "crash@example.net", cto, reply_msg, reply,
				    sizeof(reply))) != 250)
			tl_sleep_ms(300);
	ck_assert_int_eq(code, 250);
	ck_assert_int_eq(notices("crash@example.net", "Welcome"), 1);
	ck_assert_int_eq(tl_post(&d, "crash@example.net", cto, reply_msg, reply, sizeof(reply)),
			 250);
	ck_assert_int_eq(notices("crash@example.net", "Welcome"), 1);
	ck_assert_int_eq(notices("crash@example.net", "did not work"), 0);
	(void) unlink(once);
	stop();
}
END_TEST

/* Templates: the administrator's text with its variables; a broken file
 * gives way to the built-in text, with a warning. */
START_TEST(test_templates)
{
	char	dir[400], path[500], conf[600];
	FILE   *fp;

	ck_assert_int_eq(tl_sink_start(&k, (char *) NULL), 0);
	snprintf(dir, sizeof(dir), "/tmp/check_selfserve.%ld", (long) getpid());
	ck_assert_int_eq(mkdir(dir, 0755), 0);
	snprintf(path, sizeof(path), "%s/help", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fprintf(fp, "Subject: Aide \xc3\xa0 ${list} (${description})\n\nÉcrivez à ${post}; "
		"$${post} ${nosuch} ${owner}\n");
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(path, sizeof(path), "%s/confirm-subscribe", dir);
	ck_assert_ptr_nonnull(fp = fopen(path, "w"));
	fprintf(fp, "no subject line\n");
	ck_assert_int_eq(fclose(fp), 0);
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\ntemplate-dir = %s\n", k.port,
		 dir);
	ck_assert_int_eq(tl_daemon_start(&d, conf, 0), 0);
	ck_assert_int_eq(tl_sql(&d, seed), 0);
	ck_assert_int_eq(send("new@example.net", "club+help@example.com", NULL), 250);
	ck_assert_int_eq(notices("new@example.net", "\r\nSubject: =?UTF-8?B?"), 1);
	ck_assert_int_eq(notices("new@example.net", "\r\n\xc3\x89" "crivez \xc3\xa0 "
				 "club@example.com; ${post} ${nosuch} postmaster@example.com\r\n"),
			 1);
	ck_assert_int_eq(notices("new@example.net", "Content-Transfer-Encoding: 8bit"), 1);
	ck_assert_int_eq(notices("new@example.net", "BODY=8BITMIME"), 1);
	ck_assert_int_eq(send("other@example.net", "club+subscribe@example.com", NULL), 250);
	ck_assert_int_eq(notices("other@example.net", "Subject: Confirm: subscribe"), 1);
	ck_assert_int_eq(logged("template confirm-subscribe: "), 1);
	stop();
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

/* subscribe_welcome - subscribe addr to list by mail, confirm, and return
 * whether the welcome's Subject is want */
static int
subscribe_welcome(const char *addr, const char *list, const char *want)
{
	char	rcpt[300], confirm[300], subject[300];

	snprintf(rcpt, sizeof(rcpt), "%s+subscribe@example.com", list);
	ck_assert_int_eq(send(addr, rcpt, NULL), 250);
	confirm_address(addr, list, confirm, sizeof(confirm));
	ck_assert_int_eq(send(addr, confirm, NULL), 250);
	snprintf(subject, sizeof(subject), "\r\nSubject: %s\r\n", want);
	return (notices(addr, subject));
}

/*
 * Per-list templates: template-dir/LIST/welcome overrides the global
 * welcome for that list alone; a list whose name could leave
 * template-dir ("../x", "a/b") gets the global text.
 */
START_TEST(test_list_templates)
{
	static const char *const files[][2] = {
		{"t/welcome", "Subject: Global welcome to ${post}\n\nHello.\n"},
		{"t/club/welcome", "Subject: Chess club welcome to ${post}\n\nHello.\n"},
		{"escape/welcome", "Subject: Escaped\n\nHello.\n"},
		{"t/a/b/welcome", "Subject: Nested\n\nHello.\n"},
	};
	char	dir[400], path[500], conf[600];

	ck_assert_int_eq(tl_sink_start(&k, (char *) NULL), 0);
	snprintf(dir, sizeof(dir), "/tmp/check_selfserve.lt.%ld", (long) getpid());
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE   *fp;

		snprintf(path, sizeof(path), "mkdir -p \"$(dirname '%s/%s')\"", dir, files[i][0]);
		ck_assert_int_eq(system(path), 0);
		snprintf(path, sizeof(path), "%s/%s", dir, files[i][0]);
		ck_assert_ptr_nonnull(fp = fopen(path, "w"));
		fputs(files[i][1], fp);
		ck_assert_int_eq(fclose(fp), 0);
	}
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\ntemplate-dir = %s/t\n", k.port,
		 dir);
	ck_assert_int_eq(tl_daemon_start(&d, conf, 0), 0);
	ck_assert_int_eq(tl_sql(&d, seed), 0);
	ck_assert_int_eq(tl_sql(&d, "INSERT INTO groups (name, subscribe) VALUES"
				" ('games', 'confirm'), ('../escape', 'confirm'), ('a/b', 'confirm')"),
			 0);
	ck_assert_int_eq(subscribe_welcome("ann@example.net", "club",
					   "Chess club welcome to club@example.com"), 1);
	ck_assert_int_eq(subscribe_welcome("bob@example.net", "games",
					   "Global welcome to games@example.com"), 1);
	ck_assert_int_eq(subscribe_welcome("cy@example.net", "../escape",
					   "Global welcome to ../escape@example.com"), 1);
	ck_assert_int_eq(subscribe_welcome("di@example.net", "a/b",
					   "Global welcome to a/b@example.com"), 1);
	ck_assert_int_eq(logged("template welcome"), 0);
	stop();
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	ck_assert_int_eq(system(path), 0);
}
END_TEST

/* mlistd -t says who may do what. */
START_TEST(test_check_report)
{
	char	out[8192];
	char   *argv[] = {(char *) tl_mlistd(), "-t", "-c", NULL, NULL};

	start(NULL, NULL);
	argv[3] = d.conf;
	ck_assert_int_eq(tl_run(argv, out, sizeof(out)), 0);
	ck_assert_ptr_nonnull(strstr(out, "list club@example.com: posting=members, "
				     "subscribe=confirm: anyone may (after confirming) subscribe at "
				     "club+subscribe@example.com"));
	ck_assert_ptr_nonnull(strstr(out, "list board@example.com: posting=group, "
				     "subscribe=members: addresses in members may"));
	ck_assert_ptr_nonnull(strstr(out, "list quiet@example.com: posting=anyone, "
				     "subscribe=closed: requests by mail go to postmaster@"));
	stop();
}
END_TEST

/* db_int - first column of the first row of sql on the database file */
static long
db_int(const char *file, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long	v = -1;

	ck_assert_int_eq(sqlite3_open_v2(file, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	ck_assert_msg(sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK, "%s", sql);
	if (sqlite3_step(q) == SQLITE_ROW)
		v = (long) sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return (v);
}

/*
 * restore - as BACKUP in mlistd(8) says: a fresh state directory, the
 * saved database (0640) and, if with_key, the saved key (0600), owned
 * by mlistd's user; then a daemon there.  The state directory in sdir.
 */
static void
restore(const char *save, int with_key, char *sdir, size_t len)
{
	char	cmd[1200], conf[400];
	struct passwd *pw = getpwnam(TL_USER);

	snprintf(sdir, len, "/tmp/mlistd-restore.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(sdir));
	ck_assert_int_eq(tl_give_dir(sdir), 0);
	snprintf(cmd, sizeof(cmd), "cp %s/mlistd.db %s/mlistd.db && chmod 0640 %s/mlistd.db"
		 " && { [ %d = 0 ] || { cp %s/mlistd.key %s/mlistd.key && chmod 0600"
		 " %s/mlistd.key; }; }", save, sdir, sdir, with_key, save, sdir, sdir);
	ck_assert_int_eq(system(cmd), 0);
	if (geteuid() == 0) {
		ck_assert_ptr_nonnull(pw);
		snprintf(cmd, sizeof(cmd), "chown %ld:%ld %s/mlistd.db && { [ %d = 0 ] || chown"
			 " %ld:%ld %s/mlistd.key; }", (long) pw->pw_uid, (long) pw->pw_gid, sdir,
			 with_key, (long) pw->pw_uid, (long) pw->pw_gid, sdir);
		ck_assert_int_eq(system(cmd), 0);
	}
	snprintf(conf, sizeof(conf), "database = %s/mlistd.db\n", sdir);
	start_seeded(conf, NULL, NULL);
}

/* hard_bounce - a failure report for alice to rcpt */
static int
hard_bounce(const char *rcpt)
{
	const char *to[] = {rcpt, NULL};

	return (tl_post(&d, "", to, "From: MAILER-DAEMON@example.org\r\nSubject: failure\r\n"
			"Content-Type: multipart/report; report-type=delivery-status;"
			" boundary=\"b\"\r\n\r\n--b\r\nContent-Type: message/delivery-status\r\n"
			"\r\nReporting-MTA: dns; mx.example.org\r\n\r\nFinal-Recipient: rfc822;"
			" alice@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--b--\r\n",
			reply, sizeof(reply)));
}

/*
 * A backup made with sqlite3 .backup while mlistd runs, with mlistd.key,
 * restored into a fresh state directory: a pending confirmation still
 * works there and a probe's tag is still recognised.  Without the key
 * (a fresh one is made) neither is.
 */
START_TEST(test_backup_restore)
{
	char	addr[256], probe[400], save[] = "/tmp/mlistd-save.XXXXXX", sdir[300];
	char	cmd[1200], db[400];
	const char *ev = "SELECT count(*) FROM bounces WHERE address = 'alice@example.org'"
	" AND evidence = 1";
	const char *subscribed = "SELECT count(*) FROM group_members WHERE group_name = 'club'"
	" AND address = 'new@example.net'";

	start(NULL, NULL);
	ck_assert_int_eq(send("new@example.net", "club+subscribe@example.com", NULL), 250);
	confirm_address("new@example.net", "club", addr, sizeof(addr));
	/* A probe of alice sent an hour ago, as mlistd makes them. */
	{
		unsigned char key[PROBE_KEY_LEN];
		char	err[512], local[300], path[400], sql[600];
		long	now = (long) time(NULL);

		snprintf(path, sizeof(path), "%s/mlistd.key", d.dir);
		ck_assert_int_eq(probe_key_load(path, key, err, sizeof(err)), 0);
		ck_assert_int_eq(probe_local(key, "bounce", "alice@example.org", "club",
					     (unsigned long) now + 86400, local, sizeof(local)), 0);
		snprintf(probe, sizeof(probe), "%s@example.com", local);
		snprintf(sql, sizeof(sql), "INSERT INTO probes (address, group_name, sent_at,"
			 " expires) VALUES ('alice@example.org', 'club', %ld, %ld)", now - 3600,
			 now + 86400);
		ck_assert_int_eq(tl_sql(&d, sql), 0);
	}
	/* The backup, while mlistd runs. */
	ck_assert_ptr_nonnull(mkdtemp(save));
	snprintf(cmd, sizeof(cmd), "sqlite3 %s/mlistd.db \".backup '%s/mlistd.db'\" && "
		 "cp -p %s/mlistd.key %s/mlistd.key", d.dir, save, d.dir, save);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(tl_sql_int(&d, "SELECT 1"), 1);	/* still up */
	stop();

	/* The control: without the saved key nothing verifies. */
	restore(save, 0, sdir, sizeof(sdir));
	snprintf(db, sizeof(db), "%s/mlistd.db", sdir);
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(db_int(db, subscribed), 0);
	ck_assert_int_eq(logged("forged"), 1);
	ck_assert_int_eq(hard_bounce(probe), 250);
	ck_assert_int_eq(db_int(db, ev), 0);
	stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s", sdir);
	ck_assert_int_eq(system(cmd), 0);

	/* With it: the confirmation works, the probe's bounce is evidence. */
	restore(save, 1, sdir, sizeof(sdir));
	snprintf(db, sizeof(db), "%s/mlistd.db", sdir);
	ck_assert_int_eq(send("new@example.net", addr, NULL), 250);
	ck_assert_int_eq(db_int(db, subscribed), 1);
	ck_assert_int_eq(notices("new@example.net", "\r\nSubject: Welcome to club@example.com"),
			 1);
	ck_assert_int_eq(hard_bounce(probe), 250);
	ck_assert_int_eq(db_int(db, ev), 1);
	stop();
	snprintf(cmd, sizeof(cmd), "rm -rf %s %s", sdir, save);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("selfserve");
	TCase  *tc = tcase_create("selfserve");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_rcpt);
	tcase_add_test(tc, test_subscribe);
	tcase_add_test(tc, test_unsubscribe);
	tcase_add_test(tc, test_subscribe_list_only);
	tcase_add_test(tc, test_unsubscribed_cannot_post);
	tcase_add_test(tc, test_forged);
	tcase_add_test(tc, test_mail_bomb);
	tcase_add_test(tc, test_one_answer_per_address);
	tcase_add_test(tc, test_unsubscribe_always_answered);
	tcase_add_test(tc, test_automatic);
	tcase_add_test(tc, test_policies);
	tcase_add_test(tc, test_retry);
	tcase_add_test(tc, test_crash_points);
	tcase_add_test(tc, test_templates);
	tcase_add_test(tc, test_list_templates);
	tcase_add_test(tc, test_check_report);
	tcase_add_test(tc, test_backup_restore);
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
