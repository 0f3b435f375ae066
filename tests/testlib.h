/* testlib.h - start the real daemon and talk SMTP to it (tests only) */
#ifndef MLISTD_TESTLIB_H
#define MLISTD_TESTLIB_H

#include <stdarg.h>
#include <stddef.h>
#include <sys/types.h>

/* The unprivileged user the daemon's workers become when tests run as root. */
#define TL_USER "nobody"

/* tl_give_dir - as root, hand a directory to TL_USER; 0 or -1 */
int	tl_give_dir(const char *dir);

struct tl_daemon {
	pid_t	pid;		/* the master (foreground) */
	int	port;
	char	dir[256];	/* temporary directory, removed at stop */
	char	conf[300];
	char	pidfile[300];
	char	log[300];	/* the daemon's stderr */
	char	listen[64];
};

/* tl_free_port - an unused TCP port on 127.0.0.1 (or ::1 when v6) */
int	tl_free_port(int v6);

/*
 * tl_daemon_start - write a configuration file (listen, pidfile and
 * `extra`, which may be NULL) and start $MLISTD -f -c FILE.  Waits until
 * the port accepts connections (at most 10 s).  Returns 0 or -1.  The
 * daemon is stopped by tl_daemon_stop() or, if the test dies, at exit.
 */
int	tl_daemon_start(struct tl_daemon *, const char *extra, int v6);

/* tl_write_conf - rewrite the configuration file */
void	tl_write_conf(struct tl_daemon *, const char *extra);

/* tl_daemon_stop - SIGTERM, wait at most `secs`; returns exit status or -1 */
int	tl_daemon_stop(struct tl_daemon *, int secs);

/* tl_daemon_wait - wait for the master to exit (status or -1) */
int	tl_daemon_wait(struct tl_daemon *, int secs);

/* tl_workers - pids of the master's children; returns how many */
int	tl_workers(pid_t master, pid_t *out, int max);

/*
 * tl_worker_by_port - the child of master (a worker) that holds the TCP
 * socket 127.0.0.1:local_port connected to 127.0.0.1:remote_port (a
 * relay connection, seen from the relay as its peer); 0 if none.
 */
pid_t	tl_worker_by_port(pid_t master, int local_port, int remote_port);

/* tl_connect - TCP to the daemon with 10 s send/receive timeouts */
int	tl_connect(const struct tl_daemon *);

/* tl_send - write all of s; 0 or -1 */
int	tl_send(int fd, const char *s);

/*
 * tl_reply - read one complete (possibly multi-line) reply into buf.
 * Returns the code, or -1 on EOF/timeout.
 */
int	tl_reply(int fd, char *buf, size_t len);

/* tl_cmd - send a command and return the reply code */
int	tl_cmd(int fd, const char *cmd, char *buf, size_t len);

/* tl_run - run argv, capture stdout+stderr; returns exit status */
int	tl_run(char *const argv[], char *out, size_t len);

/* tl_mlistd - path of the daemon under test ($MLISTD) */
const char *tl_mlistd(void);

/* tl_sleep_ms */
void	tl_sleep_ms(int ms);

#endif

/* A relay target: tests/mlsink on a free port writing into dir. */
struct tl_sink {
	pid_t	pid;
	int	port;
	char	dir[256];
};

/* tl_sink_start - start mlsink with extra options (NULL-terminated) */
int	tl_sink_start(struct tl_sink *, ...);
void	tl_sink_stop(struct tl_sink *);

/*
 * tl_vstart_relayed - mlsink with the options in ap (NULL-terminated, at
 * most 7), the daemon relaying to it with `extra` configuration lines
 * (may be NULL), and `seed` SQL (may be NULL) run once the daemon is up.
 * 0 or -1.  tl_stop_relayed stops both: tl_daemon_stop's status.
 */
int	tl_vstart_relayed(struct tl_daemon *, struct tl_sink *, const char *extra,
			  const char *seed, va_list ap);
int	tl_stop_relayed(struct tl_daemon *, struct tl_sink *);

/*
 * tl_sink_messages - read every transaction file, sorted by name, into
 * out[] (malloc'd strings; free with tl_free_messages).  Returns count.
 */
int	tl_sink_messages(const struct tl_sink *, char **out, int max);
void	tl_free_messages(char **v, int n);

/* tl_count - occurrences of needle in hay */
int	tl_count(const char *hay, const char *needle);

/* tl_logged - lines of the daemon's log (its stderr) with needle, or -1
 * when the log cannot be read */
int	tl_logged(const struct tl_daemon *, const char *needle);

/* tl_sql - run SQL on the daemon's database; 0 or -1 (message to stderr) */
int	tl_sql(const struct tl_daemon *, const char *sql);

/* tl_sql_int - first column of the first row as an integer (or -1) */
long	tl_sql_int(const struct tl_daemon *, const char *sql);

/* tl_post - one SMTP transaction; returns the final reply code (buf has it) */
int	tl_post(const struct tl_daemon *, const char *from, const char *const *rcpt,
		const char *data, char *buf, size_t len);
