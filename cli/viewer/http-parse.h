/*
 * Small bounded parsers used by the viewer: the listen address, form
 * fields of an application/x-www-form-urlencoded body, guest cookie values.
 * No I/O, no allocation; fuzzed by fuzz/fuzz-http-parse.c.
 */
#ifndef GOOP_CLI_HTTP_PARSE_H
#define GOOP_CLI_HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_ADDR_MAX 256 /* longest viewer.http_addr accepted */

/*
 * Split "host:port", "[v6]:port" or ":port" (host "127.0.0.1"). "localhost"
 * is "127.0.0.1". |host| gets the host text (an IP literal is checked by the
 * caller). Returns 0, or -1 when malformed (no port, port > 65535, too long).
 */
int http_parse_addr(const char *s, char *host, size_t host_len, uint16_t *ret_port);

/*
 * Find field |key| in a urlencoded body of |len| bytes and decode it
 * ('+' = space, %XX) into |out| (NUL-terminated). Returns the decoded length,
 * -1 when absent, -2 when malformed or longer than |out_len| - 1.
 */
int http_form_field(const char *body, size_t len, const char *key, char *out, size_t out_len);

/* A guest id: exactly 32 lowercase hex digits. */
bool http_is_guest_token(const char *s);

/* Constant-time comparison of two NUL-terminated strings of public length. */
bool http_token_equal(const char *a, const char *b);

#endif
