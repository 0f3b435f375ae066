/* smtp_session.h - SMTP server state machine: bytes in, replies out */
#ifndef MLISTD_SMTP_SESSION_H
#define MLISTD_SMTP_SESSION_H

#include <stddef.h>

#define SMTP_ADDR_MAX	256	/* RFC 5321 path limit, brackets excluded */
#define SMTP_TEXT_MAX	400	/* reply text a handler may set */
#define SMTP_ID_MAX	24

struct smtp_limits {
	size_t	max_command_length;	/* CRLF included (RFC 5321: 512) */
	size_t	max_line_length;	/* message text line, CRLF included */
	size_t	max_message_size;	/* SIZE, and the end-of-data check */
	unsigned max_recipients;	/* beyond: 452 4.5.3 */
	unsigned max_errors;		/* then 421 and close */
};

/* A reply from a handler: code and text starting with the enhanced code. */
struct smtp_reply {
	int	code;
	char	text[SMTP_TEXT_MAX];	/* e.g. "2.1.5 Ok" */
};

/* The transaction as the handlers see it; owned by the session. */
struct smtp_envelope {
	char	id[SMTP_ID_MAX];	/* set by the mail handler, may be "" */
	const char *helo;
	const char *sender;		/* "" for the null sender <> */
	char  **rcpt;			/* accepted recipients */
	size_t	nrcpt;
	unsigned long size;		/* SIZE= parameter, 0 if none */
	int	body_8bit;		/* BODY=8BITMIME */
	int	smtputf8;		/* SMTPUTF8 */
};

/*
 * Handlers run synchronously from smtp_session_feed().  Each fills in the
 * reply; code 250 accepts.  The mail handler may be NULL (accept all).
 * The data handler gets the message with dot-stuffing undone and CRLF line
 * ends as received; it must not keep the pointer.
 */
struct smtp_handlers {
	void	(*mail) (void *ctx, struct smtp_envelope *env,
			 struct smtp_reply *reply);
	void	(*rcpt) (void *ctx, const struct smtp_envelope *env,
			 const char *rcpt, struct smtp_reply *reply);
	void	(*data) (void *ctx, const struct smtp_envelope *env,
			 const char *msg, size_t len, struct smtp_reply *reply);
	/* Called when a transaction ends without DATA (RSET, QUIT, ...). */
	void	(*abort) (void *ctx, const struct smtp_envelope *env);
};

struct smtp_session;

/*
 * smtp_session_create - a new session; the greeting is already queued.
 * Returns NULL when memory is short.  hostname appears in replies.
 */
struct smtp_session *smtp_session_create(const struct smtp_limits *,
					 const struct smtp_handlers *,
					 void *ctx, const char *hostname);
void	smtp_session_free(struct smtp_session *);

/*
 * smtp_session_feed - consume client bytes, run complete commands in
 * order, queue their replies.  Returns how many bytes were consumed: it
 * stops early when the session closed or when enough output is pending
 * that the caller must flush it first (so a client that never reads
 * cannot grow our output buffer).  Feed the rest again after flushing.
 */
size_t	smtp_session_feed(struct smtp_session *, const char *buf, size_t len);

/* Pending output, and how much of it was written. */
const char *smtp_session_output(const struct smtp_session *, size_t *len);
void	smtp_session_drain(struct smtp_session *, size_t n);

/* Nothing more will be read: after QUIT, 421 or a fatal error. */
int	smtp_session_closed(const struct smtp_session *);

/* Count of complete command and text lines seen; the I/O layer uses it
 * to restart its per-line deadline. */
unsigned long smtp_session_progress(const struct smtp_session *);

/* smtp_session_shutdown - queue "421 <code> text" and close. */
void	smtp_session_shutdown(struct smtp_session *, const char *text);

/* In a transaction, or in the middle of DATA. */
int	smtp_session_busy(const struct smtp_session *);

/*
 * smtp_session_summary - Postfix-style counters for the disconnect log:
 * "ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6".
 */
void	smtp_session_summary(const struct smtp_session *, char *buf,
			     size_t len);

/* smtp_reply_set - helper for handlers */
void	smtp_reply_set(struct smtp_reply *, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
