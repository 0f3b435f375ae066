/*
 * master.c - process supervision: bind, daemonize, pre-fork, replace.
 *
 * The master binds the listening socket, optionally detaches, writes the
 * pid file, forks `workers` children and then only waits for signals
 * (sigtimedwait on a blocked set, so there are no handler races):
 *
 *   SIGCHLD  reap; replace a worker that exited.  A worker that dies
 *            abnormally within STARTUP_GRACE seconds of its start counts
 *            as a start-up failure and the replacement waits, 250 ms
 *            doubling up to 30 s, so a crashing worker cannot fork-bomb.
 *   SIGHUP   re-read the configuration (file plus the original command
 *            line, which still wins).  If it is valid, the old workers
 *            are told to finish and a new generation is started on the
 *            same listening socket (re-bound only if `listen` changed).
 *            If it is not, the error is logged and nothing changes.
 *   SIGTERM  stop: close the listener, ask workers to finish the
 *   SIGINT   transactions in progress, wait at most shutdown-timeout,
 *            SIGKILL what is left, remove the pid file, exit 0.
 *
 * Beside the workers the master keeps one more child, the held-post
 * runner (runner.c: carries out moderators' decisions), in the last
 * slot: it is started, replaced and retired like a worker.
 *
 * Master-worker communication is signals and exit codes only.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "conf.h"
#include "deliver.h"
#include "privs.h"
#include "runner.h"
#include "log.h"
#include "master.h"
#include "worker.h"

#define STARTUP_GRACE	2.0	/* seconds: dying sooner is a failure */
#define BACKOFF_MIN	0.25
#define BACKOFF_MAX	30.0
#define LISTEN_BACKLOG	128

struct slot {
	pid_t	pid;		/* 0: empty, waiting for respawn_at */
	double	started;
	double	respawn_at;
};

struct master {
	struct conf_args *args;
	struct conf *cf;
	int	listen_fd;
	struct slot *slots;
	unsigned nslots;
	pid_t  *old;		/* workers of a previous generation */
	unsigned nold, oldcap;
	unsigned failures;	/* consecutive start-up failures */
	int	pidfile_written;
	char   *pidfile;
	int	log_fd;		/* log-file, or -1 */
};

static double now(void);
static int listen_open(const struct conf *, char *, size_t);
static int spawn(struct master *, unsigned);
static void reap(struct master *);
static void reload(struct master *);
static void stop_all(struct master *);

/* now - monotonic seconds */
static double
now(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + ts.tv_nsec / 1e9);
}

/* listen_open - bind HOST:PORT; returns fd or -1 with a message */
static int
listen_open(const struct conf *cf, char *err, size_t errlen)
{
	struct addrinfo hints, *res, *ai;
	struct timeval tv = {1, 0};
	int	fd = -1, on = 1, rc, saved = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(cf->listen_host, cf->listen_port, &hints, &res)) != 0) {
		snprintf(err, errlen, "listen %s: %s", cf->listen, gai_strerror(rc));
		return (-1);
	}
	for (ai = res; ai; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC,
				 ai->ai_protocol)) < 0) {
			saved = errno;
			continue;
		}
		(void) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
		if (ai->ai_family == AF_INET6)
			(void) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		/* accept() returns EAGAIN after 1 s: see worker.c. */
		if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0
		    && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0
		    && listen(fd, LISTEN_BACKLOG) == 0)
			break;
		saved = errno;
		(void) close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, errlen, "cannot listen on %s: %s", cf->listen,
			 strerror(saved));
	return (fd);
}

/* pidfile_write - refuse to run twice; write our pid */
static int
pidfile_write(const char *path, char *err, size_t errlen)
{
	char	buf[32];
	FILE   *fp;
	int	fd, len;

	if ((fp = fopen(path, "r")) != NULL) {
		long	pid = 0;

		if (fscanf(fp, "%ld", &pid) == 1 && pid > 1 && pid != (long) getpid()
		    && kill((pid_t) pid, 0) == 0) {
			(void) fclose(fp);
			snprintf(err, errlen, "already running as pid %ld (pid file %s)",
				 pid, path);
			return (-1);
		}
		(void) fclose(fp);
	}
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		snprintf(err, errlen, "cannot create pid file %s: %s", path,
			 strerror(errno));
		return (-1);
	}
	(void) fchmod(fd, 0644);	/* anybody may read it, whatever the umask */
	len = snprintf(buf, sizeof(buf), "%ld\n", (long) getpid());
	if (write(fd, buf, (size_t) len) != len || close(fd) < 0) {
		snprintf(err, errlen, "cannot write pid file %s: %s", path,
			 strerror(errno));
		(void) unlink(path);
		return (-1);
	}
	return (0);
}

