/* smtp_io.h - drive an smtp_session over a socket with deadlines */
#ifndef MLISTD_SMTP_IO_H
#define MLISTD_SMTP_IO_H

#include <signal.h>

#include "smtp_session.h"

enum smtp_io_result {
	SMTP_IO_QUIT,		/* session closed by QUIT or by us (421) */
	SMTP_IO_EOF,		/* client went away */
	SMTP_IO_TIMEOUT,	/* no complete line within the timeout */
	SMTP_IO_DEADLINE,	/* session-timeout exceeded */
	SMTP_IO_SHUTDOWN,	/* we are stopping: 421 sent between mails */
	SMTP_IO_ERROR		/* read or write error */
};

struct smtp_io_limits {
	unsigned timeout;		/* per command/text line and per write */
	unsigned session_timeout;	/* whole session */
};

/*
 * smtp_io_run - serve one connection until it ends.  stop is polled
 * between transactions: when it becomes non-zero the client gets 421
 * 4.3.2 and the session ends, but a transaction in progress is finished
 * first.  The caller must block the signals that set stop; sigmask is the
 * mask to use while waiting (ppoll), so a signal cannot slip in between
 * the check and the wait.
 */
enum smtp_io_result smtp_io_run(int fd, struct smtp_session *,
				const struct smtp_io_limits *,
				volatile sig_atomic_t *stop,
				const sigset_t *sigmask);

const char *smtp_io_result_str(enum smtp_io_result);

#endif
