/*
 * bounce.c - what comes back to the bounce address.
 *
 * DSN parsing (RFC 3464, RFC 6533 for the global-* types): the message is
 * walked as MIME, multiparts nested at most MAX_DEPTH deep, and every
 * message/delivery-status part is read as a block of per-message fields
 * followed by per-recipient blocks (Final-Recipient, Original-Recipient,
 * Action, Status, Diagnostic-Code).  The returned message or its headers
 * (message/rfc822, text/rfc822-headers) give the List-Id, which names the
 * list the bounce is about.  This is our own parser rather than
 * Mailutils' MIME code because it must stay within fixed bounds on
 * hostile input (no allocation driven by the input beyond
 * BOUNCE_MAX_RCPTS entries, fields truncated, depth limited) and accept
 * the LF and CR LF forms alike.
 *
 * The Maildir is written the Maildir way, by our own code so that every
 * step is explicit: a unique name, the file written in tmp/ and fsync'd,
 * renamed into new/, the directory fsync'd.  The caller publishes the
 * file only after its database rows are in, and removes it again when the
 * rows cannot be committed, so file and rows exist both or neither.
 *
 * Memory: bounce_parse() fills a report whose rcpt array the caller frees
 * with bounce_report_free().
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "bounce.h"

#define MAX_DEPTH	4	/* nested multiparts */
#define FIELD_MAX	2048	/* longest unfolded field value kept */

struct cursor {
	const char *p;
	const char *end;
};

/* next_line - one line without its CR LF or LF; 0 at the end */
static int
next_line(struct cursor *c, const char **line, size_t *len)
{
	const char *nl;

	if (c->p >= c->end)
		return (0);
	*line = c->p;
	nl = memchr(c->p, '\n', (size_t) (c->end - c->p));
	if (nl == NULL) {
		*len = (size_t) (c->end - c->p);
		c->p = c->end;
	} else {
		*len = (size_t) (nl - c->p);
		c->p = nl + 1;
	}
	if (*len > 0 && (*line)[*len - 1] == '\r')
		(*len)--;
	return (1);
}

/* append - add to a bounded field value; control characters become spaces */
static void
append(char *buf, size_t *used, const char *s, size_t n)
{
	for (size_t i = 0; i < n && *used + 1 < FIELD_MAX; i++) {
		unsigned char c = (unsigned char) s[i];

		buf[(*used)++] = (char) ((c < 0x20 || c == 0x7f) ? ' ' : c);
	}
	buf[*used] = 0;
}

typedef void (*field_fn) (void *, const char *name, const char *value);

/*
 * header_block - read fields up to an empty line (consumed) or the end,
 * unfolding continuation lines; calls fn per field.  Returns the number
 * of lines read (0: the block was empty).
 */
