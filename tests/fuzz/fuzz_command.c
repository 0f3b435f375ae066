/*
 * fuzz_command.c - libFuzzer harness for the command addresses and the
 * moderators' tokens: the input's first line as a local part (with the
 * delimiter "+", "-" or "."), its tokens checked; a held post's token
 * made from the input's bytes, written into an approve address and read
 * back; the moderator's notice with the input as the held post and its
 * first line as Subject and From.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "command.h"
#include "notice.h"
#include "token.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const unsigned char key[PROBE_KEY_LEN] = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

/* parsed - what command_parse said of local must agree with the token
 * checks: a token of the right shape, never "malformed" */
static void
parsed(const char *local, char delim)
{
	struct command c;
	enum token_verdict t;

	if (command_parse(local, delim, &c) != 0)
		return;
	if (c.group[0] == 0 || strlen(c.group) > STORE_NAME_MAX
	    || strcmp(command_name(c.kind), "none") == 0)
		abort();
	if (c.kind == CMD_CONFIRM)
		t = token_check(key, c.token, c.group, "a@x.test", 0, NULL, NULL);
	else if (c.kind == CMD_APPROVE || c.kind == CMD_REJECT || c.kind == CMD_DISCARD)
		t = token_held_check(key, c.token, c.group, "m@x.test", 0, NULL, NULL);
	else if (c.token[0] != 0)
		abort();			/* a token where none belongs */
	else
		return;
	if (t == TOKEN_MALFORMED)
		abort();
}

/* round_trip - a token made for group, in its approve address, is read
 * back whole, and checks out */
static void
round_trip(const char *group, char delim, const uint8_t *data, size_t size)
{
	char	tok[TOKEN_MAX + 1], what[TOKEN_MAX + 16], addr[STORE_NAME_MAX + 300];
	unsigned long long id = 0;
	unsigned long exp = 0, e2;
	long long i2;
	struct command c;

	for (size_t i = 0; i < size && i < 16; i++) {
		id = id << 8 | data[i];
		exp = exp << 8 | data[size - 1 - i];
	}
	id &= 0x7fffffffffffffffULL;
	if (token_held_make(key, group, (long long) id, "m@x.test", exp, tok, sizeof(tok)) != 0
	    || token_held_check(key, tok, group, "m@x.test", exp, &i2, &e2) != TOKEN_VALID
	    || i2 != (long long) id || e2 != exp)
		abort();
	snprintf(what, sizeof(what), "approve%c%s", delim, tok);
	if (group[0] == 0 || strlen(group) > STORE_NAME_MAX
	    || command_address(addr, sizeof(addr), group, delim, what, "x.test") != 0)
		return;
	*strrchr(addr, '@') = 0;
	if (command_parse(addr, delim, &c) != 0 || c.kind != CMD_APPROVE
	    || strcasecmp(c.group, group) != 0 || strcmp(c.token, tok) != 0)
		abort();
}

/* attached - the notice's header has its fields and no more; the held
 * post follows under a boundary it does not contain */
static void
attached(const char *line, const uint8_t *data, size_t size)
{
	struct notice_vars v = {"group1", "d", "example.com", "m@x.test", "p", "s", "u", "h", "c",
		"o", "e", "a", "r", "x", line, line, line, line, line};
	const char *tmpl = "Subject: ${held_subject} ${decided_by}\n\n${held_from}\n${changes}\n";
	char   *n, *end, *b;
	size_t	len, fields = 0;
	int	eight;

	if ((n = notice_build_attached(tmpl, &v, "f@example.com", NULL, line, (const char *) data,
				       size, &len, &eight)) == NULL)
		return;
	if ((end = memmem(n, len, "\n\n", 2)) == NULL)
		abort();
	for (const char *p = n; p <= end; p = strchr(p, '\n') + 1)
		fields += *p != ' ' && *p != '\t';
	if (fields != 10 && fields != 12)	/* In-Reply-To and References */
		abort();
	if ((b = memmem(n, (size_t) (end - n), "boundary=\"", 10)) == NULL)
		abort();
	b += 10;
	if (memmem(data, size, b, (size_t) (strchr(b, '"') - b)) != NULL
	    || len < 3 || memcmp(n + len - 3, "--\n", 3) != 0)
		abort();
	free(n);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char delims[] = "+-.";
	char	local[300];
	size_t	k = 0;

	while (k < size && k < sizeof(local) - 1 && data[k] != '\n' && data[k] != 0) {
		local[k] = (char) data[k];
		k++;
	}
	local[k] = 0;
	for (int i = 0; i < 3; i++)
		parsed(local, delims[i]);
	(void) token_held_check(key, local, "group1", "m@x.test", 1, NULL, NULL);
	(void) token_check(key, local, "group1", "a@x.test", 1, NULL, NULL);
	round_trip(local, delims[size % 3], data, size);
	attached(local, data, size);
	return (0);
}
