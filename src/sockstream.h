/* sockstream.h - a Mailutils stream over a TCP socket with read-ahead */
#ifndef MLISTD_SOCKSTREAM_H
#define MLISTD_SOCKSTREAM_H

#include <stddef.h>

#include <mailutils/types.h>

/*
 * sockstream_connect - connect to host:port within `timeout` seconds
 * (also the send/receive timeout afterwards), TCP_NODELAY, and wrap the
 * socket in a Mailutils stream for mu_smtp_set_carrier().  Returns 0, or
 * -1 with a message in err.  The stream owns the socket.
 */
int	sockstream_connect(mu_stream_t *, const char *host, unsigned port,
			   unsigned timeout, char *err, size_t errlen);

/*
 * sockstream_quickack - while on, acknowledge every read at once
 * (TCP_QUICKACK): for reading pipelined replies, which a peer that
 * writes them one by one would otherwise hold back under Nagle until
 * our delayed ACK.  Off by default: lock-step replies need no help.
 */
void	sockstream_quickack(mu_stream_t, int on);

/*
 * sockstream_defer - bytes to send right behind whatever is written
 * next, in the same send(), when the stream is next flushed (before a
 * read): pipelined commands ride with the command Mailutils writes.
 * Returns 0 or an errno value (ENOMEM).
 */
int	sockstream_defer(mu_stream_t, const char *, size_t);

#endif