static size_t
header_block(struct cursor *c, field_fn fn, void *arg)
{
	char	name[80], value[FIELD_MAX];
	size_t	vlen = 0, lines = 0;
	const char *line;
	size_t	len;
	int	have = 0;

	name[0] = 0;
	value[0] = 0;
	while (next_line(c, &line, &len)) {
		if (len == 0)
			break;
		lines++;
		if ((line[0] == ' ' || line[0] == '\t') && have) {
			/* Unfolded, the fold's indentation is one space: a
			 * diagnostic reads "address rejected", not "address    rejected". */
			size_t	skip = 0;

			while (skip < len && (line[skip] == ' ' || line[skip] == '\t'))
				skip++;
			append(value, &vlen, " ", 1);
			append(value, &vlen, line + skip, len - skip);
			continue;
		}
		if (have)
			fn(arg, name, value);
		have = 0;
		{
			const char *colon = memchr(line, ':', len);
			size_t	nlen;

			if (colon == NULL)
				continue;	/* not a field: skip it */
			nlen = (size_t) (colon - line);
			while (nlen > 0 && (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
				nlen--;
			if (nlen == 0 || nlen >= sizeof(name))
				continue;
			memcpy(name, line, nlen);
			name[nlen] = 0;
			vlen = 0;
			value[0] = 0;
			colon++;
			while (colon < line + len && (*colon == ' ' || *colon == '\t'))
				colon++;
			append(value, &vlen, colon, (size_t) (line + len - colon));
			have = 1;
		}
	}
	if (have)
		fn(arg, name, value);
	return (lines);
}

/* Content-Type of one MIME entity, and the List-Id if it is there. */
struct entity {
	char	type[128];		/* "multipart/report", lower case */
	char	boundary[128];
	char	list_id[256];
};

/* param - the value of a Content-Type parameter, quoted or not */
static void
param(const char *v, const char *want, char *out, size_t outlen)
{
	size_t	wlen = strlen(want);

	out[0] = 0;
	for (const char *p = v; (p = strchr(p, ';')) != NULL;) {
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		if (strncasecmp(p, want, wlen) != 0)
			continue;
		p += wlen;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=')
			continue;
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		{
			size_t	n = 0;

			if (*p == '"') {
				for (p++; *p && *p != '"' && n + 1 < outlen; p++) {
					if (*p == '\\' && p[1])
						p++;
					out[n++] = *p;
				}
			} else
				while (*p && *p != ';' && *p != ' ' && *p != '\t'
				       && n + 1 < outlen)
					out[n++] = *p++;
			out[n] = 0;
		}
		return;
	}
}

static void
entity_field(void *arg, const char *name, const char *value)
{
	struct entity *e = arg;

	if (strcasecmp(name, "Content-Type") == 0 && e->type[0] == 0) {
		size_t	n = strcspn(value, "; \t");

		if (n >= sizeof(e->type))
			n = sizeof(e->type) - 1;
		for (size_t i = 0; i < n; i++)
			e->type[i] = (char) tolower((unsigned char) value[i]);
		e->type[n] = 0;
		param(value, "boundary", e->boundary, sizeof(e->boundary));
	} else if (strcasecmp(name, "List-Id") == 0 && e->list_id[0] == 0)
		snprintf(e->list_id, sizeof(e->list_id), "%s", value);
}

/* One per-recipient block of a delivery-status part. */
struct dsn_block {
	char	final[FIELD_MAX], original[FIELD_MAX];
	char	action[64], status[64], diag[FIELD_MAX];
};

static void
dsn_field(void *arg, const char *name, const char *value)
{
	struct dsn_block *b = arg;

	if (strcasecmp(name, "Final-Recipient") == 0)
		snprintf(b->final, sizeof(b->final), "%s", value);
	else if (strcasecmp(name, "Original-Recipient") == 0)
		snprintf(b->original, sizeof(b->original), "%s", value);
	else if (strcasecmp(name, "Action") == 0)
		snprintf(b->action, sizeof(b->action), "%s", value);
	else if (strcasecmp(name, "Status") == 0)
		snprintf(b->status, sizeof(b->status), "%s", value);
	else if (strcasecmp(name, "Diagnostic-Code") == 0)
		snprintf(b->diag, sizeof(b->diag), "%s", value);
}

/* dsn_address - "rfc822; <a@b>" -> "a@b"; 0 or -1 */
static int
dsn_address(const char *v, char *out, size_t len)
{
	const char *semi = strchr(v, ';'), *p;
	size_t	n;

	p = semi ? semi + 1 : v;
	while (*p == ' ' || *p == '\t' || *p == '<')
		p++;
	n = strcspn(p, " \t>");
	/* local@domain.tld: a truncated report must not invent an address. */
	{
		const char *at = memrchr(p, '@', n);

		if (n == 0 || n >= len || at == NULL || at == p
		    || memchr(at, '.', (size_t) (p + n - at)) == NULL || p[n - 1] == '.')
			return (-1);
	}
	for (size_t i = 0; i < n; i++)
		if ((unsigned char) p[i] <= ' ')
			return (-1);
	memcpy(out, p, n);
	out[n] = 0;
	return (0);
}

/* dsn_status - "5.1.1 (comment)" -> "5.1.1" when well formed */
static void
dsn_status(const char *v, char *out, size_t len)
{
	size_t	n = strspn(v, "0123456789.");
	int	dots = 0;

	out[0] = 0;
	if (n == 0 || n >= len || (v[0] != '2' && v[0] != '4' && v[0] != '5'))
		return;
	for (size_t i = 0; i < n; i++)
		dots += v[i] == '.';
	if (dots != 2 || v[1] != '.')
		return;
	memcpy(out, v, n);
	out[n] = 0;
}

/* dsn_part - the blocks of a message/delivery-status body */
static int
dsn_part(struct cursor c, struct bounce_report *rep)
{
	struct dsn_block *b = malloc(sizeof(*b));

	if (b == NULL)
		return (-1);
	rep->is_dsn = 1;
	while (c.p < c.end && rep->nrcpt < BOUNCE_MAX_RCPTS) {
		struct bounce_rcpt *r;
		char	addr[256];

		memset(b, 0, sizeof(*b));
		if (header_block(&c, dsn_field, b) == 0)
			continue;	/* extra empty lines */
		if (dsn_address(b->original, addr, sizeof(addr)) < 0
		    && dsn_address(b->final, addr, sizeof(addr)) < 0)
			continue;	/* the per-message block, or junk */
		/* Named before: one row per address and report. */
		{
			size_t	k;

			for (k = 0; k < rep->nrcpt; k++)
				if (strcasecmp(rep->rcpt[k].address, addr) == 0)
					break;
			if (k < rep->nrcpt) {
				if (strcmp(rep->rcpt[k].action, "failed") != 0
				    && strncasecmp(b->action, "failed", 6) == 0) {
					dsn_status(b->status, rep->rcpt[k].status,
						   sizeof(rep->rcpt[k].status));
					snprintf(rep->rcpt[k].action, sizeof(rep->rcpt[k].action),
						 "failed");
					snprintf(rep->rcpt[k].diagnostic,
						 sizeof(rep->rcpt[k].diagnostic), "%.1023s", b->diag);
				}
				continue;
			}
		}
		if (rep->nrcpt % 16 == 0) {
			struct bounce_rcpt *n = realloc(rep->rcpt,
					(rep->nrcpt + 16) * sizeof(*n));

			if (n == NULL) {
				free(b);
				return (-1);
			}
			rep->rcpt = n;
		}
		r = &rep->rcpt[rep->nrcpt++];
		memset(r, 0, sizeof(*r));
		snprintf(r->address, sizeof(r->address), "%s", addr);
		dsn_status(b->status, r->status, sizeof(r->status));
		{
			size_t	n = strspn(b->action, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ");

			if (n >= sizeof(r->action))
				n = sizeof(r->action) - 1;
			for (size_t i = 0; i < n; i++)
				r->action[i] = (char) tolower((unsigned char) b->action[i]);
			r->action[n] = 0;
		}
		snprintf(r->diagnostic, sizeof(r->diagnostic), "%.1023s", b->diag);
	}
	free(b);
	return (0);
}

/* is_delimiter - "--boundary" or "--boundary--" (trailing blanks allowed) */
static int
is_delimiter(const char *line, size_t len, const char *b, size_t blen, int *last)
{
	if (len < blen + 2 || line[0] != '-' || line[1] != '-'
	    || memcmp(line + 2, b, blen) != 0)
		return (0);
	line += blen + 2;
	len -= blen + 2;
	*last = len >= 2 && line[0] == '-' && line[1] == '-';
	if (*last) {
		line += 2;
		len -= 2;
	}
	while (len > 0 && (*line == ' ' || *line == '\t')) {
		line++;
		len--;
	}
	return (len == 0);
}

static int entity(struct cursor, int, struct bounce_report *);

/* multipart - each body part between the delimiters */
static int
multipart(struct cursor c, const char *boundary, int depth,
	  struct bounce_report *rep)
{
	size_t	blen = strlen(boundary);
	const char *line, *start = NULL;
	size_t	len;
	int	last = 0;

	while (!last) {
		const char *here = c.p;

		if (!next_line(&c, &line, &len))
			break;
		if (!is_delimiter(line, len, boundary, blen, &last))
			continue;
		if (start) {
			struct cursor part = {start, here};

			if (entity(part, depth + 1, rep) < 0)
				return (-1);
		}
		start = c.p;
	}
	/* A missing closing delimiter: the last part runs to the end. */
	if (start && !last && start < c.end) {
		struct cursor part = {start, c.end};

		if (entity(part, depth + 1, rep) < 0)
			return (-1);
	}
	return (0);
}

/* entity - one MIME entity: headers, then by type */
static int
entity(struct cursor c, int depth, struct bounce_report *rep)
{
	struct entity e;

	memset(&e, 0, sizeof(e));
	(void) header_block(&c, entity_field, &e);
	if (depth == 0 && e.list_id[0] && rep->list_id[0] == 0)
		snprintf(rep->list_id, sizeof(rep->list_id), "%s", e.list_id);
	if (strncmp(e.type, "multipart/", 10) == 0 && e.boundary[0]) {
		if (depth >= MAX_DEPTH)
			return (0);
		return (multipart(c, e.boundary, depth, rep));
	}
	if (strcmp(e.type, "message/delivery-status") == 0
	    || strcmp(e.type, "message/global-delivery-status") == 0)
		return (dsn_part(c, rep));
	if (strcmp(e.type, "message/rfc822") == 0
	    || strcmp(e.type, "text/rfc822-headers") == 0
	    || strcmp(e.type, "message/global") == 0
	    || strcmp(e.type, "message/global-headers") == 0) {
		struct entity orig;

		memset(&orig, 0, sizeof(orig));
		(void) header_block(&c, entity_field, &orig);
		if (orig.list_id[0])
			snprintf(rep->list_id, sizeof(rep->list_id), "%s", orig.list_id);
	}
	return (0);
}

int
bounce_parse(const char *msg, size_t len, struct bounce_report *rep)
{
	struct cursor c = {msg, msg + len};

	memset(rep, 0, sizeof(*rep));
	if (entity(c, 0, rep) < 0) {
		bounce_report_free(rep);
		return (-1);
	}
	return (0);
}

void
bounce_report_free(struct bounce_report *rep)
{
	free(rep->rcpt);
	rep->rcpt = NULL;
	rep->nrcpt = 0;
}

int
bounce_list_name(const char *list_id, const char *domain, char *buf, size_t len)
{
	const char *lt = strrchr(list_id, '<'), *gt;
	size_t	dlen = strlen(domain), n;

	if (lt == NULL || (gt = strchr(lt, '>')) == NULL)
		return (-1);
	lt++;
	n = (size_t) (gt - lt);
	if (n < dlen + 2 || lt[n - dlen - 1] != '.'
	    || strncasecmp(lt + n - dlen, domain, dlen) != 0)
		return (-1);
	n -= dlen + 1;
	if (n >= len)
		return (-1);
	memcpy(buf, lt, n);
	buf[n] = 0;
	return (0);
}

int
bounce_verp_decode(const char *local, const char *bounce_local, char *addr,
		   size_t len)
{
	size_t	blen = strlen(bounce_local);
	const char *tag, *eq;

	if (strncasecmp(local, bounce_local, blen) != 0 || local[blen] != '+')
		return (-1);
	tag = local + blen + 1;
	if ((eq = strrchr(tag, '=')) == NULL || eq == tag || eq[1] == 0
	    || strlen(tag) >= len || strchr(eq + 1, '.') == NULL)
		return (-1);
	snprintf(addr, len, "%.*s@%s", (int) (eq - tag), tag, eq + 1);
	return (0);
}

/* mkdir_p1 - mkdir that accepts an existing directory */
static int
mkdir_p1(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (mkdir(path, 0700) == 0)
		return (0);
	if (errno == EEXIST && stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return (0);
	snprintf(err, errlen, "cannot create directory %s: %s", path,
		 errno == EEXIST ? "exists and is not a directory" : strerror(errno));
	return (-1);
}

int
maildir_create(const char *dir, char *err, size_t errlen)
{
	static const char *const sub[] = {"tmp", "new", "cur"};
	char	path[4096];

	if (mkdir_p1(dir, err, errlen) < 0)
		return (-1);
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		if (mkdir_p1(path, err, errlen) < 0)
			return (-1);
	}
	return (0);
}

/* fsync_dir - make a rename durable */
static int
fsync_dir(const char *path)
{
	int	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	if (fd < 0)
		return (-1);
	rc = fsync(fd);
	(void) close(fd);
	return (rc);
}

int
maildir_write(const char *dir, const char *msg, size_t len, char *name,
	      size_t namelen, char *err, size_t errlen)
{
	static unsigned seq;
	char	path[4096], host[256], buf[65536];
	struct timeval tv;
	size_t	i = 0;
	int	fd;

	if (gethostname(host, sizeof(host)) < 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = 0;
	for (char *h = host; *h; h++)		/* Maildir: no / or : in names */
		if (*h == '/' || *h == ':')
			*h = '_';
	(void) gettimeofday(&tv, NULL);
	snprintf(name, namelen, "%ld.M%ldP%ldQ%u.%s", (long) tv.tv_sec,
		 (long) tv.tv_usec, (long) getpid(), ++seq, host);
	snprintf(path, sizeof(path), "%s/tmp/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
		snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
		return (-1);
	}
	/* CR LF becomes LF, the Maildir convention; nothing else changes. */
	while (i < len) {
		size_t	n = 0;

		while (i < len && n < sizeof(buf)) {
			if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
				i++;
				continue;
			}
			buf[n++] = msg[i++];
		}
		for (size_t off = 0; off < n;) {
			ssize_t	w = write(fd, buf + off, n - off);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				snprintf(err, errlen, "cannot write %s: %s", path,
					 w < 0 ? strerror(errno) : "short write");
				(void) close(fd);
				(void) unlink(path);
				return (-1);
			}
			off += (size_t) w;
		}
	}
	if (fsync(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		(void) close(fd);
		(void) unlink(path);
		return (-1);
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		(void) unlink(path);
		return (-1);
	}
	return (0);
}

int
maildir_publish(const char *dir, const char *name, char *err, size_t errlen)
{
	char	from[4096], to[4096];

	snprintf(from, sizeof(from), "%s/tmp/%s", dir, name);
	snprintf(to, sizeof(to), "%s/new/%s", dir, name);
	if (rename(from, to) < 0) {
		snprintf(err, errlen, "cannot rename %s to new/: %s", from, strerror(errno));
		return (-1);
	}
	snprintf(to, sizeof(to), "%s/new", dir);
	if (fsync_dir(to) < 0) {
		snprintf(err, errlen, "cannot sync %s: %s", to, strerror(errno));
		return (-1);
	}
	return (0);
}

void
maildir_unlink(const char *dir, const char *sub, const char *name)
{
	char	path[4096];

	snprintf(path, sizeof(path), "%s/%s/%s", dir, sub, name);
	(void) unlink(path);
}
