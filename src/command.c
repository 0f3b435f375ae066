/*
 * command.c - a list's command addresses: LIST+subscribe,
 * LIST+unsubscribe, LIST+help and LIST+confirm+TOKEN (with "+", or the
 * command-delimiter), and the rules that keep them from answering
 * machines: no answer to bounces, auto-replies, list traffic or our own
 * mail (RFC 3834), so that no loop and no backscatter can start here.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "command.h"

static const char *const names[] = {"", "subscribe", "unsubscribe", "help", "confirm"};

const char *
command_name(enum command_kind k)
{
	return (k > CMD_NONE && k <= CMD_CONFIRM ? names[k] : "none");
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

/* token_at - where a token (s|u HEX-HEX{20}) ends local[0 .. n) begins,
 * or -1 */
static long
token_at(const char *local, size_t n)
{
	size_t	i = n, hex = 0;

	while (i > 0 && hex < 2 * PROBE_MAC_BYTES && isxdigit((unsigned char) local[i - 1])) {
		i--;
		hex++;
	}
	if (hex != 2 * PROBE_MAC_BYTES || i == 0 || local[--i] != '-')
		return (-1);
	for (hex = 0; i > 0 && isxdigit((unsigned char) local[i - 1]); hex++)
		i--;
	if (hex == 0 || hex > 16 || i == 0 || strchr("suSU", local[i - 1]) == NULL)
		return (-1);
	return ((long) i - 1);
}

int
command_parse(const char *local, char delim, struct command *c)
{
	size_t	n = strlen(local);
	long	t, g = -1;

	memset(c, 0, sizeof(*c));
	if ((t = token_at(local, n)) > 0 && t > 0 && local[t - 1] == delim
	    && (g = ends_with(local, (size_t) t - 1, delim, "confirm")) > 0) {
		c->kind = CMD_CONFIRM;
		snprintf(c->token, sizeof(c->token), "%s", local + t);
	} else if ((g = ends_with(local, n, delim, "unsubscribe")) > 0)
		c->kind = CMD_UNSUBSCRIBE;
	else if ((g = ends_with(local, n, delim, "subscribe")) > 0)
		c->kind = CMD_SUBSCRIBE;
	else if ((g = ends_with(local, n, delim, "help")) > 0)
		c->kind = CMD_HELP;
	if (c->kind == CMD_NONE || g <= 0 || (size_t) g > STORE_NAME_MAX) {
		memset(c, 0, sizeof(*c));
		return (-1);
	}
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
