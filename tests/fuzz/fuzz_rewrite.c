/*
 * fuzz_rewrite.c - libFuzzer harness for the header rewriter: parse,
 * From: address, loop check, the list copy, the digest.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rewrite.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rewrite_list l = {"group1", "Club \"x\", \xc3\xa9", "example.com", "bounce",
	"postmaster", (int) (size & 1)};
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
	rewrite_msg_free(m);
	return (0);
}
