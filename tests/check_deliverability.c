/*
 * check_deliverability.c - the DMARC decision per list copy, end to end:
 * the real daemon, pointed with `resolver` at a real DNS server (Debian's
 * dnsmasq on a free loopback port) that serves the _dmarc TXT records of
 * the authors' domains and the DKIM keys of posts signed at test time by
 * python3-dkim (tests/dkimsign.py) the way real signers sign (Gmail-like,
 * rspamd-like over-signing of absent List-* fields, a signed Sender:),
 * relays into tests/mlsink.  For each copy the sink caught: a kept From:
 * is the author's, byte for byte, and the author's signature verifies on
 * the copy with an independent verifier (python3-dkim, tests/dkimverify.py,
 * the key from the key file dnsmasq serves); a rewritten one reads
 * `"NAME via LIST" <LIST@DOMAIN>`, the author stays reachable (Reply-To,
 * or Cc when the post has a Reply-To) and X-Original-From has the original;
 * the copy's log line carries the decision and its reason (dmarc=...).
 * Also: groups.dmarc against the option, a resolver that does not answer
 * (silent, or nobody listening), and the posting check on the original
 * From:.  dnsmasq is started once by tests/dnslib.c and stopped by its
 * pid (atexit too); the daemons and sinks by testlib (atexit,
 * PR_SET_PDEATHSIG).
 */
#include "config.h"

#include <check.h>

#include "cklib.h"
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unbound.h>
#include <unistd.h>

#include "dmarc.h"
#include "dnslib.h"
#include "testlib.h"

#define PY		"/usr/bin/python3"
#define LISTS		"lists.test"
#define SEL		"s1"
#define NAME		"Alice Example"
#define DNS_TIMEOUT	1		/* dns-timeout of the daemons, seconds */
#define DNS_BOUND	8		/* seconds a post may take when DNS is dead */

/* What dnsmasq serves besides the keys: --txt-record=NAME,STRING */
static const char *const dmarc_records[] = {
	"_dmarc.none.example,v=DMARC1; p=none",
	"_dmarc.quar.example,v=DMARC1; p=quarantine",
	"_dmarc.reject.example,v=DMARC1; p=reject",
	/* A subdomain without a record of its own gets sp=, not p=. */
	"_dmarc.spr.example,v=DMARC1; p=none; sp=reject",
};

/* SEL._domainkey.DOMAIN: the test's one key, for each signing domain */
static const char *const key_domains[] = {
	"none.example", "quar.example", "reject.example", "nodmarc.example", "spr.example",
};

/* Header fields signed (h=), as the signers do */
#define GMAIL	"mime-version:date:message-id:subject:from:to:content-type"
#define RSPAMD	"from:from:reply-to:subject:subject:date:message-id:to:cc:mime-version:" \
	"content-type:resent-to:resent-cc:resent-from:resent-sender:resent-message-id:" \
	"in-reply-to:references:list-id:list-help:list-owner:list-unsubscribe:" \
	"list-subscribe:list-post"

struct pcase {
	const char *label;
	const char *author;		/* envelope sender and From: address */
	const char *list;		/* the list posted to, at LISTS */
	const char *extra;		/* more header fields of the post */
	const char *d;			/* signer's d=, NULL: unsigned */
	const char *h;
	int	tamper;			/* the body changed after signing */
	int	rewrite;		/* want From: rewritten; 2: kept, and the
					 * author's signature must fail on the copy */
	const char *want;		/* the log's dmarc field starts so */
	const char *also[2];		/* and has these too (NULL: nothing) */
};

#define NOTHING	{NULL, NULL}

