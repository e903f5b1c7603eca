/*
 * Noise transport encryption throughput (not built by meson). Build from the
 * repository top, after configuring a build directory BUILD:
 *
 *   cc -O2 -std=c11 -D_GNU_SOURCE -Iinclude -IBUILD/include -Ilibgoop -Ilibgoop/common \
 *      -Ilibgoop/core -Ilibgoop/transport -o noise-speed bench/noise-speed.c \
 *      libgoop/common/{error,ctx,file}.c libgoop/core/{buf,varint,proto,base,multihash}.c \
 *      libgoop/identity/{identity,pubkey,peerid}.c libgoop/transport/noise.c -lcrypto -levent
 *
 * Usage: noise-speed [seconds] [write-size]. Default 3 s of 16384-byte writes
 * (one frame each, like `openssl speed -evp chacha20-poly1305` with 16384-byte blocks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "noise.h"

static double clock_s(clockid_t id) {
  struct timespec ts;
  clock_gettime(id, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double now(void) {
  return clock_s(CLOCK_MONOTONIC);
}

/* CPU time of this process: what `openssl speed` divides by unless given -elapsed. */
static double cpu(void) {
  return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

int main(int argc, char **argv) {
  double secs = argc > 1 ? atof(argv[1]) : 3.0;
  size_t size = argc > 2 ? (size_t)strtoul(argv[2], NULL, 10) : 16384;
  goop_noise_hs *i = NULL, *r = NULL;
  goop_noise_cipher *ci = NULL, *cr = NULL;
  goop_buf b, pl;
  goop_buf_init(&b, 0);
  goop_buf_init(&pl, 0);
  if (goop_noise_hs_new(true, NULL, NULL, NULL, 0, &i) || goop_noise_hs_new(false, NULL, NULL, NULL, 0, &r) ||
      goop_noise_hs_set_raw(i) || goop_noise_hs_set_raw(r))
    return 1;
  for (int m = 0; m < 3; m++) {
    goop_buf_reset(&b);
    if (goop_noise_hs_write_raw(m % 2 ? r : i, NULL, 0, &b) ||
        goop_noise_hs_read_raw(m % 2 ? i : r, b.data, b.len, &pl))
      return 1;
  }
  if (goop_noise_hs_split(i, &ci) || goop_noise_hs_split(r, &cr))
    return 1;

  uint8_t *data = malloc(size ? size : 1);
  memset(data, 0xa5, size);
  unsigned long long bytes = 0, calls = 0;
  double t0 = now(), c0 = cpu(), t;
  do {
    for (int k = 0; k < 64; k++) {
      goop_buf_reset(&b);
      if (goop_noise_encrypt(ci, data, size, &b))
        return 1;
      bytes += size;
      calls++;
    }
    t = now() - t0;
  } while (t < secs);
  double c = cpu() - c0;
  printf("encrypt: %llu writes of %zu bytes: wall %.2f s = %.0f kB/s; cpu %.2f s = %.0f kB/s\n", calls, size,
         t, (double)bytes / t / 1e3, c, (double)bytes / c / 1e3);

  /* Decrypt side, for reference: one stream of frames decrypted in order. */
  goop_buf_reset(&b);
  size_t frames = 0;
  while (b.len < (64u << 20) && goop_noise_encrypt(cr, data, size, &b) == 0)
    frames++;
  size_t off = 0, used = 0;
  t0 = now();
  while (off < b.len) {
    goop_buf_reset(&pl);
    if (goop_noise_decrypt_frame(ci, b.data + off, b.len - off, &used, &pl) != 1)
      return 1;
    off += used;
  }
  t = now() - t0;
  printf("decrypt: %zu frames of %zu bytes in %.2f s: %.1f MB/s\n", frames, size, t,
         (double)frames * (double)size / t / 1e6);

  free(data);
  goop_buf_free(&b);
  goop_buf_free(&pl);
  goop_noise_cipher_free(ci);
  goop_noise_cipher_free(cr);
  goop_noise_hs_free(i);
  goop_noise_hs_free(r);
  return 0;
}
