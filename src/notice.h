/* notice.h - the mail mlistd writes itself: answers to command addresses */
#ifndef MLISTD_NOTICE_H
#define MLISTD_NOTICE_H

#include <stddef.h>

#define NOTICE_TEMPLATE_MAX	(16 * 1024)	/* bytes of a template file */
#define NOTICE_MAX		(256 * 1024)	/* bytes of a notice */
#define NOTICE_LINE_MAX		900		/* bytes of a one-line value */
#define NOTICE_CHANGES_MAX	(64 * 1024)	/* bytes of ${changes} */
#define NOTICE_LIST_MAX		64		/* bytes of a list's name */

/* What ${name} stands for in a template (NULL or "": empty).  Values go
 * in as they are, but for those marked one line (controls become
 * spaces, at most NOTICE_LINE_MAX bytes, then "...") and ${changes}
 * (CRs dropped, at most NOTICE_CHANGES_MAX bytes cut at a line's end,
 * then "..."). */
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
	const char *approve;		/* LIST+approve+TOKEN@DOMAIN */
	const char *reject;		/* LIST+reject+TOKEN@DOMAIN */
	const char *discard;		/* LIST+discard+TOKEN@DOMAIN */
	const char *held_subject;	/* the held post's Subject: one line */
	const char *held_from;		/* the held post's From: one line */
	const char *decision;		/* "approve", "reject", ...: one line */
	const char *decided_by;		/* who decided: one line */
	const char *changes;		/* lines of text, LF-ended */
};

/* notice_builtin - the built-in text of template name (compiled in from
 * contrib/templates), or NULL: no such template */
const char *notice_builtin(const char *name);

/*
 * notice_load - template name, malloc'd: template-dir/LIST/name when the
 * list (may be NULL) has its own file there, else dir/name.  NULL when it
 * cannot be used, with why set ("" when no file exists, which is normal:
 * the built-in text applies).  A file over NOTICE_TEMPLATE_MAX bytes, not
 * a regular file, or without its "Subject:" line first is not used (nor
 * the global file then: the built-in text applies).  A list name that is
 * empty, has a slash or begins with a dot has no directory of its own.
 */
char   *notice_load(const char *dir, const char *list, const char *name, char *why,
		    size_t whylen);

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

/*
 * notice_build_attached - notice_build with the same header, but a
 * multipart/mixed body: the template's text as text/plain, then the
 * message attach[0 .. attach_len) as message/rfc822, its bytes as they
 * are but for CR LF written as LF, under a boundary that occurs in
 * neither part (attach NULL: notice_build's text/plain).  The length is
 * the caller's to bound (the notice may be NOTICE_MAX bytes longer).
 * *eightbit is also 1 when the attached message has 8-bit bytes.
 * Malloc'd; NULL when memory is short.
 */
char   *notice_build_attached(const char *tmpl, const struct notice_vars *, const char *from,
			      const char *reply_to, const char *in_reply_to,
			      const char *attach, size_t attach_len, size_t *len,
			      int *eightbit);

#endif
