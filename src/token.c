/*
 * token.c - signed tokens: confirmations of subscribe and unsubscribe
 * requests, and moderators' decisions on held posts.
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
 *
 * A held post gets one token for the approve, reject and discard
 * addresses of its moderators' notices: G+approve+hID.EXPIRES-MAC@domain.
 * Its MAC covers the list, the post's id and the expiry (purpose "held"),
 * not the moderator: the one who acts must be a moderator when the
 * decision arrives, which the caller asks the database.
 */
#include "config.h"

#include <ctype.h>
#include <limits.h>
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

/* mac_copy - the MAC at p (exactly 2 * PROBE_MAC_BYTES hex digits, then
 * the end) lower-cased into got; 0, or -1: malformed */
static int
mac_copy(const char *p, char got[2 * PROBE_MAC_BYTES + 1])
{
	if (strlen(p) != 2 * PROBE_MAC_BYTES)
		return (-1);
	for (int i = 0; i < 2 * PROBE_MAC_BYTES; i++) {
		if (!isxdigit((unsigned char) p[i]))
			return (-1);
		got[i] = (char) tolower((unsigned char) p[i]);
	}
	got[2 * PROBE_MAC_BYTES] = 0;
	return (0);
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
	if (mac_copy(p, got) < 0)
		return (TOKEN_MALFORMED);
	token_mac(key, act, group, address, exp, want);
	if (!memeql_sec(got, want, 2 * PROBE_MAC_BYTES))
		return (TOKEN_FORGED);
	if (action)
		*action = act;
	if (expires)
		*expires = exp;
	return (now > exp ? TOKEN_EXPIRED : TOKEN_VALID);
}

/* held_mac - the MAC of a held post's token for one moderator */
static void
held_mac(const unsigned char key[PROBE_KEY_LEN], const char *group, long long id,
	 const char *moderator, unsigned long expires, char hex[2 * PROBE_MAC_BYTES + 1])
{
	char	dec[24];
	const char *field[3] = {group, dec, moderator};

	snprintf(dec, sizeof(dec), "%lld", id);
	probe_mac_hex(key, "held", field, 3, expires, hex);
}

int
token_held_make(const unsigned char key[PROBE_KEY_LEN], const char *group, long long id,
		const char *moderator, unsigned long expires, char *out, size_t len)
{
	char	hex[2 * PROBE_MAC_BYTES + 1];
	int	n;

	if (id < 0)
		return (-1);
	held_mac(key, group, id, moderator, expires, hex);
	n = snprintf(out, len, "h%llx.%lx-%s", (unsigned long long) id, expires, hex);
	return (n < 0 || (size_t) n >= len ? -1 : 0);
}

/* hex_number - 1 to 16 hex digits at s, then stop, at most max: where
 * the rest begins, or NULL.  No sign, blank or "0x" as strtoul takes,
 * and no leading zero (the case of the letters, which mail systems may
 * change, does not matter). */
static const char *
hex_number(const char *s, char stop, unsigned long long max, unsigned long long *v)
{
	unsigned long long n = 0;
	int	i;

	for (i = 0; i < 16 && isxdigit((unsigned char) s[i]); i++)
		n = n * 16 + (unsigned long long) (isdigit((unsigned char) s[i]) ? s[i] - '0'
						   : tolower((unsigned char) s[i]) - 'a' + 10);
	if (i == 0 || s[i] != stop || n > max || (i > 1 && s[0] == '0'))
		return (NULL);
	*v = n;
	return (s + i + 1);
}

enum token_verdict
token_held_check(const unsigned char key[PROBE_KEY_LEN], const char *token, const char *group,
		 const char *moderator, unsigned long now, long long *id, unsigned long *expires)
{
	char	want[2 * PROBE_MAC_BYTES + 1], got[2 * PROBE_MAC_BYTES + 1];
	unsigned long long i, exp;
	const char *p;

	if ((token[0] != 'h' && token[0] != 'H')
	    || (p = hex_number(token + 1, '.', LLONG_MAX, &i)) == NULL
	    || (p = hex_number(p, '-', ULONG_MAX, &exp)) == NULL || mac_copy(p, got) < 0)
		return (TOKEN_MALFORMED);
	held_mac(key, group, (long long) i, moderator, (unsigned long) exp, want);
	if (!memeql_sec(got, want, 2 * PROBE_MAC_BYTES))
		return (TOKEN_FORGED);
	if (id)
		*id = (long long) i;
	if (expires)
		*expires = (unsigned long) exp;
	return (now > exp ? TOKEN_EXPIRED : TOKEN_VALID);
}
