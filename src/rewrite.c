/*
 * rewrite.c - the list copy of a post.
 *
 * Header fields are read with Mailutils (mu_header for values, mu_address
 * for the From: mailbox), so display names, comments, quoted local parts
 * and encoded words are handled as RFC 5322 and RFC 2047 say.  The copy
 * itself is built from the raw bytes: fields we do not touch, their
 * folding and the body stay byte for byte as received.  Mailutils' header
 * parser wants LF line ends, so it is handed an LF copy of the header.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <mailutils/address.h>
#include <mailutils/errno.h>
#include <mailutils/header.h>
#include <mailutils/mime.h>
#include <mailutils/sha1.h>

#include "rewrite.h"

struct rewrite_msg {
	const char *msg;
	size_t	len;
	size_t	hdr_len;	/* header bytes, up to the empty line */
	int	has_body;	/* an empty line separates header and body */
	char   *hdr_lf;		/* LF copy of the header for Mailutils */
	mu_header_t hdr;	/* NULL when Mailutils could not parse it */
};

/* find_header_end - length of the header; sets *has_body */
static size_t
find_header_end(const char *m, size_t len, int *has_body)
{
	size_t	i = 0;

	*has_body = 0;
	while (i < len) {
		/* At the start of a line. */
		if (m[i] == '\r' && i + 1 < len && m[i + 1] == '\n') {
			*has_body = 1;
			return (i);
		}
		if (m[i] == '\n') {		/* tolerate LF-only input */
			*has_body = 1;
			return (i);
		}
		while (i < len && m[i] != '\n')
			i++;
		i++;
	}
	return (len);
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

struct rewrite_msg *
rewrite_parse(const char *msg, size_t len)
{
	struct rewrite_msg *m;
	size_t	n;

	if ((m = calloc(1, sizeof(*m))) == NULL)
		return (NULL);
	m->msg = msg;
	m->len = len;
	m->hdr_len = find_header_end(msg, len, &m->has_body);
	if ((m->hdr_lf = malloc(m->hdr_len + 2)) == NULL) {
		free(m);
		return (NULL);
	}
	n = crlf_to_lf(m->hdr_lf, msg, m->hdr_len);
	m->hdr_lf[n++] = '\n';		/* Mailutils wants the empty line */
	m->hdr_lf[n] = 0;
	if (mu_header_create(&m->hdr, m->hdr_lf, n) != 0)
		m->hdr = NULL;		/* treated as "no From:" */
	return (m);
}

void
rewrite_msg_free(struct rewrite_msg *m)
{
	if (m == NULL)
		return;
	if (m->hdr)
		mu_header_destroy(&m->hdr);
	free(m->hdr_lf);
	free(m);
}

int
rewrite_from(const struct rewrite_msg *m, char *buf, size_t len)
{
	char   *value = NULL;
	mu_address_t addr = NULL;
	const char *email = NULL;
	int	rc = -1;

	if (m->hdr == NULL
	    || mu_header_aget_value_unfold_n(m->hdr, "From", 1, &value) != 0)
		return (-1);
	/*
	 * Mailutils completes a bare local part with this host's name; a
	 * From: without a domain of its own is not a usable address, so the
	 * domain must appear in the field itself.
	 */
	if (mu_address_create(&addr, value) == 0
	    && mu_address_sget_email(addr, 1, &email) == 0 && email && *email
	    && strchr(email, '@') && strcasestr(value, strrchr(email, '@') + 1)
	    && strlen(email) < len) {
		snprintf(buf, len, "%s", email);
		rc = 0;
	}
	mu_address_destroy(&addr);
	free(value);
	return (rc);
}

void
rewrite_digest(const struct rewrite_msg *m, char hex[41])
{
	unsigned char sum[20];

	mu_sha1_buffer(m->msg, m->len, sum);
	for (int i = 0; i < 20; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

void
rewrite_message_id(const struct rewrite_msg *m, char *buf, size_t len)
{
	const char *v;

	buf[0] = 0;
	if (m->hdr && mu_header_sget_value(m->hdr, "Message-ID", &v) == 0)
		snprintf(buf, len, "%s", v);
}

int
rewrite_has_list_id(const struct rewrite_msg *m, const char *group,
		    const char *domain)
{
	char	want[512];
	size_t	wlen;

	if (m->hdr == NULL)
		return (0);
	/*
	 * List-Id says which list sent the copy.  Copies replace List-Id, so
	 * a loop through a second list (A -> B -> A) shows only in
	 * X-BeenThere, which every copy adds to and nobody removes.
	 */
	wlen = (size_t) snprintf(want, sizeof(want), "<%s.%s>", group, domain);
	for (int i = 1;; i++) {
		const char *v;

		if (mu_header_sget_value_n(m->hdr, "List-Id", i, &v) != 0)
			break;
		for (const char *p = v; *p; p++)
			if (strncasecmp(p, want, wlen) == 0)
				return (1);
	}
	wlen = (size_t) snprintf(want, sizeof(want), "%s@%s", group, domain);
	for (int i = 1;; i++) {
		const char *v;

		if (mu_header_sget_value_n(m->hdr, "X-BeenThere", i, &v) != 0)
			return (0);
		v += strspn(v, " \t<");
		if (strncasecmp(v, want, wlen) == 0
		    && (v[wlen] == 0 || strchr(" \t>", v[wlen]) != NULL))
			return (1);
	}
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

char   *
rewrite_copy(const struct rewrite_msg *m, const struct rewrite_list *l,
	     size_t *outlen)
{
	const char *s = m->msg;
	char   *out, *ph = NULL, *group;
	size_t	n = 0, i = 0, cap, glen = strlen(l->group);
	int	w;

	if ((group = malloc(glen + 1)) == NULL)
		return (NULL);
	for (size_t k = 0; k <= glen; k++)
		group[k] = (char) tolower((unsigned char) l->group[k]);
	if (l->description && *l->description && (ph = phrase(l->description)) == NULL) {
		free(group);
		return (NULL);
	}
	cap = m->len + 2048 + 3 * glen + (ph ? strlen(ph) : 0)
		+ 8 * strlen(l->domain);
	if ((out = malloc(cap)) == NULL) {
		free(group);
		free(ph);
		return (NULL);
	}
	/* The header, one field (with its continuation lines) at a time. */
	while (i < m->hdr_len) {
		size_t	start = i, nlen;

		do {
			while (i < m->hdr_len && s[i] != '\n')
				i++;
			i++;
		} while (i < m->hdr_len && (s[i] == ' ' || s[i] == '\t'));
		if (i > m->hdr_len)
			i = m->hdr_len;
		for (nlen = 0; start + nlen < i && s[start + nlen] != ':'
		     && s[start + nlen] != '\n'; nlen++)
			;
		if (start + nlen < i && s[start + nlen] == ':') {
			size_t	name = nlen;

			while (name > 0 && (s[start + name - 1] == ' '
					    || s[start + name - 1] == '\t'))
				name--;
			if (drop_field(s + start, name, l->is_group))
				continue;
		}
		n += crlf_to_lf(out + n, s + start, i - start);
	}
	if (n > 0 && out[n - 1] != '\n')
		out[n++] = '\n';
	/* The list headers. */
	w = snprintf(out + n, cap - n,
		     "X-BeenThere: %s@%s\n"
		     "Sender: %s@%s\n"
		     "List-Id: %s%s<%s.%s>\n"
		     "List-Unsubscribe: <mailto:%s@%s?subject=unsubscribe%%20%s>\n"
		     "List-Help: <mailto:%s@%s?subject=help>\n"
		     "List-Subscribe: <mailto:%s@%s?subject=subscribe%%20%s>\n"
		     "List-Post: <mailto:%s@%s>\n"
		     "%s",
		     group, l->domain,
		     l->bounce_local, l->domain,
		     ph ? ph : "", ph ? " " : "", group, l->domain,
		     l->postmaster_local, l->domain, group,
		     l->postmaster_local, l->domain,
		     l->postmaster_local, l->domain, group,
		     group, l->domain,
		     l->is_group ? "Precedence: bulk\nX-Auto-Response-Suppress: OOF\n" : "");
	free(ph);
	free(group);
	if (w < 0 || (size_t) w >= cap - n) {
		free(out);
		return (NULL);
	}
	n += (size_t) w;
	/* The empty line and the body, unchanged but for line ends. */
	if (m->has_body)
		n += crlf_to_lf(out + n, s + m->hdr_len, m->len - m->hdr_len);
	*outlen = n;
	return (out);
}
