/*
 * worker.c - one pre-forked worker process.
 *
 * Accept model: every worker blocks in accept() on the one listening
 * socket that the master bound.  Linux queues blocked accept() callers as
 * exclusive waiters and wakes exactly one per connection, so there is no
 * thundering herd and no accept lock is needed (SO_REUSEPORT would split
 * the queue per process, and a busy worker's share would wait while
 * others idle).  The listening socket carries a 1 s receive timeout
 * (SO_RCVTIMEO applies to accept), so a worker notices a stop request or
 * a dead master within a second even if the signal arrived just before
 * it entered accept().
 *
 * Signals: SIGTERM/SIGINT/SIGHUP set a flag and close the worker's copy
 * of the listening socket.  They are blocked while a session runs and let
 * in only inside ppoll(), so the flag is seen at once; a transaction in
 * progress is finished (a fan-out stops after the relay transaction in
 * flight), then the client gets 421.
 *
 * Logging: "connect from", one line per transaction (from the handlers),
 * and "disconnect from ... commands=N duration=S result=R".
 */
#include "config.h"

#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

#include "deliver.h"
#include "log.h"
#include "privs.h"
#include "smtp_io.h"
#include "smtp_session.h"
#include "worker.h"

static volatile sig_atomic_t worker_stop;
static volatile sig_atomic_t listen_copy = -1;	/* our copy of the socket */

static void on_stop(int);

/*
 * on_stop - signal handler: finish what is in progress, then exit.  Our
 * copy of the listening socket is closed at once (close() is safe in a
 * handler): once the master and every worker have closed theirs, the
 * kernel refuses new connections instead of queueing them for a worker
 * that will never accept them, and Postfix tries again at once.
 */
static void
on_stop(int sig)
{
	int	saved = errno;

	(void) sig;
	worker_stop = 1;
	if (listen_copy >= 0) {
		(void) close(listen_copy);
		listen_copy = -1;
	}
	errno = saved;
}

/* client_name - "unknown[addr]:port": numeric only, no DNS on this path */
static void
client_name(const struct sockaddr *sa, socklen_t len, char *buf, size_t size)
{
	char	host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0)
		snprintf(buf, size, "unknown[unknown]");
	else
		snprintf(buf, size, "unknown[%s]:%s", host, port);
}

/* serve - one connection from accept to close */
static void
serve(const struct conf *cf, struct deliver *d, int fd, const struct sockaddr *sa,
      socklen_t salen, const char *hostname, const sigset_t *waitmask)
{
	struct deliver_session ds;
	struct smtp_limits lim;
	struct smtp_io_limits iolim;
	struct smtp_session *s;
	struct timespec t0, t1;
	enum smtp_io_result res;
	char	client[NI_MAXHOST + NI_MAXSERV + 16], summary[256];

	client_name(sa, salen, client, sizeof(client));
	ds.d = d;
	ds.client = client;
	ds.stop = &worker_stop;
	(void) clock_gettime(CLOCK_MONOTONIC, &t0);
	msg_info("connect from %s", client);

	lim.max_command_length = cf->max_command_length;
	lim.max_line_length = cf->max_line_length;
	lim.max_message_size = cf->max_message_size;
	lim.max_recipients = cf->max_recipients;
	lim.max_errors = cf->max_errors;
	iolim.timeout = cf->timeout;
	iolim.session_timeout = cf->session_timeout;

	if ((s = smtp_session_create(&lim, &deliver_handlers, &ds, hostname)) == NULL) {
		static const char busy[] = "421 4.3.2 Error: insufficient resources\r\n";

		msg_warn("out of memory for a session from %s", client);
		(void) send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
		return;
	}
	res = smtp_io_run(fd, s, &iolim, &worker_stop, waitmask);
	(void) clock_gettime(CLOCK_MONOTONIC, &t1);
	smtp_session_summary(s, summary, sizeof(summary));
	msg_info("disconnect from %s %s duration=%.3fs result=%s", client,
		 summary, (double) (t1.tv_sec - t0.tv_sec)
		 + (t1.tv_nsec - t0.tv_nsec) / 1e9, smtp_io_result_str(res));
	smtp_session_free(s);
}

/* worker_main - the accept loop */
void
worker_main(const struct conf *cf, int listen_fd)
{
	struct sigaction sa;
	sigset_t block, waitmask;
	pid_t	master = getppid();
	char	hostname[256], err[512];
	unsigned served = 0;
	struct deliver *d;

	msg_syslog_probe();		/* first: it also learns our pid */
	listen_copy = listen_fd;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0;			/* no SA_RESTART: interrupt accept */
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0
	    || sigaction(SIGHUP, &sa, NULL) < 0)
		msg_fatal("sigaction: %s", strerror(errno));
	sa.sa_handler = SIG_IGN;
	(void) sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	(void) sigaction(SIGCHLD, &sa, NULL);
	/* Sessions never run as root. */
	if (privs_drop(cf->user, err, sizeof(err)) < 0)
		msg_fatal("%s", err);
#if defined(HAVE_PRCTL) && defined(PR_SET_PDEATHSIG)
	/* If the master dies, stop like on SIGTERM (set after setuid,
	 * which clears it). */
	(void) prctl(PR_SET_PDEATHSIG, SIGTERM);
#endif
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigemptyset(&waitmask);
	if (sigprocmask(SIG_UNBLOCK, &block, NULL) < 0)
		msg_fatal("sigprocmask: %s", strerror(errno));

	if (gethostname(hostname, sizeof(hostname)) < 0 || hostname[0] == 0)
		snprintf(hostname, sizeof(hostname), "%s", cf->domain);
	hostname[sizeof(hostname) - 1] = 0;

	/* Our own database and relay connections, opened after fork. */
	if ((d = deliver_create(cf, hostname, err, sizeof(err))) == NULL)
		msg_fatal("%s", err);

	while (!worker_stop && served < cf->max_use) {
		struct sockaddr_storage ss;
		socklen_t sslen = sizeof(ss);
		int	fd;

		if (getppid() != master)
			break;
		fd = accept(listen_fd, (struct sockaddr *) &ss, &sslen);
		if (fd < 0) {
			if (worker_stop)
				break;		/* the handler closed listen_fd */
			if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK
			    || errno == ECONNABORTED)
				continue;
			/* EMFILE and friends: back off briefly, do not spin. */
			msg_warn("accept: %s", strerror(errno));
			(void) sleep(1);
			continue;
		}
		(void) sigprocmask(SIG_BLOCK, &block, NULL);
		served++;
		serve(cf, d, fd, (struct sockaddr *) &ss, sslen, hostname, &waitmask);
		(void) close(fd);
		(void) sigprocmask(SIG_UNBLOCK, &block, NULL);
	}
	(void) sigprocmask(SIG_BLOCK, &block, NULL);
	if (listen_copy >= 0)
		(void) close(listen_fd);
	listen_copy = -1;
	deliver_free(d);
	exit(0);
}
