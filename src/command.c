/*
 * command.c - a list's command addresses: LIST+subscribe,
 * LIST+unsubscribe, LIST+help and LIST+confirm+TOKEN, and a moderator's
 * LIST+approve+TOKEN, LIST+reject+TOKEN and LIST+discard+TOKEN (with "+",
 * or the command-delimiter), and the rules that keep them from answering
 * machines: no answer to bounces, auto-replies, list traffic or our own
 * mail (RFC 3834), so that no loop and no backscatter can start here.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "command.h"

static const char *const names[] = {"", "subscribe", "unsubscribe", "help", "confirm",
	"approve", "reject", "discard"};

int
command_moderates(const struct command *c)
{
	return (c->kind == CMD_APPROVE || c->kind == CMD_REJECT || c->kind == CMD_DISCARD);
}

const char *
command_name(enum command_kind k)
{
	return (k > CMD_NONE && k <= CMD_DISCARD ? names[k] : "none");
}

/* ends_with - local[0 .. n) ends with delim word; the prefix length, or -1 */
static long
ends_with(const char *local, size_t n, char delim, const char *word)
{
	size_t	w = strlen(word);

	if (n < w + 2 || local[n - w - 1] != delim || strncasecmp(local + n - w, word, w) != 0)
		return (-1);
	return ((long) (n - w - 1));
}

/* hex_before - how many hex digits (at most max) end local[0 .. i) */
static size_t
hex_before(const char *local, size_t i, size_t max)
{
	size_t	hex = 0;

	while (hex < max && hex < i && isxdigit((unsigned char) local[i - hex - 1]))
		hex++;
	return (hex);
}

/* mac_at - where the "-MAC" that ends local[0 .. n) begins, or -1 */
static long
mac_at(const char *local, size_t n)
{
	size_t	hex = hex_before(local, n, 2 * PROBE_MAC_BYTES + 1);

	if (hex != 2 * PROBE_MAC_BYTES || n == hex || local[n - hex - 1] != '-')
		return (-1);
	return ((long) (n - hex - 1));
}

/* number_at - where the letter in "letters" and 1 to 16 hex digits that
 * end local[0 .. n) begin, or -1 */
static long
number_at(const char *local, size_t n, const char *letters)
{
	size_t	hex = hex_before(local, n, 17);

	if (hex == 0 || hex > 16 || n == hex || strchr(letters, local[n - hex - 1]) == NULL)
		return (-1);
	return ((long) (n - hex - 1));
}

/* confirm_at - where a confirmation token (s|u HEX-HEX{20}) ending
 * local[0 .. n) begins, or -1 */
static long
confirm_at(const char *local, size_t n)
{
	long	m = mac_at(local, n);

	return (m < 0 ? -1 : number_at(local, (size_t) m, "suSU"));
}

/* plain_number_at - number_at, and the number has no leading zero */
static long
plain_number_at(const char *local, size_t n, const char *letters)
{
	long	p = number_at(local, n, letters);

	if (p < 0 || ((size_t) p + 2 < n && local[p + 1] == '0'))
		return (-1);
	return (p);
}

/* held_at - where a held post's token (h HEX.HEX-HEX{20}, the numbers
 * without leading zeros, as token_held_check reads it) ending
 * local[0 .. n) begins, or -1 */
static long
held_at(const char *local, size_t n)
{
	long	m = mac_at(local, n), e;

	if (m < 0 || (e = plain_number_at(local, (size_t) m, ".")) < 0)
		return (-1);
	return (plain_number_at(local, (size_t) e, "hH"));
}

/* The command addresses: the word, and the token's shape if it has one. */
static const struct {
	const char *word;
	enum command_kind kind;
	long	(*token_at)(const char *, size_t);
} forms[] = {
	{"confirm", CMD_CONFIRM, confirm_at},
	{"approve", CMD_APPROVE, held_at},
	{"reject", CMD_REJECT, held_at},
	{"discard", CMD_DISCARD, held_at},
	{"unsubscribe", CMD_UNSUBSCRIBE, NULL},
	{"subscribe", CMD_SUBSCRIBE, NULL},
	{"help", CMD_HELP, NULL},
};

