/* command.h - a list's command addresses, and mail that must not trigger them */
#ifndef MLISTD_COMMAND_H
#define MLISTD_COMMAND_H

#include <stddef.h>

#include "rewrite.h"
#include "store.h"
#include "token.h"

enum command_kind {
	CMD_NONE = 0,
	CMD_SUBSCRIBE,		/* LIST+subscribe */
	CMD_UNSUBSCRIBE,	/* LIST+unsubscribe */
	CMD_HELP,		/* LIST+help */
	CMD_CONFIRM,		/* LIST+confirm+TOKEN */
	CMD_APPROVE,		/* LIST+approve+TOKEN (a held post's) */
	CMD_REJECT,		/* LIST+reject+TOKEN */
	CMD_DISCARD		/* LIST+discard+TOKEN */
};

struct command {
	enum command_kind kind;
	char	group[STORE_NAME_MAX + 1];	/* as written: look it up */
	char	token[TOKEN_MAX + 1];		/* CMD_CONFIRM, CMD_APPROVE,
						 * CMD_REJECT, CMD_DISCARD */
};

/*
 * command_parse - is local a command address with delimiter delim
 * (LIST+subscribe, LIST+unsubscribe, LIST+help, LIST+confirm+TOKEN,
 * LIST+approve+TOKEN, LIST+reject+TOKEN, LIST+discard+TOKEN,
 * case-insensitive)?  It is read from its end, so a list name may
 * contain the delimiter when it is not "+" (board-members-subscribe).
 * The token must have the shape of its kind (token_check's for confirm,
 * token_held_check's for the others), or the address is no command.
 * 0 with c filled in, or -1.  Whether LIST exists, and whether the
 * token's MAC holds, are the caller's to ask.
 */
int	command_parse(const char *local, char delim, struct command *c);

/* command_moderates - a moderator's decision (approve, reject, discard) */
int	command_moderates(const struct command *);

/* command_name - "subscribe", "unsubscribe", "help", "confirm", "approve",
 * "reject", "discard"; "none" for anything else */
const char *command_name(enum command_kind);

/* command_address - LIST DELIM WHAT @ DOMAIN, the list name lower-cased
 * (what may be "confirm+TOKEN" with the delimiter); 0 or -1: too long */
int	command_address(char *out, size_t len, const char *group, char delim,
			const char *what, const char *domain);

/*
 * command_automatic - why this message must not trigger a command, or
 * NULL: the null sender (bounces), a sender in our own domain (our own
 * notices, loops), RFC 3834 Auto-Submitted other than "no", Precedence
 * bulk, junk or list, a List-Id (list traffic), X-Autoreply or
 * X-Autorespond.  RFC 3834 asks auto-responders never to answer those.
 */
const char *command_automatic(const struct rewrite_msg *, const char *sender,
			      const char *domain);

/*
 * command_normalize - the address the notice limits count: lower case,
 * the local part without a subaddress (from the first "+", unless that
 * is its first character) and without dots, so that Victim@,
 * victim+1@, .victim@ and v.ictim@ (one mailbox at providers
 * that ignore dots) are one address.  Merging two people's addresses
 * only makes the limit stricter.  The sender's subaddress delimiter is
 * its own site's, so the command-delimiter plays no part.  0, or -1
 * when out is too small.
 */
int	command_normalize(const char *address, char *out, size_t len);

/* command_address_ok - an address mlistd may store and write to, spelt
 * one way: no controls, spaces, angle brackets, quotes, backslashes, %,
 * !, address literals or trailing dots; exactly one @ (Postfix strips
 * local domains from victim@example.com@example.com), with text on both sides;
 * at most 254 bytes (the schema's CHECK) */
int	command_address_ok(const char *address);

#endif
