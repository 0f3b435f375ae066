/*
 * dnslib.c - dnsmasq on loopback for the Check suites (check_dmarc,
 * check_dkimcheck, check_deliverability).  It is started with no
 * configuration file, no upstream, no hosts file, bound to 127.0.0.1 only,
 * and serves a probe record of its own (with the starter's pid, so that a
 * server another suite started on the same port does not pass for it); it
 * is stopped by its pid, also at exit when a test failed.  Names under
 * .test, .invalid and .localhost never reach it: libunbound answers them
 * itself.
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

static int dns_answers(const char *, const char *, char *, size_t);
static void kill_live(void);

void
dns_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* udp_port - a UDP socket bound on 127.0.0.1 (into *fd), its port; -1
 * (no ck_assert: dns_try_start runs before the tests too) */
static int
udp_port(int *fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((*fd = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return (-1);
	if (bind(*fd, (struct sockaddr *) &sin, sizeof(sin)) < 0
	    || getsockname(*fd, (struct sockaddr *) &sin, &len) < 0) {
		(void) close(*fd);
		*fd = -1;
		return (-1);
	}
	return (ntohs(sin.sin_port));
}

int
dns_udp_port(int *fd)
{
	int	port = udp_port(fd);

	ck_assert_msg(port >= 0, "a UDP port on 127.0.0.1: %s", strerror(errno));
	return (port);
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
 * fresh resolver each time: no cache, no memory of earlier failures)?
 * 1, 0, or -1 when no resolver can be made (why in err) */
static int
dns_answers(const char *addr, const char *want, char *err, size_t errlen)
{
	struct dmarc_resolver *r;
	char	buf[128], why[256];
	int	ok;

	if ((r = dmarc_resolver_create(addr, 200, err, errlen)) == NULL)
		return (-1);
	ok = dmarc_txt(r, PROBE, buf, sizeof(buf), NULL, why, sizeof(why)) == 1
	    && strcmp(buf, want) == 0;
	dmarc_resolver_free(r);
	return (ok);
}

char   *
dns_txt_split(const char *name, const char *value, size_t max)
{
	size_t	len = strlen(value), cap, m;
	char   *out;

	/* NAME, then a comma and at most max bytes a string. */
	cap = strlen(name) + len + len / (max ? max : 1) + 2;
	if (max == 0 || (out = malloc(cap)) == NULL)
		return (NULL);
	m = (size_t) snprintf(out, cap, "%s", name);
	for (size_t off = 0; off < len; off += max)
		m += (size_t) snprintf(out + m, cap - m, ",%.*s", (int) max, value + off);
	return (out);
}

/* start_once - one dnsmasq on a free port serving d's records, until it
 * answers (at most 10 s); 0, or 2 when it exited with status 2 (the port
 * was taken meanwhile) or -1, why in err */
static int
start_once(struct dns *d, char *err, size_t errlen)
{
	static int registered;
	size_t	n = 0, nargs = 16 + d->nlocal + d->ntxt;
	const char **argv = calloc(nargs, sizeof(*argv));
	char  **own = calloc(nargs, sizeof(*own));
	char	port[32], probe[128], want[48];
	int	status, fd, nown = 0, rc = -1;

	if (argv == NULL || own == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	if ((d->port = udp_port(&fd)) < 0) {
		snprintf(err, errlen, "a UDP port on 127.0.0.1: %s", strerror(errno));
		goto out;
	}
	(void) close(fd);
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
	for (size_t i = 0; i < d->nlocal + d->ntxt; i++) {
		char   *arg;

		if ((i < d->nlocal ? asprintf(&arg, "--local=/%s/", d->local[i])
		     : asprintf(&arg, "--txt-record=%s", d->txt[i - d->nlocal])) < 0) {
			snprintf(err, errlen, "out of memory");
			goto out;
		}
		argv[n++] = own[nown++] = arg;
	}
	argv[n] = NULL;

	fflush(NULL);
	if ((d->pid = fork()) < 0) {
		d->pid = 0;
		snprintf(err, errlen, "fork: %s", strerror(errno));
		goto out;
	}
	if (d->pid == 0) {
		if ((fd = open("/dev/null", O_RDWR)) >= 0) {
			(void) dup2(fd, 0);
			(void) dup2(fd, 1);
			(void) dup2(fd, 2);
		}
		execv(DNS_DNSMASQ, (char *const *) argv);
		_exit(127);
	}
	if (!registered++)
		(void) atexit(kill_live);
	for (int i = 0; i < LIVE; i++)
		if (live[i] == NULL || live[i] == d) {
			live[i] = d;
			break;
		}
	for (int i = 0; i < 1000; i++) {
		int	ok;

		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = 0;
			snprintf(err, errlen, "dnsmasq exited (status %d)", status);
			if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
				rc = 2;
			goto out;
		}
		if ((ok = dns_answers(d->addr, want, err, errlen)) != 0) {
			if (ok < 0)
				dns_kill(d);
			rc = ok > 0 ? 0 : -1;
			goto out;
		}
		dns_sleep_ms(10);
	}
	dns_kill(d);		/* a failed setup has no teardown */
	snprintf(err, errlen, "dnsmasq on %s does not answer", d->addr);
out:
	for (int i = 0; own && i < nown; i++)
		free(own[i]);
	free(own);
	free(argv);
	return (rc);
}

int
dns_try_start(struct dns *d, char *err, size_t errlen)
{
	int	rc;

	/* Exit 2: the port was taken meanwhile (its TCP side, by another
	 * suite running beside this one): another port. */
	while ((rc = start_once(d, err, errlen)) == 2)
		if (++d->attempts >= 10)
			return (-1);
	return (rc);
}

void
dns_start(struct dns *d)
{
	char	err[256];

	if (dns_try_start(d, err, sizeof(err)) != 0)
		ck_abort_msg("%s", err);
}
