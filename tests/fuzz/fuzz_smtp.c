/*
 * fuzz_smtp.c - libFuzzer harness for the SMTP engine: arbitrary client
 * bytes, fed in chunks whose sizes come from the input itself, against
 * handlers that accept everything (so every state is reachable).
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_session.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
f_mail(void *c, struct smtp_envelope *e, struct smtp_reply *r)
{
	(void) c;
	strcpy(e->id, "FUZZ");
	smtp_reply_set(r, 250, "2.1.0 Ok");
}

static void
f_rcpt(void *c, const struct smtp_envelope *e, const char *rcpt, struct smtp_reply *r)
{
	(void) c;
	(void) e;
	/* Refuse some, so both paths run. */
	smtp_reply_set(r, rcpt[0] == 'x' ? 550 : 250, "%s <%s>",
		       rcpt[0] == 'x' ? "5.7.1 no" : "2.1.5 Ok", rcpt);
}

static void
f_data(void *c, const struct smtp_envelope *e, const char *m, size_t n,
       struct smtp_reply *r)
{
	volatile size_t sum = 0;

	(void) c;
	for (size_t i = 0; i < e->nrcpt; i++)
		sum += strlen(e->rcpt[i]);
	for (size_t i = 0; i < n; i++)	/* touch every byte (ASan) */
		sum += (unsigned char) m[i];
	smtp_reply_set(r, 250, "2.0.0 Ok");
}

static const struct smtp_handlers h = {f_mail, f_rcpt, f_data, NULL};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct smtp_limits lim = {512, 1000, 4096, 5, 50};
	struct smtp_session *s = smtp_session_create(&lim, &h, NULL, "fuzz.test");
	size_t	off = 0, step;
	const char *out;
	size_t	outlen;

	if (s == NULL)
		return (0);
	step = size ? (size_t) (data[0] % 17) + 1 : 1;
	while (off < size && !smtp_session_closed(s)) {
		size_t	n = size - off < step ? size - off : step;
		size_t	used = smtp_session_feed(s, (const char *) data + off, n);

		out = smtp_session_output(s, &outlen);
		if (outlen > 32768)
			abort();		/* the output bound is broken */
		smtp_session_drain(s, outlen);
		if (used == 0 && !smtp_session_closed(s)) {
			out = smtp_session_output(s, &outlen);
			if (outlen == 0)
				abort();	/* no progress and nothing to flush */
		}
		off += used;
	}
	(void) out;
	smtp_session_free(s);
	return (0);
}
