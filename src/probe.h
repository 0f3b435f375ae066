/* probe.h - signed probe addresses: bounces that prove something */
#ifndef MLISTD_PROBE_H
#define MLISTD_PROBE_H

#include <stddef.h>

#define PROBE_KEY_LEN	32
#define PROBE_MAC_BYTES	10	/* 80 bits of MAC in a tag or token */
#define PROBE_LIFETIME	(7 * 86400)	/* a probe's bounce counts this long */

/*
 * probe_key_load - read the secret from path, creating it (32 random
 * bytes, mode 0600) if it does not exist.  0, or -1 with a message.
 */
int	probe_key_load(const char *path, unsigned char key[PROBE_KEY_LEN],
		       char *err, size_t errlen);

/*
 * probe_mac_hex - HMAC-SHA256 of purpose, the fields (lower-cased) and
 * expires, its first PROBE_MAC_BYTES bytes in hex (shared with tokens).
 */
void	probe_mac_hex(const unsigned char key[PROBE_KEY_LEN], const char *purpose,
		      const char *const *field, size_t nfield, unsigned long expires,
		      char hex[2 * PROBE_MAC_BYTES + 1]);

/*
 * probe_local - the local part of a probe's envelope sender for member
 * (an address) and group, valid until expires (Unix time):
 * BOUNCE+probe-EXPIRES-MAC-LOCAL=DOMAIN, MAC an HMAC-SHA256 of member,
 * group and expires.  0, or -1 when it does not fit in len.
 */
int	probe_local(const unsigned char key[PROBE_KEY_LEN], const char *bounce_local,
		    const char *member, const char *group, unsigned long expires,
		    char *out, size_t len);

/*
 * probe_parse - split a local part made by probe_local into the member's
 * address and expiry; 0, or -1 when it is no probe address.  Says
 * nothing about its MAC: see probe_verify.
 */
int	probe_parse(const char *local, const char *bounce_local, char *member,
		    size_t mlen, unsigned long *expires);

enum probe_verdict {
	PROBE_VALID = 0,
	PROBE_FORGED = -1,	/* the MAC does not match (tampered, other key) */
	PROBE_EXPIRED = -2	/* past its expiry, or not a probe address */
};

/* probe_verify - is local a probe address we made for group, alive now? */
enum probe_verdict probe_verify(const unsigned char key[PROBE_KEY_LEN],
				const char *local, const char *bounce_local,
				const char *group, unsigned long now);

/*
 * probe_message - the probe itself (LF line ends; malloc'd, NULL when
 * memory is short): a short note to member that mail from group reaches
 * it, from the postmaster, Auto-Submitted.
 */
char   *probe_message(const char *member, const char *group, const char *domain,
		      const char *postmaster_local, const char *msgid_local,
		      size_t *len);

#endif
