/* bounce.h - DSN parsing (RFC 3464), VERP tags, the bounce Maildir */
#ifndef MLISTD_BOUNCE_H
#define MLISTD_BOUNCE_H

#include <stddef.h>

#define BOUNCE_MAX_RCPTS 100	/* distinct recipients kept from one report */

/* One failed (or delayed) recipient found in a delivery-status report. */
struct bounce_rcpt {
	char	address[256];
	char	status[32];		/* "5.1.1", or "" */
	char	action[32];		/* "failed", "delayed", ..., or "" */
	char	diagnostic[1024];	/* "smtp; 550 ...", unfolded, or "" */
};

struct bounce_report {
	struct bounce_rcpt *rcpt;	/* malloc'd array */
	size_t	nrcpt;
	char	list_id[256];		/* List-Id of the returned message, "" */
	int	is_dsn;			/* a message/delivery-status part was seen */
};

/*
 * bounce_parse - read a bounce (CRLF or LF line ends) defensively: every
 * size is bounded, nothing is allocated beyond BOUNCE_MAX_RCPTS entries;
 * a recipient named twice is kept once (the first, unless a later one
 * says failed where the first did not).
 * Returns 0 (rep filled, possibly with no recipients) or -1 when memory
 * is short.  Free with bounce_report_free().
 */
int	bounce_parse(const char *msg, size_t len, struct bounce_report *rep);
void	bounce_report_free(struct bounce_report *);

/*
 * bounce_list_name - the list local part from a List-Id value
 * "... <group.domain>" when domain matches; 0, or -1.
 */
int	bounce_list_name(const char *list_id, const char *domain, char *buf,
			 size_t len);

/*
 * bounce_verp_decode - "bounce+alice=example.org" (XVERP=+= form) gives
 * "alice@example.org".  Returns 0, or -1 when the local part has no tag
 * that decodes to an address.
 */
int	bounce_verp_decode(const char *local, const char *bounce_local,
			   char *addr, size_t len);

/*
 * The Maildir.  maildir_create makes DIR with tmp/, new/, cur/.
 * maildir_write writes msg (CR LF turned into LF, the Maildir convention)
 * to tmp/, fsyncs it, and returns the unique base name; maildir_publish
 * renames it into new/ and fsyncs the directory; maildir_unlink removes
 * it again from tmp/ or new/.  All return 0, or -1 with a message in err.
 */
int	maildir_create(const char *dir, char *err, size_t errlen);
int	maildir_write(const char *dir, const char *msg, size_t len,
		      char *name, size_t namelen, char *err, size_t errlen);
int	maildir_publish(const char *dir, const char *name, char *err,
			size_t errlen);
void	maildir_unlink(const char *dir, const char *sub, const char *name);

#endif
