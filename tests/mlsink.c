/*
 * mlsink.c - a small SMTP sink for the integration tests, standing in for
 * the relay (Postfix) where a test needs per-recipient answers that
 * Postfix's smtp-sink cannot give.  Loopback only, one process per
 * connection, every transaction it accepted written to DIR/msg.N, N
 * counting them over all connections in the order they were accepted:
 *
 *     MAIL FROM:<sender> [params]
 *     RCPT TO:<accepted recipient>     (one line each)
 *     <empty line>
 *     message as received, dot-stuffing undone, CR LF kept
 *
 * Recipient rules by local part: reject* -> 550 5.1.1, deny* -> 554
 * 5.7.1 (an access rule), plain* -> 550 without an enhanced code,
 * quoted* -> 550 5.1.1 quoting a remote server that names "the sender",
 * defer* -> 450 4.2.1.  Options: -p PORT (required), -d DIR (required), -n N (452 4.5.3
 * after N recipients in a transaction), -D CODE (reply CODE at the end of
 * data), -x (close the connection after the final dot, without a reply),
 * -X (advertise XVERP), -Q (421 and close at MAIL), -G (a malformed reply
 * at the end of data), -F N (451 at the end of data of the Nth
 * transaction only, counted over all connections in DIR/.count).  Hostile
 * or broken relays: -A (554 5.7.1 to every RCPT), -R (550 5.1.0 "Sender
 * address rejected" to every RCPT, as Postfix's smtpd_delay_reject gives), -M (550 5.7.1 to MAIL),
 * -K N (421 and close at the Nth RCPT of a transaction), -C N (every RCPT
 * reply with N continuation lines), -T MS (the reply to the dot trickled a
 * byte every MS ms), -H (never answer the dot), -S MS (wait MS ms before
 * answering the dot), -B (554 at the greeting, then only QUIT), -U (no SMTPUTF8: an 8-bit RCPT then gets 553 5.6.7,
 * as Postfix answers).  -O N: the options above that break the relay
 * after its greeting hold for the first N sessions (EHLO) only; later
 * ones behave.  -W N: the
 * Nth transaction (over all connections) is held at its final dot: the
 * sink creates DIR/.held, waits until DIR/.go exists, then answers (so
 * a test can stop or kill the client with a reply in flight).  -V N:
 * the same for the reply to the Nth DATA command (before the 354).  Exits after -t SECONDS (default 300) as a safety
 * net; the test stops it with SIGTERM.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *dir;
static int max_rcpt, data_code, drop_after_dot, xverp, shut_at_mail, garbage_at_dot;
static int fail_nth;
static int refuse_all, refuse_mail, close_at, cont_lines, trickle_ms, hang_at_dot, slow_ms;
static int no_utf8, refuse_greeting, faulty_conns, hold_nth, refuse_sender, hold_data;

/* eight_bit - any byte above 127 */
static int
eight_bit(const char *s)
{
	for (; *s; s++)
		if ((unsigned char) *s >= 0x80)
			return (1);
	return (0);
}

/* nap - sleep ms milliseconds */
static void
nap(int ms)
{
	struct timespec ts = {ms / 1000, (long) (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* behave - this connection is past -O N: forget every fault */
static void
behave(void)
{
	refuse_all = refuse_mail = close_at = cont_lines = trickle_ms = hang_at_dot = 0;
	refuse_sender = 0;
	slow_ms = refuse_greeting = shut_at_mail = garbage_at_dot = drop_after_dot = 0;
	data_code = fail_nth = max_rcpt = 0;
}

/* hold - -W: mark the dot received, wait for the test's go (at most 60 s) */
static void
hold(void)
{
	char	path[512];
	int	fd;

	snprintf(path, sizeof(path), "%s/.held", dir);
	if ((fd = open(path, O_WRONLY | O_CREAT, 0600)) < 0)
		_exit(1);
	(void) close(fd);
	snprintf(path, sizeof(path), "%s/.go", dir);
	for (int i = 0; i < 6000 && access(path, F_OK) != 0; i++)
		nap(10);
}

static int next_count(const char *);

/* keep - a transaction's file under its final name, msg.NNNNNNNN in the
 * order the sink accepted them over all connections (the tests read them
 * sorted by name, so in that order) */
static void
keep(const char *tmp, char *path, size_t len)
{
	snprintf(path, len, "%s/msg.%08d", dir, next_count(".files"));
	(void) rename(tmp, path);
}

/* next_count - the next number of a counter kept in DIR/NAME, over all
 * connections: .count, ends of data; .conns, sessions that said EHLO */
static int
next_count(const char *name)
{
	char	path[512], buf[32] = "";
	int	fd, n;
	ssize_t	r;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_RDWR | O_CREAT, 0600)) < 0 || flock(fd, LOCK_EX) < 0)
		_exit(1);
	r = read(fd, buf, sizeof(buf) - 1);
	n = (r > 0 ? atoi(buf) : 0) + 1;
	snprintf(buf, sizeof(buf), "%d\n", n);
	if (lseek(fd, 0, SEEK_SET) < 0 || write(fd, buf, strlen(buf)) < 0)
		_exit(1);
	(void) close(fd);
	return (n);
}

