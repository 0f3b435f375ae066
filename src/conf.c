/*
 * conf.c - configuration from the command line and the configuration file.
 *
 * One table row per parameter: name, type, default, where it is stored,
 * its range and a one-line description.  The --help text, the long option
 * table, the file parser and conf_dump() are all generated from it, and
 * man/mlistd.conf.5 lists the same rows (tests/check_conf checks that).
 *
 * Precedence: built-in default, then the configuration file, then the
 * command line.  The file uses the main.cf syntax Postfix administrators
 * know: "name = value", "#" comments, blank lines.  A missing default file
 * is fine; a missing file named with -c is an error.
 *
 * We do not use Mailutils' cli/cfg framework here: it adds options the
 * contract does not have (--config-file, --set, --no-site-config, ...),
 * reads the site-wide mailutils.conf, exits from inside its parser, and
 * has no way to re-read the file on SIGHUP while keeping the command-line
 * values on top.  A table of 20 rows is simpler to get right.
 *
 * Errors are returned as one line in a caller buffer; nothing here exits.
 * conf_build() returns a struct conf the caller frees with conf_free().
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf.h"
#include "dmarc.h"

#ifndef MLISTD_CONF
#define MLISTD_CONF "/etc/mlistd.conf"
#endif
#ifndef MLISTD_TEMPLATES
#define MLISTD_TEMPLATES "/etc/mlistd/templates"
#endif
#ifndef MLISTD_STATEDIR
#define MLISTD_STATEDIR "/var/lib/mlistd"
#endif

enum conf_type {
	T_STR,		/* any non-empty string */
	T_OPTSTR,	/* string, empty means unset */
	T_BOOL,		/* yes/no/true/false/1/0 */
	T_UINT,		/* decimal number in [min, max] */
	T_SIZE,		/* bytes, with optional k/m/g suffix */
	T_TIME,		/* seconds, with optional s/m/h/d suffix */
	T_LISTEN,	/* HOST:PORT or [HOST]:PORT */
	T_DOMAIN,	/* DNS domain name */
	T_LOCAL		/* local part without '+' or '@' */
};

struct conf_param {
	const char *name;
	int	shortopt;	/* 0: none */
	enum conf_type type;
	const char *defval;
	size_t	offset;
	unsigned long min, max;
	const char *argname;
	const char *doc;
};

#define OFF(f) offsetof(struct conf, f)

