/*
 * check_chaos.c - randomized fault injection against mlistd's delivery
 * promise: 250 only when every member's copy was accepted by the relay,
 * never a second copy on a retry (except a transaction whose outcome
 * mlistd could not have known), never a member dropped for a fault that
 * was not theirs, 4xx for every internal problem.
 *
 * Each run draws a schedule from its seed (splitmix64, not rand()):
 * a list of 2-7 members, some dead (refused 550 5.1.1 in every attempt),
 * relay-recipient-limit 1-4, pipelining or not; faults of the relay for
 * the first few transactions (4xx or 452 at RCPT, 421 or a dropped
 * connection at MAIL, at the k-th RCPT or after DATA, a drop or a stall
 * after the dot with or without having accepted the message, a trickled
 * reply, garbage, 451 or 554 to the dot, "554 5.7.1 Relay access denied"
 * to every RCPT, then 421 or a drop), faults at the greeting of the first
 * connections; from a second stream (below), faults before the dot and
 * at RSET too: 451 or 553 to MAIL (then 503 to what follows), garbage or
 * a reply trickled (in time, or past relay-timeout) to MAIL or to the
 * k-th RCPT, 452 or 554 to the DATA command, 421, 500 or a drop at the
 * first RSET after the transaction's MAIL, and of connection 0 or 1 a
 * 554 greeting (then 503 to all but QUIT), a garbled or trickled
 * greeting, 451 or 502 to EHLO (HELO then works, without extensions),
 * a garbled or trickled EHLO reply; and at most one fault of the daemon at a point the relay
 * reports through a pipe and holds until the harness has acted: SIGKILL
 * of the worker; SIGSTOP of it with the wall clock stepped 10 minutes
 * forward and a retry at once, SIGCONT after the retry's answer (the
 * claim is a lease on the boot clock, which no wall-clock step moves:
 * the retry must get 451 and leave the claim alone); a wall-clock step
 * of 10 minutes forward or back (libfaketime, monotonic clocks
 * untouched, as an NTP step) with a concurrent retry; the client
 * ("Postfix") giving up waiting and retrying at once; or SIGSTOP of the
 * worker until its lease is over by the boot clock (the relayed row's
 * lease against the harness's own CLOCK_BOOTTIME, polled, bounded),
 * then a retry, which must take the copy over (generation + 1), and
 * SIGCONT after the retry's answer.  That last one waits out a real
 * lease (LEASE, 10 s here), so it is rare: drawn apart, after
 * everything else, in STOP_LEASE_PM per mille of the schedules that
 * had no daemon fault (adding it re-drew no other seed).  Where it
 * strikes: 'D', the worker waits for the reply to its dot; 'R', for the
 * reply to the k-th RCPT (with pipelining its DATA is out, the replies
 * wait in its socket, and after SIGCONT it sends the message and the
 * dot, past its lease and deadline); either way that transaction is in
 * flight.  'A', the relay has sent its 250 to the dot and the worker is
 * stopped between two relay transactions: before its checkpoint (the
 * transaction is in flight), inside it (the write lock is held: no
 * retry can claim, none is expected to), or after it, when it either
 * had begun the next transaction (that one is in flight) or not (it
 * must begin none after SIGCONT: its lease and data-done-timeout are
 * over).  The harness tells these apart once the worker is seen stopped
 * ('T' in /proc/PID/stat): by the copy's rows, a write-lock probe, and
 * the relay peeking at its socket; a stop in the microseconds between
 * proceed() and the write of MAIL looks like "not begun", so there the
 * worker may still send that MAIL, but no dot.  The client retries on
 * 4xx, timeout or a dropped connection, and stops at 250 or 5xx, within
 * a bounded number of attempts.  A fresh relay (a forked process here,
 * loopback, a port chosen at run time) and a fresh daemon serve each
 * run.
 *
 * Checked after each run, against the relay's log of transactions
 * (committed with who got a copy, refused cleanly, or cut) and the
 * daemon's database:
 *   MISSING     250 while an alive member never got the post
 *   DUPLICATE   a member got it more than once, beyond one extra copy
 *               per "ambiguous" transaction (the relay committed it but
 *               mlistd could not have seen or recorded its 250: a drop or
 *               stall after committing, a reply trickled past the
 *               deadline, the worker killed or stopped between the dot
 *               and the next command, or stopped past its lease with
 *               the transaction in flight)
 *   REFUSED-ALIVE an alive member recorded as refused (bounces evidence
 *               or relayed_rcpt.refused)
 *   REFUSED-UNCLEAN a dead member with more evidence rows than refusals
 *               in transactions that ended cleanly (a refusal in a
 *               transaction cut by 421 or a drop does not count)
 *   NOT-RECORDED a dead member without an evidence row at the end (250,
 *               or no final answer)
 *   5XX         a 5xx answer after some member got a copy
 *   CLAIM       a claim (relayed.owner) left once the post was answered
 *   CONVERGE    no 250 or 5xx once the faults are over (attempts used up)
 *   NO-ANSWER   an attempt not answered within data-done-timeout plus
 *               the relay's timeout, with no worker stopped
 *   TAKEOVER    a stopped worker's claim taken over (generation up)
 *               while its lease ran, the wall clock stepped past it; or
 *               not taken over by the retry once the lease was over by
 *               the boot clock (the worker held the claim and no lock)
 *   LEASE       a claim's lease ending more than LEASE seconds after
 *               the harness looked (the lease is data-done-timeout + 2 *
 *               database-timeout + 5 s from the claim or checkpoint)
 *   FENCE       a worker stopped past its lease and taken over changed
 *               the database after SIGCONT (relayed, relayed_rcpt,
 *               bounces: read before SIGCONT and after its attempt's
 *               answer), or read the 250 to its dot after SIGCONT (it
 *               was in poll() for it) without logging "lost its claim";
 *               or the worker began a relay transaction on its
 *               connection between SIGCONT and its attempt's answer
 *   SANITIZER   an AddressSanitizer or UBSan report in the daemon's log
 * A failing run prints its seed, its schedule, the invariant, the
 * harness's trace, the relay's transactions and the daemon's log.
 *
 * Replay: MLISTD_CHAOS_REPLAY=0xSEED[,0xSEED...] make check
 * TESTS=tests/check_chaos (or run tests/check_chaos directly with
 * MLISTD set); MLISTD_CHAOS_SEED (base seed) and MLISTD_CHAOS_RUNS (runs
 * from it) for longer searches, MLISTD_CHAOS_SECONDS to start no run
 * after that many seconds (said in the output), MLISTD_CHAOS_VERBOSE to
 * print every run as a failing one is printed.  The regression seeds
 * below always run; a seed names a schedule through draw() and the
 * relay's fault semantics, so changing either re-draws every seed (find
 * the regressions again and update the table).
 *
 * Two streams.  draw() reads a first splitmix64 stream from the seed, as
 * it always has; its weights (rf_info[].weight, zero for every kind added
 * later, which sit last so that its pick never reaches them) and the
 * order of its draws are frozen.  A second stream from seed ^ SEED2_XOR
 * then, after all of the first, draws for each of the MAXF transaction
 * slots whether to replace that slot's fault (NEW_TXN_PCT %, only for a
 * slot the first stream made faulty; its k is kept) and by which kind
 * (rf_info[].weight2), for connections 0 and 1 whether to give them a
 * greeting or EHLO fault (NEW_CONN_PCT %, not where the first stream
 * has a greeting fault), and whether a schedule still without a daemon
 * fault stops a worker past its lease (STOP_LEASE2_PM per mille, on
 * top of STOP_LEASE_PM).  It always makes the same number of draws, so
 * one decision never shifts another.  The regression seeds committed
 * before it (v2 = 0 in regressions[]) are drawn without the second
 * stream, in the table's run and when replayed, so they keep the
 * schedule they were found with; a seed found since is committed with
 * v2 = 1.  New kinds go last in enum rfault with weight 0 and their
 * weight2, and the second stream's draws are only ever appended: that
 * re-draws no committed seed.
 * Clock faults need libfaketime preloaded into the daemon (wall clock
 * only: FAKETIME_DONT_FAKE_MONOTONIC=1 leaves CLOCK_MONOTONIC, _RAW and
 * CLOCK_BOOTTIME alone, while time(), gettimeofday() and CLOCK_REALTIME
 * move; without it libfaketime sets all of them, BOOTTIME too, to the
 * fake wall time).  An ASan build refuses the preload unless
 * ASAN_OPTIONS has verify_asan_link_order=0, which the suite adds; where
 * the preload still fails (or MLISTD_CHAOS_FAKETIME names a missing
 * library) the runs that need it print NOT RUN and are counted apart,
 * never as passed.  test_checker tampers with the books of a clean run
 * once per invariant and requires that invariant to catch it.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include "cklib.h"
#include "testlib.h"

/* libfaketime; MLISTD_CHAOS_FAKETIME names another (or none, to see the
 * clock faults reported as not run) */
static const char *faketime_lib = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/* The daemon's timeouts in chaos runs: small, so that stalls are cheap. */
#define DDT		3	/* data-done-timeout */
#define RELAY_TO	1	/* relay-timeout */
#define DB_TO		1	/* database-timeout */
/* A claim's lease (flow_owner_now): data-done-timeout + 2 * database-timeout
 * + 5 s on the boot clock, from the claim or the last checkpoint. */
#define LEASE		(DDT + 2 * DB_TO + 5)
#define STEP_SECS	600	/* the wall-clock step */
#define STOP_LEASE_PM	10	/* per mille of the schedules without a daemon
				 * fault that stop a worker past its lease */
/* The second stream (see the header): its state is the seed ^ SEED2_XOR. */
#define SEED2_XOR	0x6368616f73763221ULL	/* "chaosv2!" */
#define NEW_TXN_PCT	35	/* a faulty transaction's fault replaced */
#define NEW_CONN_PCT	12	/* a connection (0, 1) given a fault */
#define STOP_LEASE2_PM	15	/* of the schedules still without a daemon
				 * fault: stop a worker past its lease */
#define MAXC		2	/* connections with a fault of the second stream */

#define MAXM		7	/* members */
#define MAXT		64	/* relay transactions logged per run */
#define MAXF		4	/* faulty transactions per run */
#define MAXA		10	/* attempts of the client per run */
#define MAXAB		3	/* of them, abandoned and still open */

/* ---- the PRNG: splitmix64 ---- */

static uint64_t
mix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return (z ^ (z >> 31));
}

/* rnd - uniform in [0, n) */
static unsigned
rnd(uint64_t *s, unsigned n)
{
	return ((unsigned) (mix64(s) % n));
}

/* ---- the schedule ---- */

enum rfault {
	RF_OK, RF_RCPT_TEMP, RF_TOO_MANY, RF_CLOSE_MAIL, RF_CLOSE_RCPT, RF_DROP_RCPT,
	RF_STALL_RCPT, RF_DROP_DATA, RF_DROP_DOT, RF_COMMIT_DROP, RF_STALL_DOT,
	RF_COMMIT_STALL, RF_TRICKLE_SLOW, RF_TRICKLE_FAST, RF_GARBAGE, RF_DOT_451,
	RF_DOT_554, RF_DENIED, RF_DENIED_CLOSE, RF_DENIED_DROP,
	/* Drawn from the second stream only (weight 0 in the first, last in
	 * the table, so the first stream's pick never reaches them): faults
	 * of a transaction ... */
	RF_MAIL_4XX, RF_MAIL_5XX, RF_MAIL_GARBAGE, RF_MAIL_TRICKLE_SLOW, RF_MAIL_TRICKLE_FAST,
	RF_RCPT_GARBAGE, RF_RCPT_TRICKLE_SLOW, RF_RCPT_TRICKLE_FAST, RF_DATA_4XX, RF_DATA_5XX,
	RF_RSET_421, RF_RSET_5XX, RF_RSET_DROP,
	/* ... and of a connection, before any transaction */
	RF_GREET_5XX, RF_GREET_GARBAGE, RF_GREET_TRICKLE_SLOW, RF_GREET_TRICKLE_FAST,
	RF_EHLO_4XX, RF_EHLO_5XX, RF_EHLO_GARBAGE, RF_EHLO_TRICKLE_SLOW, RF_EHLO_TRICKLE_FAST,
	RF_N
};

