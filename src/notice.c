/*
 * notice.c - the mail mlistd writes itself in answer to a list's command
 * addresses: confirmation requests, welcome and goodbye, help, refusals.
 *
 * Their texts are templates an administrator may edit: plain text files
 * named after the notice in template-dir, each beginning with its
 * "Subject:" line, an empty line, and the body.  ${name} is replaced by a
 * variable (struct notice_vars), $$ by a dollar sign; anything else is
 * left as it is.  A file that is missing, unreadable, too large or
 * malformed gives way to the built-in text, which is the same as the
 * file installed from contrib/templates: a notice is never lost for the
 * sake of a template.
 *
 * Hostile input: the subscriber's address and the description reach the
 * header only through the Subject, where control characters become
 * spaces; the body gets them as they are (they are a line of text).  The
 * output is bounded by NOTICE_MAX.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mailutils/mime.h>

#include "notice.h"

struct notice_template {
	const char *name;
	const char *text;
};
extern const struct notice_template notice_templates[];

const char *
notice_builtin(const char *name)
{
	for (const struct notice_template *t = notice_templates; t->name; t++)
		if (strcmp(t->name, name) == 0)
			return (t->text);
	return (NULL);
}

char   *
notice_load(const char *dir, const char *name, char *why, size_t whylen)
{
	char	path[4096], *buf;
	struct stat sb;
	ssize_t	n;
	size_t	got = 0;
	int	fd;

	why[0] = 0;
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path)) {
		snprintf(why, whylen, "%s/%s: path too long", dir, name);
		return (NULL);
	}
	if ((fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK)) < 0) {
		if (errno != ENOENT)
			snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return (NULL);
	}
	if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode) || sb.st_size > NOTICE_TEMPLATE_MAX) {
		snprintf(why, whylen, "%s: not a regular file of at most %d bytes", path,
			 NOTICE_TEMPLATE_MAX);
		(void) close(fd);
		return (NULL);
	}
	if ((buf = malloc(NOTICE_TEMPLATE_MAX + 1)) == NULL) {
		snprintf(why, whylen, "%s: out of memory", path);
		(void) close(fd);
		return (NULL);
	}
	while (got < NOTICE_TEMPLATE_MAX + 1
	       && (n = read(fd, buf + got, NOTICE_TEMPLATE_MAX + 1 - got)) > 0)
		got += (size_t) n;
	(void) close(fd);
	if (got > NOTICE_TEMPLATE_MAX || memchr(buf, 0, got) != NULL) {
		snprintf(why, whylen, "%s: too large, or not text", path);
		free(buf);
		return (NULL);
	}
	buf[got] = 0;
	if (strncasecmp(buf, "Subject:", 8) != 0) {
		snprintf(why, whylen, "%s: does not begin with its \"Subject:\" line", path);
		free(buf);
		return (NULL);
	}
	return (buf);
}

/* A bounded growing string. */
struct sbuf {
	char   *s;
	size_t	n, cap;
	int	full;			/* NOTICE_MAX reached or no memory */
};

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->full)
		return;
	if (b->n + n + 1 > NOTICE_MAX) {
		b->full = 1;
		return;
	}
	if (b->n + n + 1 > b->cap) {
		size_t	cap = b->cap ? b->cap : 4096;
		char   *p;

		while (cap < b->n + n + 1)
			cap *= 2;
		if ((p = realloc(b->s, cap)) == NULL) {
			b->full = 1;
			return;
		}
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = 0;
}

static void
sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

/* lookup - the value of ${name} (n bytes), or NULL: not a variable */
static const char *
lookup(const struct notice_vars *v, const char *name, size_t n)
{
	const struct {
		const char *name;
		const char *value;
	} vars[] = {
		{"list", v->list}, {"description", v->description}, {"domain", v->domain},
		{"address", v->address}, {"post", v->post}, {"subscribe", v->subscribe},
		{"unsubscribe", v->unsubscribe}, {"help", v->help}, {"confirm", v->confirm},
		{"owner", v->owner}, {"expires", v->expires},
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (strlen(vars[i].name) == n && strncmp(vars[i].name, name, n) == 0)
			return (vars[i].value ? vars[i].value : "");
	return (NULL);
}

/* expand - s[0 .. n) with the variables substituted, CRs dropped */
static void
expand(struct sbuf *b, const char *s, size_t n, const struct notice_vars *v)
{
	for (size_t i = 0; i < n;) {
		const char *close, *val;

		if (s[i] == '\r') {
			i++;
			continue;
		}
		if (s[i] == '$' && i + 1 < n && s[i + 1] == '$') {
			sb_add(b, "$", 1);
			i += 2;
			continue;
		}
		if (s[i] == '$' && i + 1 < n && s[i + 1] == '{'
		    && (close = memchr(s + i + 2, '}', n - i - 2)) != NULL
		    && (val = lookup(v, s + i + 2, (size_t) (close - s - i - 2))) != NULL) {
			sb_str(b, val);
			i = (size_t) (close - s) + 1;
			continue;
		}
		sb_add(b, s + i, 1);
		i++;
	}
}

/* has_8bit - any byte above 127 in s[0 .. n) */
static int
has_8bit(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] >= 0x80)
			return (1);
	return (0);
}