/* dmarc-mitigation auto; lists club (groups.dmarc NULL), never, always */
static const struct pcase auto_cases[] = {
	{"p=none, Gmail-like", "gmail@none.example", "club", "", "none.example", GMAIL, 0,
	 0, "dmarc=kept (p=none)", NOTHING},
	{"no record, unsigned", "plain@nodmarc.example", "club", "", NULL, NULL, 0,
	 0, "dmarc=kept (no DMARC record)", NOTHING},
	{"p=quarantine, Gmail-like", "gmail@quar.example", "club", "", "quar.example", GMAIL, 0,
	 0, "dmarc=kept (p=quarantine, signature survives)", NOTHING},
	{"p=quarantine, unsigned", "plain@quar.example", "club", "", NULL, NULL, 0,
	 1, "dmarc=rewritten (p=quarantine, no aligned signature)", NOTHING},
	{"p=reject, Gmail-like", "gmail@reject.example", "club", "", "reject.example", GMAIL, 0,
	 0, "dmarc=kept (p=reject, signature survives)", NOTHING},
	{"p=reject, rspamd-like (absent List-* signed)", "rspamd@reject.example", "club", "",
	 "reject.example", RSPAMD, 0,
	 1, "dmarc=rewritten (p=reject, h= covers list-", NOTHING},
	{"p=reject, signed Sender:", "sender@reject.example", "club",
	 "Sender: secretary@reject.example\r\n", "reject.example", GMAIL ":sender", 0,
	 1, "dmarc=rewritten (p=reject, h= covers sender)", NOTHING},
	{"p=reject, cross-post with a signed List-Id", "crosspost@reject.example", "club",
	 "List-Id: <other.lists.example>\r\n", "reject.example", GMAIL ":list-id", 0,
	 1, "dmarc=rewritten (p=reject, h= covers list-id)", NOTHING},
	{"p=reject, unsigned", "plain@reject.example", "club", "", NULL, NULL, 0,
	 1, "dmarc=rewritten (p=reject, no aligned signature)", NOTHING},
	{"p=reject, tampered body", "tampered@reject.example", "club", "", "reject.example",
	 GMAIL, 1,
	 1, "dmarc=rewritten (p=reject, aligned signature fails on arrival", {"body hash", NULL}},
	{"p=reject, unsigned, with a Reply-To: the author in Cc", "replyto@reject.example", "club",
	 "Reply-To: <elsewhere@reject.example>\r\n", NULL, NULL, 0,
	 1, "dmarc=rewritten (p=reject, no aligned signature)", NOTHING},
	{"subdomain, organizational sp=reject (p=none)", "plain@mail.spr.example", "club", "",
	 NULL, NULL, 0,
	 1, "dmarc=rewritten (", {"reject", "no aligned signature"}},
	{"subdomain, organizational p=reject (no sp=)", "plain@mail.reject.example", "club", "",
	 NULL, NULL, 0,
	 1, "dmarc=rewritten (", {"reject", "no aligned signature"}},
	{"subdomain, signed by the organizational domain", "gmail@mail.reject.example", "club",
	 "", "reject.example", GMAIL, 0,
	 0, "dmarc=kept (", {"reject", "signature survives"}},
	{"groups.dmarc never, p=reject unsigned", "plain@reject.example", "never", "", NULL,
	 NULL, 0,
	 0, "dmarc=kept (", {"never)", NULL}},
	{"groups.dmarc always, p=none Gmail-like", "gmail@none.example", "always", "",
	 "none.example", GMAIL, 0,
	 1, "dmarc=rewritten (", {"always)", NULL}},
	{"members-only list, a member from p=reject, unsigned", "member@reject.example", "mo", "",
	 NULL, NULL, 0,
	 1, "dmarc=rewritten (p=reject, no aligned signature)", NOTHING},
};

/* dmarc-mitigation never, groups.dmarc NULL (club) or set */
static const struct pcase never_cases[] = {
	{"option never, p=reject unsigned", "plain@reject.example", "club", "", NULL, NULL, 0,
	 0, "dmarc=kept (dmarc-mitigation never)", NOTHING},
	{"option never, p=reject rspamd-like: kept, and broken", "rspamd@reject.example", "club",
	 "", "reject.example", RSPAMD, 0,
	 2, "dmarc=kept (dmarc-mitigation never)", NOTHING},
	{"option never, groups.dmarc auto, p=reject unsigned", "plain@reject.example", "auto", "",
	 NULL, NULL, 0,
	 1, "dmarc=rewritten (p=reject, no aligned signature)", NOTHING},
	{"option never, groups.dmarc always, p=none", "plain@none.example", "always", "",
	 NULL, NULL, 0,
	 1, "dmarc=rewritten (", {"always)", NULL}},
};

