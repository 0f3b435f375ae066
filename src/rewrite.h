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
};

struct rewrite_msg;

/*
 * rewrite_parse - index a received message (CRLF line ends, dot-stuffing
 * undone, as the SMTP engine delivers it) and parse its header with
 * Mailutils.  The message bytes must outlive the result.  Returns NULL
 * only when memory is short.
 */
struct rewrite_msg *rewrite_parse(const char *msg, size_t len);
void	rewrite_msg_free(struct rewrite_msg *);

/*
 * rewrite_from - the address of the first mailbox in From:, parsed as
 * RFC 5322 (display names, comments, quoting, encoded words).  Returns 0
 * and the address in buf, or -1 when there is no usable From:.
 */
int	rewrite_from(const struct rewrite_msg *, char *buf, size_t len);

/* rewrite_digest - SHA-1 of the message as received, 40 hex digits */
void	rewrite_digest(const struct rewrite_msg *, char hex[41]);

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
 * (loop detection across lists).  Returns a malloc'd buffer the caller frees, or NULL when
 * memory is short.
 */
char   *rewrite_copy(const struct rewrite_msg *, const struct rewrite_list *,
		     size_t *outlen);

#endif
