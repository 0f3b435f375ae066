/*
 * fuzz_rewrite.c - libFuzzer harness for the header rewriter: parse,
 * From: address, loop check, the list copy, the digest; the command
 * checks and a notice whose template and Message-ID come from the input.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "notice.h"
#include "rewrite.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rewrite_list l = {"group1", "Club \"x\", \xc3\xa9", "example.com", "bounce",
	"postmaster", (int) (size & 1), (size & 2) ? '+' : 0, (int) (size & 4), 0};
	struct rewrite_msg *m;
	struct rewrite_from from;
	char	hex[41], id[256], *copy;
	size_t	len;

	if (rewrite_parse((const char *) data, size, NULL, &m) != REWRITE_OK)
		return (0);
	(void) rewrite_from(m, &from);
	(void) rewrite_has_list_id(m, "group1", "example.com");
	rewrite_message_id(m, id, sizeof(id));
	rewrite_digest(m, hex);
	if ((copy = rewrite_copy(m, &l, &len)) != NULL) {
		/* The list headers are always there. */
		static const char post[] = "\nList-Post: <mailto:group1@example.com>\n";

		if (len < 100 || memmem(copy, len, post, sizeof(post) - 1) == NULL)
			abort();
		free(copy);
	}
	(void) command_automatic(m, "a@x.test", "example.com");
	{
		/* The first line as a local part and as a template. */
		struct command c;
		struct notice_vars v = {.list = "group1", .description = "d",
			.domain = "example.com", .address = "a@x.test", .post = "p",
			.subscribe = "s", .unsubscribe = "u", .help = "h", .confirm = "c",
			.owner = "o", .expires = "e"};
		char	local[300], *t, *n;
		size_t	k = 0, tl;
		int	eight;

		while (k < size && k < sizeof(local) - 1 && data[k] != '\n' && data[k] != 0) {
			local[k] = (char) data[k];
			k++;
		}
		local[k] = 0;
		if (command_parse(local, (size & 4) ? '-' : '+', &c) == 0
		    && (c.group[0] == 0 || strlen(c.group) > STORE_NAME_MAX))
			abort();
		if ((t = malloc(size + 1)) != NULL) {
			memcpy(t, data, size);
			t[size] = 0;
			if ((n = notice_build(t, &v, "f@example.com", NULL, id, &tl, &eight)) != NULL) {
				static const char mark[] = "\nAuto-Submitted: auto-replied\n";

				if (tl != strlen(n) || memmem(n, tl, mark, sizeof(mark) - 1) == NULL)
					abort();
				free(n);
			}
			free(t);
		}
	}
	rewrite_msg_free(m);
	return (0);
}
