/*
 * main.c - mlistd: mailing-list SMTP backend for Postfix.
 *
 * Wires the modules: parse the command line and the configuration file
 * (conf), then either report (--help, --version, --check-config) or hand
 * over to the supervisor (master), which forks the workers (worker).
 * Bad options and values print one line on stderr and exit 1.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "conf.h"
#include "privs.h"
#include "log.h"
#include "master.h"

int
main(int argc, char **argv)
{
	enum conf_action action;
	struct conf_args *args;
	struct conf *cf;
	char	err[1024];
	int	rc;

	/* What mlistd creates (the database, its -wal and -shm, the
	 * Maildirs) is not for others to read. */
	(void) umask(027);
	if ((args = conf_args_parse(argc, argv, &action, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mlistd: %s (try 'mlistd --help')\n", err);
		return (1);
	}
	if (action == CONF_HELP) {
		conf_usage(stdout);
		conf_args_free(args);
		return (0);
	}
	if (action == CONF_VERSION) {
		printf("mlistd (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
		conf_args_free(args);
		return (0);
	}
	if ((cf = conf_build(args, err, sizeof(err))) == NULL) {
		fprintf(stderr, "mlistd: %s\n", err);
		conf_args_free(args);
		return (1);
	}
	if (action == CONF_CHECK) {
		/* A migration's lines reach the administrator and the log. */
		msg_open("mlistd", 1);
		if (privs_check(cf, stderr, err, sizeof(err)) < 0) {
			fprintf(stderr, "mlistd: %s\n", err);
			conf_free(cf);
			conf_args_free(args);
			return (1);
		}
		if (cf->log_file) {
			int	fd = privs_log_open(cf->log_file, err, sizeof(err));

			if (fd < 0) {
				fprintf(stderr, "mlistd: %s\n", err);
				conf_free(cf);
				conf_args_free(args);
				return (1);
			}
			(void) close(fd);
		} else if (!cf->foreground && !msg_syslog_listening())
			fprintf(stderr, "mlistd: warning: no syslog daemon listens on %s and "
				"log-file is not set: in the background mlistd's messages would "
				"reach nobody\n", _PATH_LOG);
		conf_dump(stdout, cf);
		fprintf(stderr, "mlistd: configuration %s and database %s OK\n",
			cf->config_file, cf->database);
		conf_free(cf);
		conf_args_free(args);
		return (0);
	}
	msg_open("mlistd", 1);	/* stderr until detached */
	rc = master_run(args, cf);
	conf_args_free(args);
	return (rc);
}
