/*
 * sockstream.c - the relay connection as a Mailutils stream of our own.
 *
 * Why: Mailutils' TCP stream is unbuffered, and its SMTP client reads
 * replies through it one byte per recv().  A Mailutils stream has one
 * buffer for both directions, so buffering the TCP stream garbles
 * writes.  This stream stays "unbuffered" to Mailutils but reads ahead
 * into a private buffer, so a reply costs one recv(), and collects writes
 * in another, sent as soon as a reply is awaited (or the buffer is full).
 * It is an ordinary stream implementation (mailutils/sys/stream.h),
 * handed to mu_smtp_set_carrier(); Mailutils drives the greeting and
 * EHLO through it, and relay.c the transactions (sockstream_getline,
 * sockstream_write), over the same read-ahead.
 *
 * Every wait is bounded by a deadline that the caller sets per reply
 * (so a peer that trickles one byte at a time gains nothing), and the
 * bytes Mailutils may read can be capped (it collects a reply without
 * any limit of its own).  It also connects with a timeout, which
 * mu_tcp_stream_create cannot.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <mailutils/errno.h>
#include <mailutils/stream.h>
#include <mailutils/sys/stream.h>

#include "sockstream.h"

#define READ_AHEAD 16384

struct sockstream {
	struct _mu_stream base;		/* must be first */
	int	fd;
	unsigned timeout;		/* per wait, when no deadline is set */
	double	deadline;		/* sockstream_deadline(); 0: none */
	int	budgeted;		/* sockstream_budget() in force */
	size_t	budget;			/* bytes that may still be read */
	size_t	pos, len;		/* read-ahead */
	char	buf[READ_AHEAD];
	size_t	wlen;			/* written, not yet sent */
	char	wbuf[READ_AHEAD];
	int	quickack;		/* sockstream_quickack() */
};

double
sockstream_now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

/* wait_for - poll for events until the deadline: 0, or ETIMEDOUT/errno */
static int
wait_for(struct sockstream *s, short events)
{
	double	until = s->deadline > 0 ? s->deadline : sockstream_now() + s->timeout;

	for (;;) {
		struct pollfd pfd = {.fd = s->fd,.events = events};
		double	left = until - sockstream_now();
		int	rc;

		if (left <= 0)
			return (ETIMEDOUT);
		rc = poll(&pfd, 1, (int) (left * 1000) + 1);
		if (rc < 0 && errno == EINTR)
			continue;
		if (rc < 0)
			return (errno);
		if (rc > 0)
			return (0);
	}
}

/* send_all - the whole buffer within the deadline, or an errno value */
static int
send_all(struct sockstream *s, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t	w;
		int	rc;

		/* Past the deadline nothing more goes out, even when the
		 * socket has room: a process stopped for a while must not
		 * finish a write it began long ago. */
		if (s->deadline > 0 && sockstream_now() > s->deadline)
			return (ETIMEDOUT);
		w = send(s->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if ((rc = wait_for(s, POLLOUT)) != 0)
				return (rc);
			continue;
		}
		if (w < 0)
			return (errno);
		p += w;
		n -= (size_t) w;
	}
	return (0);
}

/* wflush - send what is buffered; before every read, so no deadlock */
static int
wflush(struct sockstream *s)
{
	int	rc = 0;

	if (s->wlen > 0) {
		rc = send_all(s, s->wbuf, s->wlen);
		s->wlen = 0;
	}
	return (rc);
}