/* pidfile_remove - only if it still names us */
static void
pidfile_remove(const char *path)
{
	FILE   *fp;
	long	pid = 0;

	if ((fp = fopen(path, "r")) == NULL)
		return;
	if (fscanf(fp, "%ld", &pid) == 1 && pid == (long) getpid())
		(void) unlink(path);
	(void) fclose(fp);
}

/*
 * notify - tell systemd (a unit of Type=notify) what the master does:
 * "READY=1", "RELOADING=1", "STOPPING=1".  Without NOTIFY_SOCKET in the
 * environment this does nothing.  The protocol is one datagram on a
 * Unix socket; no library is needed for it.
 */
static void
notify(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun;
	size_t	len;
	int	fd;

	if (path == NULL || (*path != '/' && *path != '@')
	    || (len = strlen(path)) >= sizeof(sun.sun_path))
		return;
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, path, len);
	if (*path == '@')
		sun.sun_path[0] = 0;	/* an abstract socket */
	if ((fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0) {
		msg_warn("cannot notify systemd: socket: %s", strerror(errno));
		return;
	}
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *) &sun,
		   (socklen_t) (offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		msg_warn("cannot notify systemd at %s: %s", path, strerror(errno));
	(void) close(fd);
}

/*
 * log_open - the log-file of cf, or -1 for syslog; -2 with err set
 */
static int
log_open(const struct conf *cf, char *err, size_t errlen)
{
	int	fd;

	if (cf->log_file == NULL)
		return (-1);
	fd = privs_log_open(cf->log_file, err, errlen);
	return (fd < 0 ? -2 : fd);
}

/*
 * daemonize - fork twice and detach.  The first parent waits on a pipe
 * until the daemon reports that it is running (pid file written), so the
 * init script's exit status is true.  Returns the write end of the pipe
 * in the daemon; the first parent exits here.
 */
static int
daemonize(void)
{
	int	pfd[2], devnull;
	pid_t	pid;
	char	c;

	if (pipe(pfd) < 0)
		msg_fatal("pipe: %s", strerror(errno));
	if ((pid = fork()) < 0)
		msg_fatal("fork: %s", strerror(errno));
	if (pid > 0) {
		ssize_t	n;

		(void) close(pfd[1]);
		do
			n = read(pfd[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 && c == '0' ? 0 : 1);
	}
	(void) close(pfd[0]);
	if (setsid() < 0)
		msg_fatal("setsid: %s", strerror(errno));
	if ((pid = fork()) < 0)
		msg_fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/") < 0)
		msg_fatal("chdir /: %s", strerror(errno));
	if ((devnull = open("/dev/null", O_RDWR)) < 0)
		msg_fatal("open /dev/null: %s", strerror(errno));
	(void) dup2(devnull, 0);
	(void) dup2(devnull, 1);
	/* stderr stays until start-up is complete; see master_run(). */
	if (devnull > 2)
		(void) close(devnull);
	return (pfd[1]);
}

/* spawn - fork one worker into a slot */
static int
spawn(struct master *m, unsigned i)
{
	pid_t	pid;

	if ((pid = fork()) < 0) {
		msg_warn("fork: %s", strerror(errno));
		m->slots[i].pid = 0;
		m->slots[i].respawn_at = now() + 1;
		return (-1);
	}
	if (pid == 0 && i + 1 == m->nslots) {
		(void) close(m->listen_fd);	/* the runner takes no connection */
		runner_main(m->cf);
	}
	if (pid == 0)
		worker_main(m->cf, m->listen_fd);
	m->slots[i].pid = pid;
	m->slots[i].started = now();
	m->slots[i].respawn_at = 0;
	return (0);
}

/* old_add - remember a worker of a previous generation */
static void
old_add(struct master *m, pid_t pid)
{
	if (m->nold == m->oldcap) {
		unsigned cap = m->oldcap ? m->oldcap * 2 : 16;
		pid_t  *n = realloc(m->old, cap * sizeof(*n));

		if (n == NULL) {
			/* Cannot track it; it will still be reaped below. */
			msg_warn("out of memory tracking old worker %ld", (long) pid);
			return;
		}
		m->old = n;
		m->oldcap = cap;
	}
	m->old[m->nold++] = pid;
}

/* reap - collect exited workers; schedule replacements */
static void
reap(struct master *m)
{
	pid_t	pid;
	int	status;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		unsigned i;
		int	abnormal = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);

		for (i = 0; i < m->nold; i++)
			if (m->old[i] == pid) {
				m->old[i] = m->old[--m->nold];
				break;
			}
		for (i = 0; i < m->nslots; i++)
			if (m->slots[i].pid == pid)
				break;
		if (i == m->nslots)
			continue;
		m->slots[i].pid = 0;
		if (abnormal) {
			double	lived = now() - m->slots[i].started, delay = 0;

			if (lived < STARTUP_GRACE) {
				m->failures++;
				delay = BACKOFF_MIN;
				for (unsigned k = 1; k < m->failures && delay < BACKOFF_MAX; k++)
					delay *= 2;
				if (delay > BACKOFF_MAX)
					delay = BACKOFF_MAX;
			} else
				m->failures = 0;
			if (WIFSIGNALED(status))
				msg_warn("worker pid %ld killed by signal %d after %.1fs%s",
					 (long) pid, WTERMSIG(status), lived,
					 delay > 0 ? "; throttling" : "");
			else
				msg_warn("worker pid %ld exited with status %d after %.1fs%s",
					 (long) pid, WEXITSTATUS(status), lived,
					 delay > 0 ? "; throttling" : "");
			if (delay > 0)
				msg_warn("starting a new worker in %.2fs", delay);
			m->slots[i].respawn_at = now() + delay;
		} else {
			m->failures = 0;
			m->slots[i].respawn_at = now();
		}
	}
}

