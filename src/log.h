/* log.h - diagnostics through syslog (facility mail) and stderr */
#ifndef MLISTD_LOG_H
#define MLISTD_LOG_H

#include <stdarg.h>

#define MSG_PRINTF(f, a) __attribute__((format(printf, f, a)))

void msg_open(const char *ident, int to_stderr);
void msg_set_stderr(int to_stderr);
void msg_set_syslog(int to_syslog);
void msg_syslog_probe(void);
int msg_syslog_listening(void);
void msg_set_file(int fd);

#define MSG_TO_SYSLOG	0x01
#define MSG_TO_FILE	0x02
#define MSG_TO_STDERR	0x04
#define MSG_TO_JOURNAL	0x08	/* stderr, which is systemd's journal */
int	msg_destinations(void);
void msg_info(const char *fmt, ...) MSG_PRINTF(1, 2);
void msg_warn(const char *fmt, ...) MSG_PRINTF(1, 2);
void msg_error(const char *fmt, ...) MSG_PRINTF(1, 2);
void msg_fatal(const char *fmt, ...) MSG_PRINTF(1, 2) __attribute__((noreturn));
void msg_panic(const char *fmt, ...) MSG_PRINTF(1, 2) __attribute__((noreturn));

#endif