/* weight: in the first stream (never change it: every seed would be
 * re-drawn); weight2: in the second; conn: a fault of a connection's
 * greeting or EHLO, not of a transaction */
static const struct {
	const char *name;
	unsigned weight, weight2;
	int	conn;
} rf_info[RF_N] = {
	{"ok", 6, 0, 0}, {"4xx-at-rcpt#k", 6, 0, 0}, {"452-after-k", 5, 0, 0},
	{"421-at-mail", 4, 0, 0}, {"421-at-rcpt#k", 5, 0, 0}, {"drop-at-rcpt#k", 4, 0, 0},
	{"stall-at-rcpt#k", 1, 0, 0}, {"drop-after-data", 3, 0, 0}, {"drop-after-dot", 3, 0, 0},
	{"commit-then-drop", 4, 0, 0}, {"stall-after-dot", 1, 0, 0},
	{"commit-then-stall", 1, 0, 0}, {"commit-trickle-past-deadline", 1, 0, 0},
	{"commit-trickle-in-time", 2, 0, 0}, {"garbage-to-dot", 3, 0, 0},
	{"451-to-dot", 4, 0, 0}, {"554-to-dot", 2, 0, 0}, {"relay-access-denied", 4, 0, 0},
	{"denied-then-421-after-k", 4, 0, 0}, {"denied-then-drop-after-k", 3, 0, 0},
	{"451-to-mail", 0, 3, 0}, {"553-to-mail", 0, 3, 0}, {"garbage-to-mail", 0, 2, 0},
	{"mail-reply-trickled-past-deadline", 0, 2, 0}, {"mail-reply-trickled-in-time", 0, 2, 0},
	{"garbage-to-rcpt#k", 0, 2, 0}, {"rcpt#k-reply-trickled-past-deadline", 0, 2, 0},
	{"rcpt#k-reply-trickled-in-time", 0, 2, 0}, {"452-to-data-command", 0, 3, 0},
	{"554-to-data-command", 0, 3, 0}, {"421-to-rset", 0, 2, 0}, {"500-to-rset", 0, 2, 0},
	{"drop-at-rset", 0, 2, 0},
	{"554-greeting", 0, 3, 1}, {"garbage-greeting", 0, 2, 1},
	{"greeting-trickled-past-deadline", 0, 1, 1}, {"greeting-trickled-in-time", 0, 2, 1},
	{"451-to-ehlo", 0, 2, 1}, {"502-to-ehlo", 0, 3, 1}, {"garbage-to-ehlo", 0, 2, 1},
	{"ehlo-reply-trickled-past-deadline", 0, 1, 1}, {"ehlo-reply-trickled-in-time", 0, 2, 1},
};

enum dfault {
	DF_NONE, DF_GIVEUP, DF_KILL, DF_STOP_STEP, DF_STEP, DF_STEP_BACK, DF_STOP_LEASE, DF_N
};

static const char *const df_name[DF_N] = {
	"none", "client-gives-up-and-retries", "SIGKILL-worker",
	"SIGSTOP-worker+clock-step+600s+retry-finds-claim-kept+SIGCONT",
	"clock-step+600s+retry", "clock-step-600s+retry",
	"SIGSTOP-worker+wait-out-its-lease+retry-takes-over+SIGCONT",
};

struct sched {
	uint64_t seed;
	int	nmem, dead[MAXM];
	int	limit, pipelining;
	int	nrf, rf[MAXF], rk[MAXF];	/* faults of transactions 0..nrf-1 */
	int	ngf, gf_drop[2];		/* greeting faults: 421 or drop */
	int	df;				/* enum dfault */
	int	hold_txn, hold_k;		/* where the daemon fault strikes */
	char	hold_ev;			/* 'R' k-th RCPT, 'D' dot, 'A' 250 sent */
	int	client_ms;			/* first attempt gives up after this */
	int	cf[MAXC];			/* faults of connections 0, 1 (RF_OK:
						 * none; conn < ngf: the greeting
						 * fault above wins) */
	int	legacy;				/* no second stream (regressions[]) */
};

static int legacy_seed(uint64_t seed);

/* pick2 - a fault from the second stream's weights, conn or transaction */
static int
pick2(uint64_t *st, int conn)
{
	unsigned total = 0, w;
	int	k = 0;

	for (int i = 0; i < RF_N; i++)
		if (rf_info[i].conn == conn)
			total += rf_info[i].weight2;
	w = rnd(st, total);
	for (;; k++)
		if (rf_info[k].conn == conn) {
			if (w < rf_info[k].weight2)
				return (k);
			w -= rf_info[k].weight2;
		}
}

static void
draw(uint64_t seed, struct sched *s)
{
	uint64_t st = seed;
	unsigned total = 0;

	memset(s, 0, sizeof(*s));
	s->seed = seed;
	s->nmem = 2 + (int) rnd(&st, MAXM - 1);
	for (int i = 0; i < s->nmem; i++)
		s->dead[i] = rnd(&st, 100) < 25;
	s->limit = 1 + (int) rnd(&st, 4);
	s->pipelining = (int) rnd(&st, 2);
	for (int i = 0; i < RF_N; i++)
		total += rf_info[i].weight;
	s->nrf = (int) rnd(&st, MAXF + 1);
	for (int i = 0; i < s->nrf; i++) {
		unsigned w = rnd(&st, total);
		int	k = 0;

		while (w >= rf_info[k].weight)
			w -= rf_info[k++].weight;
		s->rf[i] = k;
		s->rk[i] = 1 + (int) rnd(&st, (unsigned) s->limit + 1);
	}
	if (rnd(&st, 100) < 12) {
		s->ngf = 1 + (int) rnd(&st, 2);
		for (int i = 0; i < s->ngf; i++)
			s->gf_drop[i] = (int) rnd(&st, 2);
	}
	{
		/* DF_STOP_LEASE: 0 here, drawn apart below */
		static const unsigned dw[DF_N] = {40, 10, 25, 10, 10, 5, 0};
		unsigned w = rnd(&st, 100);
		int	k = 0;

		while (w >= dw[k])
			w -= dw[k++];
		s->df = k;
	}
	s->hold_txn = (int) rnd(&st, (unsigned) s->nrf + 3);
	s->hold_k = 1 + (int) rnd(&st, (unsigned) s->limit);
	s->hold_ev = "RDA"[rnd(&st, 3)];
	if (s->df == DF_STOP_STEP)
		s->hold_ev = rnd(&st, 4) ? 'D' : 'A';
	if (rnd(&st, 100) < 10)
		s->client_ms = 200 + (int) rnd(&st, 2000);
	/* Last, so that it changes only the schedules it picks: each costs a
	 * lease (10 s) of waiting. */
	if (s->df == DF_NONE && rnd(&st, 1000) < STOP_LEASE_PM) {
		s->df = DF_STOP_LEASE;
		s->hold_ev = "DDDDAAARR"[rnd(&st, 9)];
	}
	/* The second stream: the first one above is never touched, so a
	 * seed's old draws stay; this one only replaces or adds. */
	if ((s->legacy = legacy_seed(seed)))
		return;
	st = seed ^ SEED2_XOR;
	for (int i = 0; i < MAXF; i++) {
		int	rep = rnd(&st, 100) < NEW_TXN_PCT, kind = pick2(&st, 0);

		if (i < s->nrf && rep)
			s->rf[i] = kind;
	}
	for (int c = 0; c < MAXC; c++) {
		int	on = rnd(&st, 100) < NEW_CONN_PCT, kind = pick2(&st, 1);

		if (c >= s->ngf && on)
			s->cf[c] = kind;
	}
	{
		int	on = rnd(&st, 1000) < STOP_LEASE2_PM;
		char	ev = "DDDDAAARR"[rnd(&st, 9)];

		if (s->df == DF_NONE && on) {
			s->df = DF_STOP_LEASE;
			s->hold_ev = ev;
		}
	}
}

static int
needs_clock(const struct sched *s)
{
	return (s->df == DF_STOP_STEP || s->df == DF_STEP || s->df == DF_STEP_BACK);
}

static void
describe(const struct sched *s, FILE *fp)
{
	fprintf(fp, "  scenario: members");
	for (int i = 0; i < s->nmem; i++)
		fprintf(fp, " m%d%s", i, s->dead[i] ? "(dead)" : "");
	fprintf(fp, "; relay-recipient-limit=%d pipelining=%s\n", s->limit,
		s->pipelining ? "yes" : "no");
	for (int i = 0; i < s->ngf; i++)
		fprintf(fp, "    connection %d: %s at the greeting\n", i,
			s->gf_drop[i] ? "drop" : "421");
	for (int i = 0; i < MAXC; i++)
		if (s->cf[i] != RF_OK)
			fprintf(fp, "    connection %d: %s\n", i, rf_info[s->cf[i]].name);
	for (int i = 0; i < s->nrf; i++)
		fprintf(fp, "    relay transaction %d: %s (k=%d)\n", i, rf_info[s->rf[i]].name,
			s->rk[i]);
	fprintf(fp, "    then the relay behaves\n");
	if (s->df != DF_NONE)
		fprintf(fp, "    daemon fault: %s at transaction %d, %s\n", df_name[s->df],
			s->hold_txn, s->hold_ev == 'R' ? "RCPT #k" : s->hold_ev == 'D'
			? "dot received" : s->df == DF_STOP_LEASE ? "250 to the dot sent "
			"(between transactions)" : "250 to the dot sent");
	if (s->hold_ev == 'R' && s->df != DF_NONE)
		fprintf(fp, "      (k=%d)\n", s->hold_k);
	if (s->client_ms)
		fprintf(fp, "    client gives up on its first attempt after %d ms\n",
			s->client_ms);
}

/* ---- the relay's log, shared with its processes ---- */

struct tlog {
	int	used, conn, port, kind, k;
	unsigned rcpt, accepted, refused, delivered;	/* member bit masks */
	int	committed;	/* the relay took the message (delivered) */
	int	clean;		/* ended in order: reply to the dot, RSET, QUIT */
	int	cut;		/* 421, drop, stall, garbage, EOF */
	int	replied;	/* the whole 250 to the dot was written */
	int	confirmed;	/* a command came after it: mlistd read it */
	int	hit;		/* the harness stopped or killed its worker */
	int	after_cont;	/* begun on a stopped worker's connection after
				 * its SIGCONT, before its attempt's answer
				 * (DF_STOP_LEASE) */
	int	dot;		/* the message's dot arrived */
};

struct shm {
	struct sched s;
	int	ntxn, nconn;
	int	stop_port;	/* DF_STOP_LEASE: the stopped worker's port */
	int	resumed;	/* ... it has had its SIGCONT, and its attempt
				 * is not answered yet */
	int	pending;	/* ... and had written more when the relay looked */
	struct tlog t[MAXT];
};

struct event {
	char	type;		/* 'R', 'D', 'A' */
	int	txn, port;	/* the transaction; mlistd's local port */
};

static struct shm *sh;
static int ev_w, go_r;		/* in the relay */