/* respawn_due - start workers whose time has come; next wake-up */
static double
respawn_due(struct master *m)
{
	double	t = now(), next = t + 1.0;

	for (unsigned i = 0; i < m->nslots; i++) {
		if (m->slots[i].pid != 0)
			continue;
		if (m->slots[i].respawn_at <= t)
			(void) spawn(m, i);
		if (m->slots[i].pid == 0 && m->slots[i].respawn_at < next)
			next = m->slots[i].respawn_at;
	}
	return (next);
}

/* retire_workers - ask the current generation to finish */
static void
retire_workers(struct master *m)
{
	for (unsigned i = 0; i < m->nslots; i++)
		if (m->slots[i].pid > 0) {
			(void) kill(m->slots[i].pid, SIGTERM);
			old_add(m, m->slots[i].pid);
			m->slots[i].pid = 0;
		}
}

/* reload - SIGHUP */
static void
reload(struct master *m)
{
	char	err[512];
	struct conf *cf;
	struct slot *slots;
	int	fd = m->listen_fd, lfd;

	notify("RELOADING=1");
	msg_syslog_probe();
	msg_info("reload: reading configuration %s", m->cf->config_file);
	if ((cf = conf_build(m->args, err, sizeof(err))) == NULL
	    || privs_check(cf, NULL, err, sizeof(err)) < 0
	    || (lfd = log_open(cf, err, sizeof(err))) == -2) {
		msg_error("reload failed: %s; keeping the running configuration", err);
		conf_free(cf);
		notify("READY=1");
		return;
	}
	if (strcmp(cf->listen, m->cf->listen) != 0) {
		if ((fd = listen_open(cf, err, sizeof(err))) < 0) {
			msg_error("reload failed: %s; keeping the running configuration", err);
			if (lfd >= 0)
				(void) close(lfd);
			conf_free(cf);
			notify("READY=1");
			return;
		}
	}
	if ((slots = calloc(cf->workers + 1, sizeof(*slots))) == NULL) {
		msg_error("reload failed: out of memory");
		if (fd != m->listen_fd)
			(void) close(fd);
		if (lfd >= 0)
			(void) close(lfd);
		conf_free(cf);
		notify("READY=1");
		return;
	}
	/* The log-file is opened again at every reload: log rotation. */
	msg_set_file(lfd);
	if (m->log_fd >= 0)
		(void) close(m->log_fd);
	m->log_fd = lfd;
	msg_syslog_probe();
	if ((cf->pidfile == NULL) != (m->cf->pidfile == NULL)
	    || (cf->pidfile && strcmp(cf->pidfile, m->cf->pidfile) != 0)
	    || cf->foreground != m->cf->foreground)
		msg_warn("reload: pidfile and foreground take effect at the next start");
	retire_workers(m);
	free(m->slots);
	m->slots = slots;
	m->nslots = cf->workers + 1;	/* the last one: the runner */
	if (fd != m->listen_fd) {
		(void) close(m->listen_fd);
		m->listen_fd = fd;
		msg_info("reload: now listening on %s", cf->listen);
	}
	conf_free(m->cf);
	m->cf = cf;
	m->failures = 0;
	for (unsigned i = 0; i < m->nslots; i++)
		(void) spawn(m, i);
	msg_info("reload: %u workers started", m->nslots - 1);
	notify("READY=1");
}

