/* worker.h - a pre-forked worker: accept and serve SMTP sessions */
#ifndef MLISTD_WORKER_H
#define MLISTD_WORKER_H

#include "conf.h"

/*
 * worker_main - runs in the child after fork.  Serves sessions on the
 * listening socket until it has served max_use sessions, is told to stop
 * (SIGTERM, SIGINT, SIGHUP) or its master is gone.  Never returns.
 */
void	worker_main(const struct conf *, int listen_fd)
	__attribute__((noreturn));

#endif
