/* flow.h - what the delivery flows share: the worker's context */
#ifndef MLISTD_FLOW_H
#define MLISTD_FLOW_H

#include <signal.h>
#include <stddef.h>

#include "conf.h"
#include "probe.h"
#include "smtp_session.h"
#include "store.h"

struct relay;

/* The worker's context: deliver_create makes it, deliver_free frees it. */
struct deliver {
	const struct conf *cf;
	struct store *st;
	struct relay *relay;
	char	bounce_addr[512];
	int	verp_warned;		/* logged that the relay lacks XVERP */
	unsigned char key[PROBE_KEY_LEN];	/* signs probe addresses */
	struct mitigate *mit;		/* DMARC mitigation (mitigate.h) */
};

/* A session's context: the dispatcher's handlers get it, the flows too. */
struct deliver_session {
	struct deliver *d;
	const char *client;		/* "unknown[addr]:port" for logs */
	volatile sig_atomic_t *stop;	/* set when the worker must stop */
};

/* A growing list of recipient addresses for one copy. */
struct rcpt_list {
	char  **v;
	size_t	n, cap;
	const char *group;		/* for warnings */
};

/* flow_split - local part (copied) and domain of an address; -1 if the
 * local part is empty or does not fit in llen */
int	flow_split(const char *addr, const char *mydomain, char *local, size_t llen,
		   const char **domain);

/* flow_is_bounce - the bounce local part, or bounce+TAG */
int	flow_is_bounce(const struct conf *, const char *local);

/* flow_collect - store_recipients callback adding to a struct rcpt_list
 * (arg); flow_rcpt_free frees the addresses and empties the list */
int	flow_collect(void *arg, const char *addr);
void	flow_rcpt_free(struct rcpt_list *);

/* flow_crash_point - for the test suite: _exit at point name (-k), see
 * MLISTD_CRASH_AT in mlistd(8) */
void	flow_crash_point(const char *name, unsigned k);

/* flow_boot_now - the boot clock, seconds; flow_owner_now - this worker
 * as a claim's owner, now, with the lease a claim gets */
double	flow_boot_now(void);
void	flow_owner_now(const struct conf *, struct store_owner *);

/* flow_refusal_row - a bounces row (evidence) for an address of list
 * group refused by the relay with reply; 0, or -1 on a database error */
int	flow_refusal_row(struct deliver *, const char *id, const char *group,
			 const char *rcpt, const char *reply);

/* flow_needs_utf8 - any byte above 127 */
int	flow_needs_utf8(const char *);

/* flow_stop_requested - the worker is asked to stop */
int	flow_stop_requested(const struct deliver_session *);

/* flow_lookup_failed - log the database's error, set a 451 reply */
void	flow_lookup_failed(struct deliver *, const struct smtp_envelope *,
			   struct smtp_reply *);

/*
 * flow_send_notice - a notice mlistd wrote itself (msg, LF line ends)
 * to one address, through the relay, from the bounce address.  0 when
 * the relay took it, or refused the address for good (then a refusal
 * row, evidence, keeps further notices from going there); -1 when it
 * must be tried again.  name: the template's, for the log.  eightbit:
 * 1 for BODY=8BITMIME, | 2 for SMTPUTF8 (an attached post that needs it).
 */
int	flow_send_notice(struct deliver *, const char *id, const char *group,
			 const char *address, const char *name, const char *msg, size_t len,
			 int eightbit);

#endif
