#include "internal.h"

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int goop__mkdir_p(const char *path, unsigned mode) {
  if (!path || !*path)
    return GOOP_EINVAL;
  char *tmp = strdup(path);
  if (!tmp)
    return GOOP_ENOMEM;
  size_t n = strlen(tmp);
  while (n > 1 && tmp[n - 1] == '/')
    tmp[--n] = '\0';
  int rc = 0;
  for (char *p = tmp + 1;; p++) {
    bool end = (*p == '\0');
    if (*p == '/' || end) {
      char save = *p;
      *p = '\0';
      if (mkdir(tmp, (mode_t)mode) != 0 && errno != EEXIST) {
        rc = goop__from_errno(errno);
        break;
      }
      struct stat st;
      if (stat(tmp, &st) != 0) {
        rc = goop__from_errno(errno);
        break;
      }
      if (!S_ISDIR(st.st_mode)) {
        rc = GOOP_ENOTDIR;
        break;
      }
      *p = save;
    }
    if (end)
      break;
  }
  free(tmp);
  return rc;
}

static int fsync_dir_of(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return GOOP_ENOMEM;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0)
    return goop__from_errno(errno);
  (void)fsync(fd);
  close(fd);
  return 0;
}

int goop__write_file_atomic(const char *path, const void *data, size_t len, unsigned mode) {
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp)
    return GOOP_ENOMEM;
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".tmp-XXXXXX", 12);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    int rc = goop__from_errno(errno);
    free(tmp);
    return rc;
  }
  int rc = 0;
  if (fchmod(fd, (mode_t)mode) != 0) {
    rc = goop__from_errno(errno);
    goto fail;
  }
  const uint8_t *p = data;
  size_t left = len;
  while (left > 0) {
    ssize_t w = write(fd, p, left);
    if (w < 0) {
      if (errno == EINTR)
        continue;
      rc = goop__from_errno(errno);
      goto fail;
    }
    p += w;
    left -= (size_t)w;
  }
  if (fsync(fd) != 0) {
    rc = goop__from_errno(errno);
    goto fail;
  }
  if (close(fd) != 0) {
    fd = -1;
    rc = goop__from_errno(errno);
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) {
    rc = goop__from_errno(errno);
    goto fail;
  }
  free(tmp);
  return fsync_dir_of(path);
fail:
  if (fd >= 0)
    close(fd);
  unlink(tmp);
  free(tmp);
  return rc;
}

int goop__read_file(const char *path, size_t max, uint8_t **ret, size_t *ret_len) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return goop__from_errno(errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int rc = goop__from_errno(errno);
    close(fd);
    return rc;
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return GOOP_EISDIR;
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return GOOP_EINVAL;
  }
  if ((uint64_t)st.st_size > max) {
    close(fd);
    return GOOP_EMSGSIZE;
  }
  size_t cap = (size_t)st.st_size;
  uint8_t *buf = malloc(cap + 1);
  if (!buf) {
    close(fd);
    return GOOP_ENOMEM;
  }
  size_t got = 0;
  for (;;) {
    if (got == cap) {
      /* File grew or size was 0 (procfs): read a little more, bounded by max. */
      if (cap >= max)
        break;
      size_t ncap = GOOP_MIN(max, cap ? cap * 2 : 4096);
      uint8_t *nb = realloc(buf, ncap + 1);
      if (!nb) {
        free(buf);
        close(fd);
        return GOOP_ENOMEM;
      }
      buf = nb;
      cap = ncap;
    }
    ssize_t r = read(fd, buf + got, cap - got);
    if (r < 0) {
      if (errno == EINTR)
        continue;
      int rc = goop__from_errno(errno);
      free(buf);
      close(fd);
      return rc;
    }
    if (r == 0)
      break;
    got += (size_t)r;
  }
  close(fd);
  buf[got] = '\0';
  *ret = buf;
  *ret_len = got;
  return 0;
}

char *goop__path_clean(const char *path) {
  if (!path)
    return NULL;
  size_t n = strlen(path);
  bool abs = n > 0 && path[0] == '/';
  /* Split into components, process "." and "..". */
  char *out = malloc(n + 2);
  char **parts = calloc(n / 2 + 2, sizeof(char *));
  char *copy = strdup(path);
  if (!out || !parts || !copy) {
    free(out);
    free(parts);
    free(copy);
    return NULL;
  }
  size_t np = 0;
  char *save = NULL;
  for (char *tok = strtok_r(copy, "/", &save); tok; tok = strtok_r(NULL, "/", &save)) {
    if (strcmp(tok, ".") == 0)
      continue;
    if (strcmp(tok, "..") == 0) {
      if (np > 0 && strcmp(parts[np - 1], "..") != 0)
        np--;
      else if (!abs)
        parts[np++] = tok;
      continue;
    }
    parts[np++] = tok;
  }
  size_t o = 0;
  if (abs)
    out[o++] = '/';
  for (size_t i = 0; i < np; i++) {
    size_t l = strlen(parts[i]);
    if (i > 0)
      out[o++] = '/';
    memcpy(out + o, parts[i], l);
    o += l;
  }
  if (o == 0)
    out[o++] = '.';
  out[o] = '\0';
  free(parts);
  free(copy);
  return out;
}

char *goop__path_join(const char *dir, const char *rel) {
  if (!rel)
    return NULL;
  if (rel[0] == '/' || !dir || !*dir)
    return goop__path_clean(rel);
  size_t a = strlen(dir), b = strlen(rel);
  char *tmp = malloc(a + b + 2);
  if (!tmp)
    return NULL;
  memcpy(tmp, dir, a);
  tmp[a] = '/';
  memcpy(tmp + a + 1, rel, b + 1);
  char *out = goop__path_clean(tmp);
  free(tmp);
  return out;
}