static void
nap_ms(int ms)
{
	tl_sleep_ms(ms);
}

static void
say(int fd, const char *s)
{
	(void) tl_send(fd, s);
}

/* stall - no reply: read and drop until mlistd gives up and closes */
static void
stall(FILE *in)
{
	char	line[1024];

	while (fgets(line, sizeof(line), in) != NULL)
		;
}

/*
 * hold - report an event to the harness and wait for it to act.  With
 * DF_STOP_LEASE the harness goes on only once the worker is stopped, so
 * whatever waits on the connection then was written before the stop:
 * 1 if something does (for 'A': the next transaction had begun), else 0.
 */
static int
hold(int fd, struct tlog *t, int idx, char type, int k)
{
	struct event e;
	struct pollfd p;
	char	c;

	if (sh->s.df == DF_NONE || idx != sh->s.hold_txn || type != sh->s.hold_ev
	    || (type == 'R' && k != sh->s.hold_k))
		return (0);
	memset(&e, 0, sizeof(e));
	e.type = type;
	e.txn = idx;
	e.port = t->port;
	if (write(ev_w, &e, sizeof(e)) != (ssize_t) sizeof(e))
		return (0);
	p.fd = go_r;
	p.events = POLLIN;
	if (poll(&p, 1, 20000) != 1 || read(go_r, &c, 1) != 1)
		return (0);
	if (sh->s.df != DF_STOP_LEASE || recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) != 1)
		return (0);
	__atomic_store_n(&sh->pending, 1, __ATOMIC_SEQ_CST);
	return (1);
}

/* member - index of mN@example.org in "RCPT TO:<...>", or -1 */
static int
member(const char *line, char *addr, size_t len)
{
	const char *lt = strchr(line, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	int	m;

	addr[0] = 0;
	if (lt == NULL || gt == NULL || (size_t) (gt - lt) >= len)
		return (-1);
	snprintf(addr, len, "%.*s", (int) (gt - lt - 1), lt + 1);
	if (sscanf(addr, "m%d@example.org", &m) != 1 || m < 0 || m >= MAXM)
		return (-1);
	return (m);
}

/*
 * reply - write r whole, or garbled (garbage), or trickled a byte at a
 * time: in time (4 ms a byte), or past the deadline (spread over
 * relay-timeout + 0.5 s, so that mlistd's one deadline per reply is over
 * before its end whenever it began waiting); 0 or -1 (write failed)
 */
enum { W_WHOLE, W_GARBAGE, W_SLOW, W_FAST };

static int
reply(int fd, const char *r, int how)
{
	int	len = (int) strlen(r), ms;

	if (how == W_WHOLE)
		return (tl_send(fd, r));
	if (how == W_GARBAGE)
		return (tl_send(fd, "chaos: this is no SMTP reply\r\n"));
	ms = how == W_FAST ? 4 : (RELAY_TO * 1000 + 500) / len + 1;
	for (; *r; r++) {
		char	c[2] = {*r, 0};

		if (tl_send(fd, c) != 0)
			return (-1);
		nap_ms(ms);
	}
	return (0);
}

/* relay_session - one connection from mlistd, by the schedule */
static void
relay_session(int fd, int conn, int port)
{
	FILE   *in = fdopen(fd, "r");
	struct tlog *t = NULL, *prev = NULL;
	char	line[4096], addr[300], buf[512];
	int	idx = -1, nrc = 0, nacc = 0, kind = RF_OK, k = 0;
	int	next_hit = 0;	/* the next MAIL was written before a stop */
	int	cf;		/* this connection's fault (second stream) */
	int	ehlo_seen = 0, ehlo_failed = 0, rset_done = 0;

	if (in == NULL)
		_exit(1);
	if (conn < sh->s.ngf) {
		if (!sh->s.gf_drop[conn])
			say(fd, "421 4.3.2 chaos: service not available, closing\r\n");
		_exit(0);
	}
	cf = conn < MAXC ? sh->s.cf[conn] : RF_OK;
	if (cf == RF_GREET_5XX) {
		/* as Postfix's postscreen or a closed relay: 554, then 503 to
		 * everything but QUIT */
		say(fd, "554 5.3.2 chaos: no SMTP service here\r\n");
		while (fgets(line, sizeof(line), in) != NULL) {
			if (strncasecmp(line, "QUIT", 4) == 0) {
				say(fd, "221 2.0.0 Bye\r\n");
				break;
			}
			say(fd, "503 5.5.1 Error: no SMTP service\r\n");
		}
		_exit(0);
	}
	(void) reply(fd, "220 chaos ESMTP\r\n", cf == RF_GREET_GARBAGE ? W_GARBAGE
		     : cf == RF_GREET_TRICKLE_SLOW ? W_SLOW : cf == RF_GREET_TRICKLE_FAST
		     ? W_FAST : W_WHOLE);
	while (fgets(line, sizeof(line), in) != NULL) {
		if (prev) {
			prev->confirmed = 1;	/* mlistd read the reply and went on */
			prev = NULL;
		}
		if (strncasecmp(line, "HELO", 4) == 0 && ehlo_failed) {
			say(fd, "250 chaos\r\n");	/* HELO after a failed EHLO */
		} else if (strncasecmp(line, "EHLO", 4) == 0 || strncasecmp(line, "HELO", 4) == 0) {
			const char *ehlo = "250-chaos\r\n250-PIPELINING\r\n250-8BITMIME\r\n"
				"250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n";
			int	how = W_WHOLE;

			if (strncasecmp(line, "EHLO", 4) == 0 && !ehlo_seen++) {
				if (cf == RF_EHLO_4XX || cf == RF_EHLO_5XX) {
					ehlo_failed = 1;
					say(fd, cf == RF_EHLO_4XX ? "451 4.3.0 chaos: local error, "
					    "try again\r\n" : "502 5.5.2 Error: command not "
					    "recognized\r\n");
					continue;
				}
				how = cf == RF_EHLO_GARBAGE ? W_GARBAGE : cf == RF_EHLO_TRICKLE_SLOW
					? W_SLOW : cf == RF_EHLO_TRICKLE_FAST ? W_FAST : W_WHOLE;
			}
			(void) reply(fd, ehlo, how);
		} else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
			if (t && !t->committed)
				t->clean = 1;
			idx = __atomic_fetch_add(&sh->ntxn, 1, __ATOMIC_SEQ_CST);
			if (idx >= MAXT) {
				say(fd, "421 4.3.2 chaos: too many transactions\r\n");
				_exit(0);
			}
			t = &sh->t[idx];
			t->used = 1;
			t->conn = conn;
			t->port = port;
			t->hit = next_hit;
			next_hit = 0;
			t->after_cont = port == sh->stop_port
				&& __atomic_load_n(&sh->resumed, __ATOMIC_SEQ_CST);
			kind = t->kind = idx < sh->s.nrf ? sh->s.rf[idx] : RF_OK;
			k = t->k = idx < sh->s.nrf ? sh->s.rk[idx] : 0;
			nrc = nacc = 0;
			rset_done = 0;
			if (kind == RF_CLOSE_MAIL) {
				say(fd, "421 4.3.2 chaos: shutting down\r\n");
				t->cut = 1;
				_exit(0);
			}
			if (kind == RF_MAIL_4XX || kind == RF_MAIL_5XX) {
				/* no transaction: what follows gets 503 */
				say(fd, kind == RF_MAIL_4XX ? "451 4.3.0 <list-bounces@example.org>:"
				    " Sender address rejected: try again later\r\n" : "553 5.7.1 "
				    "<list-bounces@example.org>: Sender address rejected: not "
				    "allowed\r\n");
				t->clean = 1;
				t = NULL;
				continue;
			}
			if (kind == RF_MAIL_GARBAGE || kind == RF_MAIL_TRICKLE_SLOW)
				t->cut = 1;	/* mlistd cannot read it in time, or at all */
			(void) reply(fd, "250 2.1.0 Ok\r\n", kind == RF_MAIL_GARBAGE ? W_GARBAGE
				     : kind == RF_MAIL_TRICKLE_SLOW ? W_SLOW : kind ==
				     RF_MAIL_TRICKLE_FAST ? W_FAST : W_WHOLE);
		} else if (strncasecmp(line, "RCPT TO:", 8) == 0 && t != NULL) {
			int	m = member(line, addr, sizeof(addr)), how;

			nrc++;
			if (m >= 0)
				t->rcpt |= 1u << m;
			(void) hold(fd, t, idx, 'R', nrc);
			if ((kind == RF_CLOSE_RCPT && nrc == k)
			    || (kind == RF_DENIED_CLOSE && nrc > k)) {
				say(fd, "421 4.7.0 chaos: too many errors\r\n");
				t->cut = 1;
				_exit(0);
			}
			if ((kind == RF_DROP_RCPT && nrc == k) || (kind == RF_DENIED_DROP && nrc > k)) {
				t->cut = 1;
				_exit(0);
			}
			if (kind == RF_STALL_RCPT && nrc == k) {
				t->cut = 1;
				stall(in);
				_exit(0);
			}
			if (kind == RF_DENIED || kind == RF_DENIED_CLOSE || kind == RF_DENIED_DROP) {
				snprintf(buf, sizeof(buf), "554 5.7.1 <%s>: Relay access denied\r\n", addr);
				say(fd, buf);
				continue;
			}
			if (kind == RF_TOO_MANY && nacc >= k) {
				say(fd, "452 4.5.3 Error: too many recipients\r\n");
				continue;
			}
			if (kind == RF_RCPT_TEMP && nrc == k) {
				snprintf(buf, sizeof(buf), "%s <%s>: Recipient address rejected: "
					 "try again later\r\n", k % 2 ? "450 4.2.0" : "451 4.3.0", addr);
				say(fd, buf);
				continue;
			}
			if (kind == RF_RCPT_GARBAGE && nrc == k) {
				t->cut = 1;	/* neither accepted nor refused */
				(void) reply(fd, "", W_GARBAGE);
				continue;
			}
			how = kind == RF_RCPT_TRICKLE_SLOW && nrc == k ? W_SLOW : kind ==
				RF_RCPT_TRICKLE_FAST && nrc == k ? W_FAST : W_WHOLE;
			if (how == W_SLOW)
				t->cut = 1;
			if (m < 0 || sh->s.dead[m]) {
				snprintf(buf, sizeof(buf), "550 5.1.1 <%s>: Recipient address "
					 "rejected: User unknown\r\n", addr);
				if (m >= 0)
					t->refused |= 1u << m;
				(void) reply(fd, buf, how);
				continue;
			}
			t->accepted |= 1u << m;
			nacc++;
			(void) reply(fd, "250 2.1.5 Ok\r\n", how);
		} else if (strncasecmp(line, "DATA", 4) == 0 && t != NULL) {
			int	dot = 0;

			if (nacc == 0) {
				say(fd, "554 5.5.1 Error: no valid recipients\r\n");
				continue;
			}
			if (kind == RF_DROP_DATA) {
				t->cut = 1;
				_exit(0);
			}
			if (kind == RF_DATA_4XX || kind == RF_DATA_5XX) {
				/* the transaction stays open: RSET, MAIL or QUIT ends it */
				say(fd, kind == RF_DATA_4XX ? "452 4.3.1 Insufficient system "
				    "storage\r\n" : "554 5.7.0 chaos: DATA refused by policy\r\n");
				continue;
			}
			say(fd, "354 End data with <CR><LF>.<CR><LF>\r\n");
			while (fgets(line, sizeof(line), in) != NULL)
				if (strcmp(line, ".\r\n") == 0) {
					dot = 1;
					break;
				}
			if (!dot) {
				t->cut = 1;
				_exit(0);
			}
			t->dot = 1;
			(void) hold(fd, t, idx, 'D', 0);
			switch (kind) {
			case RF_DROP_DOT:
				t->cut = 1;
				_exit(0);
			case RF_STALL_DOT:
				t->cut = 1;
				stall(in);
				_exit(0);
			case RF_GARBAGE:
				t->cut = 1;
				say(fd, "this is no SMTP reply\r\n");
				t = NULL;
				continue;
			case RF_DOT_451:
				t->clean = 1;
				say(fd, "451 4.3.0 Error: queue file write error\r\n");
				t = NULL;
				continue;
			case RF_DOT_554:
				t->clean = 1;
				say(fd, "554 5.3.0 Error: message refused\r\n");
				t = NULL;
				continue;
			default:
				break;
			}
			t->committed = 1;
			t->delivered = t->accepted;
			if (kind == RF_COMMIT_DROP)
				_exit(0);
			if (kind == RF_COMMIT_STALL) {
				stall(in);
				_exit(0);
			}
			if (kind == RF_TRICKLE_SLOW || kind == RF_TRICKLE_FAST) {
				const char *r = "250 2.0.0 Ok: queued as CHAOS\r\n";
				int	ok = 1;

				for (; *r && ok; r++) {
					char	c[2] = {*r, 0};

					ok = tl_send(fd, c) == 0;
					nap_ms(kind == RF_TRICKLE_SLOW ? 80 : 4);
				}
				t->replied = ok;
			} else {
				say(fd, "250 2.0.0 Ok: queued as CHAOS\r\n");
				t->replied = 1;
				next_hit = hold(fd, t, idx, 'A', 0);
			}
			prev = t;
			t = NULL;
		} else if (strncasecmp(line, "RSET", 4) == 0) {
			if ((kind == RF_RSET_421 || kind == RF_RSET_5XX || kind == RF_RSET_DROP)
			    && !rset_done++) {
				/* the RSET that ends a transaction nobody was accepted
				 * in is its end in order (relay.c): failed, it is cut */
				if (t)
					t->cut = 1;
				t = NULL;
				if (kind == RF_RSET_DROP)
					_exit(0);
				if (kind == RF_RSET_421) {
					say(fd, "421 4.3.2 chaos: shutting down\r\n");
					_exit(0);
				}
				say(fd, "500 5.5.2 Error: command not recognized\r\n");
				continue;
			}
			if (t)
				t->clean = 1;
			t = NULL;
			say(fd, "250 2.0.0 Ok\r\n");
		} else if (strncasecmp(line, "QUIT", 4) == 0) {
			if (t)
				t->clean = 1;
			say(fd, "221 2.0.0 Bye\r\n");
			_exit(0);
		} else if (t == NULL && (strncasecmp(line, "RCPT", 4) == 0
					 || strncasecmp(line, "DATA", 4) == 0)) {
			say(fd, "503 5.5.1 Error: need MAIL command\r\n");
		} else
			say(fd, "250 2.0.0 Ok\r\n");
	}
	if (t && !t->clean)
		t->cut = 1;
	_exit(0);
}

