/*
 * rewrite.c - the header of a post, and its list copy.
 *
 * One tokenizer, ours, reads the header once, in time linear in its size,
 * into a table of fields (offset, length, name length); every decision
 * (loop detection on List-Id and X-BeenThere, the From: addresses, the
 * Message-ID) and the copy itself use that table, so what mlistd checks
 * is exactly what the members get.  The header ends at the first empty
 * line, or at the first line that is neither a field ("name:") nor the
 * continuation of one (RFC 5322 has no such line in a header): for
 * mlistd, for the copy (which gets the empty line such a message lacked)
 * and therefore for the members, that line begins the body.  The number
 * of fields and the header's bytes are capped (struct rewrite_limits).
 *
 * Mailutils parses what it is good at: one From: value, unfolded by us
 * and trimmed of trailing comments and whitespace, as an RFC 5322 mailbox
 * list (display names, quoting, comments, encoded words).  The copy keeps
 * the fields we do not touch, their folding and the body byte for byte.
 *
 * The description from the database is sanitized before it reaches a
 * header: control characters become spaces (no header injection from a
 * row typed by hand), specials are quoted, non-ASCII is RFC 2047 encoded.
 *
 * Memory: rewrite_parse() and rewrite_copy() return malloc'd results the
 * caller frees (rewrite_msg_free(), free()).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mailutils/address.h>
#include <mailutils/errno.h>
#include <mailutils/mime.h>
#include <mailutils/sha1.h>

#include "rewrite.h"

/* One header field: raw bytes msg[start .. end), the name msg[start ..
 * start + nlen), the value after the colon at msg[value .. end). */
struct field {
	size_t	start, end, nlen, value;
};

struct rewrite_msg {
	const char *msg;
	size_t	len;
	size_t	hdr_len;	/* header bytes: the fields */
	int	has_body;	/* an empty line follows the fields */
	struct field *f;
	size_t	nf, cap;
};

/* ftext - a byte of a field name (RFC 5322: printable ASCII but colon) */
static int
ftext(unsigned char c)
{
	return (c >= 33 && c <= 126 && c != ':');
}

/* line_end - index just past the LF of the line starting at i, or len */
static size_t
line_end(const char *s, size_t len, size_t i)
{
	const char *lf = memchr(s + i, '\n', len - i);

	return (lf ? (size_t) (lf - s) + 1 : len);
}

int
rewrite_parse(const char *msg, size_t len, const struct rewrite_limits *lim,
	      struct rewrite_msg **out)
{
	static const struct rewrite_limits defaults = {REWRITE_MAX_FIELDS, REWRITE_MAX_HEADER};
	struct rewrite_msg *m;
	size_t	i = 0;

