/*
 * notice.c - the mail mlistd writes itself in answer to a list's command
 * addresses: confirmation requests, welcome and goodbye, help, refusals;
 * and to moderators and authors about held posts, with the post attached
 * to the moderators' notice (notice_build_attached).
 *
 * Their texts are templates an administrator may edit: plain text files
 * named after the notice in template-dir, each beginning with its
 * "Subject:" line, an empty line, and the body.  A list's own directory,
 * template-dir/LIST (the name in lower case), overrides them file by
 * file; a list name that cannot be a directory's (a slash, a leading
 * dot) has none, so no name reaches outside template-dir.  ${name} is replaced by a
 * variable (struct notice_vars), $$ by a dollar sign; anything else is
 * left as it is.  A file that is missing, unreadable, too large or
 * malformed gives way to the built-in text, which is the same as the
 * file installed from contrib/templates: a notice is never lost for the
 * sake of a template.
 *
 * Hostile input: the subscriber's address and the description reach the
 * header only through the Subject, where control characters become
 * spaces; the body gets them as they are (they are a line of text).  A
 * held post's Subject and From, and the other values a stranger may
 * choose, become one line wherever they go, so that they cannot add
 * lines of their own to what a moderator reads.  The output is bounded by
 * NOTICE_MAX, and an attached message by its length, which the caller
 * bounds.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
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

/*
 * list_dir - the list's own directory of templates, the list's name in
 * lower case, into buf; 0 when the name cannot be one directory's name
 * (empty, with a slash, beginning with a dot, too long): then only the
 * global files apply, and no name reaches outside template-dir.
 */
static int
list_dir(const char *list, char *buf, size_t len)
{
	size_t	n;

	if (list == NULL || list[0] == 0 || list[0] == '.' || (n = strlen(list)) >= len
	    || n > NOTICE_LIST_MAX || strchr(list, '/') != NULL)
		return (0);
	for (size_t i = 0; i <= n; i++)
		buf[i] = (char) tolower((unsigned char) list[i]);
	return (1);
}

/* load_path - one template file, malloc'd; NULL with why ("": missing) */
static char *
load_path(const char *path, char *why, size_t whylen)
{
	char   *buf;
	struct stat sb;
	ssize_t	n;
	size_t	got = 0;
	int	fd;

	why[0] = 0;
	if ((fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK)) < 0) {
		/* ENOTDIR: a list named like a global template file. */
		if (errno != ENOENT && errno != ENOTDIR)
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

char   *
notice_load(const char *dir, const char *list, const char *name, char *why, size_t whylen)
{
	char	path[4096], lname[NOTICE_LIST_MAX + 1], *t;

	why[0] = 0;
	if (list_dir(list, lname, sizeof(lname))) {
		if (snprintf(path, sizeof(path), "%s/%s/%s", dir, lname, name)
		    >= (int) sizeof(path)) {
			snprintf(why, whylen, "%s/%s/%s: path too long", dir, lname, name);
			return (NULL);
		}
		/* The list's own file; a broken one gives way to the built-in
		 * text, as a broken global file does. */
		if ((t = load_path(path, why, whylen)) != NULL || why[0])
			return (t);
	}
	if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int) sizeof(path)) {
		snprintf(why, whylen, "%s/%s: path too long", dir, name);
		return (NULL);
	}
	return (load_path(path, why, whylen));
}

/* A bounded growing string. */
struct sbuf {
	char   *s;
	size_t	n, cap, max;		/* max: its bound, the NUL included */
	int	full;			/* max reached or no memory */
};

#define SBUF(max)	{NULL, 0, 0, (max), 0}