/* relay_main - the relay's accept loop: a process per connection */
static void
relay_main(int lfd)
{
	signal(SIGCHLD, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	alarm(120);
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int	fd = accept(lfd, (struct sockaddr *) &peer, &plen), conn;
		pid_t	pid;

		if (fd < 0) {
			if (errno == EINTR)
				continue;
			_exit(1);
		}
		conn = __atomic_fetch_add(&sh->nconn, 1, __ATOMIC_SEQ_CST);
		if ((pid = fork()) == 0) {
			(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
			(void) close(lfd);
			alarm(60);
			relay_session(fd, conn, ntohs(peer.sin_port));
		}
		(void) close(fd);
	}
}

/* ---- libfaketime: can the daemon run under it here? ---- */

static int clock_ok = -1;	/* -1 not probed, 0 no, 1 yes */
static char clock_why[256];
static char asan_opts[512];	/* ASAN_OPTIONS for a preloaded daemon */

static void
faketime_env(const char *tsfile, int on)
{
	if (on) {
		(void) setenv("LD_PRELOAD", faketime_lib, 1);
		(void) setenv("FAKETIME_TIMESTAMP_FILE", tsfile, 1);
		(void) setenv("FAKETIME_NO_CACHE", "1", 1);
		(void) setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1", 1);
		if (asan_opts[0])
			(void) setenv("ASAN_OPTIONS", asan_opts, 1);
	} else {
		(void) unsetenv("LD_PRELOAD");
		(void) unsetenv("FAKETIME_TIMESTAMP_FILE");
		(void) unsetenv("FAKETIME_NO_CACHE");
		(void) unsetenv("FAKETIME_DONT_FAKE_MONOTONIC");
	}
}

static int
write_offset(const char *tsfile, long secs)
{
	char	tmp[300];
	FILE   *fp;

	snprintf(tmp, sizeof(tmp), "%s.new", tsfile);
	if ((fp = fopen(tmp, "w")) == NULL)
		return (-1);
	fprintf(fp, "%+ld\n", secs);
	if (fclose(fp) != 0 || chmod(tmp, 0644) < 0 || rename(tmp, tsfile) < 0)
		return (-1);
	return (0);
}

/*
 * probe_clock - run `mlistd --version` under libfaketime.  An ASan build
 * refuses a preloaded library ahead of its runtime unless
 * verify_asan_link_order=0; try that too.
 */
static void
probe_clock(void)
{
	char   *argv[] = {(char *) tl_mlistd(), "--version", NULL}, out[2048];
	const char *old = getenv("ASAN_OPTIONS");
	char	tsfile[] = "/tmp/mlistd-chaos-probe.XXXXXX";
	int	fd, rc;

	if (clock_ok >= 0)
		return;
	clock_ok = 0;
	if (getenv("MLISTD_CHAOS_FAKETIME") != NULL)
		faketime_lib = getenv("MLISTD_CHAOS_FAKETIME");
	if (access(faketime_lib, R_OK) != 0) {
		snprintf(clock_why, sizeof(clock_why), "%.200s is missing", faketime_lib);
		return;
	}
	if ((fd = mkstemp(tsfile)) < 0)
		return;
	(void) close(fd);
	(void) write_offset(tsfile, 0);
	faketime_env(tsfile, 1);
	rc = tl_run(argv, out, sizeof(out));
	if (rc != 0) {
		snprintf(asan_opts, sizeof(asan_opts), "%s%sverify_asan_link_order=0",
			 old ? old : "", old && *old ? ":" : "");
		faketime_env(tsfile, 1);
		if ((rc = tl_run(argv, out, sizeof(out))) != 0) {
			asan_opts[0] = 0;
			snprintf(clock_why, sizeof(clock_why), "mlistd under libfaketime exits "
				 "%d: %.150s", rc, out);
		}
	}
	faketime_env(tsfile, 0);
	if (old)
		(void) setenv("ASAN_OPTIONS", old, 1);
	(void) unlink(tsfile);
	clock_ok = rc == 0;
}

/* ---- one run ---- */

struct attempt {
	int	fd, n, abandoned, stopped_before;
	double	t0, giveup;
};

struct run {
	struct sched s;
	struct tl_daemon d;
	pid_t	relay;
	int	relay_port, ev_r, go_w;
	char	tsdir[64], tsfile[128];
	int	use_clock;
	pid_t	stopped;		/* a worker we SIGSTOPped, not yet continued */
	int	final;			/* the final answer's code, -1 none */
	char	final_text[1024];
	int	claims_at_final;
	int	late;			/* attempts that overran, no worker stopped */
	struct stopped {		/* DF_STOP_STEP, DF_STOP_LEASE: what was seen */
		pid_t	w;		/* the worker stopped */
		int	txn, attempt;	/* the transaction held; the worker's attempt */
		char	ev;		/* where: 'R', 'D', 'A' */
		int	owner;		/* it held the copy's claim at the stop */
		int	locked;		/* ... and the database's write lock */
		int	committed;	/* 'A': the held transaction's checkpoint was */
		int	waited;		/* its lease was seen over by the boot clock */
		long long lease, lease_left;	/* the claim's lease; what it had left */
		long	gen_stop, gen_cont;	/* generation at the stop, at SIGCONT */
		int	expect_kept;	/* the retry came within the lease */
		int	expect_takeover;	/* the retry came after the lease */
		int	in_poll;	/* it was stopped inside poll() */
		int	expect_lost;	/* after SIGCONT it reads a 250 to its dot */
		int	check_start;	/* it may begin no transaction after SIGCONT */
		int	may_start;	/* 'A' after its checkpoint, nothing written
					 * yet: it may have passed proceed() */
		int	snapped;	/* snap[0] before SIGCONT, snap[1] after */
		char	snap[2][2048];
	} st;
	char   *trace;			/* what the harness saw and did */
	size_t	tlen, tcap;
	char   *viol;			/* invariants broken */
	size_t	vlen, vcap;
	int	nviol;
};

static void
append(char **buf, size_t *len, size_t *cap, const char *fmt, va_list ap)
{
	char	line[1024];
	int	n = vsnprintf(line, sizeof(line), fmt, ap);
	size_t	need;

	if (n < 0)
		return;
	if ((size_t) n >= sizeof(line))
		n = sizeof(line) - 1;
	need = *len + (size_t) n + 2;
	if (need > *cap) {
		size_t	ncap = need * 2;
		char   *nb = realloc(*buf, ncap);

		if (nb == NULL)
			return;
		*buf = nb;
		*cap = ncap;
	}
	memcpy(*buf + *len, line, (size_t) n);
	*len += (size_t) n;
	(*buf)[(*len)++] = '\n';
	(*buf)[*len] = 0;
}

static double
now_s(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_MONOTONIC, &ts);
	return ((double) ts.tv_sec + (double) ts.tv_nsec / 1e9);
}

static double run_t0;

static void
trace(struct run *r, const char *fmt, ...)
{
	va_list	ap;
	char	f[256];

	snprintf(f, sizeof(f), "    %6.3f %s", now_s() - run_t0, fmt);
	va_start(ap, fmt);
	append(&r->trace, &r->tlen, &r->tcap, f, ap);
	va_end(ap);
}

static void
violation(struct run *r, const char *fmt, ...)
{
	va_list	ap;
	char	f[256];

	snprintf(f, sizeof(f), "  invariant broken: %s", fmt);
	va_start(ap, fmt);
	append(&r->viol, &r->vlen, &r->vcap, f, ap);
	va_end(ap);
	r->nviol++;
}

static const char *const post_text =
	"From: Poster <poster@example.org>\r\n"
	"To: chaos@example.com\r\n"
	"Subject: chaos\r\n"
	"Message-ID: <chaos-fixed-1@example.org>\r\n"
	"\r\n"
	"The same post every attempt.\r\n";

/* start_attempt - the client (Postfix) sends the post up to the dot */
static int
start_attempt(struct run *r, struct attempt *a, int n)
{
	char	buf[1024];
	int	fd = tl_connect(&r->d);

	memset(a, 0, sizeof(*a));
	a->n = n;
	a->fd = -1;
	a->t0 = now_s();
	a->stopped_before = r->stopped != 0;
	a->giveup = a->t0 + DDT + 2 * RELAY_TO + 5;
	if (n == 1 && r->s.client_ms)
		a->giveup = a->t0 + r->s.client_ms / 1000.0;
	if (fd < 0) {
		trace(r, "attempt %d: cannot connect", n);
		return (-1);
	}
	if (tl_reply(fd, buf, sizeof(buf)) != 220
	    || tl_cmd(fd, "EHLO postfix.example.org\r\n", buf, sizeof(buf)) != 250
	    || tl_cmd(fd, "MAIL FROM:<poster@example.org>\r\n", buf, sizeof(buf)) != 250
	    || tl_cmd(fd, "RCPT TO:<chaos@example.com>\r\n", buf, sizeof(buf)) != 250
	    || tl_cmd(fd, "DATA\r\n", buf, sizeof(buf)) != 354
	    || tl_send(fd, post_text) < 0 || tl_send(fd, ".\r\n") < 0) {
		trace(r, "attempt %d: failed before the dot: %.200s", n, buf);
		(void) close(fd);
		return (-1);
	}
	a->fd = fd;
	trace(r, "attempt %d: dot sent", n);
	return (0);
}

