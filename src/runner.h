/* runner.h - the held-post runner: carries out the moderators' decisions */
#ifndef MLISTD_RUNNER_H
#define MLISTD_RUNNER_H

#include "conf.h"

#define RUNNER_NAME	"mlistd-runner"	/* its process name (comm) */

/*
 * runner_main - the process the master keeps beside the workers: every
 * RUNNER_INTERVAL seconds it carries out the decisions on held posts
 * (made by mail or with sqlite3), expires undecided ones, and sends the
 * notices owed to moderators and authors.  Never returns.
 */
void	runner_main(const struct conf *) __attribute__((noreturn));

#endif