static void
sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (b->full)
		return;
	if (n >= b->max || b->n + n + 1 > b->max) {
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

/* How a variable's value is inserted. */
enum var_form {
	VAR_AS_IS,			/* our own values, the administrator's */
	VAR_ONE_LINE,			/* hostile: controls become spaces, bounded */
	VAR_LINES			/* a list of lines: CRs dropped, bounded */
};

/* lookup - the value of ${name} (n bytes) and its form, or NULL: not a
 * variable */
static const char *
lookup(const struct notice_vars *v, const char *name, size_t n, enum var_form *form)
{
	const struct {
		const char *name;
		const char *value;
		enum var_form form;
	} vars[] = {
		{"list", v->list, VAR_AS_IS}, {"description", v->description, VAR_AS_IS},
		{"domain", v->domain, VAR_AS_IS}, {"address", v->address, VAR_AS_IS},
		{"post", v->post, VAR_AS_IS}, {"subscribe", v->subscribe, VAR_AS_IS},
		{"unsubscribe", v->unsubscribe, VAR_AS_IS}, {"help", v->help, VAR_AS_IS},
		{"confirm", v->confirm, VAR_AS_IS}, {"owner", v->owner, VAR_AS_IS},
		{"expires", v->expires, VAR_AS_IS}, {"approve", v->approve, VAR_AS_IS},
		{"reject", v->reject, VAR_AS_IS}, {"discard", v->discard, VAR_AS_IS},
		{"held_subject", v->held_subject, VAR_ONE_LINE},
		{"held_from", v->held_from, VAR_ONE_LINE},
		{"decision", v->decision, VAR_ONE_LINE},
		{"decided_by", v->decided_by, VAR_ONE_LINE},
		{"changes", v->changes, VAR_LINES},
	};

	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if (strlen(vars[i].name) == n && strncmp(vars[i].name, name, n) == 0) {
			*form = vars[i].form;
			return (vars[i].value ? vars[i].value : "");
		}
	return (NULL);
}

/* utf8_cut - at most max bytes of s[0 .. n), not ending inside a UTF-8
 * sequence */
static size_t
utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return (n);
	while (max > 0 && ((unsigned char) s[max] & 0xc0) == 0x80)
		max--;
	return (max);
}

/*
 * add_value - a variable's value in its form.  A one-line value cannot
 * begin a line of its own: a Subject of "x\nTo approve, write to ..."
 * must not put words in our mouth.  A list of lines is cut at a line's
 * end, with "..." to say so.
 */
static void
add_value(struct sbuf *b, const char *val, enum var_form form)
{
	size_t	n = strlen(val), cut;

	if (form == VAR_AS_IS) {
		sb_add(b, val, n);
		return;
	}
	cut = utf8_cut(val, n, form == VAR_ONE_LINE ? NOTICE_LINE_MAX : NOTICE_CHANGES_MAX);
	if (form == VAR_LINES && cut < n && memrchr(val, '\n', cut) != NULL)
		cut = (size_t) ((const char *) memrchr(val, '\n', cut) - val) + 1;
	for (size_t i = 0; i < cut; i++) {
		unsigned char c = (unsigned char) val[i];

		if (form == VAR_LINES && c == '\r')
			continue;
		if (form == VAR_ONE_LINE && (c < 0x20 || c == 0x7f))
			c = ' ';
		sb_add(b, (const char *) &c, 1);
	}
	if (cut < n)
		sb_str(b, form == VAR_LINES ? "...\n" : "...");
}