/* dmarc-mitigation always */
static const struct pcase always_cases[] = {
	{"option always, p=none Gmail-like", "gmail@none.example", "club", "", "none.example",
	 GMAIL, 0,
	 1, "dmarc=rewritten (dmarc-mitigation always)", NOTHING},
	{"option always, no record", "plain@nodmarc.example", "club", "", NULL, NULL, 0,
	 1, "dmarc=rewritten (dmarc-mitigation always)", NOTHING},
	{"option always, groups.dmarc auto, p=none Gmail-like", "gmail@none.example", "auto", "",
	 "none.example", GMAIL, 0,
	 0, "dmarc=kept (p=none)", NOTHING},
	{"option always, groups.dmarc never, p=reject Gmail-like", "gmail@reject.example", "never",
	 "", "reject.example", GMAIL, 0,
	 0, "dmarc=kept (", {"never)", NULL}},
};

/* dmarc-mitigation auto, the resolver does not answer */
static const struct pcase nodns_cases[] = {
	{"no DNS, p=reject unsigned", "plain@reject.example", "club", "", NULL, NULL, 0,
	 1, "dmarc=rewritten (DMARC lookup failed", {"no aligned signature", NULL}},
	{"no DNS, p=reject Gmail-like (key unknown, may survive)", "gmail@reject.example", "club",
	 "", "reject.example", GMAIL, 0,
	 0, "dmarc=kept (DMARC lookup failed", NOTHING},
	{"no DNS, p=reject rspamd-like (cannot survive)", "rspamd@reject.example", "club", "",
	 "reject.example", RSPAMD, 0,
	 1, "dmarc=rewritten (DMARC lookup failed", NOTHING},
};

static const char *seed =
"INSERT INTO groups (name, description, is_group, posting, dmarc) VALUES"
" ('club', 'Chess club', 1, 'anyone', NULL), ('never', NULL, 1, 'anyone', 'never'),"
" ('always', NULL, 1, 'anyone', 'always'), ('auto', NULL, 1, 'anyone', 'auto'),"
" ('mo', NULL, 1, 'members', NULL);"
"INSERT INTO group_members (group_name, address) SELECT name, 'reader1@members.test'"
" FROM groups;"
"INSERT INTO group_members (group_name, address) SELECT name, 'reader2@members.test'"
" FROM groups;"
"INSERT INTO members (address) VALUES ('member@reject.example');";

static const char *const local_domains[] = {"example", "test"};
static const char *txt[sizeof(dmarc_records) / sizeof(dmarc_records[0])
		       + sizeof(key_domains) / sizeof(key_domains[0])];
static size_t ntxt;
static char *keyarg[sizeof(key_domains) / sizeof(key_domains[0])];
static struct dns dns;
static char tmpdir[] = "/tmp/check_deliverability.XXXXXX";
static char keypem[300], keytxt[300], keyrec[1024];
static pid_t main_pid;
static struct tl_daemon d;
static struct tl_sink k;
static char reply[4096];
static int serial;			/* numbers the posts' Message-IDs */

/* ---- dnsmasq ---------------------------------------------------------- */

/* dns_serve - what dnsmasq serves: the DMARC records, and the key record
 * at every key name in strings of at most 200 bytes (255 is the limit of
 * one); 0 or -1 (before the tests run: no ck_assert) */
static int
dns_serve(void)
{
	enum { NDMARC = sizeof(dmarc_records) / sizeof(dmarc_records[0]) };

	for (size_t i = 0; i < NDMARC; i++)
		txt[ntxt++] = dmarc_records[i];
	for (size_t i = 0; i < sizeof(key_domains) / sizeof(key_domains[0]); i++) {
		char	name[300];

		snprintf(name, sizeof(name), SEL "._domainkey.%s", key_domains[i]);
		if ((keyarg[i] = dns_txt_split(name, keyrec, 200)) == NULL)
			return (-1);
		txt[ntxt++] = keyarg[i];
	}
	dns.txt = txt;
	dns.ntxt = ntxt;
	dns.local = local_domains;
	dns.nlocal = sizeof(local_domains) / sizeof(local_domains[0]);
	return (0);
}

/* dns_key_served - is the key record served whole at every key name?
 * (libunbound, as the daemon asks: a wrong record here is the test's
 * fault, not the daemon's); 0 or -1 */