int
command_parse(const char *local, char delim, struct command *c)
{
	size_t	n = strlen(local);
	long	t = -1, g = -1;
	size_t	i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		g = -1;
		if (forms[i].token_at == NULL)
			g = ends_with(local, n, delim, forms[i].word);
		else if ((t = forms[i].token_at(local, n)) > 0 && local[t - 1] == delim)
			g = ends_with(local, (size_t) t - 1, delim, forms[i].word);
		if (g > 0)
			break;
	}
	if (i == sizeof(forms) / sizeof(forms[0]) || (size_t) g > STORE_NAME_MAX)
		return (-1);
	c->kind = forms[i].kind;
	if (forms[i].token_at)
		snprintf(c->token, sizeof(c->token), "%s", local + t);
	memcpy(c->group, local, (size_t) g);
	c->group[g] = 0;
	return (0);
}

int
command_address(char *out, size_t len, const char *group, char delim, const char *what,
		const char *domain)
{
	size_t	n = 0;

	for (; group[n] && n + 1 < len; n++)
		out[n] = (char) tolower((unsigned char) group[n]);
	if (group[n])
		return (-1);
	return (snprintf(out + n, len - n, "%c%s@%s", delim, what, domain) >= (int) (len - n)
		? -1 : 0);
}

/* first_word - s up to white space, ';' or '(' */
static size_t
first_word(const char *s)
{
	return (strcspn(s, " \t;("));
}

const char *
command_automatic(const struct rewrite_msg *m, const char *sender, const char *domain)
{
	char	v[256];
	const char *at;
	long	n;

	if (sender[0] == 0)
		return ("the null sender (a bounce or an auto-reply)");
	if ((at = strrchr(sender, '@')) != NULL && strcasecmp(at + 1, domain) == 0)
		return ("a sender in the list domain");
	n = rewrite_field(m, "Auto-Submitted", v, sizeof(v));
	if (n == -2 || (n >= 0 && !(first_word(v) == 2 && strncasecmp(v, "no", 2) == 0)))
		return ("Auto-Submitted other than \"no\"");
	n = rewrite_field(m, "Precedence", v, sizeof(v));
	if (n == -2 || (n >= 0 && ((first_word(v) == 4 && (strncasecmp(v, "bulk", 4) == 0
							    || strncasecmp(v, "junk", 4) == 0
							    || strncasecmp(v, "list", 4) == 0)))))
		return ("Precedence bulk, junk or list");
	if (rewrite_field(m, "List-Id", v, sizeof(v)) != -1)
		return ("a List-Id (mail from a list)");
	if (rewrite_field(m, "X-Autoreply", v, sizeof(v)) != -1
	    || rewrite_field(m, "X-Autorespond", v, sizeof(v)) != -1)
		return ("X-Autoreply or X-Autorespond");
	return (NULL);
}

int
command_normalize(const char *address, char *out, size_t len)
{
	const char *at = strrchr(address, '@');
	size_t	local = at ? (size_t) (at - address) : strlen(address), cut = local, n = 0;

	for (size_t i = 1; i < local; i++)
		if (address[i] == '+') {
			cut = i;
			break;
		}
	for (size_t i = 0; address[i]; i++) {
		if (i < local && (i >= cut || address[i] == '.'))
			continue;
		if (n + 1 >= len)
			return (-1);
		out[n++] = (char) tolower((unsigned char) address[i]);
	}
	if (len == 0)
		return (-1);
	out[n] = 0;
	return (0);
}

int
command_address_ok(const char *a)
{
	size_t	n = 0;
	const char *at = strrchr(a, '@');

	/*
	 * Quoting, escapes, the percent hack and source-route-like bangs,
	 * address literals, a trailing dot: each names the same mailbox in
	 * many spellings ("victim"@, vi\ctim@, victim@example.com.), which
	 * would each count alone against the notice limits.  No person
	 * needs them to subscribe.
	 */
	for (; a[n]; n++)
		if ((unsigned char) a[n] <= 0x20 || a[n] == 0x7f || a[n] == '<' || a[n] == '>'
		    || a[n] == '"' || a[n] == '\\' || a[n] == '%' || a[n] == '!' || a[n] == '['
		    || a[n] == ']')
			return (0);
	return (n <= 254 && at != NULL && at != a && at[1] != 0 && at[1] != '.'
		&& a[n - 1] != '.' && strchr(a, '@') == at);
}
