/* master.h - process supervision */
#ifndef MLISTD_MASTER_H
#define MLISTD_MASTER_H

#include "conf.h"

/*
 * master_run - bind, daemonize unless foreground, pre-fork and supervise
 * until SIGTERM/SIGINT.  Takes ownership of cf; args are kept for SIGHUP
 * reloads and stay the caller's.  Returns the exit status.
 */
int	master_run(struct conf_args *args, struct conf *cf);

#endif