static int
dns_key_served(void)
{
	char	fwd[64];
	int	bad = 0;

	snprintf(fwd, sizeof(fwd), "127.0.0.1@%d", dns.port);
	for (size_t i = 0; i < sizeof(key_domains) / sizeof(key_domains[0]); i++) {
		struct ub_ctx *ub = ub_ctx_create();
		struct ub_result *res = NULL;
		char	name[300], got[2048];
		size_t	n = 0;

		snprintf(name, sizeof(name), SEL "._domainkey.%s", key_domains[i]);
		if (ub == NULL || ub_ctx_set_option(ub, "do-not-query-localhost:", "no") != 0
		    || ub_ctx_set_fwd(ub, fwd) != 0 || ub_resolve(ub, name, 16, 1, &res) != 0
		    || !res->havedata) {
			fprintf(stderr, "check_deliverability: no TXT record at %s\n", name);
			bad++;
		} else {
			/* One record: its strings, each after its length byte, joined. */
			const unsigned char *p = (const unsigned char *) res->data[0];
			const unsigned char *end = p + res->len[0];

			while (p < end && p + 1 + *p <= end && n + *p < sizeof(got)) {
				memcpy(got + n, p + 1, *p);
				n += *p;
				p += 1 + *p;
			}
			got[n] = 0;
			if (res->data[1] != NULL || strcmp(got, keyrec) != 0) {
				fprintf(stderr, "check_deliverability: %s serves \"%s\"\n", name, got);
				bad++;
			}
		}
		if (res)
			ub_resolve_free(res);
		if (ub)
			ub_ctx_delete(ub);
	}
	return (bad ? -1 : 0);
}

/* ---- helpers ---------------------------------------------------------- */

