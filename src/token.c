/*
 * token.c - confirmation tokens for subscribe and unsubscribe requests.
 *
 * A request from X for list G makes mlistd send X a confirmation request
 * whose reply address is G+confirm+TOKEN@domain.  TOKEN names the action
 * and its expiry and carries a MAC over action, group, X and expiry under
 * the secret that also signs the probes (mlistd.key), with its own
 * purpose word, so a probe tag is never a token.  Checking one needs no
 * database row: the confirmation's envelope sender is X, and the MAC is
 * computed again for it.  A token for another list or another address,
 * a tampered one and one made with another key are all "forged"; only
 * one of ours past its expiry is "expired".
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/memops.h>

#include "token.h"

/* token_mac - the MAC of a token's contents */
static void
token_mac(const unsigned char key[PROBE_KEY_LEN], enum token_action action,
	  const char *group, const char *address, unsigned long expires,
	  char hex[2 * PROBE_MAC_BYTES + 1])
{
	char	act[2] = {(char) action, 0};
	const char *field[3] = {act, group, address};

	probe_mac_hex(key, "confirm", field, 3, expires, hex);
}

int
token_make(const unsigned char key[PROBE_KEY_LEN], enum token_action action,
	   const char *group, const char *address, unsigned long expires, char *out,
	   size_t len)
{
	char	hex[2 * PROBE_MAC_BYTES + 1];
	int	n;

	if (action != TOKEN_SUBSCRIBE && action != TOKEN_UNSUBSCRIBE)
		return (-1);
	token_mac(key, action, group, address, expires, hex);
	n = snprintf(out, len, "%c%lx-%s", (char) action, expires, hex);
	return (n < 0 || (size_t) n >= len ? -1 : 0);
}

enum token_verdict
token_check(const unsigned char key[PROBE_KEY_LEN], const char *token, const char *group,
	    const char *address, unsigned long now, enum token_action *action,
	    unsigned long *expires)
{
	char	want[2 * PROBE_MAC_BYTES + 1], got[2 * PROBE_MAC_BYTES + 1], *end;
	enum token_action act;
	unsigned long exp;
	const char *p;

	act = (enum token_action) tolower((unsigned char) token[0]);
	if ((act != TOKEN_SUBSCRIBE && act != TOKEN_UNSUBSCRIBE)
	    || !isxdigit((unsigned char) token[1]))
		return (TOKEN_MALFORMED);
	exp = strtoul(token + 1, &end, 16);
	if (*end != '-' || end - (token + 1) > 16)
		return (TOKEN_MALFORMED);
	p = end + 1;
	if (strlen(p) != 2 * PROBE_MAC_BYTES)
		return (TOKEN_MALFORMED);
	for (int i = 0; i < 2 * PROBE_MAC_BYTES; i++) {
		if (!isxdigit((unsigned char) p[i]))
			return (TOKEN_MALFORMED);
		got[i] = (char) tolower((unsigned char) p[i]);
	}
	got[2 * PROBE_MAC_BYTES] = 0;
	token_mac(key, act, group, address, exp, want);
	if (!memeql_sec(got, want, 2 * PROBE_MAC_BYTES))
		return (TOKEN_FORGED);
	if (action)
		*action = act;
	if (expires)
		*expires = exp;
	return (now > exp ? TOKEN_EXPIRED : TOKEN_VALID);
}