static const struct conf_param params[] = {
	{"foreground", 'f', T_BOOL, "no", OFF(foreground), 0, 1, NULL,
	"do not daemonize; log to stderr as well (under systemd: the journal only)"},
	{"listen", 0, T_LISTEN, "127.0.0.1:20381", OFF(listen), 0, 0,
	"HOST:PORT", "where to accept SMTP ([::1]:PORT for IPv6)"},
	{"domain", 0, T_DOMAIN, "example.com", OFF(domain), 0, 0, "DOMAIN",
	"the list domain (case-insensitive)"},
	{"database", 0, T_STR, MLISTD_STATEDIR "/mlistd.db", OFF(database),
	0, 0, "PATH", "SQLite database file"},
	{"relay", 0, T_STR, "smtp://127.0.0.1:25", OFF(relay), 0, 0, "URL",
	"Mailutils mailer URL the list copies are sent through"},
	{"bounce-maildir", 0, T_STR, MLISTD_STATEDIR "/bounces",
	OFF(bounce_maildir), 0, 0, "DIR", "Maildir for bounces"},
	{"bounce-local", 0, T_LOCAL, "bounce", OFF(bounce_local), 0, 0,
	"NAME", "local part of the bounce address"},
	{"postmaster-local", 0, T_LOCAL, "postmaster", OFF(postmaster_local),
	0, 0, "NAME", "the postmaster alias: List-Help/-Subscribe/-Unsubscribe of closed lists"},
	{"workers", 0, T_UINT, "4", OFF(workers), 1, 256, "N",
	"pre-forked worker processes"},
	{"max-message-size", 0, T_SIZE, "10240000", OFF(max_message_size),
	1024, 1024UL * 1024 * 1024, "BYTES", "largest message accepted (SIZE)"},
	{"pidfile", 0, T_OPTSTR, "", OFF(pidfile), 0, 0, "FILE",
	"pid file written by the master (default: none)"},
	{"log-file", 0, T_OPTSTR, "", OFF(log_file), 0, 0, "FILE",
	"log to this file instead of syslog (default: syslog, facility mail)"},
	{"max-command-length", 0, T_UINT, "512", OFF(max_command_length),
	512, 65536, "BYTES", "longest SMTP command line, CRLF included"},
	{"max-line-length", 0, T_UINT, "2048", OFF(max_line_length),
	1000, 1048576, "BYTES", "longest message text line, CRLF included"},
	{"max-recipients", 0, T_UINT, "1000", OFF(max_recipients), 1, 100000,
	"N", "recipients per transaction (then 452 4.5.3)"},
	{"max-errors", 0, T_UINT, "20", OFF(max_errors), 1, 1000, "N",
	"bad commands per session before 421 and disconnect"},
	{"timeout", 0, T_TIME, "300", OFF(timeout), 1, 86400, "SECONDS",
	"time allowed to send one command or data line, or to read a reply"},
	{"session-timeout", 0, T_TIME, "1800", OFF(session_timeout), 1,
	7 * 86400, "SECONDS", "total time one SMTP session may last"},
	{"max-use", 0, T_UINT, "100", OFF(max_use), 1, 1000000, "N",
	"sessions a worker serves before it is replaced"},
	{"shutdown-timeout", 0, T_TIME, "30", OFF(shutdown_timeout), 0, 3600,
	"SECONDS", "grace period for sessions in progress at stop or reload"},
	{"relay-recipient-limit", 0, T_UINT, "1000", OFF(relay_recipient_limit),
	1, 100000, "N", "recipients per relay transaction (Postfix: smtpd_recipient_limit)"},
	{"relay-timeout", 0, T_TIME, "120", OFF(relay_timeout), 1, 3600,
	"SECONDS", "time the relay has for each reply"},
	{"database-timeout", 0, T_TIME, "10", OFF(database_timeout), 1, 600,
	"SECONDS", "wait for a database lock before answering 451"},
	{"verp", 0, T_BOOL, "no", OFF(verp), 0, 1, NULL,
	"per-member bounce addresses through the relay's XVERP (costs the relay a transaction per member)"},
	{"verp-interval", 0, T_UINT, "1", OFF(verp_interval), 1, 1000000, "N",
	"with verp: about one post in N goes with XVERP (1: every post)"},
	{"bounce-threshold", 0, T_UINT, "0", OFF(bounce_threshold), 0, 1000, "N",
	"hard bounces within bounce-window that unsubscribe an address (0: never)"},
	{"bounce-window", 0, T_UINT, "30", OFF(bounce_window), 1, 3650, "DAYS",
	"days of bounces that bounce-threshold counts"},
	{"user", 0, T_STR, "mlistd", OFF(user), 0, 0, "NAME",
	"unprivileged user for the workers when started as root"},
	{"dedup-window", 0, T_TIME, "5d", OFF(dedup_window), 0, 30 * 86400, "SECONDS",
	"how long a relayed copy is remembered, so a retry is not sent twice (0: off)"},
	{"relay-pipelining", 0, T_BOOL, "yes", OFF(relay_pipelining), 0, 1, NULL,
	"send RCPT commands to the relay in pipelined windows"},
	{"max-header-fields", 0, T_UINT, "1000", OFF(max_header_fields), 10, 1000000,
	"N", "header fields in a post (then 552 5.3.4)"},
	{"max-header-size", 0, T_SIZE, "256k", OFF(max_header_size), 1024,
	64UL * 1024 * 1024, "BYTES", "header bytes in a post (then 552 5.3.4)"},
	{"probe-interval", 0, T_TIME, "1d", OFF(probe_interval), 1, 365 * 86400,
	"SECONDS", "at most one probe per member in this time"},
	{"bounce-max-size", 0, T_SIZE, "1m", OFF(bounce_max_size), 1024,
	1024UL * 1024 * 1024, "BYTES", "largest message accepted for the bounce address (then 552)"},
	{"data-done-timeout", 0, T_TIME, "300", OFF(data_done_timeout), 1, 3600,
	"SECONDS", "time to answer the end of data; what is not relayed by then gets 451 and resumes"},
	{"command-delimiter", 0, T_STR, "+", OFF(command_delimiter), 0, 0, "CHAR",
	"between a list's name and its commands: LIST+subscribe@DOMAIN (+ or -)"},
	{"confirm-expiry", 0, T_TIME, "3d", OFF(confirm_expiry), 3600, 30 * 86400, "SECONDS",
	"how long a subscription request can be confirmed"},
	{"template-dir", 0, T_STR, MLISTD_TEMPLATES, OFF(template_dir), 0, 0, "DIR",
	"texts of the mail answering the command addresses (missing file: built-in text)"},
	{"held-maildir", 0, T_OPTSTR, "", OFF(held_maildir), 0, 0, "DIR",
	"Maildir for posts held for a moderator (default: held beside bounce-maildir)"},
	{"hold-expiry", 0, T_TIME, "7d", OFF(hold_expiry), 3600, 365 * 86400, "SECONDS",
	"an undecided held post is discarded after this time"},
	{"hold-limit", 0, T_UINT, "200", OFF(hold_limit), 1, 1000000, "N",
	"undecided held posts per list (then 452 4.2.2: Postfix retries)"},
	{"hold-max-size", 0, T_SIZE, "5m", OFF(hold_max_size), 1024,
	1024UL * 1024 * 1024, "BYTES", "largest post held for a moderator (then 552 5.2.3)"},
	{"moderator-notice-limit", 0, T_UINT, "30", OFF(moderator_notice_limit), 1, 100000,
	"N", "notices about held posts to one moderator an hour (the rest wait)"},
	{"dmarc-mitigation", 0, T_STR, "auto", OFF(dmarc_mitigation), 0, 0, "MODE",
	"rewrite From: for DMARC: auto (when the author's domain needs it), always, never"},
	{"resolver", 0, T_OPTSTR, "", OFF(resolver), 0, 0, "ADDRESS[:PORT]",
	"DNS resolver for DMARC records and DKIM keys (default: /etc/resolv.conf)"},
	{"dns-timeout", 0, T_TIME, "3", OFF(dns_timeout), 1, 30, "SECONDS",
	"time one DNS query may take (then the post goes on without its answer)"},
	{"dkim-selector", 0, T_OPTSTR, "", OFF(dkim_selector), 0, 0, "NAME",
	"selector the relay path signs list mail with (mlistd -t checks its key)"},
	{NULL, 0, 0, NULL, 0, 0, 0, NULL, NULL}
};