/* chomp - the reply without its line ends, for the trace */
static char *
chomp(char *s)
{
	size_t	n = strlen(s);

	while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = 0;
	return (s);
}

/* claim_owner - the live owner of the copy's claim, 0 if none */
static long
claim_owner(struct run *r)
{
	long	owner = tl_sql_int(&r->d, "SELECT coalesce(max(owner), 0) FROM relayed");

	if (owner > 0 && (kill((pid_t) owner, 0) == 0 || errno == EPERM))
		return (owner);
	return (0);
}

/* boot_sec - the boot clock (CLOCK_BOOTTIME), whole seconds, as leases are */
static long long
boot_sec(void)
{
	struct timespec ts;

	(void) clock_gettime(CLOCK_BOOTTIME, &ts);
	return ((long long) ts.tv_sec);
}

/* wait_stopped - until pid is seen stopped ('T' in /proc/PID/stat); 1 if so */
static int
wait_stopped(pid_t pid)
{
	char	path[64], buf[512], *rp;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long) pid);
	for (int i = 0; i < 200; i++) {
		FILE   *fp = fopen(path, "r");
		size_t	n = fp ? fread(buf, 1, sizeof(buf) - 1, fp) : 0;

		if (fp)
			(void) fclose(fp);
		buf[n] = 0;
		if ((rp = strrchr(buf, ')')) != NULL && (rp[2] == 'T' || rp[2] == 't'))
			return (1);
		nap_ms(10);
	}
	return (0);
}

/* in_poll - pid (stopped) is inside poll(): it sees what arrived meanwhile
 * when it goes on, whatever its deadline says */
static int
in_poll(pid_t pid)
{
	char	path[64], buf[64];
	FILE   *fp;
	long	nr = -1;

	snprintf(path, sizeof(path), "/proc/%ld/syscall", (long) pid);
	if ((fp = fopen(path, "r")) == NULL)
		return (0);
	if (fgets(buf, sizeof(buf), fp) == NULL || sscanf(buf, "%ld", &nr) != 1)
		nr = -1;
	(void) fclose(fp);
#ifdef SYS_poll
	if (nr == SYS_poll)
		return (1);
#endif
	return (nr == SYS_ppoll);
}

/* db_open - the daemon's database, with a busy timeout of ms */
static sqlite3 *
db_open(struct run *r, int ms)
{
	char	path[400];
	sqlite3 *db = NULL;

	snprintf(path, sizeof(path), "%s/mlistd.db", r->d.dir);
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
		sqlite3_close(db);
		return (NULL);
	}
	sqlite3_busy_timeout(db, ms);
	return (db);
}

/* write_locked - does another connection hold the write lock?  1, 0, -1 */
static int
write_locked(struct run *r)
{
	sqlite3 *db = db_open(r, 0);
	int	rc;

	if (db == NULL)
		return (-1);
	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		(void) sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	sqlite3_close(db);
	return (rc == SQLITE_OK ? 0 : rc == SQLITE_BUSY ? 1 : -1);
}

/* snapshot - what a claim's owner may write: the copy, its members, bounces */
static void
snapshot(struct run *r, char *out, size_t len)
{
	sqlite3 *db = db_open(r, 5000);
	sqlite3_stmt *q = NULL;
	const char *sql = "SELECT coalesce((SELECT group_concat(x, ' ') FROM (SELECT id || ':' || "
		"coalesce(owner, '-') || ':' || generation || ':' || complete || ':' || "
		"coalesce(lease, '-') AS x FROM relayed ORDER BY id)), '') || ' | ' || "
		"coalesce((SELECT group_concat(x, ' ') FROM (SELECT address || ':' || refused AS x "
		"FROM relayed_rcpt ORDER BY address)), '') || ' | bounces ' || (SELECT count(*) "
		"|| ':' || coalesce(max(rowid), 0) FROM bounces)";

	snprintf(out, len, "(cannot read the database)");
	if (db != NULL && sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK
	    && sqlite3_step(q) == SQLITE_ROW && sqlite3_column_text(q, 0) != NULL)
		snprintf(out, len, "%s", (const char *) sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
}

/* attempt_worker - the worker serving attempt fd, 0 if not found */
static pid_t
attempt_worker(struct run *r, int fd)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);

	if (fd < 0 || getsockname(fd, (struct sockaddr *) &sin, &len) < 0)
		return (0);
	return (tl_worker_by_port(r->d.pid, r->d.port, ntohs(sin.sin_port)));
}

/* wait_claim_free - before an ordinary retry: no live owner but ours stopped */
static void
wait_claim_free(struct run *r)
{
	double	end = now_s() + DDT + 2 * RELAY_TO + 5;
	long	owner;

	while ((owner = claim_owner(r)) > 0 && owner != r->stopped && now_s() < end)
		nap_ms(20);
	if (owner > 0 && owner != r->stopped)
		trace(r, "claim still held by %ld after waiting", owner);
}

static void
continue_stopped(struct run *r)
{
	if (r->stopped > 0) {
		trace(r, "SIGCONT worker %ld", (long) r->stopped);
		(void) kill(r->stopped, SIGCONT);
		r->stopped = 0;
	}
}

/* note_stop - DF_STOP_STEP, DF_STOP_LEASE: the stopped worker and its claim */
static void
note_stop(struct run *r, const struct event *e, pid_t w, const struct attempt *a,
	  const struct attempt *ab, int nab)
{
	long	owner = tl_sql_int(&r->d, "SELECT coalesce(max(owner), 0) FROM relayed "
				   "WHERE complete = 0");

	r->stopped = w;
	r->st.w = w;
	r->st.txn = e->txn;
	r->st.ev = e->type;
	if (!wait_stopped(w))
		trace(r, "worker %ld not seen stopped", (long) w);
	r->st.owner = owner == (long) w;
	r->st.gen_stop = tl_sql_int(&r->d, "SELECT coalesce(max(generation), -1) FROM relayed");
	r->st.lease = tl_sql_int(&r->d, "SELECT coalesce(max(lease), 0) FROM relayed");
	r->st.lease_left = r->st.lease - boot_sec();
	r->st.locked = write_locked(r) == 1;
	r->st.in_poll = in_poll(w);
	if (attempt_worker(r, a->fd) == w)
		r->st.attempt = a->n;
	for (int i = 0; i < nab; i++)
		if (attempt_worker(r, ab[i].fd) == w)
			r->st.attempt = ab[i].n;
	trace(r, "SIGSTOP worker %ld (attempt %d%s): claim %s (owner %ld, generation %ld, lease "
	      "%+lld s), write lock %s", (long) w, r->st.attempt, r->st.in_poll ? ", in poll()"
	      : "", r->st.owner ? "its own" : "not its", owner, r->st.gen_stop, r->st.lease_left,
	      r->st.locked ? "held" : "free");
}

/*
 * stop_past_lease - DF_STOP_LEASE: stop the worker, see what the stop
 * caught (once the relay, released, has peeked at the connection), and
 * wait until its lease is over by the boot clock.  0, or -1 when no retry
 * can take the claim over (none of its own, or the write lock held).
 */
static int
stop_past_lease(struct run *r, const struct event *e, pid_t w, const struct attempt *a,
		const struct attempt *ab, int nab)
{
	struct tlog *t = &sh->t[e->txn];
	char	c = 'g', sql[256];
	long long end;
	int	m = 0;

	sh->stop_port = e->port;
	(void) kill(w, SIGSTOP);
	note_stop(r, e, w, a, ab, nab);
	if (write(r->go_w, &c, 1) != 1)
		trace(r, "cannot release the relay");
	if (e->type == 'A') {
		/* Its checkpoint: one commit, the copy complete or its members. */
		while (m < MAXM - 1 && !(t->accepted & (1u << m)))
			m++;
		snprintf(sql, sizeof(sql), "SELECT (SELECT count(*) FROM relayed WHERE complete = 1)"
			 " + (SELECT count(*) FROM relayed_rcpt WHERE address = 'm%d@example.org')", m);
		r->st.committed = tl_sql_int(&r->d, sql) > 0;
		trace(r, "the stop caught it %s", r->st.committed ? r->st.locked ? "at the end of "
		      "its checkpoint (committed, the write lock not yet released)"
		      : "after its checkpoint" : r->st.locked ? "inside its checkpoint"
		      : "before its checkpoint");
	}
	/* In flight: the transaction held, unless its checkpoint is done or
	 * under way (then the relay marks the next one, if it had begun). */
	if (e->type != 'A' || (!r->st.committed && !r->st.locked))
		t->hit = 1;
	if (!r->st.owner || r->st.locked)
		return (-1);
	end = boot_sec() + LEASE + 2;
	while (boot_sec() < r->st.lease && boot_sec() < end)
		nap_ms(50);
	r->st.waited = boot_sec() >= r->st.lease;
	trace(r, "%s by the boot clock (%lld, lease %lld)", r->st.waited ? "lease over"
	      : "gave up waiting for the lease", boot_sec(), r->st.lease);
	return (r->st.waited ? 0 : -1);
}

/* act - the relay holds at the scheduled point: the daemon fault */
static void
act(struct run *r, const struct event *e, struct attempt *a, int *nattempt,
    struct attempt *ab, int *nab)
{
	pid_t	w = tl_worker_by_port(r->d.pid, e->port, r->relay_port);
	int	concurrent = 0, released = 0;
	char	c = 'g';

	trace(r, "relay holds transaction %d at '%c' (worker %ld, port %d)", e->txn, e->type,
	      (long) w, e->port);
	switch (r->s.df) {
	case DF_KILL:
		if (w > 0) {
			sh->t[e->txn].hit = 1;
			(void) kill(w, SIGKILL);
			trace(r, "SIGKILL worker %ld", (long) w);
		} else
			trace(r, "worker not found: nothing killed");
		break;
	case DF_STOP_STEP:
		/* The lease is on the boot clock: the step must not end it. */
		if (w > 0) {
			sh->t[e->txn].hit = 1;
			(void) kill(w, SIGSTOP);
			note_stop(r, e, w, a, ab, *nab);
		}
		if (write_offset(r->tsfile, STEP_SECS) == 0)
			trace(r, "wall clock stepped %+ds (the lease is %ds)", STEP_SECS, LEASE);
		concurrent = 1;
		break;
	case DF_STOP_LEASE:
		if (w > 0) {
			(void) stop_past_lease(r, e, w, a, ab, *nab);
			released = 1;
			concurrent = 1;
		} else
			trace(r, "worker not found: nothing stopped");
		break;
	case DF_STEP:
	case DF_STEP_BACK:
		if (write_offset(r->tsfile, r->s.df == DF_STEP ? STEP_SECS : -STEP_SECS) == 0)
			trace(r, "wall clock stepped %+ds", r->s.df == DF_STEP ? STEP_SECS
			      : -STEP_SECS);
		concurrent = 1;
		break;
	case DF_GIVEUP:
		concurrent = 1;
		break;
	default:
		break;
	}
	if (!released && write(r->go_w, &c, 1) != 1)
		trace(r, "cannot release the relay");
	/* Postfix gave up waiting: it retries while the first attempt runs. */
	if (concurrent && a->fd >= 0 && *nattempt < MAXA && *nab < MAXAB) {
		trace(r, "client gives up on attempt %d and retries", a->n);
		a->abandoned = 1;
		ab[(*nab)++] = *a;
		(void) start_attempt(r, a, ++*nattempt);
	}
}

