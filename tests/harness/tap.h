/*
 * Tiny TAP test harness (header-only). Usage:
 *
 *   static void test_foo(void) { CHECK(1 + 1 == 2); CHECK_INT_EQ(f(), 0); }
 *   int main(void) { RUN(test_foo); return tap_done(); }
 *
 * Every CHECK is one TAP assertion; a test function is a "# name" group.
 */
#ifndef GOOP_TAP_H
#define GOOP_TAP_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap__n, tap__failed;
static const char *tap__cur = "";

static inline void tap__ok(int ok, const char *file, int line, const char *expr) {
  tap__n++;
  if (ok) {
    printf("ok %d - %s: %s\n", tap__n, tap__cur, expr);
  } else {
    tap__failed++;
    printf("not ok %d - %s: %s\n#   at %s:%d\n", tap__n, tap__cur, expr, file, line);
  }
  fflush(stdout);
}

#define CHECK(expr) tap__ok(!!(expr), __FILE__, __LINE__, #expr)
#define CHECK_INT_EQ(a, b)                                                                                   \
  do {                                                                                                       \
    long long tap_a_ = (long long)(a), tap_b_ = (long long)(b);                                              \
    tap__ok(tap_a_ == tap_b_, __FILE__, __LINE__, #a " == " #b);                                             \
    if (tap_a_ != tap_b_)                                                                                    \
      printf("#   got %lld, want %lld\n", tap_a_, tap_b_);                                                   \
  } while (0)
#define CHECK_STR_EQ(a, b)                                                                                   \
  do {                                                                                                       \
    const char *tap_a_ = (a), *tap_b_ = (b);                                                                 \
    int tap_ok_ = tap_a_ && tap_b_ && strcmp(tap_a_, tap_b_) == 0;                                           \
    tap__ok(tap_ok_, __FILE__, __LINE__, #a " == " #b);                                                      \
    if (!tap_ok_)                                                                                            \
      printf("#   got \"%s\", want \"%s\"\n", tap_a_ ? tap_a_ : "(null)", tap_b_ ? tap_b_ : "(null)");       \
  } while (0)
#define CHECK_MEM_EQ(a, b, n) tap__ok(memcmp((a), (b), (n)) == 0, __FILE__, __LINE__, #a " == " #b)

#define RUN(fn)                                                                                              \
  do {                                                                                                       \
    tap__cur = #fn;                                                                                          \
    printf("# %s\n", #fn);                                                                                   \
    fn();                                                                                                    \
  } while (0)

static inline int tap_done(void) {
  printf("1..%d\n", tap__n);
  if (tap__failed)
    printf("# %d of %d checks failed\n", tap__failed, tap__n);
  return tap__failed ? 1 : 0;
}

/* Hex helper for tests: decode |hex| into a malloc'd buffer. */
static inline uint8_t *tap_unhex(const char *hex, size_t *ret_len) {
  size_t n = strlen(hex), o = 0;
  uint8_t *out = malloc(n / 2 + 1);
  int hi = -1;
  for (size_t i = 0; i < n; i++) {
    char c = hex[i];
    int v = (c >= '0' && c <= '9')   ? c - '0'
            : (c >= 'a' && c <= 'f') ? c - 'a' + 10
            : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                     : -1;
    if (v < 0)
      continue;
    if (hi < 0) {
      hi = v;
    } else {
      out[o++] = (uint8_t)(hi << 4 | v);
      hi = -1;
    }
  }
  *ret_len = o;
  return out;
}

#endif
