/*
 * log.c - diagnostics in the Postfix manner.
 *
 * One line per event to syslog (facility mail) and, in the foreground, to
 * stderr as "ident[pid]: text".  Severity words follow Postfix: warnings
 * start with "warning: ", errors with "error: ", fatal errors with
 * "fatal: " (the process then exits 1), broken invariants with "panic: "
 * (the process aborts).  Callers pass errno text themselves with
 * strerror(), so every message says what failed and why.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "log.h"

static const char *msg_ident = "mlistd";
static int msg_stderr;
static int msg_syslog = 1;
static long msg_pid;		/* for stderr lines; 0: ask getpid() */

static void msg_vlog(int prio, const char *prefix, const char *fmt,
		     va_list ap) MSG_PRINTF(3, 0);

/* msg_open - set up syslog; stderr as well when asked */
void
msg_open(const char *ident, int to_stderr)
{
	msg_ident = ident;
	msg_stderr = to_stderr;
	openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* msg_set_stderr - copy messages to stderr (foreground mode) */
void
msg_set_stderr(int to_stderr)
{
	msg_stderr = to_stderr;
}

/* msg_set_syslog - turn syslog output on or off (command-line tools) */
void
msg_set_syslog(int to_syslog)
{
	msg_syslog = to_syslog;
}

/*
 * msg_syslog_probe - in the foreground, with a copy of every line on
 * stderr, skip syslog while no syslog daemon listens on /dev/log: glibc
 * would try to connect for every single line, three wasted system calls
 * each.  Called when a process starts (the master, and each worker, so a
 * syslog daemon started later is used from the next worker generation
 * on).  A daemon without stderr always logs to syslog.
 */
void
msg_syslog_probe(void)
{
	struct stat st;
	int	had = msg_syslog;

	msg_pid = (long) getpid();	/* a new process: fork resets nothing */
	if (!msg_stderr) {
		msg_syslog = 1;
		return;
	}
	msg_syslog = stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode);
	if (had && !msg_syslog)
		msg_warn("no syslog daemon listens on %s: logging to stderr only", _PATH_LOG);
}

/* msg_vlog - format once, send to both destinations */
static void
msg_vlog(int prio, const char *prefix, const char *fmt, va_list ap)
{
	char	buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* Never let control characters from the network reach the log. */
	for (char *p = buf; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = '?';
	if (msg_syslog)
		syslog(prio, "%s%s", prefix, buf);
	if (msg_stderr) {
		(void) fprintf(stderr, "%s[%ld]: %s%s\n", msg_ident,
			       msg_pid ? msg_pid : (long) getpid(), prefix, buf);
		(void) fflush(stderr);
	}
}

#define MSG_BODY(prio, prefix) do { \
	va_list ap; \
	va_start(ap, fmt); \
	msg_vlog((prio), (prefix), fmt, ap); \
	va_end(ap); \
} while (0)

void
msg_info(const char *fmt, ...)
{
	MSG_BODY(LOG_INFO, "");
}

void
msg_warn(const char *fmt, ...)
{
	MSG_BODY(LOG_WARNING, "warning: ");
}

void
msg_error(const char *fmt, ...)
{
	MSG_BODY(LOG_ERR, "error: ");
}

void
msg_fatal(const char *fmt, ...)
{
	MSG_BODY(LOG_CRIT, "fatal: ");
	exit(1);
}

void
msg_panic(const char *fmt, ...)
{
	MSG_BODY(LOG_CRIT, "panic: ");
	abort();
}