static void
read_abandoned(struct run *r, struct attempt *ab)
{
	char	buf[1024];
	int	code = tl_reply(ab->fd, buf, sizeof(buf));

	trace(r, "abandoned attempt %d answered %d %.200s", ab->n, code, code > 0 ? chomp(buf) : "");
	(void) close(ab->fd);
	ab->fd = -1;
}

/*
 * resume - SIGCONT the stopped worker after an attempt's answer (code, -1
 * for none): first what became of its claim meanwhile; with
 * DF_STOP_LEASE also the copy's rows before SIGCONT and once its own
 * attempt is answered, which must be the same (it lost its claim: it may
 * write nothing).
 */
static void
resume(struct run *r, struct attempt *ab, int nab, int code)
{
	struct stopped *st = &r->st;
	const struct tlog *t = &sh->t[st->txn];
	double	end;
	int	lost;

	if (r->stopped <= 0)
		return;
	if (code > 0) {
		st->gen_cont = tl_sql_int(&r->d, "SELECT coalesce(max(generation), -1) FROM "
					  "relayed");
		if (r->s.df == DF_STOP_STEP)
			st->expect_kept = st->owner && boot_sec() < st->lease;
		else
			st->expect_takeover = st->owner && !st->locked && st->waited;
		trace(r, "generation %ld at the stop, %ld before SIGCONT", st->gen_stop,
		      st->gen_cont);
	}
	if (r->s.df != DF_STOP_LEASE) {
		continue_stopped(r);
		return;
	}
	/* Lost: its claim was taken over.  It was waiting for the reply to
	 * its dot, which came: it will read it, whatever its deadline says,
	 * and reach its checkpoint. */
	lost = code > 0 && st->owner && st->gen_cont > st->gen_stop;
	st->expect_lost = lost && st->in_poll && st->ev != 'R' && t->hit && t->committed
		&& t->replied;
	/* Stopped past its lease, it is past data-done-timeout too: it may
	 * begin no transaction, unless it had passed proceed() unseen. */
	st->check_start = st->waited;
	st->may_start = st->ev == 'A' && st->committed && !sh->pending;
	if (st->ev == 'A' && st->committed)
		trace(r, "at the stop the next transaction had %s", sh->pending ? "begun"
		      : "not begun");
	if (lost)
		snapshot(r, st->snap[0], sizeof(st->snap[0]));
	__atomic_store_n(&sh->resumed, 1, __ATOMIC_SEQ_CST);
	continue_stopped(r);
	/* Once its attempt is answered, it has done all it will do for this
	 * post (it may serve the next attempt, on the same connection). */
	end = now_s() + DDT + 2 * RELAY_TO + 5;
	for (int i = 0; i < nab; i++)
		if (ab[i].n == st->attempt && ab[i].fd >= 0) {
			struct pollfd p = {ab[i].fd, POLLIN, 0};
			int	ms = (int) ((end - now_s()) * 1000);

			if (poll(&p, 1, ms > 0 ? ms : 0) == 1)
				read_abandoned(r, &ab[i]);
			else
				trace(r, "the stopped worker's attempt %d: no answer", ab[i].n);
			if (lost) {
				snapshot(r, st->snap[1], sizeof(st->snap[1]));
				st->snapped = 1;
			}
		}
	__atomic_store_n(&sh->resumed, 0, __ATOMIC_SEQ_CST);
	if (lost && !st->snapped)
		trace(r, "the stopped worker's attempt is not open: its writes are not compared");
}

/*
 * drive - attempts until 250, 5xx or the attempts are used up, acting on
 * the relay's events in between.
 */
static void
drive(struct run *r)
{
	struct attempt a, ab[MAXAB];
	int	nattempt = 1, nab = 0, done = 0;
	double	end = now_s() + 90;

	r->final = -1;
	(void) start_attempt(r, &a, 1);
	while (!done && now_s() < end) {
		struct pollfd p[2 + MAXAB];
		int	np = 0, tmo = 100, code;
		char	buf[1024];

		p[np].fd = r->ev_r;
		p[np++].events = POLLIN;
		if (a.fd >= 0) {
			p[np].fd = a.fd;
			p[np++].events = POLLIN;
			tmo = (int) ((a.giveup - now_s()) * 1000) + 1;
			if (tmo < 0)
				tmo = 0;
		}
		for (int i = 0; i < nab; i++) {
			p[np].fd = ab[i].fd;
			p[np++].events = ab[i].fd >= 0 ? POLLIN : 0;
		}
		if (poll(p, (nfds_t) np, tmo) < 0 && errno != EINTR)
			break;
		if (p[0].revents & POLLIN) {
			struct event e;

			if (read(r->ev_r, &e, sizeof(e)) == (ssize_t) sizeof(e))
				act(r, &e, &a, &nattempt, ab, &nab);
			continue;
		}
		for (int i = 0; i < nab; i++)
			if (ab[i].fd >= 0 && (p[np - nab + i].revents & (POLLIN | POLLHUP | POLLERR)))
				read_abandoned(r, &ab[i]);
		if (a.fd >= 0 && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			code = tl_reply(a.fd, buf, sizeof(buf));
			trace(r, "attempt %d answered %d %.200s", a.n, code, code > 0 ? chomp(buf) : "");
			(void) close(a.fd);
			a.fd = -1;
			if (a.stopped_before)
				resume(r, ab, nab, code);
			if (code == 250 || code / 100 == 5) {
				r->final = code;
				snprintf(r->final_text, sizeof(r->final_text), "%s", buf);
				r->claims_at_final = (int) tl_sql_int(&r->d, "SELECT count(*) FROM "
								     "relayed WHERE owner IS NOT NULL");
				done = 1;
				break;
			}
			r->final = code;
			snprintf(r->final_text, sizeof(r->final_text), "%s", code > 0 ? buf : "");
		} else if (a.fd >= 0 && now_s() >= a.giveup) {
			if (!(a.n == 1 && r->s.client_ms) && r->stopped == 0) {
				r->late++;
				trace(r, "attempt %d: no answer within %ds", a.n, DDT + 2 * RELAY_TO + 5);
			}
			if (nab < MAXAB) {
				trace(r, "client gives up on attempt %d", a.n);
				a.abandoned = 1;
				ab[nab++] = a;
			} else
				(void) close(a.fd);
			a.fd = -1;
		} else if (a.fd >= 0)
			continue;
		if (nattempt >= MAXA)
			break;
		wait_claim_free(r);
		(void) start_attempt(r, &a, ++nattempt);
	}
	if (a.fd >= 0) {
		trace(r, "run deadline: attempt %d unanswered", a.n);
		(void) close(a.fd);
	}
	resume(r, ab, nab, -1);
	/* Let abandoned attempts finish: their workers are still at it. */
	for (int i = 0; i < nab; i++)
		if (ab[i].fd >= 0) {
			struct pollfd p = {ab[i].fd, POLLIN, 0};

			if (poll(&p, 1, (DDT + 2 * RELAY_TO + 5) * 1000) == 1)
				read_abandoned(r, &ab[i]);
			else {
				trace(r, "abandoned attempt %d: no answer", ab[i].n);
				(void) close(ab[i].fd);
			}
		}
}

static int
start_relay(struct run *r)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	int	lfd, evp[2], gop[2];

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return (-1);
	if (bind(lfd, (struct sockaddr *) &sin, sizeof(sin)) < 0 || listen(lfd, 64) < 0
	    || getsockname(lfd, (struct sockaddr *) &sin, &len) < 0
	    || pipe2(evp, O_CLOEXEC) < 0) {
		(void) close(lfd);
		return (-1);
	}
	if (pipe2(gop, O_CLOEXEC) < 0) {
		(void) close(lfd);
		(void) close(evp[0]);
		(void) close(evp[1]);
		return (-1);
	}
	r->relay_port = ntohs(sin.sin_port);
	fflush(NULL);
	if ((r->relay = fork()) == 0) {
		(void) prctl(PR_SET_PDEATHSIG, SIGKILL);
		(void) close(evp[0]);
		(void) close(gop[1]);
		ev_w = evp[1];
		go_r = gop[0];
		relay_main(lfd);
		_exit(0);
	}
	(void) close(lfd);
	(void) close(evp[1]);
	(void) close(gop[0]);
	r->ev_r = evp[0];
	r->go_w = gop[1];
	return (r->relay > 0 ? 0 : -1);
}

static void
stop_relay(struct run *r)
{
	if (r->relay > 0) {
		(void) kill(r->relay, SIGKILL);
		(void) waitpid(r->relay, NULL, 0);
		r->relay = 0;
	}
	(void) close(r->ev_r);
	(void) close(r->go_w);
}

/* ambiguous - committed, but mlistd could not have known */
static int
ambiguous(const struct tlog *t)
{
	int	faulty = t->kind == RF_COMMIT_DROP || t->kind == RF_COMMIT_STALL
		|| t->kind == RF_TRICKLE_SLOW || t->kind == RF_TRICKLE_FAST || !t->replied;

	/* A worker hit between the dot and its next command, or stopped past
	 * its lease with the transaction begun: a retry in the meantime cannot
	 * know; a relay fault after committing: nor can anyone. */
	return (t->committed && (t->hit || (!t->confirmed && faulty)));
}

/* logged - a line of worker pid's in the daemon's log with needle */
static int
logged(struct run *r, pid_t pid, const char *needle)
{
	char	line[2048], who[32];
	FILE   *fp = fopen(r->d.log, "r");
	int	found = 0;

	if (fp == NULL)
		return (0);
	snprintf(who, sizeof(who), "[%ld]: ", (long) pid);
	while (!found && fgets(line, sizeof(line), fp) != NULL)
		found = strstr(line, who) != NULL && strstr(line, needle) != NULL;
	(void) fclose(fp);
	return (found);
}

/* check_stopped - the invariants of a worker stopped (DF_STOP_STEP,
 * DF_STOP_LEASE): its claim, its lease, what it did after SIGCONT */
static void
check_stopped(struct run *r)
{
	const struct stopped *st = &r->st;

	if (st->expect_kept && st->gen_cont != st->gen_stop)
		violation(r, "TAKEOVER: worker %ld's claim was taken over (generation %ld -> %ld) "
			  "while it was stopped with its lease running (the wall clock stepped "
			  "%+ds)", (long) st->w, st->gen_stop, st->gen_cont, STEP_SECS);
	if (st->expect_takeover && st->gen_cont <= st->gen_stop)
		violation(r, "TAKEOVER: the retry after worker %ld's lease was over by the boot "
			  "clock did not take the copy over (generation %ld -> %ld)", (long) st->w,
			  st->gen_stop, st->gen_cont);
	if (st->owner && st->lease_left > LEASE)
		violation(r, "LEASE: the claim's lease ended %lld s after the harness looked, more "
			  "than data-done-timeout + 2 * database-timeout + 5 = %d s", st->lease_left,
			  LEASE);
	if (st->snapped && strcmp(st->snap[0], st->snap[1]) != 0)
		violation(r, "FENCE: the stopped worker %ld wrote after it lost its claim: before "
			  "SIGCONT \"%.300s\", after its answer \"%.300s\"", (long) st->w, st->snap[0],
			  st->snap[1]);
	if (st->expect_lost && !logged(r, st->w, "lost its claim"))
		violation(r, "FENCE: the stopped worker %ld read the 250 to its dot after SIGCONT, "
			  "its claim taken over, and did not log \"lost its claim\"", (long) st->w);
	for (int i = 0; i < sh->ntxn && i < MAXT; i++) {
		const struct tlog *t = &sh->t[i];

		/* Stopped between its checkpoint and the write of MAIL, it may
		 * send that MAIL; it must get no further (its deadline is over). */
		if (st->check_start && t->after_cont && (!st->may_start || t->dot))
			violation(r, "FENCE: the stopped worker %ld began relay transaction %d after "
				  "SIGCONT%s", (long) st->w, i, t->dot ? " and sent the message" : "");
	}
}