/* header_text - one line of header text: controls become spaces, at
 * most max bytes, trimmed */
static void
header_text(char *s, size_t max)
{
	size_t	n = strlen(s);

	if (n > max)
		n = max;
	s[n] = 0;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
			s[i] = ' ';
	while (n > 0 && s[n - 1] == ' ')
		s[--n] = 0;
}

/* msgid_ok - a Message-ID we may quote in In-Reply-To: <...>, printable */
static int
msgid_ok(const char *id)
{
	size_t	n = id ? strlen(id) : 0;

	if (n < 3 || n > 250 || id[0] != '<' || id[n - 1] != '>')
		return (0);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) id[i] <= 0x20 || (unsigned char) id[i] >= 0x7f)
			return (0);
	return (1);
}

char   *
notice_build(const char *tmpl, const struct notice_vars *v, const char *from,
	     const char *reply_to, const char *in_reply_to, size_t *len, int *eightbit)
{
	static unsigned seq;
	struct sbuf subj = {NULL, 0, 0, 0}, body = {NULL, 0, 0, 0}, out = {NULL, 0, 0, 0};
	const char *s = tmpl, *eol, *b;
	char   *enc = NULL, date[64], line[1200];
	time_t	now = time(NULL);
	struct tm tm;

	/* "Subject: ..." (a continuation line is not for templates), the
	 * empty line, the body. */
	s += strncasecmp(s, "Subject:", 8) == 0 ? 8 : 0;
	s += strspn(s, " \t");
	eol = s + strcspn(s, "\n");
	expand(&subj, s, (size_t) (eol - s), v);
	b = *eol ? eol + 1 : eol;
	if (*b == '\n')
		b++;
	else if (b[0] == '\r' && b[1] == '\n')
		b += 2;
	expand(&body, b, strlen(b), v);
	if (subj.full || body.full)
		goto fail;
	if (subj.s == NULL)
		sb_str(&subj, "");
	header_text(subj.s, 900);
	if (has_8bit(subj.s, strlen(subj.s))
	    && mu_rfc2047_encode("UTF-8", "base64", subj.s, &enc) != 0)
		enc = NULL;		/* send it raw rather than not at all */
	*eightbit = has_8bit(subj.s, strlen(subj.s)) && enc == NULL;
	*eightbit |= body.s != NULL && has_8bit(body.s, body.n);
	(void) gmtime_r(&now, &tm);
	(void) strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	sb_str(&out, "From: \"");
	for (const char *p = v->list ? v->list : ""; *p; p++) {
		if (*p == '"' || *p == '\\')
			sb_add(&out, "\\", 1);
		sb_add(&out, p, 1);
	}
	snprintf(line, sizeof(line), "\" <%s>\nTo: <%s>\nSubject: ", from, v->address);
	sb_str(&out, line);
	sb_str(&out, enc ? enc : subj.s);
	snprintf(line, sizeof(line), "\nDate: %s\nMessage-ID: <notice.%lx.%lx.%u@%s>\n", date,
		 (unsigned long) now, (unsigned long) getpid(), ++seq, v->domain);
	sb_str(&out, line);
	if (msgid_ok(in_reply_to)) {
		snprintf(line, sizeof(line), "In-Reply-To: %s\nReferences: %s\n", in_reply_to,
			 in_reply_to);
		sb_str(&out, line);
	}
	if (reply_to) {
		snprintf(line, sizeof(line), "Reply-To: <%s>\n", reply_to);
		sb_str(&out, line);
	}
	snprintf(line, sizeof(line), "Auto-Submitted: auto-replied\n"
		 "X-Auto-Response-Suppress: All\n"
		 "MIME-Version: 1.0\n"
		 "Content-Type: text/plain; charset=utf-8\n"
		 "Content-Transfer-Encoding: %s\n\n", *eightbit ? "8bit" : "7bit");
	sb_str(&out, line);
	if (body.s)
		sb_add(&out, body.s, body.n);
	if (out.n > 0 && out.s[out.n - 1] != '\n')
		sb_add(&out, "\n", 1);
	if (out.full)
		goto fail;
	free(enc);
	free(subj.s);
	free(body.s);
	*len = out.n;
	return (out.s);
fail:
	free(enc);
	free(subj.s);
	free(body.s);
	free(out.s);
	return (NULL);
}
