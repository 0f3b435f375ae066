/* deliver.h - recipient checks and list delivery: the SMTP handlers */
#ifndef MLISTD_DELIVER_H
#define MLISTD_DELIVER_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"
#include "flow.h"
#include "smtp_session.h"

struct deliver;

/*
 * deliver_create - per-worker state: the worker's own database connection
 * and relay connection.  Call after fork.  NULL with a message in err.
 */
struct deliver *deliver_create(const struct conf *, const char *helo,
			       char *err, size_t errlen);
void	deliver_free(struct deliver *);

/* deliver_check - open the database once (schema applied), then close:
 * the master's start-up and --check-config test; with report not NULL,
 * one line per list there: who may post, who may subscribe by mail. */
int	deliver_check(const struct conf *, FILE *report, char *err, size_t errlen);

/* The handlers; their ctx is a struct deliver_session (flow.h). */
extern const struct smtp_handlers deliver_handlers;

#endif
