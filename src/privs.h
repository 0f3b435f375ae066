/* privs.h - run the SMTP side as an unprivileged user */
#ifndef MLISTD_PRIVS_H
#define MLISTD_PRIVS_H

#include <stddef.h>
#include <stdio.h>

#include "conf.h"

/*
 * privs_drop - when running as root, become `user` (groups, gid, uid; no
 * way back).  A no-op for any other user.  0, or -1 with a message.
 */
int	privs_drop(const char *user, char *err, size_t errlen);

/*
 * privs_check - make the state directories ready for `user` (as root:
 * create the database's and the Maildir's directories and hand them and
 * an existing database to the user), then open the database and the
 * Maildir as that user (deliver_check in a child process that dropped
 * privileges), so every file is created with the right owner.  Without
 * root this is deliver_check().  0, or -1 with a message.
 */
int	privs_check(const struct conf *, FILE *report, char *err, size_t errlen);

/*
 * privs_log_open - open the log-file for appending without following
 * links that others than root could plant.  fd, or -1 with a message.
 */
int	privs_log_open(const char *path, char *err, size_t errlen);

#endif
