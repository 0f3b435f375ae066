/* sockstream.h - the relay connection: a Mailutils stream over TCP */
#ifndef MLISTD_SOCKSTREAM_H
#define MLISTD_SOCKSTREAM_H

#include <stddef.h>

#include <mailutils/types.h>

/*
 * sockstream_connect - connect to host:port within `timeout` seconds,
 * TCP_NODELAY, and wrap the socket in a Mailutils stream for
 * mu_smtp_set_carrier().  Returns 0, or -1 with a message in err.  The
 * stream owns the socket.  Until a deadline is set, reads and writes
 * wait at most `timeout` seconds each.
 */
int	sockstream_connect(mu_stream_t *, const char *host, unsigned port,
			   unsigned timeout, char *err, size_t errlen);

/* sockstream_now - the monotonic clock the deadlines use, in seconds */
double	sockstream_now(void);

/*
 * sockstream_deadline - no read or write may wait past `when`
 * (sockstream_now() seconds): one deadline for a whole reply, however
 * slowly its bytes trickle in.  Waiting past it fails with ETIMEDOUT.
 */
void	sockstream_deadline(mu_stream_t, double when);

/*
 * sockstream_budget - at most `bytes` more may be read (0: no limit);
 * reading past it fails with EOVERFLOW.  Bounds the replies that
 * Mailutils reads for us (greeting, EHLO), which it would otherwise
 * collect without limit.
 */
void	sockstream_budget(mu_stream_t, size_t bytes);

/*
 * sockstream_getline - one line up to and including LF into buf (NUL
 * terminated, line ends kept); *len its length.  0, or an errno value:
 * EOVERFLOW when the line does not fit in size - 1 bytes, ECONNRESET at
 * end of file, ETIMEDOUT past the deadline.  Writes are flushed first.
 */
int	sockstream_getline(mu_stream_t, char *buf, size_t size, size_t *len);

/* sockstream_write - buffered; sent when full or by sockstream_flush */
int	sockstream_write(mu_stream_t, const char *, size_t);
int	sockstream_flush(mu_stream_t);

/*
 * sockstream_quickack - while on, acknowledge every read at once
 * (TCP_QUICKACK): for reading pipelined replies, which a peer that
 * writes them one by one would otherwise hold back under Nagle until
 * our delayed ACK.  Off by default: lock-step replies need no help.
 */
void	sockstream_quickack(mu_stream_t, int on);

#endif
