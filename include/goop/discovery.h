/*
 * libgoop LAN discovery over mDNS (Goop² flavour, see libp2p-notes §12.3).
 *
 * A goop_mdns object publishes the host under a cluster tag such as
 * "goop-mdns": a shared PTR "<tag>.local" → "<label>.<tag>.local" plus SRV
 * and TXT records on that instance name, where <label> is a random 32-63
 * character [a-z0-9] string and each TXT string is
 * "dnsaddr=<multiaddr>/p2p/<peer id>". It browses the same PTR name and,
 * for every other peer found, adds the announced addresses to the host's
 * peerstore and dials it. Different tags never see each other.
 *
 * The implementation uses the Avahi client library (raw records, since a tag
 * is not a valid DNS-SD service type), so a running avahi-daemon reachable
 * over the D-Bus system bus is needed. Built without Avahi, goop_mdns_new()
 * returns GOOP_ENOTSUP. Everything runs on the host's event loop; no
 * function is thread-safe.
 */
#ifndef GOOP_DISCOVERY_H
#define GOOP_DISCOVERY_H

#include <goop/common.h>
#include <goop/transport.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GOOP_MDNS_MAX_TAG 63           /* bytes of a tag (one DNS label) */
#define GOOP_MDNS_LABEL_MIN 32         /* instance label length, inclusive */
#define GOOP_MDNS_LABEL_MAX 63         /* instance label length, inclusive */
#define GOOP_MDNS_MAX_TXT 8900         /* bytes of TXT rdata accepted by the parser */
#define GOOP_MDNS_MAX_ADDRS 32         /* dnsaddr strings handled per TXT record */
#define GOOP_MDNS_ADDR_TTL 120         /* seconds discovered addresses stay in the peerstore */
#define GOOP_MDNS_DIAL_TIMEOUT_MS 3000 /* dial timeout for discovered peers */

typedef struct goop_mdns goop_mdns;

/**
 * Start publishing and browsing |tag| (e.g. "goop-mdns": lowercase letters,
 * digits, '-' and '_', 1-63 bytes) for |host|. The published addresses are
 * the host's announce addresses starting with /ip4 or /ip6, minus loopback
 * and link-local ones. Returns 0, GOOP_EINVAL (bad tag), GOOP_ENOTSUP (built
 * without Avahi, or no avahi-daemon / D-Bus reachable), GOOP_EIO (another
 * Avahi failure) or GOOP_ENOMEM. If the daemon goes away later the object
 * stays valid and idle. Since: 0.1
 */
GOOP_API int goop_mdns_new(goop_host *host, const char *tag, goop_mdns **ret) GOOP_WARN_UNUSED_RESULT;

/** Withdraw the records, stop browsing and free |m| (NULL is fine). Before the host. Since: 0.1 */
GOOP_API void goop_mdns_free(goop_mdns *m);

/** Number of peers discovered so far (distinct Peer IDs, not ourselves). Since: 0.1 */
GOOP_API size_t goop_mdns_num_discovered(const goop_mdns *m);

/* ---- wire helpers (exposed for tests and fuzzing; no Avahi needed) ---------- */

/**
 * Write a random instance label of GOOP_MDNS_LABEL_MIN..GOOP_MDNS_LABEL_MAX
 * characters from [a-z0-9] and a NUL into |buf| (|buf_len| >= 64). Returns
 * its length or GOOP_EINVAL / GOOP_EIO. Since: 0.1
 */
GOOP_API int goop_mdns_label(char *buf, size_t buf_len);

/**
 * Build DNS TXT rdata with one "dnsaddr=<addr>" string per entry of |addrs|
 * (each at most 247 bytes so the string fits in 255). Empty list → a single
 * empty string, as RFC 6763 asks. Writes |*ret_len| bytes to |out|. Returns
 * 0, GOOP_EINVAL (an address too long, empty, or containing NUL) or
 * GOOP_EMSGSIZE (|out_len| too small). Since: 0.1
 */
GOOP_API int goop_mdns_txt_build(const char *const *addrs, size_t n_addrs, uint8_t *out, size_t out_len,
                                 size_t *ret_len);

/** Called by goop_mdns_txt_parse() for every dnsaddr value (NUL-terminated, borrowed). */
typedef void (*goop_mdns_addr_cb)(const char *addr, void *user_data);

/**
 * Parse DNS TXT rdata (a sequence of length-prefixed strings) and call |cb|
 * for the value of every "dnsaddr=" string (key matched case-insensitively),
 * at most GOOP_MDNS_MAX_ADDRS times. Values that are empty, contain NUL or
 * control bytes, or do not start with '/' are skipped. Returns the number of
 * values passed to |cb|, GOOP_EPARSE (a string runs past the end; |cb| is
 * then never called) or GOOP_EMSGSIZE (|len| > GOOP_MDNS_MAX_TXT). Since: 0.1
 */
GOOP_API int goop_mdns_txt_parse(const uint8_t *rdata, size_t len, goop_mdns_addr_cb cb, void *user_data);

/**
 * Decode an uncompressed DNS wire-format name (as in PTR rdata) into dotted
 * text without the trailing dot; '.' and '\\' inside a label, and bytes
 * outside printable ASCII, are escaped Avahi-style ("\\." "\\\\" "\\DDD").
 * Returns the text length, GOOP_EPARSE (malformed, compression pointer,
 * trailing bytes) or GOOP_EMSGSIZE (|buf_len| too small or name over 255
 * bytes). Since: 0.1
 */
GOOP_API int goop_mdns_name_decode(const uint8_t *rdata, size_t len, char *buf, size_t buf_len);

#ifdef __cplusplus
}
#endif

#endif
