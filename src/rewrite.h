/* rewrite.h - read a post's header, build the list copy */
#ifndef MLISTD_REWRITE_H
#define MLISTD_REWRITE_H

#include <stddef.h>

/* What the list headers of one copy are made of. */
struct rewrite_list {
	const char *group;		/* list name (local part) */
	const char *description;	/* "" or NULL: none */
	const char *domain;
	const char *bounce_local;
	const char *postmaster_local;
	int	is_group;		/* add Precedence, X-Auto-Response-Suppress */
	char	delim;			/* not 0: the list has command addresses
					 * (LIST+subscribe, ...) for List-* */
	int	munge_from;		/* DMARC: From: becomes the list's (see
					 * rewrite_copy) */
	int	munged;			/* out: it did (0: the From: could not
					 * be read, left as it was) */
};

struct rewrite_msg;

/* Caps on the header (over them the message is refused: it is bad). */
struct rewrite_limits {
	size_t	max_fields;		/* header fields */
	size_t	max_header;		/* header bytes */
};

#define REWRITE_MAX_FIELDS	1000
#define REWRITE_MAX_HEADER	(256 * 1024)

enum {
	REWRITE_OK = 0,
	REWRITE_NOMEM = -1,		/* answer 452 */
	REWRITE_TOO_MANY = -2,		/* more than max_fields fields */
	REWRITE_TOO_BIG = -3		/* more than max_header bytes */
};

/*
 * rewrite_parse - tokenize a received message's header (CRLF line ends,
 * dot-stuffing undone, as the SMTP engine delivers it; LF alone is
 * tolerated) in one linear pass.  The header ends at the empty line, or
 * at the first line that is neither a field nor a continuation line.
 * The message bytes must outlive the result.  lim NULL: the defaults.
 * Returns REWRITE_OK with *out set, or an error above.
 */
int	rewrite_parse(const char *msg, size_t len, const struct rewrite_limits *lim,
		      struct rewrite_msg **out);
void	rewrite_msg_free(struct rewrite_msg *);

#define REWRITE_FROM_MAX	8	/* mailboxes in one From: */
#define REWRITE_FROM_VALUE_MAX	4096	/* bytes of its unfolded value */

struct rewrite_from {
	size_t	n;
	char	addr[REWRITE_FROM_MAX][257];
};

/*
 * rewrite_from - the addresses of the mailboxes in the From: field,
 * parsed as RFC 5322 (display names, comments and white space anywhere,
 * quoting, encoded words, folding).  0 with out filled in; -1 when there
 * is no usable From: (none, two From: fields, an unparsable or domainless
 * mailbox, more than REWRITE_FROM_MAX); -2 when memory is short.
 */
int	rewrite_from(const struct rewrite_msg *, struct rewrite_from *out);

/* rewrite_text - the message as parsed (CRLF, dot-stuffing undone) */
const char *rewrite_text(const struct rewrite_msg *, size_t *len);

/* rewrite_digest - SHA-1 of the message as received, 40 hex digits */
void	rewrite_digest(const struct rewrite_msg *, char hex[41]);

/* rewrite_field - the first field called name, unfolded (controls as
 * spaces, trimmed) into buf: its length, -1 when there is none, -2 when
 * its value does not fit */
long	rewrite_field(const struct rewrite_msg *, const char *name, char *buf,
		      size_t size);

/* rewrite_message_id - the Message-ID field, or "" (bounded copy) */
void	rewrite_message_id(const struct rewrite_msg *, char *buf, size_t len);

/* rewrite_has_list_id - has the message been through this list already:
 * a List-Id: with <group.domain>, or an X-BeenThere: group@domain? */
int	rewrite_has_list_id(const struct rewrite_msg *, const char *group,
			    const char *domain);

/*
 * rewrite_copy - the copy for one list, with LF line ends (the SMTP
 * client restores CRLF and dot-stuffing).  The original header fields and
 * the body are kept byte for byte, except: Sender, every List-* field,
 * Bcc and Fcc are removed (and Precedence and X-Auto-Response-Suppress
 * when is_group); then Sender, List-Id, List-Unsubscribe, List-Help,
 * List-Subscribe, List-Post (and Precedence: bulk,
 * X-Auto-Response-Suppress: OOF when is_group) are added at the end of
 * the header, after an X-BeenThere: group@domain that is never removed
 * (loop detection across lists).  List-Unsubscribe, List-Help and
 * List-Subscribe name the list's command addresses when delim is set,
 * else the postmaster with a subject.
 *
 * With munge_from (DMARC mitigation) the From: field, in its place,
 * becomes `"Author via group" <group@domain>` (the author's display
 * name, or address when there is none; encoded words kept as whole
 * words), the original From: value is kept in X-Original-From:, and the
 * author stays one reply away: Reply-To: the original From:, or, when
 * the post has a Reply-To already, the original From: added to Cc: (to
 * its Cc: field if there is one).  l->munged says whether it was done (a
 * From: value over REWRITE_FROM_VALUE_MAX is left alone).
 *
 * Returns a malloc'd buffer the caller frees, or NULL when memory is
 * short.
 */
char   *rewrite_copy(const struct rewrite_msg *, struct rewrite_list *, size_t *outlen);

#endif
