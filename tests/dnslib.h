/* dnslib.h - a real DNS server for the suites: Debian's dnsmasq on a free
 * loopback port, serving TXT records (tests only) */
#ifndef MLISTD_DNSLIB_H
#define MLISTD_DNSLIB_H

#include <stddef.h>
#include <sys/types.h>

#define DNS_DNSMASQ	"/usr/sbin/dnsmasq"

struct dns {
	/* What to serve, set before dns_start: */
	const char *const *txt;	/* "NAME,STRING[,STRING...]" (--txt-record) */
	size_t	ntxt;
	const char *const *local; /* domains whose other names are NXDOMAIN */
	size_t	nlocal;
	/* Set by dns_start: */
	pid_t	pid;		/* 0: not running */
	pid_t	owner;		/* the process that started it */
	int	port;
	char	addr[32];	/* "127.0.0.1:PORT", for dmarc_resolver_create */
	int	attempts;	/* ports tried that another took */
};

/*
 * dns_start - dnsmasq on a free port of 127.0.0.1 serving d's records;
 * returns when it answers (at most 10 s), or the test fails.  When the
 * port is taken meanwhile (dnsmasq exits with status 2), another one.
 * Whatever is still running at exit is stopped by the process that
 * started it.
 */
void	dns_start(struct dns *d);

/* dns_try_start - dns_start without the test framework (no ck_assert: for
 * use before the tests run); 0, or -1 with why in err */
int	dns_try_start(struct dns *d, char *err, size_t errlen);

/* dns_txt_split - "NAME,STRING,STRING..." for dns.txt: value cut into
 * strings of at most max bytes (255 is the limit of one); malloc'd, NULL
 * when out of memory (no ck_assert) */
char   *dns_txt_split(const char *name, const char *value, size_t max);

/* dns_kill - stop d's dnsmasq: SIGTERM, then SIGKILL after 5 s */
void	dns_kill(struct dns *d);

/* dns_udp_port - a UDP socket bound on 127.0.0.1 (into *fd), its port:
 * a resolver that never answers while the socket stays open */
int	dns_udp_port(int *fd);

/* dns_free_udp_port - a UDP port on 127.0.0.1 that nobody holds now */
int	dns_free_udp_port(void);

struct dmarc_resolver;

/* dns_resolver - a dmarc_resolver asking addr (the test fails if it
 * cannot be made); the caller frees it */
struct dmarc_resolver *dns_resolver(const char *addr, unsigned timeout_ms);

/* dns_sleep_ms - a short pause between polls of a condition */
void	dns_sleep_ms(int ms);

#endif