/* Options that exist only on the command line. */
enum {
	OPT_CONFIG = 'c',
	OPT_CHECK = 't',
	OPT_HELP = 1000,
	OPT_VERSION,
	OPT_PARAM_BASE = 2000
};

struct conf_setting {
	const struct conf_param *param;
	char	*value;
};

struct conf_args {
	char	*config_file;		/* from -c, or NULL */
	struct conf_setting *set;
	size_t	nset;
};

static const struct conf_param *param_find(const char *);
static int param_set(struct conf *, const struct conf_param *,
		     const char *, char *, size_t);
static int conf_read_file(struct conf *, const char *, int,
			  char *, size_t);
static int conf_derive(struct conf *, char *, size_t);
static void errf(char *, size_t, const char *, ...)
	__attribute__((format(printf, 3, 4)));

/* errf - format a one-line error into the caller's buffer */
static void
errf(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || len == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
}

/* param_find - table lookup by name */
static const struct conf_param *
param_find(const char *name)
{
	for (const struct conf_param *p = params; p->name; p++)
		if (strcmp(p->name, name) == 0)
			return (p);
	return (NULL);
}

/* parse_number - unsigned decimal with an optional unit suffix */
static int
parse_number(const char *s, const char *units, const unsigned long *mult,
	     unsigned long *out)
{
	char	*end;
	unsigned long v;

	if (!isdigit((unsigned char) *s))
		return (-1);
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE)
		return (-1);
	if (*end != 0 && units != NULL) {
		const char *u = strchr(units, tolower((unsigned char) *end));

		if (u == NULL || end[1] != 0)
			return (-1);
		if (v > ULONG_MAX / mult[u - units])
			return (-1);
		v *= mult[u - units];
	} else if (*end != 0)
		return (-1);
	*out = v;
	return (0);
}

/* valid_domain - letters, digits, hyphens and dots; no empty labels */
static int
valid_domain(const char *s)
{
	size_t	label = 0, len = strlen(s);

	if (len == 0 || len > 253)
		return (0);
	for (const char *p = s; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return (0);
			label = 0;
		} else if (isalnum((unsigned char) *p) || *p == '-') {
			if (++label > 63)
				return (0);
		} else
			return (0);
	}
	return (label > 0);
}