/* fill - read ahead: 0 with s->len > 0, 0 with s->len == 0 at EOF, or errno */
static int
fill(struct sockstream *s)
{
	ssize_t	n;
	int	rc;

	/* A reply is awaited: what we wrote must be on its way. */
	if ((rc = wflush(s)) != 0)
		return (rc);
	s->pos = s->len = 0;
	if (s->budgeted && s->budget == 0)
		return (EOVERFLOW);
	for (;;) {
		n = recv(s->fd, s->buf, sizeof(s->buf), MSG_DONTWAIT);
		if (n >= 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return (errno);
		if ((rc = wait_for(s, POLLIN)) != 0)
			return (rc);
	}
#ifdef TCP_QUICKACK
	/*
	 * Acknowledge at once: a peer that writes pipelined replies one by
	 * one would otherwise wait for our delayed ACK (Nagle) before each
	 * next reply.  Linux clears the flag again by itself, hence after
	 * every read.
	 */
	if (s->quickack) {
		int	one = 1;

		(void) setsockopt(s->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof(one));
	}
#endif
	if (s->budgeted) {
		if ((size_t) n > s->budget)
			return (EOVERFLOW);
		s->budget -= (size_t) n;
	}
	s->len = (size_t) n;
	return (0);
}

static int
s_read(struct _mu_stream *str, char *out, size_t size, size_t *nread)
{
	struct sockstream *s = (struct sockstream *) str;

	if (s->pos == s->len) {
		int	rc = fill(s);

		if (rc != 0)
			return (rc);
		if (s->len == 0) {
			*nread = 0;		/* EOF */
			return (0);
		}
	}
	if (size > s->len - s->pos)
		size = s->len - s->pos;
	memcpy(out, s->buf + s->pos, size);
	s->pos += size;
	*nread = size;
	return (0);
}

int
sockstream_getline(mu_stream_t str, char *out, size_t size, size_t *len)
{
	struct sockstream *s = (struct sockstream *) str;
	size_t	n = 0;

	*len = 0;
	for (;;) {
		char   *lf;
		size_t	take;
		int	rc;

		if (s->pos == s->len) {
			if ((rc = fill(s)) != 0)
				return (rc);
			if (s->len == 0)
				return (ECONNRESET);
		}
		lf = memchr(s->buf + s->pos, '\n', s->len - s->pos);
		take = lf ? (size_t) (lf - (s->buf + s->pos)) + 1 : s->len - s->pos;
		if (n + take > size - 1)
			return (EOVERFLOW);
		memcpy(out + n, s->buf + s->pos, take);
		n += take;
		s->pos += take;
		if (lf) {
			out[n] = 0;
			*len = n;
			return (0);
		}
	}
}

void
sockstream_deadline(mu_stream_t str, double when)
{
	((struct sockstream *) str)->deadline = when;
}

void
sockstream_budget(mu_stream_t str, size_t bytes)
{
	struct sockstream *s = (struct sockstream *) str;

	s->budgeted = bytes > 0;
	s->budget = bytes;
}

void
sockstream_quickack(mu_stream_t str, int on)
{
	((struct sockstream *) str)->quickack = on;
}

/* put - collect small writes, send them together; a read sends them first */
static int
put(struct sockstream *s, const char *in, size_t size)
{
	int	rc;

	if (s->wlen + size > sizeof(s->wbuf)) {
		if ((rc = wflush(s)) != 0)
			return (rc);
		if (size > sizeof(s->wbuf))
			return (send_all(s, in, size));
	}
	memcpy(s->wbuf + s->wlen, in, size);
	s->wlen += size;
	return (0);
}

int
sockstream_write(mu_stream_t str, const char *in, size_t size)
{
	return (put((struct sockstream *) str, in, size));
}

int
sockstream_flush(mu_stream_t str)
{
	return (wflush((struct sockstream *) str));
}

static int
s_write(struct _mu_stream *str, const char *in, size_t size, size_t *nwritten)
{
	int	rc = put((struct sockstream *) str, in, size);

	if (rc == 0)
		*nwritten = size;
	return (rc);
}

static int
s_flush(struct _mu_stream *str)
{
	return (wflush((struct sockstream *) str));
}

static int
s_open(struct _mu_stream *str)
{
	(void) str;
	return (0);			/* connected at creation */
}

static int
s_close(struct _mu_stream *str)
{
	struct sockstream *s = (struct sockstream *) str;

	if (s->fd >= 0) {
		(void) close(s->fd);
		s->fd = -1;
	}
	return (0);
}

static void
s_done(struct _mu_stream *str)
{
	(void) s_close(str);
}

static int
s_ctl(struct _mu_stream *str, int code, int opcode, void *arg)
{
	struct sockstream *s = (struct sockstream *) str;

	if (code != MU_IOCTL_TRANSPORT)
		return (ENOSYS);
	if (opcode != MU_IOCTL_OP_GET || arg == NULL)
		return (EINVAL);
	((mu_transport_t *) arg)[0] = (mu_transport_t) (intptr_t) s->fd;
	((mu_transport_t *) arg)[1] = (mu_transport_t) (intptr_t) s->fd;
	return (0);
}

static int
s_wait(struct _mu_stream *str, int *pflags, struct timeval *tv)
{
	struct sockstream *s = (struct sockstream *) str;
	struct pollfd pfd = {.fd = s->fd,.events = 0};
	int	rc, ms = tv ? (int) (tv->tv_sec * 1000 + tv->tv_usec / 1000) : -1;

	(void) wflush(s);
	if ((*pflags & MU_STREAM_READY_RD) && s->pos < s->len) {
		*pflags = MU_STREAM_READY_RD;
		return (0);
	}
	if (*pflags & MU_STREAM_READY_RD)
		pfd.events |= POLLIN;
	if (*pflags & MU_STREAM_READY_WR)
		pfd.events |= POLLOUT;
	rc = poll(&pfd, 1, ms);
	if (rc < 0)
		return (errno);
	*pflags = 0;
	if (pfd.revents & (POLLIN | POLLHUP | POLLERR))
		*pflags |= MU_STREAM_READY_RD;
	if (pfd.revents & POLLOUT)
		*pflags |= MU_STREAM_READY_WR;
	return (0);
}

static int
s_shutdown(struct _mu_stream *str, int how)
{
	struct sockstream *s = (struct sockstream *) str;

	return (shutdown(s->fd, how == MU_STREAM_READ ? SHUT_RD : SHUT_WR) < 0 ? errno : 0);
}

/* tcp_connect - non-blocking connect bounded by timeout */
static int
tcp_connect(const char *host, unsigned port, unsigned timeout, char *err,
	    size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	char	service[16];
	int	fd = -1, rc, saved = ECONNREFUSED;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	snprintf(service, sizeof(service), "%u", port);
	if ((rc = getaddrinfo(host, service, &hints, &res)) != 0) {
		snprintf(err, errlen, "relay %s: %s", host, gai_strerror(rc));
		return (-1);
	}
	for (ai = res; ai; ai = ai->ai_next) {
		struct pollfd pfd;
		socklen_t len = sizeof(saved);
		int	flags;

		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				 ai->ai_protocol)) < 0) {
			saved = errno;
			continue;
		}
		flags = fcntl(fd, F_GETFL);
		(void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			saved = 0;
		else if (errno != EINPROGRESS)
			saved = errno;
		else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			rc = poll(&pfd, 1, (int) timeout * 1000);
			if (rc == 0)
				saved = ETIMEDOUT;
			else if (rc < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &saved, &len) < 0)
				saved = errno;
		}
		if (saved == 0) {
			(void) fcntl(fd, F_SETFL, flags);
			break;
		}
		(void) close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot connect to relay %s:%u: %s", host, port,
			 strerror(saved));
	return (fd);
}

