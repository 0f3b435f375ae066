/* notice.h - the mail mlistd writes itself: answers to command addresses */
#ifndef MLISTD_NOTICE_H
#define MLISTD_NOTICE_H

#include <stddef.h>

#define NOTICE_TEMPLATE_MAX	(16 * 1024)	/* bytes of a template file */
#define NOTICE_MAX		(256 * 1024)	/* bytes of a notice */

/* What ${name} stands for in a template (NULL or "": empty). */
struct notice_vars {
	const char *list;		/* the list's name */
	const char *description;	/* groups.description */
	const char *domain;
	const char *address;		/* the subscriber */
	const char *post;		/* LIST@DOMAIN */
	const char *subscribe;		/* LIST+subscribe@DOMAIN */
	const char *unsubscribe;
	const char *help;
	const char *confirm;		/* LIST+confirm+TOKEN@DOMAIN */
	const char *owner;		/* the postmaster's address */
	const char *expires;		/* when the token expires, UTC */
};

/* notice_builtin - the built-in text of template name (compiled in from
 * contrib/templates), or NULL: no such template */
const char *notice_builtin(const char *name);

/*
 * notice_load - template name from dir, malloc'd.  NULL when it cannot be
 * used, with why set ("" when the file does not exist, which is normal:
 * the built-in text applies).  A file over NOTICE_TEMPLATE_MAX bytes, not
 * a regular file, or without its "Subject:" line first is not used.
 */
char   *notice_load(const char *dir, const char *name, char *why, size_t whylen);

/*
 * notice_build - the whole message for a template (LF line ends,
 * malloc'd; NULL when memory is short): From (with the list's name as
 * display name), To, the template's Subject with the variables
 * substituted (RFC 2047 encoded when not ASCII), Date, Message-ID,
 * In-Reply-To and References (the request's Message-ID, when usable),
 * Reply-To (reply_to, when not NULL), Auto-Submitted: auto-replied
 * (RFC 3834), X-Auto-Response-Suppress, MIME-Version and a text/plain
 * UTF-8 body.  *eightbit says whether it needs BODY=8BITMIME.
 */
char   *notice_build(const char *tmpl, const struct notice_vars *, const char *from,
		     const char *reply_to, const char *in_reply_to, size_t *len,
		     int *eightbit);

#endif
