/*
 * log.c - diagnostics in the Postfix manner.
 *
 * One line per event to syslog (facility mail), or to the log-file of the
 * configuration instead, and in the foreground also to stderr as
 * "ident[pid]: text".  Under systemd (stderr is the journal, as
 * JOURNAL_STREAM says) stderr lines carry their priority as "<N>" and
 * syslog is skipped, so the journal gets every line once.  Severity
 * words follow Postfix: warnings start with "warning: ", errors with "error: ", fatal errors with
 * "fatal: " (the process then exits 1), broken invariants with "panic: "
 * (the process aborts).  Callers pass errno text themselves with
 * strerror(), so every message says what failed and why.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static const char *msg_ident = "mlistd";
static int msg_stderr;
static int msg_syslog = 1;
static long msg_pid;		/* for stderr lines; 0: ask getpid() */
static int msg_fd = -1;		/* log-file, or -1: syslog */
static int msg_journal;		/* stderr is systemd's journal */

static void msg_vlog(int prio, const char *prefix, const char *fmt,
		     va_list ap) MSG_PRINTF(3, 0);

/* msg_open - set up syslog; stderr as well when asked */
void
msg_open(const char *ident, int to_stderr)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	msg_ident = ident;
	msg_stderr = to_stderr;
	msg_journal = to_stderr && js && sscanf(js, "%lu:%lu", &dev, &ino) == 2
		&& fstat(2, &st) == 0 && (unsigned long) st.st_dev == dev
		&& (unsigned long) st.st_ino == ino;
	if (!msg_journal)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

/* msg_syslog_listening - a syslog daemon's socket exists */
int
msg_syslog_listening(void)
{
	struct stat st;

	return (stat(_PATH_LOG, &st) == 0 && S_ISSOCK(st.st_mode));
}

/* msg_destinations - where a line goes now: MSG_TO_* bits */
int
msg_destinations(void)
{
	return ((msg_fd >= 0 ? MSG_TO_FILE : msg_syslog ? MSG_TO_SYSLOG : 0)
		| (msg_stderr ? (msg_journal ? MSG_TO_JOURNAL : MSG_TO_STDERR) : 0));
}

/*
 * msg_set_file - log to fd (the log-file, opened O_APPEND) instead of
 * syslog; -1: back to syslog.  The caller owns the descriptor; forked
 * workers inherit it.
 */
void
msg_set_file(int fd)
{
	msg_fd = fd;
	if (fd >= 0)
		msg_syslog = 0;
}

/* msg_set_stderr - copy messages to stderr (foreground mode) */
void
msg_set_stderr(int to_stderr)
{
	msg_stderr = to_stderr;
	/* Detached from the journal's stream: syslog carries the lines. */
	if (!to_stderr && msg_journal) {
		msg_journal = 0;
		openlog(msg_ident, LOG_PID | LOG_NDELAY, LOG_MAIL);
	}
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
	int	had = msg_syslog;

	msg_pid = (long) getpid();	/* a new process: fork resets nothing */
	if (msg_fd >= 0 || msg_journal) {
		msg_syslog = 0;
		return;
	}
	if (!msg_stderr) {
		msg_syslog = 1;
		return;
	}
	msg_syslog = msg_syslog_listening();
	if (had && !msg_syslog)
		msg_warn("no syslog daemon listens on %s: logging to stderr only", _PATH_LOG);
}

/* msg_file_line - one line to the log-file, in a single write */
static void
msg_file_line(const char *prefix, const char *text)
{
	char	line[2400], stamp[64], zone[8];
	struct timespec ts = {0, 0};
	struct tm tm;
	int	n;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0 || localtime_r(&ts.tv_sec, &tm) == NULL
	    || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0
	    || strftime(zone, sizeof(zone), "%z", &tm) == 0)
		snprintf(stamp, sizeof(stamp), "-"), zone[0] = 0;
	n = snprintf(line, sizeof(line), "%s.%06ld%s %s[%ld]: %s%s\n", stamp,
		     ts.tv_nsec / 1000, zone, msg_ident,
		     msg_pid ? msg_pid : (long) getpid(), prefix, text);
	if (n < 0)
		return;
	if ((size_t) n >= sizeof(line)) {
		n = sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	/* O_APPEND: whole lines, also from several workers at once. */
	if (write(msg_fd, line, (size_t) n) != n && msg_stderr)
		(void) fprintf(stderr, "%s: cannot write the log file: %s\n", msg_ident,
			       strerror(errno));
}

/* msg_vlog - format once, send to every destination */
static void
msg_vlog(int prio, const char *prefix, const char *fmt, va_list ap)
{
	char	buf[2048];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	/* Never let control characters from the network reach the log. */
	for (char *p = buf; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			*p = '?';
	if (msg_fd >= 0)
		msg_file_line(prefix, buf);
	else if (msg_syslog)
		syslog(prio, "%s%s", prefix, buf);
	if (msg_stderr && msg_journal) {
		(void) fprintf(stderr, "<%d>%s%s\n", prio, prefix, buf);
		(void) fflush(stderr);
	} else if (msg_stderr) {
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