/* run - a shell command's standard output and its exit status */
static int
run(const char *cmd, char **out, size_t *len)
{
	FILE   *p;
	size_t	cap = 1 << 16, n = 0, r;
	char   *buf = malloc(cap);
	int	status;

	fflush(NULL);
	if (buf == NULL || (p = popen(cmd, "r")) == NULL) {
		free(buf);
		return (-1);
	}
	while ((r = fread(buf + n, 1, cap - n - 1, p)) > 0)
		if ((n += r) + 1 >= cap && (buf = realloc(buf, cap *= 2)) == NULL)
			abort();
	buf[n] = 0;
	status = pclose(p);
	if (out)
		*out = buf;
	else
		free(buf);
	if (len)
		*len = n;
	return (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void
write_file(const char *path, const char *s, size_t len)
{
	FILE   *f = fopen(path, "wb");

	ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
	ck_assert_uint_eq(fwrite(s, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* make_post - case c's post (malloc'd, signed as c says), and its
 * Message-ID (without <>) in msgid */
static char *
make_post(const struct pcase *c, char *msgid, size_t idlen)
{
	char	text[4096], path[400], cmd[2000], *out, *p;
	size_t	len;
	int	rc;

	snprintf(msgid, idlen, "post%d.%ld@tests.invalid", ++serial, (long) getpid());
	snprintf(text, sizeof(text),
		 "From: " NAME " <%s>\r\n"
		 "To: %s@" LISTS "\r\n"
		 "Subject: Saturday %d\r\n"
		 "Date: Mon, 07 Dec 2026 10:00:00 +0000\r\n"
		 "Message-ID: <%s>\r\n"
		 "MIME-Version: 1.0\r\n"
		 "Content-Type: text/plain; charset=utf-8\r\n"
		 "%s"
		 "\r\n"
		 "See you at the club.\r\n"
		 "\r\n"
		 "Bring a board.\r\n", c->author, c->list, serial, msgid, c->extra);
	if (c->d == NULL)
		return (strdup(text));
	snprintf(path, sizeof(path), "%s/post", tmpdir);
	write_file(path, text, strlen(text));
	snprintf(cmd, sizeof(cmd), PY " '%s' sign '%s' " SEL " %s '%s' < '%s'",
		 ck_srcfile("tests/dkimsign.py"), keypem, c->d, c->h, path);
	rc = run(cmd, &out, &len);
	ck_assert_msg(rc == 0, "%s: signing failed (%d): %s", c->label, rc, out);
	ck_assert_msg(strncmp(out, "DKIM-Signature: ", 16) == 0, "%s: %s", c->label, out);
	if (c->tamper) {
		ck_assert_ptr_nonnull(p = strstr(out, "Bring a board."));
		p[0] = 'b';
	}
	return (out);
}

/* verifies - does the first signature with d=domain on msg (a message,
 * or a sink file) verify with the test's key?  The verifier's output
 * into why. */
static int
verifies(const char *msg, const char *domain, char *why, size_t whylen)
{
	char	path[400], cmd[2000], *out;
	int	rc;

	snprintf(path, sizeof(path), "%s/copy", tmpdir);
	write_file(path, msg, strlen(msg));
	snprintf(cmd, sizeof(cmd), PY " '%s' '%s' %s '%s' 2>&1",
		 ck_srcfile("tests/dkimverify.py"), keytxt, domain, path);
	rc = run(cmd, &out, NULL);
	ck_assert_int_ge(rc, 0);
	ck_assert_msg(rc == 0 || rc == 1, "dkimverify.py: %d: %s", rc, out);
	snprintf(why, whylen, "%s", out);
	free(out);
	return (rc == 0);
}

/* field - the first header field `name` of msg (a message whose header
 * ends at an empty line), unfolded, into buf; how many there are */
static int
field(const char *msg, const char *name, char *buf, size_t len)
{
	size_t	nl = strlen(name);
	int	count = 0;

	buf[0] = 0;
	for (const char *p = msg; *p && *p != '\r' && *p != '\n';) {
		const char *eol = p + strcspn(p, "\n");

		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':' && count++ == 0) {
			size_t	n = 0;
			const char *v = p + nl + 1;

			/* The value and its continuation lines, CR LF taken out. */
			for (;;) {
				for (; v < eol && n + 1 < len; v++)
					if (*v != '\r')
						buf[n++] = *v;
				if (*eol == 0 || (eol[1] != ' ' && eol[1] != '\t'))
					break;
				v = eol + 1;
				eol = v + strcspn(v, "\n");
			}
			buf[n] = 0;
			memmove(buf, buf + strspn(buf, " \t"), strlen(buf + strspn(buf, " \t")) + 1);
		}
		if (*eol == 0)
			break;
		p = eol + 1;
		while (*p == ' ' || *p == '\t')	/* a continuation line */
			p += strcspn(p, "\n") + (p[strcspn(p, "\n")] != 0);
	}
	return (count);
}

/* wait_copy - the one transaction of the sink with this Message-ID
 * (malloc'd), waiting at most 20 s for it */
static char *
wait_copy(const char *msgid)
{
	char	want[300], *m[512], *found = NULL;
	int	n = 0, hits = 0;

	snprintf(want, sizeof(want), "\r\nMessage-ID: <%s>\r\n", msgid);
	for (int i = 0; i < 200; i++) {
		n = tl_sink_messages(&k, m, 512);
		ck_assert_int_ge(n, 0);
		hits = 0;
		for (int j = 0; j < n; j++)
			if (strstr(m[j], want)) {
				hits++;
				free(found);
				found = strdup(m[j]);
			}
		tl_free_messages(m, n);
		if (hits > 0)
			break;
		tl_sleep_ms(100);
	}
	ck_assert_msg(hits == 1, "%d transactions with Message-ID <%s> at the sink", hits, msgid);
	return (found);
}

/* log_field - the dmarc=... field of the copy's log line for this list
 * and envelope sender (one line; waits at most 20 s for it) into buf */
static void
log_field(const char *list, const char *sender, char *buf, size_t len)
{
	char	want[400], line[4096];
	int	lines = 0;

	snprintf(want, sizeof(want), "group=%s, from=<%s>, nrcpt=", list, sender);
	for (int i = 0; i < 200; i++) {
		FILE   *fp = fopen(d.log, "r");

		ck_assert_ptr_nonnull(fp);
		lines = 0;
		while (fgets(line, sizeof(line), fp))
			if (strstr(line, want) && strstr(line, "status=")) {
				const char *f = strstr(line, " dmarc="), *e;

				lines++;
				buf[0] = 0;
				if (f && (e = strstr(f, ", status=")) != NULL)
					snprintf(buf, len, "%.*s", (int) (e - f - 1), f + 1);
				else
					snprintf(buf, len, "(no dmarc= field before status=: %.400s)", line);
			}
		(void) fclose(fp);
		if (lines > 0)
			break;
		tl_sleep_ms(100);
	}
	ck_assert_msg(lines == 1, "%d log lines with \"%s\"", lines, want);
}

/* post_case - post case c to its list: 250 (within `bound` seconds when
 * not 0), the copy and its log line as the case wants */
static void
post_case(const struct pcase *c, int bound)
{
	char	msgid[128], rcpt[200], orig[1024], got[1024], why[4096], fld[512];
	const char *to[] = {rcpt, NULL};
	char   *post, *copy, *msg;
	struct timespec t0, t1;
	double	took;
	int	code;

	post = make_post(c, msgid, sizeof(msgid));
	/* The verifier fails a tampered post (it can tell). */
	if (c->tamper)
		ck_assert_msg(!verifies(post, c->d, why, sizeof(why)), "%s: the verifier passes a "
			      "tampered post: %s", c->label, why);
	ck_assert_int_eq(field(post, "From", orig, sizeof(orig)), 1);
	ck_assert_msg(strstr(orig, c->author) != NULL, "%s: From: %s", c->label, orig);
	snprintf(rcpt, sizeof(rcpt), "%s@" LISTS, c->list);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	code = tl_post(&d, c->author, to, post, reply, sizeof(reply));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	took = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ck_assert_msg(code == 250, "%s: %d %s", c->label, code, reply);
	ck_assert_msg(bound == 0 || took < bound, "%s: the post took %.1f s", c->label, took);

	copy = wait_copy(msgid);
	ck_assert_msg(strstr(copy, "RCPT TO:<reader1@members.test>\r\n")
		      && strstr(copy, "RCPT TO:<reader2@members.test>\r\n"), "%s: %s", c->label,
		      copy);
	ck_assert_ptr_nonnull(msg = strstr(copy, "\r\n\n"));
	msg += 3;
	ck_assert_msg(field(msg, "List-Id", got, sizeof(got)) == 1, "%s: no List-Id", c->label);

	if (c->rewrite != 1) {
		ck_assert_int_eq(field(msg, "From", got, sizeof(got)), 1);
		ck_assert_msg(strcmp(got, orig) == 0, "%s: From: %s", c->label, got);
		ck_assert_msg(field(msg, "X-Original-From", got, sizeof(got)) == 0,
			      "%s: X-Original-From: %s on a kept copy", c->label, got);
		if (c->d && c->rewrite == 0)
			ck_assert_msg(verifies(msg, c->d, why, sizeof(why)),
				      "%s: the author's signature fails on the copy: %s", c->label,
				      why);
		/* What auto is there for: kept, this signature breaks. */
		if (c->d && c->rewrite == 2)
			ck_assert_msg(!verifies(msg, c->d, why, sizeof(why)),
				      "%s: the author's signature verifies on the copy: %s",
				      c->label, why);
	} else {
		char	want[512];

		snprintf(want, sizeof(want), "\"" NAME " via %s\" <%s@" LISTS ">", c->list,
			 c->list);
		ck_assert_int_eq(field(msg, "From", got, sizeof(got)), 1);
		ck_assert_msg(strcmp(got, want) == 0, "%s: From: %s, want %s", c->label, got, want);
		ck_assert_int_eq(field(msg, "X-Original-From", got, sizeof(got)), 1);
		ck_assert_msg(strcmp(got, orig) == 0, "%s: X-Original-From: %s", c->label, got);
		if (strstr(c->extra, "Reply-To:")) {
			/* The post's Reply-To stays; the author is added in Cc. */
			ck_assert_int_eq(field(msg, "Reply-To", got, sizeof(got)), 1);
			ck_assert_str_eq(got, "<elsewhere@reject.example>");
			ck_assert_int_eq(field(msg, "Cc", got, sizeof(got)), 1);
			ck_assert_msg(strstr(got, c->author) != NULL, "%s: Cc: %s", c->label, got);
		} else {
			ck_assert_int_eq(field(msg, "Reply-To", got, sizeof(got)), 1);
			ck_assert_msg(strcmp(got, orig) == 0, "%s: Reply-To: %s", c->label, got);
		}
	}
	/* The decision and its reason on the copy's log line. */
	log_field(c->list, c->author, fld, sizeof(fld));
	ck_assert_msg(strncmp(fld, c->want, strlen(c->want)) == 0, "%s: log has \"%s\", want \"%s\"",
		      c->label, fld, c->want);
	for (int i = 0; i < 2 && c->also[i]; i++)
		ck_assert_msg(strstr(fld, c->also[i]) != NULL, "%s: log has \"%s\", without \"%s\"",
			      c->label, fld, c->also[i]);
	free(copy);
	free(post);
}

/* ---- the daemon --------------------------------------------------------- */

static int
relayed(const char *conf, ...)
{
	va_list	ap;
	int	rc;

	va_start(ap, conf);
	rc = tl_vstart_relayed(&d, &k, conf, seed, ap);
	va_end(ap);
	return (rc);
}

/* start - a sink, and the daemon relaying to it with this mitigation and
 * resolver, the lists of `seed` */
static void
start(const char *mitigation, const char *resolver)
{
	char	conf[1024];

	snprintf(conf, sizeof(conf), "domain = " LISTS "\n"
		 "template-dir = /nonexistent/mlistd-templates\n"
		 "dmarc-mitigation = %s\nresolver = %s\ndns-timeout = %d\n",
		 mitigation, resolver, DNS_TIMEOUT);
	if (relayed(conf, (char *) NULL) != 0) {
		char	log[2048] = "";
		FILE   *fp = d.log[0] ? fopen(d.log, "r") : NULL;

		if (fp) {
			log[fread(log, 1, sizeof(log) - 1, fp)] = 0;
			(void) fclose(fp);
		}
		ck_abort_msg("the daemon did not start: %s", log);
	}
}

/* stop - both, the daemon with a clean exit */
static void
stop(void)
{
	ck_assert_int_eq(tl_stop_relayed(&d, &k), 0);
}

/* teardown - whatever a failed test left running */
static void
teardown(void)
{
	if (d.pid > 0 || k.pid > 0)
		(void) tl_stop_relayed(&d, &k);
}

/* ---- dmarc-mitigation auto, resolver answering -------------------------- */

static void
auto_setup(void)
{
	start("auto", dns.addr);
}

START_TEST(test_auto)
{
	post_case(&auto_cases[_i], 0);
}
END_TEST

/*
 * The posting check reads the original From:: a non-member from a p=reject
 * domain is refused by the members-only list (a member from there got
 * through in auto_cases, rewritten), and nothing is relayed or logged as
 * a copy.
 */
START_TEST(test_posting_check)
{
	const char *to[] = {"mo@" LISTS, NULL};
	const char *text = "From: Stranger <stranger@reject.example>\r\n"
		"To: mo@" LISTS "\r\nSubject: let me in\r\n"
		"Message-ID: <stranger.1@tests.invalid>\r\n\r\nhello\r\n";
	char   *m[512];
	int	n, hits = 0;

	ck_assert_int_eq(tl_post(&d, "stranger@reject.example", to, text, reply,
				 sizeof(reply)), 550);
	/* The refusal comes after the decision would have been made: no copy
	 * is on its way. */
	n = tl_sink_messages(&k, m, 512);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++)
		hits += strstr(m[i], "<stranger.1@tests.invalid>") != NULL;
	tl_free_messages(m, n);
	ck_assert_int_eq(hits, 0);
	ck_assert_msg(strstr(reply, "stranger@reject.example is not allowed") != NULL, "%s", reply);
	ck_assert_int_eq(tl_logged(&d, "reject: from=<stranger@reject.example> may not post to mo"),
			 1);
	ck_assert_int_eq(tl_logged(&d, "group=mo, from=<stranger@reject.example>, nrcpt="), 0);
}
END_TEST

/* The last test of the case: the daemon stops cleanly. */
START_TEST(test_auto_stop)
{
	stop();
}
END_TEST

/* ---- dmarc-mitigation never and always, groups.dmarc overriding ---------- */

START_TEST(test_option_never)
{
	start("never", dns.addr);
	for (size_t i = 0; i < sizeof(never_cases) / sizeof(never_cases[0]); i++)
		post_case(&never_cases[i], 0);
	stop();
}
END_TEST

START_TEST(test_option_always)
{
	start("always", dns.addr);
	for (size_t i = 0; i < sizeof(always_cases) / sizeof(always_cases[0]); i++)
		post_case(&always_cases[i], 0);
	stop();
}
END_TEST

/* ---- a resolver that does not answer ------------------------------------ */

static int silent_fd = -1;

static void
nodns_teardown(void)
{
	teardown();
	if (silent_fd >= 0)
		(void) close(silent_fd);
	silent_fd = -1;
}

/*
 * _i 0: a UDP port bound here and never read (queries vanish); 1: a port
 * nobody holds (refused).  Each post gets 250 within DNS_BOUND seconds and
 * the decision of spec-20: rewrite only when no aligned signature would
 * survive anyway.
 */
START_TEST(test_resolver_down)
{
	char	addr[32];
	int	port, fd;

	ck_assert_int_ge(port = dns_udp_port(&fd), 0);
	if (_i == 0)
		silent_fd = fd;
	else
		(void) close(fd);
	snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
	start("auto", addr);
	/* Nobody listening fails the same way: one post is enough there. */
	for (size_t i = 0; i < (_i == 0 ? sizeof(nodns_cases) / sizeof(nodns_cases[0]) : 1); i++)
		post_case(&nodns_cases[i], DNS_BOUND);
	stop();
}
END_TEST

/* ---- main ---------------------------------------------------------------- */

static void
cleanup(void)
{
	char	cmd[400];

	if (getpid() != main_pid)
		return;
	dns_kill(&dns);
	for (size_t i = 0; i < sizeof(keyarg) / sizeof(keyarg[0]); i++)
		free(keyarg[i]);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "check_deliverability: cannot remove %s\n", tmpdir);
}

int
main(void)
{
	Suite  *s = suite_create("deliverability");
	TCase  *tc;
	char	cmd[2000], err[256], *out, *p;
	FILE   *f;

	if (access(DNS_DNSMASQ, X_OK) < 0 || access(PY, X_OK) < 0) {
		fprintf(stderr, "check_deliverability: %s or %s missing (Debian packages"
			" dnsmasq-base, python3-dkim)\n", DNS_DNSMASQ, PY);
		return (1);
	}
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return (1);
	}
	main_pid = getpid();
	(void) atexit(cleanup);

	/* One RSA key, published for every signing domain. */
	snprintf(keypem, sizeof(keypem), "%s/key.pem", tmpdir);
	snprintf(keytxt, sizeof(keytxt), "%s/" SEL ".txt", tmpdir);
	snprintf(cmd, sizeof(cmd), PY " '%s' genkey '%s' " SEL " reject.example",
		 ck_srcfile("tests/dkimsign.py"), keypem);
	if (run(cmd, &out, NULL) != 0 || (p = strchr(out, ' ')) == NULL
	    || strncmp(p + 1, "v=DKIM1; k=rsa; p=", 18) != 0) {
		fprintf(stderr, "check_deliverability: cannot make a key with %s"
			" (Debian packages python3-dkim, openssl)\n", PY);
		return (1);
	}
	snprintf(keyrec, sizeof(keyrec), "%.*s", (int) strcspn(p + 1, "\r\n"), p + 1);
	free(out);
	/* The same key for the verifier, as opendkim-genkey writes it. */
	if ((f = fopen(keytxt, "w")) == NULL
	    || fprintf(f, SEL "._domainkey\tIN\tTXT\t( \"%s\" )\n", keyrec) < 0
	    || fclose(f) != 0) {
		perror(keytxt);
		return (1);
	}
	if (dns_serve() < 0) {
		fprintf(stderr, "check_deliverability: out of memory\n");
		return (1);
	}
	if (dns_try_start(&dns, err, sizeof(err)) < 0) {
		fprintf(stderr, "check_deliverability: %s\n", err);
		return (1);
	}
	if (dns_key_served() < 0)
		return (1);

	tc = tcase_create("auto");
	tcase_add_unchecked_fixture(tc, auto_setup, teardown);
	tcase_add_loop_test(tc, test_auto, 0, sizeof(auto_cases) / sizeof(auto_cases[0]));
	tcase_add_test(tc, test_posting_check);
	tcase_add_test(tc, test_auto_stop);
	suite_add_tcase(s, tc);

	tc = tcase_create("option");
	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, test_option_never);
	tcase_add_test(tc, test_option_always);
	suite_add_tcase(s, tc);

	tc = tcase_create("resolver down");
	tcase_add_checked_fixture(tc, NULL, nodns_teardown);
	tcase_add_loop_test(tc, test_resolver_down, 0, 2);
	suite_add_tcase(s, tc);

	/* No fork per test: a failure unwinds into the teardown, which stops
	 * the daemon and the sink; the atexit handlers catch the rest. */
	return (ck_run_nofork(s));
}
