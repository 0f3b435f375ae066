/* token.h - signed confirmation tokens for subscription requests */
#ifndef MLISTD_TOKEN_H
#define MLISTD_TOKEN_H

#include <stddef.h>

#include "probe.h"

/* "s" or "u", the expiry in hex, "-", the MAC in hex: at most 30 bytes */
#define TOKEN_MAX	(1 + 16 + 1 + 2 * PROBE_MAC_BYTES)

enum token_action {
	TOKEN_SUBSCRIBE = 's',
	TOKEN_UNSUBSCRIBE = 'u'
};

/*
 * token_make - the token that confirms action for address and group
 * until expires (Unix time): ACTION EXPIRES-MAC, MAC an HMAC-SHA256 (the
 * probes' key, purpose "confirm") of action, group, address and expiry.
 * The address is not in the token: the confirmation must come from it,
 * so a token is short enough for G+confirm+TOKEN@domain.  0, or -1 when
 * it does not fit in len or the action is unknown.
 */
int	token_make(const unsigned char key[PROBE_KEY_LEN], enum token_action action,
		   const char *group, const char *address, unsigned long expires,
		   char *out, size_t len);

enum token_verdict {
	TOKEN_VALID = 0,
	TOKEN_FORGED = -1,	/* no such token for this group and address:
				 * tampered, another list, another sender */
	TOKEN_EXPIRED = -2,	/* made by us, but too old */
	TOKEN_MALFORMED = -3	/* not a token at all */
};

/*
 * token_check - is token one we made for group and address, alive at
 * now?  On TOKEN_VALID and TOKEN_EXPIRED, *action and *expires say what
 * it was for.  Replays are the caller's to refuse (a used token stays
 * valid until it expires).
 */
enum token_verdict token_check(const unsigned char key[PROBE_KEY_LEN], const char *token,
			       const char *group, const char *address, unsigned long now,
			       enum token_action *action, unsigned long *expires);

#endif