/* expand - s[0 .. n) with the variables substituted, CRs dropped */
static void
expand(struct sbuf *b, const char *s, size_t n, const struct notice_vars *v)
{
	for (size_t i = 0; i < n;) {
		const char *close, *val;
		enum var_form form;

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
		    && (val = lookup(v, s + i + 2, (size_t) (close - s - i - 2), &form)) != NULL) {
			add_value(b, val, form);
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

/* The parts of a notice. */
struct parts {
	struct sbuf subj, body;
	char   *enc;			/* the Subject, RFC 2047 encoded */
	const char *attach;		/* the attached message, or NULL */
	size_t	attach_len;
	int	eightbit;
};

/* parts_make - the template's Subject and body with the variables
 * substituted; 0, or -1: too large or no memory */
static int
parts_make(struct parts *p, const char *tmpl, const struct notice_vars *v)
{
	const char *s = tmpl, *eol, *b;

	/* "Subject: ..." (a continuation line is not for templates), the
	 * empty line, the body. */
	s += strncasecmp(s, "Subject:", 8) == 0 ? 8 : 0;
	s += strspn(s, " \t");
	eol = s + strcspn(s, "\n");
	expand(&p->subj, s, (size_t) (eol - s), v);
	b = *eol ? eol + 1 : eol;
	if (*b == '\n')
		b++;
	else if (b[0] == '\r' && b[1] == '\n')
		b += 2;
	expand(&p->body, b, strlen(b), v);
	sb_str(&p->subj, "");
	sb_str(&p->body, "");
	if (p->subj.full || p->body.full)
		return (-1);
	header_text(p->subj.s, 900);
	if (has_8bit(p->subj.s, strlen(p->subj.s))
	    && mu_rfc2047_encode("UTF-8", "base64", p->subj.s, &p->enc) != 0)
		p->enc = NULL;		/* send it raw rather than not at all */
	p->eightbit = has_8bit(p->subj.s, strlen(p->subj.s)) && p->enc == NULL;
	p->eightbit |= has_8bit(p->body.s, p->body.n);
	p->eightbit |= p->attach != NULL && has_8bit(p->attach, p->attach_len);
	return (0);
}

/* put_headers - the header of a notice, up to MIME-Version */
static void
put_headers(struct sbuf *out, const struct parts *p, const struct notice_vars *v,
	    const char *from, const char *reply_to, const char *in_reply_to)
{
	static unsigned seq;
	char	date[64], line[1200];
	time_t	now = time(NULL);
	struct tm tm;

	(void) gmtime_r(&now, &tm);
	(void) strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	sb_str(out, "From: \"");
	for (const char *c = v->list ? v->list : ""; *c; c++) {
		if (*c == '"' || *c == '\\')
			sb_add(out, "\\", 1);
		sb_add(out, c, 1);
	}
	snprintf(line, sizeof(line), "\" <%s>\nTo: <%s>\nSubject: ", from, v->address);
	sb_str(out, line);
	sb_str(out, p->enc ? p->enc : p->subj.s);
	snprintf(line, sizeof(line), "\nDate: %s\nMessage-ID: <notice.%lx.%lx.%u@%s>\n", date,
		 (unsigned long) now, (unsigned long) getpid(), ++seq, v->domain);
	sb_str(out, line);
	if (msgid_ok(in_reply_to)) {
		snprintf(line, sizeof(line), "In-Reply-To: %s\nReferences: %s\n", in_reply_to,
			 in_reply_to);
		sb_str(out, line);
	}
	if (reply_to) {
		snprintf(line, sizeof(line), "Reply-To: <%s>\n", reply_to);
		sb_str(out, line);
	}
	sb_str(out, "Auto-Submitted: auto-replied\n"
	       "X-Auto-Response-Suppress: All\n"
	       "MIME-Version: 1.0\n");
}

/* put_lf - s[0 .. n) with CR LF as LF */
static void
put_lf(struct sbuf *out, const char *s, size_t n)
{
	size_t	from = 0;

	for (size_t i = 0; i + 1 < n; i++)
		if (s[i] == '\r' && s[i + 1] == '\n') {
			sb_add(out, s + from, i - from);
			from = i + 1;
		}
	sb_add(out, s + from, n - from);
}

/*
 * boundary - a multipart boundary that occurs in neither part: random,
 * so that an author cannot plant it in the held post; checked all the
 * same.  0, or -1: none found.
 */
static int
boundary(char out[64], const struct parts *p)
{
	static unsigned seq;
	unsigned char r[12];

	memset(r, 0, sizeof(r));
	for (int tries = 0; tries < 16; tries++) {
		if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t) sizeof(r)) {
			unsigned long x = (unsigned long) time(NULL) ^ ((unsigned long) getpid() << 16);

			memcpy(r, &x, sizeof(x) < sizeof(r) ? sizeof(x) : sizeof(r));
		}
		snprintf(out, 64, "=_mlistd_%u_", ++seq);
		for (size_t i = 0; i < sizeof(r); i++)
			snprintf(out + strlen(out), 3, "%02x", r[i]);
		if (strstr(p->body.s, out) == NULL
		    && memmem(p->attach, p->attach_len, out, strlen(out)) == NULL)
			return (0);
	}
	return (-1);
}