	*out = NULL;
	if (lim == NULL)
		lim = &defaults;
	if ((m = calloc(1, sizeof(*m))) == NULL)
		return (REWRITE_NOMEM);
	m->msg = msg;
	m->len = len;
	while (i < len) {
		struct field fl;
		size_t	n;

		/* The empty line. */
		if (msg[i] == '\n' || (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n')) {
			m->has_body = 1;
			break;
		}
		/* "name:" with optional white space before the colon (obsolete). */
		for (n = 0; i + n < len && ftext((unsigned char) msg[i + n]); n++)
			;
		fl.nlen = n;
		while (i + n < len && (msg[i + n] == ' ' || msg[i + n] == '\t'))
			n++;
		if (fl.nlen == 0 || i + n >= len || msg[i + n] != ':')
			break;			/* not a field: the body begins */
		fl.start = i;
		fl.value = i + n + 1;
		/* The field and its continuation lines. */
		i = line_end(msg, len, i);
		while (i < len && (msg[i] == ' ' || msg[i] == '\t'))
			i = line_end(msg, len, i);
		fl.end = i;
		if (i > lim->max_header) {
			rewrite_msg_free(m);
			return (REWRITE_TOO_BIG);
		}
		if (m->nf == m->cap) {
			size_t	cap = m->cap ? m->cap * 2 : 32;
			struct field *f;

			if (m->nf >= lim->max_fields) {
				rewrite_msg_free(m);
				return (REWRITE_TOO_MANY);
			}
			if (cap > lim->max_fields)
				cap = lim->max_fields;
			if ((f = realloc(m->f, cap * sizeof(*f))) == NULL) {
				rewrite_msg_free(m);
				return (REWRITE_NOMEM);
			}
			m->f = f;
			m->cap = cap;
		}
		m->f[m->nf++] = fl;
	}
	m->hdr_len = i;
	*out = m;
	return (REWRITE_OK);
}

void
rewrite_msg_free(struct rewrite_msg *m)
{
	if (m == NULL)
		return;
	free(m->f);
	free(m);
}

/* crlf_to_lf - copy, turning CR LF into LF; returns bytes written */
static size_t
crlf_to_lf(char *dst, const char *src, size_t len)
{
	size_t	n = 0;

	for (size_t i = 0; i < len; i++) {
		if (src[i] == '\r' && i + 1 < len && src[i + 1] == '\n')
			continue;
		dst[n++] = src[i];
	}
	return (n);
}

/* is_field - field k is called name */
static int
is_field(const struct rewrite_msg *m, size_t k, const char *name)
{
	size_t	n = strlen(name);

	return (m->f[k].nlen == n && strncasecmp(m->msg + m->f[k].start, name, n) == 0);
}

/*
 * value_copy - field k's value into buf: leading and trailing white
 * space trimmed (also where the value starts on a continuation line),
 * control characters as spaces; unfolded (CR LF before white space
 * removed) or, with folds, as the author folded it with LF line ends.
 * Returns its length, or -1 when it does not fit.
 */
static long
value_copy(const struct rewrite_msg *m, size_t k, char *buf, size_t size, int folds)
{
	const char *s = m->msg;
	size_t	n = 0, i = m->f[k].value, end = m->f[k].end;

	while (i < end && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	for (; i < end; i++) {
		unsigned char c = (unsigned char) s[i];

		if (c == '\r' && i + 1 < end && s[i + 1] == '\n')
			continue;
		if (c == '\n' && !folds)
			continue;
		if (n + 1 >= size)
			return (-1);
		buf[n++] = (char) ((c < 0x20 && c != '\t' && !(c == '\n' && folds)) ? ' ' : c);
	}
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\n'))
		n--;
	buf[n] = 0;
	return ((long) n);
}

/* unfold - field k's value, unfolded (value_copy) */
static long
unfold(const struct rewrite_msg *m, size_t k, char *buf, size_t size)
{
	return (value_copy(m, k, buf, size, 0));
}

/*
 * strip_trailing_comments - "a <b@c> (x (y)) " -> "a <b@c>": Mailutils
 * refuses anything after the last address, which RFC 5322 allows (CFWS).
 */
static void
strip_trailing_comments(char *v)
{
	size_t	n = strlen(v);

	for (;;) {
		int	depth = 0;
		size_t	i;

		while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
			v[--n] = 0;
		if (n == 0 || v[n - 1] != ')')
			return;
		/* Find the "(" that opens it, minding nesting and quoted pairs. */
		for (i = n; i > 0; i--) {
			char	c = v[i - 1];

			if (i >= 2 && v[i - 2] == '\\')
				continue;
			if (c == ')')
				depth++;
			else if (c == '(' && --depth == 0)
				break;
		}
		if (i == 0)
			return;			/* unbalanced: leave it to Mailutils */
		n = i - 1;
		v[n] = 0;
	}
}

int
rewrite_from(const struct rewrite_msg *m, struct rewrite_from *out)
{
	char	value[REWRITE_FROM_VALUE_MAX];
	mu_address_t addr = NULL;
	size_t	k = 0, count = 0, nfrom = 0;
	int	rc;

	out->n = 0;
	for (size_t j = 0; j < m->nf; j++)
		if (is_field(m, j, "From") && nfrom++ == 0)
			k = j;
	/* RFC 5322: exactly one From: field. */
	if (nfrom != 1 || unfold(m, k, value, sizeof(value)) <= 0)
		return (-1);
	strip_trailing_comments(value);
	if (value[0] == 0)
		return (-1);
	if ((rc = mu_address_create(&addr, value)) != 0)
		return (rc == ENOMEM ? -2 : -1);
	if (mu_address_get_count(addr, &count) != 0 || count == 0 || count > REWRITE_FROM_MAX) {
		mu_address_destroy(&addr);
		return (-1);
	}
	for (size_t i = 1; i <= count; i++) {
		const char *email = NULL, *at;

		/*
		 * Mailutils completes a bare local part with this host's name;
		 * a mailbox without a domain of its own is not usable, so the
		 * domain must appear in the field itself.
		 */
		if (mu_address_sget_email(addr, i, &email) != 0 || email == NULL
		    || (at = strrchr(email, '@')) == NULL || at == email || at[1] == 0
		    || strcasestr(value, at + 1) == NULL
		    || strlen(email) >= sizeof(out->addr[0])) {
			mu_address_destroy(&addr);
			out->n = 0;
			return (-1);
		}
		snprintf(out->addr[out->n++], sizeof(out->addr[0]), "%s", email);
	}
	mu_address_destroy(&addr);
	return (0);
}

const char *
rewrite_text(const struct rewrite_msg *m, size_t *len)
{
	*len = m->len;
	return (m->msg);
}

void
rewrite_digest(const struct rewrite_msg *m, char hex[41])
{
	unsigned char sum[20];

	mu_sha1_buffer(m->msg, m->len, sum);
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

long
rewrite_field(const struct rewrite_msg *m, const char *name, char *buf, size_t size)
{
	long	n;

	for (size_t k = 0; k < m->nf; k++)
		if (is_field(m, k, name)) {
			if ((n = unfold(m, k, buf, size)) < 0) {
				buf[0] = 0;
				return (-2);
			}
			return (n);
		}
	buf[0] = 0;
	return (-1);
}

void
rewrite_message_id(const struct rewrite_msg *m, char *buf, size_t len)
{
	buf[0] = 0;
	for (size_t k = 0; k < m->nf; k++)
		if (is_field(m, k, "Message-ID")) {
			if (unfold(m, k, buf, len) < 0)
				buf[0] = 0;
			return;
		}
}

/* contains - case-insensitive substring */
static int
contains(const char *hay, const char *needle, size_t nlen)
{
	for (; *hay; hay++)
		if (strncasecmp(hay, needle, nlen) == 0)
			return (1);
	return (0);
}

int
rewrite_has_list_id(const struct rewrite_msg *m, const char *group,
		    const char *domain)
{
	char	want[512], beenthere[512], v[1024];
	size_t	wlen, blen;

	/*
	 * List-Id says which list sent the copy.  Copies replace List-Id, so
	 * a loop through a second list (A -> B -> A) shows only in
	 * X-BeenThere, which every copy adds to and nobody removes.  One pass
	 * over the fields; values longer than v cannot be ours.
	 */
	wlen = (size_t) snprintf(want, sizeof(want), "<%s.%s>", group, domain);
	blen = (size_t) snprintf(beenthere, sizeof(beenthere), "%s@%s", group, domain);
	for (size_t k = 0; k < m->nf; k++) {
		const char *p;

		if (is_field(m, k, "List-Id")) {
			if (unfold(m, k, v, sizeof(v)) > 0 && contains(v, want, wlen))
				return (1);
		} else if (is_field(m, k, "X-BeenThere")) {
			if (unfold(m, k, v, sizeof(v)) <= 0)
				continue;
			p = v + strspn(v, " \t<");
			if (strncasecmp(p, beenthere, blen) == 0
			    && (p[blen] == 0 || strchr(" \t>", p[blen]) != NULL))
				return (1);
		}
	}
	return (0);
}

/* drop_field - header fields the copy replaces or must not carry */
static int
drop_field(const char *name, size_t nlen, int is_group)
{
	static const char *const always[] = {"Sender", "Bcc", "Fcc", "Resent-Bcc"};
	static const char *const groups[] = {"Precedence", "X-Auto-Response-Suppress"};

	if (nlen > 5 && strncasecmp(name, "List-", 5) == 0)
		return (1);
	for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
		if (nlen == strlen(always[i]) && strncasecmp(name, always[i], nlen) == 0)
			return (1);
	if (is_group)
		for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
			if (nlen == strlen(groups[i]) && strncasecmp(name, groups[i], nlen) == 0)
				return (1);
	return (0);
}

/* phrase - the description as an RFC 5322 phrase (malloc'd) */
static char *
phrase(const char *desc)
{
	size_t	len = strlen(desc);
	char   *clean, *out, *p;
	int	ascii = 1, special = 0;

	if ((clean = malloc(len + 1)) == NULL)
		return (NULL);
	for (size_t i = 0; i <= len; i++) {
		unsigned char c = (unsigned char) desc[i];

		clean[i] = (char) ((c && (c < 0x20 || c == 0x7f)) ? ' ' : c);
		if (c >= 0x80)
			ascii = 0;
		else if (c && strchr("()<>[]:;@\\,.\"", c))
			special = 1;
	}
	if (!ascii) {
		if (mu_rfc2047_encode("UTF-8", "base64", clean, &out) == 0) {
			free(clean);
			return (out);
		}
		/* Fall through: quote the raw bytes rather than fail. */
	}
	if (!special && ascii)
		return (clean);
	if ((out = malloc(2 * len + 3)) == NULL) {
		free(clean);
		return (NULL);
	}
	p = out;
	*p++ = '"';
	for (const char *s = clean; *s; s++) {
		if (*s == '"' || *s == '\\')
			*p++ = '\\';
		*p++ = *s;
	}
	*p++ = '"';
	*p = 0;
	free(clean);
	return (out);
}

/* name_is - field f of m is called name */
static int
name_is(const struct rewrite_msg *m, const struct field *f, const char *name)
{
	size_t	n = strlen(name);

	return (f->nlen == n && strncasecmp(m->msg + f->start, name, n) == 0);
}

/* has_field - m has a field called name */
static int
has_field(const struct rewrite_msg *m, const char *name)
{
	for (size_t k = 0; k < m->nf; k++)
		if (name_is(m, &m->f[k], name))
			return (1);
	return (0);
}

#define MUNGE_NAME_MAX	200	/* bytes of the author's name in the new From: */

/* phrase_safe - can name (with encoded words) stand as a phrase as it
 * is: atext, dots, blanks and encoded words only, nothing that would
 * end the phrase or start another mailbox? */
static int
phrase_safe(const char *name)
{
	for (const unsigned char *c = (const unsigned char *) name; *c; c++)
		if (!(isalnum(*c) || strchr(" \t=?_-!#$%&'*+/^`{|}~.", *c) != NULL))
			return (0);
	return (1);
}

/*
 * munged_from - the From: field of a munged copy for the author's From:
 * value v (unfolded): `From: "Alice via club" <club@domain>`, malloc'd
 * with its LF.  The author's display name is the phrase before "<", its
 * quotes taken off, when From: names one mailbox (else the first
 * address, addr, stands for it).  A phrase of encoded words is kept as
 * it is (each one a whole word, "via club" following as a quoted
 * string) only when nothing in it could end the phrase; anything else is
 * quoted.  A name over MUNGE_NAME_MAX bytes gives way to the address
 * (cut there when the address is longer still), so the line stays short.
 */
static char *
munged_from(const char *v, int single, const char *addr, const char *group,
	    const char *domain)
{
	const char *lt = strchr(v, '<');
	size_t	len, cap;
	char   *name, *out, *p;
	int	encoded, quoted = 0;

	while (*v == ' ' || *v == '\t')
		v++;
	len = single && lt ? (size_t) (lt - v) : 0;
	while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
		len--;
	if (len >= 2 && v[0] == '"' && v[len - 1] == '"') {
		v++;
		len -= 2;
		quoted = 1;
	}
	if (len == 0 || len > MUNGE_NAME_MAX) {	/* no usable phrase: the address */
		v = addr;
		len = strlen(addr);
		quoted = 1;
		if (len > MUNGE_NAME_MAX)
			len = MUNGE_NAME_MAX;
	}
	if ((name = malloc(len + 1)) == NULL)
		return (NULL);
	for (size_t i = 0, j = 0; i <= len; i++)	/* unquote \x */
		if (i == len)
			name[j] = 0;
		else if (!(v[i] == '\\' && i + 1 < len))
			name[j++] = v[i];
		else
			name[j++] = v[++i];
	encoded = strstr(name, "=?") != NULL && !quoted && phrase_safe(name);
	cap = 2 * strlen(name) + 2 * strlen(group) + strlen(domain) + 64;
	if ((out = malloc(cap)) == NULL) {
		free(name);
		return (NULL);
	}
	p = out + snprintf(out, cap, "From: ");
	if (encoded)
		p += snprintf(p, cap - (size_t) (p - out), "%s \"via ", name);
	else {
		*p++ = '"';
		for (const char *c = name; *c; c++) {
			if (*c == '"' || *c == '\\')
				*p++ = '\\';
			*p++ = (unsigned char) *c < 0x20 ? ' ' : *c;
		}
		p += snprintf(p, cap - (size_t) (p - out), " via ");
	}
	for (const char *c = group; *c; c++) {
		if (*c == '"' || *c == '\\')
			*p++ = '\\';
		*p++ = *c;
	}
	snprintf(p, cap - (size_t) (p - out), "\" <%s@%s>\n", group, domain);
	free(name);
	return (out);
}

/* The parts of a munged copy (munge_from). */
struct munge {
	char	from[REWRITE_FROM_VALUE_MAX + 1];	/* the author's, as folded */
	char   *field;			/* the new From: field */
	int	reply_to;		/* the post has a Reply-To */
	int	cc;			/* ... and a Cc to extend (the first) */
	int	cc_done;		/* it is extended */
	int	from_done;		/* the new From: is written */
};

/* munge_prepare - read the author's From: for a munged copy: 1 (mu
 * filled in), 0 (cannot: leave From: alone), -1 (no memory) */
static int
munge_prepare(const struct rewrite_msg *m, const char *group, const char *domain,
	      struct munge *mu)
{
	struct rewrite_from from;
	char	v[REWRITE_FROM_VALUE_MAX + 1];
	size_t	k;
	int	rc;

	memset(mu, 0, sizeof(*mu));
	if ((rc = rewrite_from(m, &from)) == -2)
		return (-1);
	if (rc < 0 || rewrite_field(m, "From", v, sizeof(v)) <= 0)
		return (0);
	for (k = 0; k < m->nf && !name_is(m, &m->f[k], "From"); k++)
		;
	if (k == m->nf || value_copy(m, k, mu->from, sizeof(mu->from), 1) <= 0)
		return (0);
	if ((mu->field = munged_from(v, from.n == 1, from.addr[0], group, domain)) == NULL)
		return (-1);
	mu->reply_to = has_field(m, "Reply-To");
	mu->cc = mu->reply_to && has_field(m, "Cc");
	return (1);
}

/* munge_field - field f of a munged copy into out: the new From:, a Cc:
 * with the author added, or 0 (copy it as it is); the bytes written,
 * (size_t) -1 for a field left out */
static size_t
munge_field(const struct rewrite_msg *m, const struct field *f, struct munge *mu, char *out)
{
	size_t	n;

	/* A second From: (posting = anyone lets it through) goes. */
	if (name_is(m, f, "From") && mu->from_done++)
		return ((size_t) -1);
	if (name_is(m, f, "From"))
		return ((size_t) sprintf(out, "%s", mu->field));
	if (!mu->cc || mu->cc_done || !name_is(m, f, "Cc"))
		return (0);
	mu->cc_done = 1;		/* the first Cc: alone */
	n = crlf_to_lf(out, m->msg + f->start, f->end - f->start);
	while (n > 0 && out[n - 1] == '\n')
		n--;
	return (n + (size_t) sprintf(out + n, ",\n %s\n", mu->from));
}

/* munge_tail - the fields a munged copy adds: Reply-To or Cc, and
 * X-Original-From */
static size_t
munge_tail(const struct munge *mu, char *out)
{
	size_t	n = 0;

	if (!mu->reply_to)
		n += (size_t) sprintf(out + n, "Reply-To: %s\n", mu->from);
	else if (!mu->cc)
		n += (size_t) sprintf(out + n, "Cc: %s\n", mu->from);
	return (n + (size_t) sprintf(out + n, "X-Original-From: %s\n", mu->from));
}

char   *
rewrite_copy(const struct rewrite_msg *m, struct rewrite_list *l, size_t *outlen)
{
	const char *s = m->msg;
	char   *out, *ph = NULL, *group, cmds[1400];
	size_t	n = 0, cap, glen = strlen(l->group);
	struct munge mu;
	int	w, munge = 0;

	if ((group = malloc(glen + 1)) == NULL)
		return (NULL);
	for (size_t k = 0; k <= glen; k++)
		group[k] = (char) tolower((unsigned char) l->group[k]);
	if (l->description && *l->description && (ph = phrase(l->description)) == NULL) {
		free(group);
		return (NULL);
	}
	l->munged = 0;
	if (l->munge_from && (munge = munge_prepare(m, group, l->domain, &mu)) < 0) {
		free(group);
		free(ph);
		return (NULL);
	}
	cap = m->len + 2048 + 3 * glen + (ph ? strlen(ph) : 0)
		+ 8 * strlen(l->domain) + (munge ? 4 * sizeof(mu.from) + 2 * glen : 0);
	if ((out = malloc(cap)) == NULL) {
		free(group);
		free(ph);
		if (munge)
			free(mu.field);
		return (NULL);
	}
	/* The header, one field (with its continuation lines) at a time. */
	for (size_t k = 0; k < m->nf; k++) {
		const struct field *f = &m->f[k];
		size_t	c;

		if (drop_field(s + f->start, f->nlen, l->is_group))
			continue;
		if (munge && (c = munge_field(m, f, &mu, out + n)) > 0) {
			n += c == (size_t) -1 ? 0 : c;
			continue;
		}
		n += crlf_to_lf(out + n, s + f->start, f->end - f->start);
	}
	if (munge) {
		if (n > 0 && out[n - 1] != '\n')
			out[n++] = '\n';
		n += munge_tail(&mu, out + n);
		free(mu.field);
		l->munged = 1;
	}
	if (n > 0 && out[n - 1] != '\n')
		out[n++] = '\n';
	/* The list headers. */
	if (l->delim)
		snprintf(cmds, sizeof(cmds),
			 "List-Unsubscribe: <mailto:%s%cunsubscribe@%s>\n"
			 "List-Help: <mailto:%s%chelp@%s>\n"
			 "List-Subscribe: <mailto:%s%csubscribe@%s>\n",
			 group, l->delim, l->domain, group, l->delim, l->domain,
			 group, l->delim, l->domain);
	else
		snprintf(cmds, sizeof(cmds),
			 "List-Unsubscribe: <mailto:%s@%s?subject=unsubscribe%%20%s>\n"
			 "List-Help: <mailto:%s@%s?subject=help>\n"
			 "List-Subscribe: <mailto:%s@%s?subject=subscribe%%20%s>\n",
			 l->postmaster_local, l->domain, group,
			 l->postmaster_local, l->domain,
			 l->postmaster_local, l->domain, group);
	w = snprintf(out + n, cap - n,
		     "X-BeenThere: %s@%s\n"
		     "Sender: %s@%s\n"
		     "List-Id: %s%s<%s.%s>\n"
		     "%s"
		     "List-Post: <mailto:%s@%s>\n"
		     "%s",
		     group, l->domain,
		     l->bounce_local, l->domain,
		     ph ? ph : "", ph ? " " : "", group, l->domain,
		     cmds,
		     group, l->domain,
		     l->is_group ? "Precedence: bulk\nX-Auto-Response-Suppress: OOF\n" : "");
	free(ph);
	free(group);
	if (w < 0 || (size_t) w >= cap - n) {
		free(out);
		return (NULL);
	}
	n += (size_t) w;
	/* The empty line and the body, unchanged but for line ends; a body
	 * that began with a line that is no field gets its empty line. */
	if (!m->has_body && m->hdr_len < m->len)
		out[n++] = '\n';
	n += crlf_to_lf(out + n, s + m->hdr_len, m->len - m->hdr_len);
	*outlen = n;
	return (out);
}