int
sockstream_connect(mu_stream_t *pstr, const char *host, unsigned port,
		   unsigned timeout, char *err, size_t errlen)
{
	struct sockstream *s;
	int	fd, one = 1;

	if ((fd = tcp_connect(host, port, timeout, err, errlen)) < 0)
		return (-1);
	/*
	 * Commands go out in one send() each (or a pipelined window in
	 * one); with Nagle's algorithm and delayed ACKs a second segment
	 * would wait 40 ms for the peer.
	 */
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0) {
		snprintf(err, errlen, "relay socket options: %s", strerror(errno));
		(void) close(fd);
		return (-1);
	}
	s = (struct sockstream *) _mu_stream_create(sizeof(*s), MU_STREAM_RDWR);
	if (s == NULL) {
		snprintf(err, errlen, "out of memory");
		(void) close(fd);
		return (-1);
	}
	s->fd = fd;
	s->timeout = timeout;
	s->deadline = 0;
	s->budgeted = 0;
	s->budget = 0;
	s->pos = s->len = 0;
	s->wlen = 0;
	s->quickack = 0;
	s->base.read = s_read;
	s->base.write = s_write;
	s->base.flush = s_flush;
	s->base.open = s_open;
	s->base.close = s_close;
	s->base.done = s_done;
	s->base.ctl = s_ctl;
	s->base.wait = s_wait;
	s->base.shutdown = s_shutdown;
	*pstr = (mu_stream_t) s;
	/* Marks it open for Mailutils; s_open itself has nothing to do. */
	if (mu_stream_open(*pstr) != 0) {
		snprintf(err, errlen, "relay: cannot open the stream");
		mu_stream_destroy(pstr);
		return (-1);
	}
	return (0);
}