/* valid_local - RFC 5322 atext without '+' (our VERP delimiter) */
static int
valid_local(const char *s)
{
	if (*s == 0 || strlen(s) > 64 || *s == '.')
		return (0);
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char) *p) && strchr("!#$%&'*-/=?^_`{|}~.", *p) == NULL)
			return (0);
	return (s[strlen(s) - 1] != '.');
}

/* param_set - convert and store one value */
static int
param_set(struct conf *cf, const struct conf_param *p, const char *value,
	  char *err, size_t errlen)
{
	static const unsigned long size_mult[] = {1024UL, 1024UL * 1024,
	1024UL * 1024 * 1024};
	static const unsigned long time_mult[] = {1, 60, 3600, 86400};
	char   *field = (char *) cf + p->offset;
	unsigned long v;
	char  **sp;

	switch (p->type) {
	case T_BOOL:
		if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0
		    || strcmp(value, "1") == 0)
			*(int *) field = 1;
		else if (strcasecmp(value, "no") == 0
			 || strcasecmp(value, "false") == 0
			 || strcmp(value, "0") == 0)
			*(int *) field = 0;
		else {
			errf(err, errlen, "%s: invalid value \"%s\": expected yes or no",
			     p->name, value);
			return (-1);
		}
		return (0);
	case T_UINT:
	case T_SIZE:
	case T_TIME:
		if (parse_number(value,
				 p->type == T_SIZE ? "kmg" : p->type == T_TIME ? "smhd" : NULL,
				 p->type == T_SIZE ? size_mult : time_mult, &v) < 0
		    || v < p->min || v > p->max) {
			errf(err, errlen, "%s: invalid value \"%s\": expected %s from %lu to %lu",
			     p->name, value,
			     p->type == T_SIZE ? "a size in bytes" :
			     p->type == T_TIME ? "a time in seconds" : "a number",
			     p->min, p->max);
			return (-1);
		}
		if (p->type == T_SIZE)
			*(unsigned long *) field = v;
		else
			*(unsigned *) field = (unsigned) v;
		return (0);
	case T_DOMAIN:
		if (!valid_domain(value)) {
			errf(err, errlen, "%s: invalid value \"%s\": expected a domain name",
			     p->name, value);
			return (-1);
		}
		break;
	case T_LOCAL:
		if (!valid_local(value)) {
			errf(err, errlen, "%s: invalid value \"%s\": expected a local part "
			     "without '+', '@' or spaces", p->name, value);
			return (-1);
		}
		break;
	case T_STR:
	case T_LISTEN:
		if (*value == 0) {
			errf(err, errlen, "%s: empty value", p->name);
			return (-1);
		}
		break;
	case T_OPTSTR:
		break;
	}
	/* String types. */
	sp = (char **) field;
	free(*sp);
	*sp = (p->type == T_OPTSTR && *value == 0) ? NULL : strdup(value);
	if (*sp == NULL && !(p->type == T_OPTSTR && *value == 0)) {
		errf(err, errlen, "out of memory");
		return (-1);
	}
	if (p->type == T_DOMAIN)
		for (char *c = *sp; *c; c++)
			*c = (char) tolower((unsigned char) *c);
	return (0);
}

