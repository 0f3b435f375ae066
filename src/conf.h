/* conf.h - mlistd configuration: command line, configuration file, checks */
#ifndef MLISTD_CONF_H
#define MLISTD_CONF_H

#include <stddef.h>
#include <stdio.h>

/* The effective configuration.  Strings are owned by the struct. */
struct conf {
	char	*config_file;		/* file that was read, or NULL */
	int	foreground;
	char	*listen;		/* HOST:PORT or [V6]:PORT */
	char	*listen_host;		/* derived: host part */
	char	*listen_port;		/* derived: port part */
	char	*domain;		/* lower case */
	char	*database;
	char	*relay;
	char	*bounce_maildir;
	char	*bounce_local;
	char	*postmaster_local;
	unsigned workers;
	unsigned long max_message_size;
	char	*pidfile;		/* NULL: none */
	char	*log_file;		/* NULL: syslog */
	unsigned max_command_length;
	unsigned max_line_length;
	unsigned max_recipients;
	unsigned max_errors;
	unsigned timeout;		/* seconds */
	unsigned session_timeout;	/* seconds */
	unsigned max_use;
	unsigned shutdown_timeout;	/* seconds */
	unsigned relay_recipient_limit;
	unsigned relay_timeout;		/* seconds */
	unsigned database_timeout;	/* seconds to wait for a lock */
	int	verp;			/* ask the relay for XVERP */
	unsigned verp_interval;		/* ... for about one post in this many */
	unsigned bounce_threshold;	/* 0: no automatic unsubscribes */
	unsigned bounce_window;		/* days */
	char	*user;			/* who runs the workers, when root */
	unsigned dedup_window;		/* seconds; 0: off */
	int	relay_pipelining;	/* pipeline RCPTs to the relay */
	unsigned data_done_timeout;	/* seconds for the whole end of data */
	unsigned max_header_fields;	/* fields in a post's header */
	unsigned long max_header_size;	/* bytes of a post's header */
	unsigned long bounce_max_size;	/* largest bounce kept */
	unsigned probe_interval;	/* seconds between probes of a member */
	char	*command_delimiter;	/* "+" or "-": LIST+subscribe */
	char	delim;			/* derived: its character */
	char	*template_dir;		/* the notices' texts */
	unsigned confirm_expiry;	/* seconds a confirmation token lives */
	char	*held_maildir;		/* posts held for a moderator */
	unsigned hold_expiry;		/* seconds an undecided post waits */
	unsigned hold_limit;		/* undecided posts per list */
	unsigned long hold_max_size;	/* bytes of a post that is held */
	unsigned moderator_notice_limit;	/* notices per moderator an hour */
	char	*dmarc_mitigation;	/* "auto", "always" or "never" */
	int	dmarc_mode;		/* derived: DMARC_MODE_* */
	char	*resolver;		/* ADDRESS[:PORT]; NULL: /etc/resolv.conf */
	unsigned dns_timeout;		/* seconds per DNS query */
	char	*dkim_selector;		/* the relay path's selector; NULL: unknown */
};

/* dmarc-mitigation, and groups.dmarc (NULL there: the option's) */
enum { DMARC_MODE_AUTO = 1, DMARC_MODE_ALWAYS, DMARC_MODE_NEVER };

/* conf_dmarc_mode - DMARC_MODE_* of "auto", "always", "never"; 0 else */
int	conf_dmarc_mode(const char *);

/* What the command line asks for. */
enum conf_action {
	CONF_RUN,
	CONF_CHECK,
	CONF_HELP,
	CONF_VERSION
};

struct conf_args;

/*
 * conf_args_parse - parse argv.  Returns NULL with a one-line message in
 * err on a bad option.  The result is kept for SIGHUP reloads, where the
 * command line still wins over the file.
 */
struct conf_args *conf_args_parse(int argc, char **argv,
				  enum conf_action *action,
				  char *err, size_t errlen);
void	conf_args_free(struct conf_args *);

/*
 * conf_build - defaults, then the configuration file, then the command
 * line; validated.  Returns NULL with a one-line message in err.  The
 * caller frees the result with conf_free().
 */
struct conf *conf_build(const struct conf_args *, char *err, size_t errlen);
void	conf_free(struct conf *);

/* conf_usage - the --help text, generated from the parameter table. */
void	conf_usage(FILE *);

/* conf_dump - the effective settings, one "name = value" per line. */
void	conf_dump(FILE *, const struct conf *);

#endif
