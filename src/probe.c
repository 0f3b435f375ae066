/*
 * probe.c - signed probe addresses.
 *
 * A bounce at the plain bounce address, or at an XVERP address (whose tag
 * is the member's address in plain text, which anybody can write), proves
 * nothing: anyone can send one.  So such a bounce is stored as a hint and
 * may make mlistd send that member a probe: a short message of its own,
 * in a transaction of its own, whose envelope sender carries a tag only
 * mlistd can make, an HMAC-SHA256 (Nettle) of the member, the list and an
 * expiry under a secret that never leaves the state directory.  A bounce
 * that comes back to a valid, unexpired tag is evidence against the
 * member; that is what bounce-threshold counts.  Mailman and mlmmj avoid
 * acting on forged bounces the same way.
 *
 * Tag: BOUNCE+probe-EXPIRES-MAC-LOCAL=DOMAIN, EXPIRES in hex, MAC the
 * first 10 bytes of the HMAC in hex (80 bits: a forger gets one try per
 * bounce message, rate-limited by Postfix).
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <nettle/hmac.h>
#include <nettle/memops.h>

#include "probe.h"

#define MAC_BYTES PROBE_MAC_BYTES

int
probe_key_load(const char *path, unsigned char key[PROBE_KEY_LEN], char *err,
	       size_t errlen)
{
	struct stat st;
	ssize_t	n;
	int	fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		unsigned char fresh[PROBE_KEY_LEN];
		char	tmp[4096];

		/* Made once, atomically: tmp file, then link (no clobber). */
		if (getrandom(fresh, sizeof(fresh), 0) != (ssize_t) sizeof(fresh)) {
			snprintf(err, errlen, "cannot make a secret: %s", strerror(errno));
			return (-1);
		}
		snprintf(tmp, sizeof(tmp), "%s.%ld", path, (long) getpid());
		if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
			       0600)) < 0
		    || write(fd, fresh, sizeof(fresh)) != (ssize_t) sizeof(fresh)
		    || fsync(fd) < 0 || close(fd) < 0) {
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			if (fd >= 0)
				(void) close(fd);
			(void) unlink(tmp);
			return (-1);
		}
		if (link(tmp, path) < 0 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path, strerror(errno));
			(void) unlink(tmp);
			return (-1);
		}
		(void) unlink(tmp);
		fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0) {
		snprintf(err, errlen, "%s must be a plain file that only its owner may read "
			 "(chmod 600)", path);
		(void) close(fd);
		return (-1);
	}
	n = read(fd, key, PROBE_KEY_LEN);
	(void) close(fd);
	if (n != PROBE_KEY_LEN) {
		snprintf(err, errlen, "%s: expected %d bytes of secret", path, PROBE_KEY_LEN);
		return (-1);
	}
	return (0);
}

/*
 * probe_mac_hex - HMAC-SHA256 under key of a purpose word and fields,
 * each lower-cased and ended by a newline, then expires in hex; the first
 * PROBE_MAC_BYTES bytes in lower-case hex.  The purpose word keeps a MAC
 * made for one use ("probe", "confirm") from being valid for another.
 */