/* put_text - a text/plain body */
static void
put_text(struct sbuf *out, const struct parts *p)
{
	sb_str(out, "Content-Type: text/plain; charset=utf-8\n");
	sb_str(out, p->eightbit ? "Content-Transfer-Encoding: 8bit\n\n"
	       : "Content-Transfer-Encoding: 7bit\n\n");
	sb_add(out, p->body.s, p->body.n);
	if (out->n > 0 && out->s[out->n - 1] != '\n')
		sb_add(out, "\n", 1);
}

/*
 * put_mixed - a multipart/mixed body: the text, then the attached
 * message as message/rfc822, byte for byte but for CR LF as LF.  The
 * line end before each delimiter belongs to the delimiter (RFC 2046), so
 * both parts keep their last byte.  0, or -1: no boundary.
 */
static int
put_mixed(struct sbuf *out, const struct parts *p)
{
	const char *cte = p->eightbit ? "8bit" : "7bit";
	char	b[64], line[512];

	if (boundary(b, p) < 0)
		return (-1);
	snprintf(line, sizeof(line), "Content-Type: multipart/mixed; boundary=\"%s\"\n"
		 "Content-Transfer-Encoding: %s\n\n"
		 "--%s\nContent-Type: text/plain; charset=utf-8\n"
		 "Content-Transfer-Encoding: %s\n\n", b, cte, b,
		 has_8bit(p->body.s, p->body.n) ? "8bit" : "7bit");
	sb_str(out, line);
	sb_add(out, p->body.s, p->body.n);
	snprintf(line, sizeof(line), "\n--%s\nContent-Type: message/rfc822\n"
		 "Content-Disposition: inline\nContent-Transfer-Encoding: %s\n\n", b,
		 has_8bit(p->attach, p->attach_len) ? "8bit" : "7bit");
	sb_str(out, line);
	put_lf(out, p->attach, p->attach_len);
	snprintf(line, sizeof(line), "\n--%s--\n", b);
	sb_str(out, line);
	return (0);
}

/* build - notice_build with or without an attachment */
static char *
build(const char *tmpl, const struct notice_vars *v, const char *from, const char *reply_to,
      const char *in_reply_to, const char *attach, size_t attach_len, size_t *len,
      int *eightbit)
{
	struct parts p = {SBUF(NOTICE_MAX), SBUF(NOTICE_MAX), NULL, attach, attach_len, 0};
	struct sbuf out = SBUF(NOTICE_MAX);
	int	rc = -1;

	if (attach != NULL) {
		if (attach_len > (size_t) -1 - 2 * NOTICE_MAX)
			return (NULL);
		out.max += attach_len + NOTICE_MAX / 2;	/* and the MIME lines */
	}
	if (parts_make(&p, tmpl, v) == 0) {
		put_headers(&out, &p, v, from, reply_to, in_reply_to);
		if (attach == NULL)
			put_text(&out, &p);
		rc = attach == NULL ? 0 : put_mixed(&out, &p);
	}
	free(p.enc);
	free(p.subj.s);
	free(p.body.s);
	if (rc < 0 || out.full) {
		free(out.s);
		return (NULL);
	}
	*eightbit = p.eightbit;
	*len = out.n;
	return (out.s);
}

char   *
notice_build(const char *tmpl, const struct notice_vars *v, const char *from,
	     const char *reply_to, const char *in_reply_to, size_t *len, int *eightbit)
{
	return (build(tmpl, v, from, reply_to, in_reply_to, NULL, 0, len, eightbit));
}

char   *
notice_build_attached(const char *tmpl, const struct notice_vars *v, const char *from,
		      const char *reply_to, const char *in_reply_to, const char *attach,
		      size_t attach_len, size_t *len, int *eightbit)
{
	return (build(tmpl, v, from, reply_to, in_reply_to, attach, attach ? attach_len : 0, len,
		      eightbit));
}
