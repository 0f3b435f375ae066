/*
 * dnslib.c - dnsmasq on loopback for the Check suites (check_dmarc,
 * check_dkimcheck).  It is started with no configuration file, no
 * upstream, no hosts file, bound to 127.0.0.1 only, and serves a probe
 * record of its own (with the starter's pid, so that a server another
 * suite started on the same port does not pass for it); it is stopped by
 * its pid, also at exit when a test failed.  Names under .test, .invalid
 * and .localhost never reach it: libunbound answers them itself.
 */
#include "config.h"

#include <check.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dmarc.h"
#include "dnslib.h"

#define PROBE	"ready.dnslib.example"
#define LIVE	4

static struct dns *live[LIVE];

static int dns_answers(const char *, const char *);
static void kill_live(void);

void
dns_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int
dns_udp_port(int *fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	*fd = socket(AF_INET, SOCK_DGRAM, 0);
	ck_assert_int_ge(*fd, 0);
	ck_assert_int_eq(bind(*fd, (struct sockaddr *) &sin, sizeof(sin)), 0);
	ck_assert_int_eq(getsockname(*fd, (struct sockaddr *) &sin, &len), 0);
	return (ntohs(sin.sin_port));
}

int
dns_free_udp_port(void)
{
	int	fd, port = dns_udp_port(&fd);

	(void) close(fd);
	return (port);
}

void
dns_kill(struct dns *d)
{
	int	status;

	if (d->pid <= 0)
		return;
	(void) kill(d->pid, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			return;
		}
		dns_sleep_ms(10);
	}
	(void) kill(d->pid, SIGKILL);
	(void) waitpid(d->pid, &status, 0);
	d->pid = 0;
}

/* kill_live - at exit: whatever dnsmasq a failed test left, when this
 * process started it */
static void
kill_live(void)
{
	for (int i = 0; i < LIVE; i++)
		if (live[i] && live[i]->owner == getpid())
			dns_kill(live[i]);
}

struct dmarc_resolver *
dns_resolver(const char *addr, unsigned timeout_ms)
{
	struct dmarc_resolver *r;
	char	err[256];

	r = dmarc_resolver_create(addr, timeout_ms, err, sizeof(err));
	ck_assert_msg(r != NULL, "%s", err);
	return (r);
}

/* dns_answers - does the server at addr serve the probe record want (a
 * fresh resolver each time: no cache, no memory of earlier failures)? */
static int
dns_answers(const char *addr, const char *want)
{
	struct dmarc_resolver *r = dns_resolver(addr, 200);
	char	err[256], buf[128];
	int	ok;

	ok = dmarc_txt(r, PROBE, buf, sizeof(buf), NULL, err, sizeof(err)) == 1
	    && strcmp(buf, want) == 0;
	dmarc_resolver_free(r);
	return (ok);
}

void
dns_start(struct dns *d)
{
	static int registered;
	size_t	n = 0, nargs = 16 + d->nlocal + d->ntxt;
	const char **argv = calloc(nargs, sizeof(*argv));
	char  **own = calloc(nargs, sizeof(*own));
	char	port[32], probe[128], want[48];
	int	status, fd, nown = 0;

	ck_assert_ptr_nonnull(argv);
	ck_assert_ptr_nonnull(own);
	d->port = dns_free_udp_port();
	d->owner = getpid();
	snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
	snprintf(port, sizeof(port), "--port=%d", d->port);
	snprintf(want, sizeof(want), "v=DKIM1; n=%ld", (long) d->owner);
	snprintf(probe, sizeof(probe), "--txt-record=" PROBE ",%s", want);
	argv[n++] = DNS_DNSMASQ;
	argv[n++] = "--no-daemon";
	argv[n++] = "--conf-file=/dev/null";
	argv[n++] = "--no-resolv";
	argv[n++] = "--no-hosts";
	argv[n++] = "--pid-file=";
	argv[n++] = port;
	argv[n++] = "--listen-address=127.0.0.1";
	argv[n++] = "--bind-interfaces";
	argv[n++] = "--local-ttl=300";
	argv[n++] = probe;
	for (size_t i = 0; i < d->nlocal; i++) {
		ck_assert_int_gt(asprintf(&own[nown], "--local=/%s/", d->local[i]), 0);
		argv[n++] = own[nown++];
	}
	for (size_t i = 0; i < d->ntxt; i++) {
		ck_assert_int_gt(asprintf(&own[nown], "--txt-record=%s", d->txt[i]), 0);
		argv[n++] = own[nown++];
	}
	argv[n] = NULL;
	ck_assert_uint_lt(n, nargs);

	fflush(NULL);
	d->pid = fork();
	ck_assert_int_ge(d->pid, 0);
	if (d->pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			(void) dup2(fd, 0);
			(void) dup2(fd, 1);
			(void) dup2(fd, 2);
		}
		execv(DNS_DNSMASQ, (char *const *) argv);
		_exit(127);
	}
	for (int i = 0; i < nown; i++)
		free(own[i]);
	free(own);
	free(argv);
	if (!registered++)
		(void) atexit(kill_live);
	for (int i = 0; i < LIVE; i++)
		if (live[i] == NULL || live[i] == d) {
			live[i] = d;
			break;
		}
	for (int i = 0; i < 1000; i++) {
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			/* Exit 2: the port was taken meanwhile (its TCP side, by
			 * another suite running beside this one): another port. */
			ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 2
				      && ++d->attempts < 10, "dnsmasq exited (status %d)", status);
			dns_start(d);
			return;
		}
		if (dns_answers(d->addr, want))
			return;
		dns_sleep_ms(10);
	}
	dns_kill(d);		/* a failed setup has no teardown */
	ck_abort_msg("dnsmasq on %s does not answer", d->addr);
}