/* conf_args_parse - command line to a list of settings */
struct conf_args *
conf_args_parse(int argc, char **argv, enum conf_action *action,
		char *err, size_t errlen)
{
	struct option longopts[sizeof(params) / sizeof(params[0]) + 5];
	char	shortopts[64] = ":c:t";
	struct conf_args *args;
	size_t	n = 0;
	int	c;

	*action = CONF_RUN;
	if ((args = calloc(1, sizeof(*args))) == NULL
	    || (args->set = calloc((size_t) argc + 1, sizeof(*args->set))) == NULL) {
		free(args);
		errf(err, errlen, "out of memory");
		return (NULL);
	}
	longopts[n++] = (struct option) {"config", required_argument, NULL, OPT_CONFIG};
	longopts[n++] = (struct option) {"check-config", no_argument, NULL, OPT_CHECK};
	longopts[n++] = (struct option) {"help", no_argument, NULL, OPT_HELP};
	longopts[n++] = (struct option) {"version", no_argument, NULL, OPT_VERSION};
	for (const struct conf_param *p = params; p->name; p++) {
		longopts[n++] = (struct option) {p->name,
			p->type == T_BOOL ? optional_argument : required_argument, NULL,
		OPT_PARAM_BASE + (int) (p - params)};
		if (p->shortopt) {
			size_t	l = strlen(shortopts);

			shortopts[l] = (char) p->shortopt;
			shortopts[l + 1] = 0;
		}
	}
	longopts[n] = (struct option) {NULL, 0, NULL, 0};

	opterr = 0;
	optind = 0;			/* GNU: full re-initialization */
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		const struct conf_param *p = NULL;

		switch (c) {
		case OPT_CONFIG:
			free(args->config_file);
			if ((args->config_file = strdup(optarg)) == NULL)
				goto oom;
			continue;
		case OPT_CHECK:
			*action = CONF_CHECK;
			continue;
		case OPT_HELP:
			*action = CONF_HELP;
			continue;
		case OPT_VERSION:
			if (*action != CONF_HELP)
				*action = CONF_VERSION;
			continue;
		case ':':
			errf(err, errlen, "option '%s' requires an argument",
			     argv[optind - 1]);
			goto bad;
		case '?':
			if (optopt)
				errf(err, errlen, "invalid option '-%c'", optopt);
			else
				errf(err, errlen, "unrecognized option '%s'",
				     argv[optind - 1]);
			goto bad;
		default:
			if (c >= OPT_PARAM_BASE)
				p = &params[c - OPT_PARAM_BASE];
			else
				for (const struct conf_param *q = params; q->name; q++)
					if (q->shortopt == c)
						p = q;
			if (p == NULL) {
				errf(err, errlen, "invalid option");
				goto bad;
			}
			args->set[args->nset].param = p;
			if ((args->set[args->nset].value =
			     strdup(p->type == T_BOOL && optarg == NULL ? "yes" : optarg)) == NULL)
				goto oom;
			args->nset++;
		}
	}
	if (optind < argc) {
		errf(err, errlen, "unexpected argument '%s'", argv[optind]);
		goto bad;
	}
	return (args);
oom:
	errf(err, errlen, "out of memory");
bad:
	conf_args_free(args);
	return (NULL);
}

/* conf_args_free - release a parsed command line */
void
conf_args_free(struct conf_args *args)
{
	if (args == NULL)
		return;
	for (size_t i = 0; i < args->nset; i++)
		free(args->set[i].value);
	free(args->set);
	free(args->config_file);
	free(args);
}

/* conf_read_file - apply "name = value" lines */
static int
conf_read_file(struct conf *cf, const char *path, int must_exist,
	       char *err, size_t errlen)
{
	char	line[4096], perr[512];
	FILE   *fp;
	unsigned lineno = 0;
	int	ret = 0;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return (0);
		errf(err, errlen, "cannot open configuration file %s: %s",
		     path, strerror(errno));
		return (-1);
	}
	while (ret == 0 && fgets(line, sizeof(line), fp) != NULL) {
		char   *name, *value, *eq, *end;
		const struct conf_param *p;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			errf(err, errlen, "%s:%u: line too long", path, lineno);
			ret = -1;
			break;
		}
		name = line + strspn(line, " \t");
		if (*name == '#' || *name == '\n' || *name == '\r' || *name == 0)
			continue;
		end = name + strlen(name);
		while (end > name && isspace((unsigned char) end[-1]))
			*--end = 0;
		if ((eq = strchr(name, '=')) == NULL) {
			errf(err, errlen, "%s:%u: expected \"name = value\"", path, lineno);
			ret = -1;
			break;
		}
		value = eq + 1 + strspn(eq + 1, " \t");
		while (eq > name && isspace((unsigned char) eq[-1]))
			eq--;
		*eq = 0;
		if ((p = param_find(name)) == NULL) {
			errf(err, errlen, "%s:%u: unknown parameter \"%s\"", path, lineno, name);
			ret = -1;
			break;
		}
		if (param_set(cf, p, value, perr, sizeof(perr)) < 0) {
			errf(err, errlen, "%s:%u: %s", path, lineno, perr);
			ret = -1;
		}
	}
	if (ret == 0 && ferror(fp)) {
		errf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		ret = -1;
	}
	(void) fclose(fp);
	return (ret);
}