/* stop_all - SIGTERM: bounded graceful stop */
static void
stop_all(struct master *m)
{
	sigset_t set;
	double	deadline = now() + m->cf->shutdown_timeout;

	(void) close(m->listen_fd);
	m->listen_fd = -1;
	retire_workers(m);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	while (m->nold > 0) {
		struct timespec ts = {0, 100 * 1000 * 1000};

		reap(m);
		if (m->nold == 0)
			break;
		if (now() >= deadline) {
			for (unsigned i = 0; i < m->nold; i++) {
				msg_warn("worker pid %ld did not finish in %us; killing it",
					 (long) m->old[i], m->cf->shutdown_timeout);
				(void) kill(m->old[i], SIGKILL);
			}
			while (waitpid(-1, NULL, 0) > 0)
				;
			m->nold = 0;
			break;
		}
		(void) sigtimedwait(&set, NULL, &ts);
	}
}

/* master_run - the supervisor; returns the process exit status */
int
master_run(struct conf_args *args, struct conf *cf)
{
	struct master m;
	sigset_t set;
	char	err[512];
	int	ready_fd = -1, rc = 0;

	memset(&m, 0, sizeof(m));
	m.args = args;
	m.cf = cf;
	if ((m.log_fd = log_open(cf, err, sizeof(err))) == -2) {
		msg_error("%s", err);
		conf_free(cf);
		return (1);
	}
	if (m.log_fd >= 0)
		msg_set_file(m.log_fd);
	else if (!cf->foreground && !msg_syslog_listening())
		msg_warn("no syslog daemon listens on %s and log-file is not set: once "
			 "mlistd is in the background its messages reach nobody; set "
			 "log-file, start a syslog daemon, or run mlistd with -f", _PATH_LOG);
	/* The database opens (and gets its schema) once, before any fork. */
	if (privs_check(cf, NULL, err, sizeof(err)) < 0) {
		msg_error("%s", err);
		conf_free(cf);
		return (1);
	}
	if ((m.listen_fd = listen_open(cf, err, sizeof(err))) < 0) {
		msg_error("%s", err);
		conf_free(cf);
		return (1);
	}
	/* Block the signals we wait for before any child exists. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		msg_fatal("sigprocmask: %s", strerror(errno));
	signal(SIGPIPE, SIG_IGN);

	if (!cf->foreground)
		ready_fd = daemonize();
	if (cf->pidfile) {
		if ((m.pidfile = strdup(cf->pidfile)) == NULL)
			msg_fatal("out of memory");
		if (pidfile_write(m.pidfile, err, sizeof(err)) < 0) {
			msg_error("%s", err);
			free(m.pidfile);
			(void) close(m.listen_fd);
			conf_free(cf);
			return (1);
		}
		m.pidfile_written = 1;
	}
	if ((m.slots = calloc(cf->workers + 1, sizeof(*m.slots))) == NULL)
		msg_fatal("out of memory");
	m.nslots = cf->workers + 1;	/* the last one: the runner */
	/* Detach from the launcher's stderr before workers inherit it. */
	if (ready_fd >= 0) {
		int	devnull = open("/dev/null", O_WRONLY);

		if (write(ready_fd, "0", 1) != 1)
			msg_warn("cannot notify the parent: %s", strerror(errno));
		(void) close(ready_fd);
		msg_set_stderr(0);
		if (devnull >= 0) {
			(void) dup2(devnull, 2);
			(void) close(devnull);
		}
	}
	msg_syslog_probe();
	msg_info("starting mlistd %s: listen=%s domain=%s workers=%u",
		 PACKAGE_VERSION, cf->listen, cf->domain, cf->workers);
	for (unsigned i = 0; i < m.nslots; i++)
		(void) spawn(&m, i);
	notify("READY=1");

	for (;;) {
		double	next = respawn_due(&m), left = next - now();
		struct timespec ts;
		siginfo_t info;
		int	sig;

		if (left < 0.01)
			left = 0.01;
		ts.tv_sec = (time_t) left;
		ts.tv_nsec = (long) ((left - (double) ts.tv_sec) * 1e9);
		sig = sigtimedwait(&set, &info, &ts);
		if (sig < 0) {
			if (errno != EAGAIN && errno != EINTR)
				msg_warn("sigtimedwait: %s", strerror(errno));
			continue;
		}
		if (sig == SIGCHLD)
			reap(&m);
		else if (sig == SIGHUP)
			reload(&m);
		else if (sig == SIGTERM || sig == SIGINT) {
			msg_info("stopping on signal %d", sig);
			notify("STOPPING=1");
			stop_all(&m);
			break;
		}
	}
	if (m.pidfile_written)
		pidfile_remove(m.pidfile);
	msg_info("stopped");
	if (m.log_fd >= 0)
		(void) close(m.log_fd);
	free(m.pidfile);
	free(m.slots);
	free(m.old);
	conf_free(m.cf);
	return (rc);
}
