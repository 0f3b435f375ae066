/*
 * fuzz_bounce.c - libFuzzer harness for the DSN parser and the VERP and
 * List-Id decoders.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bounce.h"

int	LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bounce_report rep;
	char	buf[300], local[300];
	size_t	n = size < sizeof(local) - 1 ? size : sizeof(local) - 1;

	if (bounce_parse((const char *) data, size, &rep) == 0) {
		if (rep.nrcpt > BOUNCE_MAX_RCPTS)
			abort();
		for (size_t i = 0; i < rep.nrcpt; i++)
			if (strchr(rep.rcpt[i].address, '@') == NULL)
				abort();
		(void) bounce_list_name(rep.list_id, "example.com", buf, sizeof(buf));
		bounce_report_free(&rep);
	}
	memcpy(local, data, n);
	local[n] = 0;
	(void) bounce_verp_decode(local, "bounce", buf, sizeof(buf));
	(void) bounce_list_name(local, "example.com", buf, sizeof(buf));
	return (0);
}