static int
rd_line(FILE *in, char *buf, size_t len)
{
	if (fgets(buf, (int) len, in) == NULL)
		return (-1);
	return (0);
}

static void
reply(FILE *out, const char *s)
{
	fputs(s, out);
	fflush(out);
}

static void
session(int fd)
{
	FILE   *in = fdopen(fd, "r"), *out = fdopen(dup(fd), "w"), *msg = NULL;
	char	line[8192], path[512], tmp[520], sender[600] = "";
	static unsigned seq;
	int	nrcpt = 0, ncmd = 0, utf8 = 0, nth, ehlo = 0;

	if (in == NULL || out == NULL)
		_exit(1);
	if (refuse_greeting) {
		reply(out, "554 5.7.1 mlsink: no service for you\r\n");
		while (rd_line(in, line, sizeof(line)) == 0)
			if (strncasecmp(line, "QUIT", 4) == 0)
				break;
			else
				reply(out, "503 5.5.1 no service\r\n");
		_exit(0);
	}
	reply(out, "220 mlsink ESMTP\r\n");
	while (rd_line(in, line, sizeof(line)) == 0) {
		if (strncasecmp(line, "EHLO", 4) == 0) {
			/* -O counts sessions, not the tests' probes of the port. */
			if (faulty_conns > 0 && ehlo++ == 0 && next_count(".conns") > faulty_conns)
				behave();
			reply(out, "250-mlsink\r\n250-PIPELINING\r\n250-8BITMIME\r\n");
			if (!no_utf8)
				reply(out, "250-SMTPUTF8\r\n");
			if (xverp)
				reply(out, "250-XVERP\r\n");
			reply(out, "250 ENHANCEDSTATUSCODES\r\n");
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0 && shut_at_mail) {
			reply(out, "421 4.3.2 mlsink shutting down\r\n");
			break;
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0 && refuse_mail) {
			reply(out, "550 5.7.1 <bounce>: Sender address rejected: Access denied\r\n");
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			utf8 = strstr(line, " SMTPUTF8") != NULL;
			snprintf(sender, sizeof(sender), "%.*s", (int) strcspn(line + 11, ">"),
				 line + 11);
			ncmd = 0;
			snprintf(tmp, sizeof(tmp), "%s/.tmp.%ld.%u", dir, (long) getpid(), ++seq);
			if (msg)
				fclose(msg);
			msg = fopen(tmp, "w");
			nrcpt = 0;
			fputs(line, msg);
			reply(out, "250 2.1.0 Ok\r\n");
		} else if (strncasecmp(line, "RCPT TO:<", 9) == 0) {
			if (msg != NULL && close_at && ++ncmd >= close_at) {
				reply(out, "421 4.4.2 mlsink: closing in the middle\r\n");
				break;
			}
			if (msg != NULL && cont_lines > 0) {
				for (int i = 0; i < cont_lines; i++)
					fputs("250-continued\r\n", out);
			}
			if (msg == NULL) {
				reply(out, "503 5.5.1 need MAIL\r\n");
			} else if (refuse_sender) {
				/* Postfix with smtpd_delay_reject: the sender's
				 * refusal comes at every RCPT. */
				fprintf(out, "550 5.1.0 <%s>: Sender address rejected: User unknown "
					"in relay recipient table\r\n", sender);
				fflush(out);
			} else if (refuse_all) {
				reply(out, "554 5.7.1 <someone>: Relay access denied\r\n");
			} else if (eight_bit(line) && (no_utf8 || !utf8)) {
				reply(out, "553 5.6.7 <someone>: SMTPUTF8 is required\r\n");
			} else if (strncasecmp(line + 9, "reject", 6) == 0) {
				reply(out, "550 5.1.1 <rejected>: Recipient address rejected\r\n");
			} else if (strncasecmp(line + 9, "quoted", 6) == 0) {
				reply(out, "550 5.1.1 <quoted>: Recipient address rejected: "
				      "undeliverable address: host mx said: 550 No such user here; "
				      "check the sender address\r\n");
			} else if (strncasecmp(line + 9, "plain", 5) == 0) {
				reply(out, "550 User unknown\r\n");
			} else if (strncasecmp(line + 9, "deny", 4) == 0) {
				reply(out, "554 5.7.1 <denied>: Recipient address rejected: "
				      "Access denied\r\n");
			} else if (strncasecmp(line + 9, "defer", 5) == 0) {
				reply(out, "450 4.2.1 <deferred>: try later\r\n");
			} else if (max_rcpt && nrcpt >= max_rcpt) {
				reply(out, "452 4.5.3 Error: too many recipients\r\n");
			} else {
				nrcpt++;
				fputs(line, msg);
				reply(out, "250 2.1.5 Ok\r\n");
			}
		} else if (strncasecmp(line, "DATA", 4) == 0) {
			if (msg == NULL || nrcpt == 0) {
				reply(out, "554 5.5.1 no valid recipients\r\n");
				continue;
			}
			if (hold_data && next_count(".datas") == hold_data)
				hold();
			reply(out, "354 go ahead\r\n");
			fputs("\n", msg);
			{
				int	dot = 0;

				while (rd_line(in, line, sizeof(line)) == 0) {
					if (strcmp(line, ".\r\n") == 0) {
						dot = 1;
						break;
					}
					fputs(line[0] == '.' ? line + 1 : line, msg);
				}
				if (!dot)
					break;	/* cut off: nothing was delivered */
			}
			if (hang_at_dot) {
				for (;;)
					pause();
			}
			nth = hold_nth || fail_nth ? next_count(".count") : 0;
			if (hold_nth && nth == hold_nth)
				hold();
			if (slow_ms)
				nap(slow_ms);
			if (trickle_ms) {
				const char *t = "250 2.0.0 Ok: queued slowly\r\n";

				fclose(msg);
				msg = NULL;
				keep(tmp, path, sizeof(path));
				for (; *t; t++) {
					fputc(*t, out);
					fflush(out);
					nap(trickle_ms);
				}
				continue;
			}
			if (drop_after_dot) {
				fclose(msg);
				keep(tmp, path, sizeof(path));
				_exit(0);
			}
			if (garbage_at_dot) {
				fclose(msg);
				(void) unlink(tmp);
				msg = NULL;
				reply(out, "this is no SMTP reply\r\n");
				continue;
			}
			if (data_code || (fail_nth && nth == fail_nth)) {
				fclose(msg);
				(void) unlink(tmp);
				msg = NULL;
				fprintf(out, "%d %d.0.0 refused by test\r\n", data_code ? data_code : 451,
					(data_code ? data_code : 451) / 100);
				fflush(out);
				continue;
			}
			fclose(msg);
			msg = NULL;
			keep(tmp, path, sizeof(path));
			reply(out, "250 2.0.0 Ok: queued\r\n");
		} else if (strncasecmp(line, "RSET", 4) == 0) {
			if (msg) {
				fclose(msg);
				(void) unlink(tmp);
				msg = NULL;
			}
			reply(out, "250 2.0.0 Ok\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			reply(out, "221 2.0.0 Bye\r\n");
			break;
		} else
			reply(out, "250 2.0.0 Ok\r\n");
	}
	if (msg) {
		fclose(msg);
		(void) unlink(tmp);
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	int	c, port = 0, lfd, on = 1, lifetime = 300;

	while ((c = getopt(argc, argv, "p:d:n:D:xXt:QGF:AMK:C:T:HS:UBO:W:RV:")) != -1) {
		switch (c) {
		case 'p':
			port = atoi(optarg);
			break;
		case 'd':
			dir = optarg;
			break;
		case 'n':
			max_rcpt = atoi(optarg);
			break;
		case 'D':
			data_code = atoi(optarg);
			break;
		case 'x':
			drop_after_dot = 1;
			break;
		case 'X':
			xverp = 1;
			break;
		case 't':
			lifetime = atoi(optarg);
			break;
		case 'Q':
			shut_at_mail = 1;
			break;
		case 'G':
			garbage_at_dot = 1;
			break;
		case 'F':
			fail_nth = atoi(optarg);
			break;
		case 'A':
			refuse_all = 1;
			break;
		case 'M':
			refuse_mail = 1;
			break;
		case 'K':
			close_at = atoi(optarg);
			break;
		case 'C':
			cont_lines = atoi(optarg);
			break;
		case 'T':
			trickle_ms = atoi(optarg);
			break;
		case 'H':
			hang_at_dot = 1;
			break;
		case 'S':
			slow_ms = atoi(optarg);
			break;
		case 'U':
			no_utf8 = 1;
			break;
		case 'B':
			refuse_greeting = 1;
			break;
		case 'O':
			faulty_conns = atoi(optarg);
			break;
		case 'W':
			hold_nth = atoi(optarg);
			break;
		case 'R':
			refuse_sender = 1;
			break;
		case 'V':
			hold_data = atoi(optarg);
			break;
		default:
			fprintf(stderr, "usage: mlsink -p PORT -d DIR [-n N] [-D CODE] [-x] [-X]\n");
			return (2);
		}
	}
	if (port <= 0 || dir == NULL) {
		fprintf(stderr, "mlsink: -p and -d are required\n");
		return (2);
	}
	signal(SIGCHLD, SIG_IGN);
	alarm((unsigned) lifetime);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short) port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM, 0)) < 0
	    || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0
	    || bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) < 0
	    || listen(lfd, 64) < 0) {
		perror("mlsink");
		return (1);
	}
	for (;;) {
		int	fd = accept(lfd, NULL, NULL);

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			perror("mlsink: accept");
			return (1);
		}
		if (fork() == 0) {
			close(lfd);
			signal(SIGALRM, SIG_DFL);
			alarm(60);
			session(fd);
		}
		close(fd);
	}
}