static void
check(struct run *r)
{
	const struct sched *s = &r->s;
	int	delivered[MAXM] = {0}, allowed[MAXM] = {0}, clean_ref[MAXM] = {0}, any = 0;
	char	sql[256];
	FILE   *fp;

	for (int i = 0; i < sh->ntxn && i < MAXT; i++) {
		const struct tlog *t = &sh->t[i];

		for (int m = 0; m < s->nmem; m++) {
			if (t->committed && (t->delivered & (1u << m))) {
				delivered[m]++;
				any = 1;
				if (ambiguous(t))
					allowed[m]++;
			}
			if ((t->refused & (1u << m)) && (t->committed || (t->clean && !t->cut)))
				clean_ref[m]++;
		}
	}
	if (r->final != 250 && r->final / 100 != 5)
		violation(r, "CONVERGE: no final answer after the faults ended (last: %d %.200s)",
			  r->final, r->final_text);
	if (r->final / 100 == 5 && any)
		violation(r, "5XX: answered %.200s after members got copies", r->final_text);
	if ((r->final == 250 || r->final / 100 == 5) && r->claims_at_final != 0)
		violation(r, "CLAIM: %d claim(s) held when the post was answered", r->claims_at_final);
	if (r->late)
		violation(r, "NO-ANSWER: %d attempt(s) unanswered within data-done-timeout "
			  "+ relay-timeout + 5 s", r->late);
	check_stopped(r);
	for (int m = 0; m < s->nmem; m++) {
		long	ev, ref;

		snprintf(sql, sizeof(sql), "SELECT count(*) FROM bounces WHERE evidence = 1 "
			 "AND address = 'm%d@example.org'", m);
		ev = tl_sql_int(&r->d, sql);
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM relayed_rcpt WHERE refused = 1 "
			 "AND address = 'm%d@example.org'", m);
		ref = tl_sql_int(&r->d, sql);
		if (r->final == 250 && !s->dead[m] && delivered[m] == 0)
			violation(r, "MISSING: m%d (alive) never got the post, answered 250", m);
		if (delivered[m] > 1 + allowed[m])
			violation(r, "DUPLICATE: m%d got %d copies (ambiguous transactions: %d)", m,
				  delivered[m], allowed[m]);
		if (!s->dead[m] && (ev > 0 || ref > 0))
			violation(r, "REFUSED-ALIVE: m%d (alive) recorded refused (evidence rows %ld, "
				  "relayed_rcpt refused %ld)", m, ev, ref);
		else if (ev > clean_ref[m] || (ref > 0 && clean_ref[m] == 0))
			violation(r, "REFUSED-UNCLEAN: m%d (dead): %ld evidence rows, %ld relayed_rcpt "
				  "refused, but %d refusal(s) in transactions that ended cleanly", m, ev,
				  ref, clean_ref[m]);
		if (r->final / 100 != 5 && s->dead[m] && ev == 0)
			violation(r, "NOT-RECORDED: m%d (dead) has no evidence row (final answer %d)",
				  m, r->final);
	}
	if ((fp = fopen(r->d.log, "r")) != NULL) {
		char	line[2048];

		while (fgets(line, sizeof(line), fp) != NULL)
			if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "runtime error:")
			    || strstr(line, "ERROR: LeakSanitizer")) {
				violation(r, "SANITIZER: %.300s", chomp(line));
				break;
			}
		(void) fclose(fp);
	}
	if (r->final == 250 && tl_sql_int(&r->d, "SELECT count(*) FROM relayed WHERE owner "
					  "IS NOT NULL OR complete = 0") != 0)
		violation(r, "CLAIM: the copy is not complete, or claimed, after the daemon stopped");
}

static void
print_run(struct run *r)
{
	FILE   *fp;
	char	line[2048];

	fprintf(stderr, "chaos: %s seed=0x%016" PRIx64 " (replay: MLISTD_CHAOS_REPLAY=0x%016"
		PRIx64 " make check TESTS=tests/check_chaos)\n", r->nviol ? "FAIL" : "held",
		r->s.seed, r->s.seed);
	describe(&r->s, stderr);
	fputs(r->viol ? r->viol : "", stderr);
	fprintf(stderr, "  trace:\n%s", r->trace ? r->trace : "");
	fprintf(stderr, "  relay transactions:\n");
	for (int i = 0; i < sh->ntxn && i < MAXT; i++) {
		const struct tlog *t = &sh->t[i];

		fprintf(stderr, "    txn %d conn %d port %d %-28s rcpt=%02x accepted=%02x "
			"refused=%02x %s%s%s%s%s\n", i, t->conn, t->port, rf_info[t->kind].name,
			t->rcpt, t->accepted, t->refused,
			t->committed ? "committed" : t->cut ? "cut" : t->clean ? "refused-cleanly"
			: "open", t->committed && !t->replied ? " (no 250 sent)" : "",
			t->confirmed ? " confirmed" : "", t->hit ? " worker-hit" : "",
			ambiguous(t) ? " AMBIGUOUS" : "");
	}
	fprintf(stderr, "  daemon log:\n");
	if ((fp = fopen(r->d.log, "r")) != NULL) {
		while (fgets(line, sizeof(line), fp) != NULL)
			fprintf(stderr, "    %s", line);
		(void) fclose(fp);
	}
}

/*
 * Tampering, for the checker's own test: each kind breaks the books of a
 * clean run the way a bug would, and the invariant named must catch it.
 */
enum tamper {
	T_NONE, T_DUP, T_MISSING, T_5XX, T_CLAIM, T_REFUSED, T_UNCLEAN, T_NOTREC,
	T_CONVERGE, T_LATE, T_SANITIZER, T_KEPT, T_TAKEOVER, T_LEASE, T_WROTE, T_NOT_LOST,
	T_STARTED, T_N
};

static const char *const tamper_expect[T_N] = {
	NULL, "DUPLICATE", "MISSING", "5XX", "CLAIM", "REFUSED-ALIVE", "REFUSED-UNCLEAN",
	"NOT-RECORDED", "CONVERGE", "NO-ANSWER", "SANITIZER", "TAKEOVER", "TAKEOVER", "LEASE",
	"FENCE", "FENCE", "FENCE",
};

static void
tamper(struct run *r, int kind)
{
	int	alive = -1, dead = -1;
	char	sql[512];

	for (int m = 0; m < r->s.nmem; m++)
		if (r->s.dead[m] && dead < 0)
			dead = m;
		else if (!r->s.dead[m] && alive < 0)
			alive = m;
	ck_assert(alive >= 0 && dead >= 0 && sh->ntxn < MAXT);
	snprintf(sql, sizeof(sql), "INSERT INTO bounces (envelope_to, address, status, action, "
		 "group_name, evidence) VALUES ('bounce@example.com', 'm%d@example.org', '5.1.1', "
		 "'failed', 'chaos', 1);", kind == T_REFUSED ? alive : dead);
	switch (kind) {
	case T_DUP:
		sh->t[sh->ntxn].used = sh->t[sh->ntxn].committed = sh->t[sh->ntxn].replied = 1;
		sh->t[sh->ntxn].confirmed = 1;
		sh->t[sh->ntxn++].delivered = 1u << alive;
		break;
	case T_MISSING:
		for (int i = 0; i < sh->ntxn; i++)
			sh->t[i].delivered &= ~(1u << alive);
		break;
	case T_5XX:
		r->final = 554;
		break;
	case T_CLAIM:
		r->claims_at_final = 1;
		break;
	case T_REFUSED:
	case T_UNCLEAN:
		ck_assert_int_eq(tl_sql(&r->d, sql), 0);
		break;
	case T_NOTREC:
		ck_assert_int_eq(tl_sql(&r->d, "DELETE FROM bounces;"), 0);
		break;
	case T_CONVERGE:
		r->final = 451;
		break;
	case T_LATE:
		r->late = 1;
		break;
	case T_KEPT:
		r->st.expect_kept = 1;
		r->st.gen_stop = 1;
		r->st.gen_cont = 2;
		break;
	case T_TAKEOVER:
		r->st.expect_takeover = 1;
		r->st.gen_stop = r->st.gen_cont = 1;
		break;
	case T_LEASE:
		r->st.owner = 1;
		r->st.lease_left = LEASE + 1;
		break;
	case T_WROTE:
		r->st.snapped = 1;
		snapshot(r, r->st.snap[0], sizeof(r->st.snap[0]));
		snprintf(r->st.snap[1], sizeof(r->st.snap[1]), "%.1000s, and one more", r->st.snap[0]);
		break;
	case T_NOT_LOST:
		r->st.expect_lost = 1;
		r->st.w = r->d.pid;
		break;
	case T_STARTED:
		r->st.check_start = 1;
		sh->t[sh->ntxn].used = sh->t[sh->ntxn].after_cont = 1;
		sh->ntxn++;
		break;
	case T_SANITIZER: {
		FILE   *fp = fopen(r->d.log, "a");

		ck_assert_ptr_nonnull(fp);
		fprintf(fp, "src/x.c:1:1: runtime error: injected by the checker's test\n");
		ck_assert_int_eq(fclose(fp), 0);
		break;
	}
	default:
		break;
	}
}

static const char *const members_sql_head =
	"INSERT INTO members (address) VALUES ('poster@example.org');"
	"INSERT INTO groups (name, description, is_group, posting) VALUES"
	" ('chaos', 'Chaos', 1, 'members');";

/* run_end - stop the daemon and the relay, remove what the run made */
static void
run_end(struct run *r)
{
	(void) tl_daemon_stop(&r->d, 5);
	stop_relay(r);
	if (r->use_clock) {
		(void) unlink(r->tsfile);
		(void) rmdir(r->tsdir);
	}
	(void) munmap(sh, sizeof(*sh));
	sh = NULL;
	free(r->trace);
	free(r->viol);
}

/*
 * run_one - one seed.  Returns 0 (held), 1 (broken: printed), 2 (not
 * run: it needs a clock fault this build cannot do; said so).  With a
 * tamper kind (the checker's test) nothing is printed and the invariants
 * broken go to viol.
 */