void
probe_mac_hex(const unsigned char key[PROBE_KEY_LEN], const char *purpose,
	      const char *const *field, size_t nfield, unsigned long expires,
	      char hex[2 * PROBE_MAC_BYTES + 1])
{
	struct hmac_sha256_ctx ctx;
	unsigned char sum[SHA256_DIGEST_SIZE];
	char	buf[24];

	hmac_sha256_set_key(&ctx, PROBE_KEY_LEN, key);
	hmac_sha256_update(&ctx, strlen(purpose), (const uint8_t *) purpose);
	hmac_sha256_update(&ctx, 1, (const uint8_t *) "\n");
	for (size_t i = 0; i < nfield; i++) {
		for (const char *p = field[i]; *p; p++) {
			uint8_t	c = (uint8_t) tolower((unsigned char) *p);

			hmac_sha256_update(&ctx, 1, &c);
		}
		if (i + 1 < nfield)
			hmac_sha256_update(&ctx, 1, (const uint8_t *) "\n");
	}
	snprintf(buf, sizeof(buf), "\n%lx", expires);
	hmac_sha256_update(&ctx, strlen(buf), (const uint8_t *) buf);
	hmac_sha256_digest(&ctx, sizeof(sum), sum);
	for (int i = 0; i < PROBE_MAC_BYTES; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

/* mac - the tag's MAC of member, group and expires */
static void
mac(const unsigned char key[PROBE_KEY_LEN], const char *member, const char *group,
    unsigned long expires, char hex[2 * MAC_BYTES + 1])
{
	const char *field[2] = {member, group};

	probe_mac_hex(key, "probe", field, 2, expires, hex);
}

int
probe_local(const unsigned char key[PROBE_KEY_LEN], const char *bounce_local,
	    const char *member, const char *group, unsigned long expires, char *out,
	    size_t len)
{
	char	hex[2 * MAC_BYTES + 1];
	const char *at = strrchr(member, '@');
	int	n;

	if (at == NULL || at == member)
		return (-1);
	mac(key, member, group, expires, hex);
	n = snprintf(out, len, "%s+probe-%lx-%s-%.*s=%s", bounce_local, expires, hex,
		     (int) (at - member), member, at + 1);
	return (n < 0 || (size_t) n >= len ? -1 : 0);
}

/* tag - the part after BOUNCE+probe-, or NULL */
static const char *
tag(const char *local, const char *bounce_local)
{
	size_t	n = strlen(bounce_local);

	if (strncasecmp(local, bounce_local, n) != 0 || strncasecmp(local + n, "+probe-", 7) != 0)
		return (NULL);
	return (local + n + 7);
}

int
probe_parse(const char *local, const char *bounce_local, char *member, size_t mlen,
	    unsigned long *expires)
{
	const char *p = tag(local, bounce_local), *dash, *eq;
	char   *end;
	size_t	n;

	if (p == NULL)
		return (-1);
	*expires = strtoul(p, &end, 16);
	if (end == p || *end != '-')
		return (-1);
	p = end + 1;
	if ((dash = strchr(p, '-')) == NULL || dash - p != 2 * MAC_BYTES)
		return (-1);
	p = dash + 1;
	/* The member: LOCAL=DOMAIN, the last = is the @ (XVERP's rule). */
	if ((eq = strrchr(p, '=')) == NULL || eq == p || eq[1] == 0)
		return (-1);
	n = (size_t) (eq - p);
	if (n + 1 + strlen(eq + 1) >= mlen)
		return (-1);
	snprintf(member, mlen, "%.*s@%s", (int) n, p, eq + 1);
	return (0);
}

enum probe_verdict
probe_verify(const unsigned char key[PROBE_KEY_LEN], const char *local,
	     const char *bounce_local, const char *group, unsigned long now)
{
	char	member[300], want[2 * MAC_BYTES + 1];
	const char *p;
	unsigned long expires;

	if (probe_parse(local, bounce_local, member, sizeof(member), &expires) < 0)
		return (PROBE_EXPIRED);
	p = strchr(tag(local, bounce_local), '-') + 1;
	mac(key, member, group, expires, want);
	/* Hex of either case; compared in constant time. */
	{
		char	got[2 * MAC_BYTES + 1];

		for (int i = 0; i < 2 * MAC_BYTES; i++)
			got[i] = (char) tolower((unsigned char) p[i]);
		got[2 * MAC_BYTES] = 0;
		if (!memeql_sec(got, want, 2 * MAC_BYTES))
			return (PROBE_FORGED);
	}
	if (now > expires)
		return (PROBE_EXPIRED);
	return (PROBE_VALID);
}

char   *
probe_message(const char *member, const char *group, const char *domain,
	      const char *postmaster_local, const char *msgid_local, size_t *len)
{
	char	date[64], *out;
	time_t	now = time(NULL);
	struct tm tm;
	int	n;

	if (gmtime_r(&now, &tm) == NULL
	    || strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm) == 0)
		snprintf(date, sizeof(date), "Thu, 01 Jan 1970 00:00:00 +0000");
	n = asprintf(&out,
		     "From: Mailing list server <%s@%s>\n"
		     "To: <%s>\n"
		     "Subject: Delivery check for the list %s@%s\n"
		     "Date: %s\n"
		     "Message-ID: <%s@%s>\n"
		     "Auto-Submitted: auto-generated\n"
		     "X-Auto-Response-Suppress: All\n"
		     "MIME-Version: 1.0\n"
		     "Content-Type: text/plain; charset=us-ascii\n"
		     "\n"
		     "Hello,\n"
		     "\n"
		     "some mail from the list %s@%s to you came back as undeliverable.\n"
		     "This message checks whether mail reaches you.  If you can read it,\n"
		     "all is well and there is nothing to do.\n"
		     "\n"
		     "-- \n"
		     "The list server at %s\n",
		     postmaster_local, domain, member, group, domain, date, msgid_local,
		     domain, group, domain, domain);
	if (n < 0)
		return (NULL);
	*len = (size_t) n;
	return (out);
}