/* conf_derive - split and check the listen address */
static int
conf_derive(struct conf *cf, char *err, size_t errlen)
{
	const char *l = cf->listen, *colon;
	struct addrinfo hints, *res = NULL;
	size_t	hlen;
	int	rc;

	if (*l == '[') {
		const char *close = strchr(l, ']');

		if (close == NULL || close[1] != ':') {
			errf(err, errlen, "listen: invalid value \"%s\": expected [HOST]:PORT", l);
			return (-1);
		}
		hlen = (size_t) (close - l - 1);
		l++;
		colon = close + 1;
	} else {
		if ((colon = strrchr(l, ':')) == NULL || memchr(l, ':', (size_t) (colon - l))) {
			errf(err, errlen, "listen: invalid value \"%s\": expected HOST:PORT "
			     "or [IPV6]:PORT", cf->listen);
			return (-1);
		}
		hlen = (size_t) (colon - l);
	}
	free(cf->listen_host);
	free(cf->listen_port);
	cf->listen_host = strndup(l, hlen);
	cf->listen_port = strdup(colon + 1);
	if (cf->listen_host == NULL || cf->listen_port == NULL) {
		errf(err, errlen, "out of memory");
		return (-1);
	}
	{
		unsigned long port;

		if (*cf->listen_host == 0
		    || parse_number(cf->listen_port, NULL, NULL, &port) < 0
		    || port < 1 || port > 65535) {
			errf(err, errlen, "listen: invalid value \"%s\": expected HOST:PORT "
			     "with a port from 1 to 65535", cf->listen);
			return (-1);
		}
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(cf->listen_host, cf->listen_port, &hints, &res)) != 0) {
		errf(err, errlen, "listen: cannot resolve \"%s\": %s",
		     cf->listen_host, gai_strerror(rc));
		return (-1);
	}
	freeaddrinfo(res);
	return (0);
}

/* held_default - no held-maildir: "held" in bounce-maildir's directory */
static int
held_default(struct conf *cf)
{
	const char *slash = strrchr(cf->bounce_maildir, '/');
	size_t	n = slash ? (size_t) (slash - cf->bounce_maildir) + 1 : 0;
	char   *p;

	if (cf->held_maildir && cf->held_maildir[0])
		return (0);
	if ((p = malloc(n + sizeof("held"))) == NULL)
		return (-1);
	memcpy(p, cf->bounce_maildir, n);
	memcpy(p + n, "held", sizeof("held"));
	free(cf->held_maildir);
	cf->held_maildir = p;
	return (0);
}

/* conf_build - defaults, file, command line; then validate */
struct conf *
conf_build(const struct conf_args *args, char *err, size_t errlen)
{
	struct conf *cf;
	char	perr[512];
	const char *file;

	if ((cf = calloc(1, sizeof(*cf))) == NULL) {
		errf(err, errlen, "out of memory");
		return (NULL);
	}
	for (const struct conf_param *p = params; p->name; p++)
		if (param_set(cf, p, p->defval, err, errlen) < 0)
			goto bad;
	file = args->config_file ? args->config_file : MLISTD_CONF;
	if (conf_read_file(cf, file, args->config_file != NULL, err, errlen) < 0)
		goto bad;
	if ((cf->config_file = strdup(file)) == NULL)
		goto oom;
	for (size_t i = 0; i < args->nset; i++)
		if (param_set(cf, args->set[i].param, args->set[i].value,
			      perr, sizeof(perr)) < 0) {
			errf(err, errlen, "--%s", perr);
			goto bad;
		}
	if (strcasecmp(cf->bounce_local, cf->postmaster_local) == 0) {
		errf(err, errlen, "bounce-local and postmaster-local must differ");
		goto bad;
	}
	if (strcmp(cf->command_delimiter, "+") != 0 && strcmp(cf->command_delimiter, "-") != 0) {
		errf(err, errlen, "command-delimiter: \"%s\" is neither \"+\" nor \"-\"",
		     cf->command_delimiter);
		goto bad;
	}
	cf->delim = cf->command_delimiter[0];
	if ((cf->dmarc_mode = conf_dmarc_mode(cf->dmarc_mitigation)) == 0) {
		errf(err, errlen, "dmarc-mitigation: \"%s\" is none of auto, always, never",
		     cf->dmarc_mitigation);
		goto bad;
	}
	if (cf->resolver && dmarc_resolver_valid(cf->resolver, perr, sizeof(perr)) < 0) {
		errf(err, errlen, "%s", perr);
		goto bad;
	}
	if (cf->dkim_selector && !dmarc_dns_name(cf->dkim_selector)) {
		errf(err, errlen, "dkim-selector: \"%s\" is no DNS name (letters, digits, "
		     "\"-\" and \"_\" in labels of up to 63, dots between)", cf->dkim_selector);
		goto bad;
	}
	if (held_default(cf) < 0)
		goto oom;
	if (conf_derive(cf, err, errlen) < 0)
		goto bad;
	return (cf);
oom:
	errf(err, errlen, "out of memory");
bad:
	conf_free(cf);
	return (NULL);
}

