/* token.h - signed tokens: confirmations of subscription requests, and
 * moderators' decisions on held posts */
#ifndef MLISTD_TOKEN_H
#define MLISTD_TOKEN_H

#include <stddef.h>

#include "probe.h"

/* The longer kind: "h", the held post's id in hex, ".", the expiry in
 * hex, "-", the MAC in hex: at most 55 bytes ("s" or "u", the expiry, "-",
 * the MAC: at most 38) */
#define TOKEN_MAX	(1 + 16 + 1 + 16 + 1 + 2 * PROBE_MAC_BYTES)

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

/*
 * token_held_make - the token of one moderator's decision on held post id
 * (not negative) of group, valid until expires (Unix time):
 * "h" ID "." EXPIRES "-" MAC, numbers in lower-case hex, MAC an
 * HMAC-SHA256 (purpose "held") of group, the id in decimal, the
 * moderator's address and the expiry.  The address is not in the token,
 * but it works only for that moderator, so a moderator removed from the
 * list cannot use it, whatever address the mail names; it does not name
 * the decision: one token serves the approve, reject and discard
 * addresses of one notice.  0, or -1 when it does not fit in len or id
 * is negative.
 */
int	token_held_make(const unsigned char key[PROBE_KEY_LEN], const char *group,
			long long id, const char *moderator, unsigned long expires,
			char *out, size_t len);

/*
 * token_held_check - is token one we made for moderator about a held post
 * of group, alive at now?  On TOKEN_VALID and TOKEN_EXPIRED, *id and
 * *expires (either may be NULL) say which post and until when.  Case does
 * not matter.  Whether moderator still moderates the list, and whether
 * the post is still undecided, are the caller's to ask.
 */
enum token_verdict token_held_check(const unsigned char key[PROBE_KEY_LEN], const char *token,
				    const char *group, const char *moderator, unsigned long now,
				    long long *id, unsigned long *expires);

#endif
