/*
 * smtp_io.c - the thin I/O layer around smtp_session.
 *
 * Reads what the client sent, feeds it to the engine, writes the queued
 * replies, and enforces three clocks: a deadline per command or text line
 * ("timeout", restarted only when a complete line has arrived, so a
 * client trickling one byte at a time gains nothing), a deadline per
 * write, and a deadline for the whole session ("session-timeout").
 * Replies are always flushed before we block on a read: that is what
 * makes PIPELINING safe.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "smtp_io.h"

#define READ_BUFSIZE 16384

static double now(void);
static int flush_output(int, struct smtp_session *, double);
static int wait_fd(int, short, double, const sigset_t *);

/* now - monotonic seconds */
static double
now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

/* wait_fd - ppoll until ready (1), deadline (0), signal (-2) or error (-1) */
static int
wait_fd(int fd, short events, double deadline, const sigset_t *mask)
{
	struct pollfd pfd = {.fd = fd,.events = events};
	struct timespec ts;
	double	left = deadline - now();
	int	rc;

	if (left <= 0)
		return (0);
	ts.tv_sec = (time_t) left;
	ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
	rc = ppoll(&pfd, 1, &ts, mask);
	if (rc < 0)
		return (errno == EINTR ? -2 : -1);
	return (rc > 0);
}

/* flush_output - write everything queued, within the deadline */
static int
flush_output(int fd, struct smtp_session *s, double deadline)
{
	const char *p;
	size_t	len;
	ssize_t	n;

	for (;;) {
		p = smtp_session_output(s, &len);
		if (len == 0)
			return (0);
		n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			smtp_session_drain(s, (size_t) n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int	rc = wait_fd(fd, POLLOUT, deadline, NULL);

			if (rc == 0)
				return (-1);	/* write timeout */
			if (rc == -1)
				return (-1);
			continue;
		}
		return (-1);
	}
}

/* smtp_io_run - the session loop */
enum smtp_io_result
smtp_io_run(int fd, struct smtp_session *s, const struct smtp_io_limits *lim,
	    volatile sig_atomic_t *stop, const sigset_t *sigmask)
{
	char	buf[READ_BUFSIZE];
	double	start = now(), line_deadline, session_deadline;
	unsigned long progress = smtp_session_progress(s);

	session_deadline = start + lim->session_timeout;
	line_deadline = start + lim->timeout;
	for (;;) {
		ssize_t	n;
		size_t	off = 0;
		double	deadline;
		int	rc;

		if (flush_output(fd, s, now() + lim->timeout) < 0)
			return (SMTP_IO_ERROR);
		if (smtp_session_closed(s))
			return (SMTP_IO_QUIT);
		if (stop && *stop && !smtp_session_busy(s)) {
			smtp_session_shutdown(s, "4.3.2 Service shutting down, try again later");
			(void) flush_output(fd, s, now() + lim->timeout);
			return (SMTP_IO_SHUTDOWN);
		}
		deadline = line_deadline < session_deadline ? line_deadline
			: session_deadline;
		rc = wait_fd(fd, POLLIN, deadline, sigmask);
		if (rc == -2)
			continue;		/* a signal: look at stop */
		if (rc < 0)
			return (SMTP_IO_ERROR);
		if (rc == 0) {
			int	whole = now() >= session_deadline;

			smtp_session_shutdown(s, whole ?
				"4.4.2 Error: session time limit exceeded" :
				"4.4.2 Error: timeout exceeded");
			(void) flush_output(fd, s, now() + 5);
			return (whole ? SMTP_IO_DEADLINE : SMTP_IO_TIMEOUT);
		}
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0)
			return (SMTP_IO_ERROR);
		if (n == 0)
			return (SMTP_IO_EOF);
		/* Feed it all, flushing whenever the engine asks us to. */
		while (off < (size_t) n && !smtp_session_closed(s)) {
			size_t	used = smtp_session_feed(s, buf + off, (size_t) n - off);

			off += used;
			if (off < (size_t) n
			    && flush_output(fd, s, now() + lim->timeout) < 0)
				return (SMTP_IO_ERROR);
		}
		if (smtp_session_progress(s) != progress) {
			progress = smtp_session_progress(s);
			line_deadline = now() + lim->timeout;
		}
	}
}

/* smtp_io_result_str - for the disconnect log line */
const char *
smtp_io_result_str(enum smtp_io_result r)
{
	switch (r) {
	case SMTP_IO_QUIT:
		return ("quit");
	case SMTP_IO_EOF:
		return ("lost connection");
	case SMTP_IO_TIMEOUT:
		return ("timeout");
	case SMTP_IO_DEADLINE:
		return ("session deadline");
	case SMTP_IO_SHUTDOWN:
		return ("shutdown");
	case SMTP_IO_ERROR:
		return ("I/O error");
	}
	return ("unknown");
}