int
conf_dmarc_mode(const char *s)
{
	return (s == NULL ? 0 : strcmp(s, "auto") == 0 ? DMARC_MODE_AUTO
		: strcmp(s, "always") == 0 ? DMARC_MODE_ALWAYS
		: strcmp(s, "never") == 0 ? DMARC_MODE_NEVER : 0);
}

/* conf_free - release a configuration; NULL is fine */
void
conf_free(struct conf *cf)
{
	if (cf == NULL)
		return;
	for (const struct conf_param *p = params; p->name; p++)
		if (p->type != T_BOOL && p->type != T_UINT && p->type != T_SIZE
		    && p->type != T_TIME)
			free(*(char **) ((char *) cf + p->offset));
	free(cf->config_file);
	free(cf->listen_host);
	free(cf->listen_port);
	free(cf);
}

/* conf_usage - --help from the table */
void
conf_usage(FILE *fp)
{
	char	opt[64];

	fprintf(fp, "Usage: mlistd [OPTION]...\n"
		"Mailing-list SMTP backend for Postfix.\n\n");
	fprintf(fp, "  -c, --config=FILE          configuration file (default %s)\n",
		MLISTD_CONF);
	fprintf(fp, "  -t, --check-config         validate configuration and database, then exit\n");
	for (const struct conf_param *p = params; p->name; p++) {
		if (p->type == T_BOOL && strcmp(p->defval, "yes") == 0)
			snprintf(opt, sizeof(opt), "--%s[=no]", p->name);
		else if (p->type == T_BOOL)
			snprintf(opt, sizeof(opt), "--%s", p->name);
		else
			snprintf(opt, sizeof(opt), "--%s=%s", p->name, p->argname);
		if (p->shortopt)
			fprintf(fp, "  -%c, %-22s", p->shortopt, opt);
		else
			fprintf(fp, "      %-22s", opt);
		if (strlen(opt) > 22)
			fprintf(fp, "\n%28s", "");
		fprintf(fp, " %s", p->doc);
		if (p->type != T_OPTSTR)
			fprintf(fp, " (default %s)", p->defval);
		fputc('\n', fp);
	}
	fprintf(fp, "      --help                 display this help and exit\n"
		"      --version              output version information and exit\n\n"
		"Every long option can also be set in the configuration file as\n"
		"\"name = value\"; the command line wins.  See mlistd(8), mlistd.conf(5).\n"
		"Report bugs to <%s>.\n", PACKAGE_BUGREPORT);
}

/* conf_dump - effective settings, like postconf -n */
void
conf_dump(FILE *fp, const struct conf *cf)
{
	for (const struct conf_param *p = params; p->name; p++) {
		const char *field = (const char *) cf + p->offset;

		fprintf(fp, "%s = ", p->name);
		switch (p->type) {
		case T_BOOL:
			fprintf(fp, "%s\n", *(const int *) field ? "yes" : "no");
			break;
		case T_UINT:
			fprintf(fp, "%u\n", *(const unsigned *) field);
			break;
		case T_TIME:
			/* Whole days as the files and the man pages write them. */
			if (*(const unsigned *) field >= 86400 && *(const unsigned *) field % 86400 == 0)
				fprintf(fp, "%ud\n", *(const unsigned *) field / 86400);
			else
				fprintf(fp, "%u\n", *(const unsigned *) field);
			break;
		case T_SIZE:
			fprintf(fp, "%lu\n", *(const unsigned long *) field);
			break;
		default:
			fprintf(fp, "%s\n", *(char *const *) field ?
				*(char *const *) field : "");
		}
	}
}