static int
run_one(uint64_t seed, int tk, char *viol, size_t vlen)
{
	struct run r;
	char	conf[512], sql[2048];
	size_t	used;
	int	rc;

	memset(&r, 0, sizeof(r));
	draw(seed, &r.s);
	r.stopped = 0;
	probe_clock();
	if (needs_clock(&r.s) && !clock_ok) {
		printf("chaos: seed=0x%016" PRIx64 " NOT RUN: it needs a clock step (%s), "
		       "which this build cannot do: %s\n", seed, df_name[r.s.df], clock_why);
		fflush(stdout);
		return (2);
	}
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(sh, MAP_FAILED);
	memset(sh, 0, sizeof(*sh));
	sh->s = r.s;
	run_t0 = now_s();
	ck_assert_int_eq(start_relay(&r), 0);
	r.use_clock = needs_clock(&r.s);
	if (r.use_clock) {
		snprintf(r.tsdir, sizeof(r.tsdir), "/tmp/mlistd-chaos.XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(r.tsdir));
		ck_assert_int_eq(chmod(r.tsdir, 0755), 0);
		snprintf(r.tsfile, sizeof(r.tsfile), "%s/faketime", r.tsdir);
		ck_assert_int_eq(write_offset(r.tsfile, 0), 0);
		faketime_env(r.tsfile, 1);
	}
	snprintf(conf, sizeof(conf), "relay = smtp://127.0.0.1:%d\nrelay-recipient-limit = %d\n"
		 "relay-pipelining = %s\ndata-done-timeout = %d\nrelay-timeout = %d\n"
		 "database-timeout = %d\nshutdown-timeout = %d\n", r.relay_port, r.s.limit,
		 r.s.pipelining ? "yes" : "no", DDT, RELAY_TO, DB_TO, DDT + 2);
	rc = tl_daemon_start(&r.d, conf, 0);
	if (r.use_clock) {
		faketime_env(NULL, 0);
		if (rc != 0) {
			/* The probe passed, the daemon did not: say so, run no clock faults. */
			clock_ok = 0;
			snprintf(clock_why, sizeof(clock_why), "the daemon does not start under "
				 "libfaketime");
			printf("chaos: seed=0x%016" PRIx64 " NOT RUN: %s\n", seed, clock_why);
			run_end(&r);
			return (2);
		}
	}
	ck_assert_int_eq(rc, 0);
	used = (size_t) snprintf(sql, sizeof(sql), "%s", members_sql_head);
	for (int m = 0; m < r.s.nmem && used < sizeof(sql) - 128; m++)
		used += (size_t) snprintf(sql + used, sizeof(sql) - used, "INSERT INTO group_members"
					  " (group_name, address) VALUES ('chaos', 'm%d@example.org');", m);
	ck_assert_int_eq(tl_sql(&r.d, sql), 0);
	drive(&r);
	/* Every worker finishes what it does; then the books are read. */
	(void) kill(r.d.pid, SIGTERM);
	if (tl_daemon_wait(&r.d, DDT + 10) < 0)
		trace(&r, "daemon did not stop in time");
	if (tk != T_NONE || viol != NULL)
		tamper(&r, tk);
	check(&r);
	if (viol != NULL)
		snprintf(viol, vlen, "%s", r.viol ? r.viol : "");
	else if (r.nviol || getenv("MLISTD_CHAOS_VERBOSE") != NULL)
		print_run(&r);
	rc = r.nviol ? 1 : 0;
	run_end(&r);
	return (rc);
}

/* ---- seeds ---- */

/*
 * Regression seeds: each broke the promise once, or exercises a fault the
 * random runs draw too seldom to be sure of; they always run.
 */
static const struct {
	uint64_t seed;
	const char *bug;
	int	v2;	/* found with the second stream on; 0: drawn without it */
} regressions[] = {
	/* (a) "554 5.7.1 Relay access denied" to the first RCPTs, then a drop
	 * while replies are due: the denials are recorded as the members'
	 * refusals (evidence rows, relayed_rcpt.refused) and the retry
	 * answers 250 while m0, m1, m2 never got the post. */
	{0x7c2bc3e6869b57aeULL, "denied, then drop: members recorded refused, 250 without them", 0},
	/* (a) the same with 421 (Postfix at smtpd_hard_error_limit). */
	{0x968d2baa919ce3b3ULL, "denied, then 421: members recorded refused, 250 without them", 0},
	/* (a') denial of every RCPT in an orderly transaction, but after an
	 * earlier transaction of the same attempt served someone: refuses_us()
	 * is asked only while nobody was accepted, so m4 and m5 are recorded
	 * refused for good and the retry answers 250 without them. */
	{0x1eaa361204319760ULL, "denied in a later transaction: members recorded refused", 0},
	/* (b) wall clock stepped 10 minutes forward while a worker sends: its
	 * live claim looks stale, a concurrent retry takes it over, both send
	 * (m0, m2 twice). */
	{0x5ec644d7ee07e362ULL, "clock step makes a live claim stale: duplicates", 0},
	/* (c) worker SIGSTOPped at the dot, the wall clock stepped: with
	 * claims judged by the wall clock the retry took the claim over and
	 * completed, and after SIGCONT the first worker committed its
	 * checkpoint (store_touch found the claim gone and nobody looked)
	 * and sent the next transactions again (m2..m5 twice).  The lease is
	 * on the boot clock now: the retry must get 451 and leave the claim
	 * alone (TAKEOVER). */
	{0xf1026344c3387367ULL, "stopped worker goes on after losing its claim: duplicates", 0},
	/* (d) every member dead (550 5.1.1 alike): refuses_us() takes the
	 * first batch for "the relay refuses mlistd", 451 forever, no
	 * evidence rows, never converges. */
	{0xc33e61bc6ef9e4c4ULL, "first batch all dead: deferred forever, no bounce rows", 0},
	/* (f) a dead member's 550 in a transaction the relay then cut (drop
	 * after the dot) is recorded as evidence, though the transaction did
	 * not end cleanly. */
	{0x55e9338ce1902cc6ULL, "refusal recorded from a transaction cut after the dot", 0},
	/* (g) coverage, not a bug: the worker stopped waiting for the reply
	 * to its dot (transaction 1, committed) until its lease is over by
	 * the boot clock; the retry takes the copy over (generation 1 -> 2)
	 * and sends m3 again (allowed: in flight), after SIGCONT the worker
	 * reads the 250, logs "lost its claim" and writes nothing.  Costs a
	 * lease, 10 s. */
	{0x874615e9e83e78dbULL, "stopped past its lease: taken over, the worker fenced off", 0},
	{0, NULL, 0},
};

#define NREG (sizeof(regressions) / sizeof(regressions[0]) - 1)

/* legacy_seed - a regression seed committed before the second stream:
 * it is drawn without it, whether in the table's run or replayed */
static int
legacy_seed(uint64_t seed)
{
	for (size_t i = 0; regressions[i].bug != NULL; i++)
		if (regressions[i].seed == seed)
			return (!regressions[i].v2);
	return (0);
}

static uint64_t
env_u64(const char *name, uint64_t dflt)
{
	const char *v = getenv(name);
	char   *end;
	unsigned long long n;

	if (v == NULL || *v == 0)
		return (dflt);
	errno = 0;
	n = strtoull(v, &end, 0);
	if (errno != 0 || *end != 0) {
		fprintf(stderr, "chaos: %s=%s is not a number\n", name, v);
		exit(2);
	}
	return ((uint64_t) n);
}

/* run_seeds - run each, print a summary; the number broken */
static int
run_seeds(const char *what, const uint64_t *seeds, size_t n)
{
	int	broken = 0, notrun = 0;
	double	t0 = now_s(), budget = (double) env_u64("MLISTD_CHAOS_SECONDS", 0);
	size_t	ran = 0;

	for (size_t i = 0; i < n; i++, ran++) {
		int	rc;

		if (budget > 0 && now_s() - t0 > budget) {
			printf("chaos: %s: MLISTD_CHAOS_SECONDS=%.0f used up: %zu of %zu runs not "
			       "started\n", what, budget, n - i, n);
			break;
		}
		rc = run_one(seeds[i], T_NONE, NULL, 0);

		if (rc == 1) {
			broken++;
			printf("chaos: %s: seed 0x%016" PRIx64 " broke the promise\n", what, seeds[i]);
		} else if (rc == 2)
			notrun++;
		fflush(stdout);
	}
	printf("chaos: %s: %zu runs in %.1f s: %d broke the promise, %d not run "
	       "(clock faults unavailable)\n", what, ran - (size_t) notrun, now_s() - t0,
	       broken, notrun);
	fflush(stdout);		/* a failed assertion ends the test with _exit() */
	return (broken);
}

START_TEST(test_regressions)
{
	uint64_t seeds[NREG + 1];
	size_t	n = 0;

	for (size_t i = 0; regressions[i].bug != NULL; i++)
		seeds[n++] = regressions[i].seed;
	ck_assert_int_eq(run_seeds("regression seeds", seeds, n), 0);
}
END_TEST

/*
 * The checker itself: a clean run (no fault, a dead and an alive member)
 * has no broken invariant, and each kind of tampering with its books is
 * caught by the invariant meant for it.
 */
START_TEST(test_checker)
{
	uint64_t st = 0xc0ffee, seed = 0;
	struct sched s;
	char	viol[8192];
	int	rc;

	for (int i = 0; i < 10000 && seed == 0; i++) {
		int	dead = 0;

		draw(mix64(&st), &s);
		for (int m = 0; m < s.nmem; m++)
			dead += s.dead[m];
		if (s.nrf == 0 && s.ngf == 0 && s.cf[0] == RF_OK && s.cf[1] == RF_OK
		    && s.df == DF_NONE && s.client_ms == 0 && dead > 0 && dead < s.nmem)
			seed = s.seed;
	}
	ck_assert(seed != 0);
	rc = run_one(seed, _i, viol, sizeof(viol));
	ck_assert_int_eq(rc, _i == T_NONE ? 0 : 1);
	if (_i == T_NONE)
		ck_assert_str_eq(viol, "");
	else
		ck_assert_msg(strstr(viol, tamper_expect[_i]) != NULL, "seed 0x%" PRIx64 ", "
			      "tampering %d: %s not caught: %s", seed, _i, tamper_expect[_i], viol);
}
END_TEST

#define BASE_SEED	0x6d6c69737464ULL	/* "mlistd" */
#define DEFAULT_RUNS	150

START_TEST(test_random)
{
	uint64_t base = env_u64("MLISTD_CHAOS_SEED", BASE_SEED), st = base;
	size_t	runs = (size_t) env_u64("MLISTD_CHAOS_RUNS", DEFAULT_RUNS);
	uint64_t *seeds = calloc(runs + 1, sizeof(*seeds));
	char	what[64];

	ck_assert_ptr_nonnull(seeds);
	for (size_t i = 0; i < runs; i++)
		seeds[i] = mix64(&st);
	snprintf(what, sizeof(what), "base seed 0x%" PRIx64, base);
	ck_assert_int_eq(run_seeds(what, seeds, runs), 0);
	free(seeds);
}
END_TEST

START_TEST(test_replay)
{
	const char *list = getenv("MLISTD_CHAOS_REPLAY");
	uint64_t seeds[64];
	size_t	n = 0;
	char   *copy, *tok, *save = NULL;

	ck_assert_ptr_nonnull(list);
	copy = strdup(list);
	ck_assert_ptr_nonnull(copy);
	for (tok = strtok_r(copy, ", ", &save); tok && n < 64; tok = strtok_r(NULL, ", ", &save))
		seeds[n++] = strtoull(tok, NULL, 0);
	free(copy);
	ck_assert_int_gt((int) n, 0);
	ck_assert_int_eq(run_seeds("replay", seeds, n), 0);
}
END_TEST

int
main(void)
{
	Suite  *s = suite_create("chaos");
	TCase  *tc = tcase_create("chaos");

	signal(SIGPIPE, SIG_IGN);
	tcase_set_timeout(tc, 1800);
	if (getenv("MLISTD_CHAOS_REPLAY") != NULL)
		tcase_add_test(tc, test_replay);
	else {
		tcase_add_loop_test(tc, test_checker, T_NONE, T_N);
		if (NREG > 0)
			tcase_add_test(tc, test_regressions);
		tcase_add_test(tc, test_random);
	}
	suite_add_tcase(s, tc);
	return (ck_run(s));
}
