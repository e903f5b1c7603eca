/*
 * The local identity: an Ed25519 key pair kept as its 32-byte seed and
 * 32-byte public key, stored on disk as a libp2p PrivateKey protobuf.
 */
#include <goop/identity.h>

#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "internal.h"
#include "proto.h"

#define SEED_SIZE 32
#define PUB_SIZE 32
/*
 * Largest key file we read and parse. An Ed25519 one is 68 (legacy: 100)
 * bytes; the limit leaves room for an RSA-8192 key so that it is reported
 * as an unsupported type rather than as garbage.
 */
#define KEYFILE_MAX 16384
#define PRIVKEY_PB_MAX KEYFILE_MAX

struct goop_identity {
  uint8_t seed[SEED_SIZE];
  uint8_t pub[PUB_SIZE];
  EVP_PKEY *pkey;
  goop_peer_id peer_id;
};

const char *goop_identity_primitive(void) {
  return "ed25519";
}

static const char *key_type_name(uint64_t type) {
  switch (type) {
  case GOOP_KEY_RSA:
    return "RSA";
  case GOOP_KEY_ED25519:
    return "Ed25519";
  case GOOP_KEY_SECP256K1:
    return "secp256k1";
  case GOOP_KEY_ECDSA:
    return "ECDSA";
  default:
    return "unknown";
  }
}

static void public_key_pb(const uint8_t pub[PUB_SIZE], uint8_t out[GOOP_ED25519_PUBKEY_PB_SIZE]) {
  out[0] = 0x08;
  out[1] = GOOP_KEY_ED25519;
  out[2] = 0x12;
  out[3] = PUB_SIZE;
  memcpy(out + 4, pub, PUB_SIZE);
}

/* Build an identity from a seed; the public key is derived. */
static int identity_from_seed(const uint8_t seed[SEED_SIZE], goop_identity **ret) {
  goop_identity *id = calloc(1, sizeof(*id));
  if (!id)
    return GOOP_ENOMEM;
  int rc = GOOP_ECRYPTO;
  id->pkey = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, seed, SEED_SIZE);
  if (!id->pkey)
    goto fail;
  size_t pub_len = PUB_SIZE;
  if (EVP_PKEY_get_raw_public_key(id->pkey, id->pub, &pub_len) != 1 || pub_len != PUB_SIZE)
    goto fail;
  memcpy(id->seed, seed, SEED_SIZE);

  uint8_t pb[GOOP_ED25519_PUBKEY_PB_SIZE];
  public_key_pb(id->pub, pb);
  if (goop_pubkey_to_peer_id(pb, sizeof(pb), &id->peer_id) < 0)
    goto fail;
  *ret = id;
  return 0;
fail:
  ERR_clear_error();
  goop_identity_free(id);
  return rc;
}

void goop_identity_free(goop_identity *id) {
  if (!id)
    return;
  EVP_PKEY_free(id->pkey);
  goop__wipe(id, sizeof(*id));
  free(id);
}

int goop_identity_generate(goop_identity **ret) {
  uint8_t seed[SEED_SIZE];
  if (RAND_bytes(seed, sizeof(seed)) != 1) {
    ERR_clear_error();
    return GOOP_ECRYPTO;
  }
  int rc = identity_from_seed(seed, ret);
  goop__wipe(seed, sizeof(seed));
  return rc;
}

/*
 * Strict parse of a PrivateKey protobuf. On failure |why| (may be NULL)
 * receives a short reason without the file name.
 */
static int parse_private(const uint8_t *buf, size_t len, goop_identity **ret, char *why, size_t why_len) {
  if (!buf || len == 0 || len > PRIVKEY_PB_MAX)
    return goop__errbuf(why, why_len, GOOP_EPARSE,
                        "not a libp2p Ed25519 private key (%d bytes expected, got %zu)",
                        GOOP_ED25519_PRIVKEY_PB_SIZE, len);
  goop_pb_reader r;
  goop_pb_field f;
  bool have_type = false, have_data = false;
  uint64_t type = 0;
  const uint8_t *data = NULL;
  size_t data_len = 0;
  int rc;

  goop_pb_reader_init(&r, buf, len);
  while ((rc = goop_pb_next(&r, &f)) == 1) {
    if (f.num == 1 && f.wire == GOOP_PB_VARINT && !have_type) {
      have_type = true;
      type = f.u64;
    } else if (f.num == 2 && f.wire == GOOP_PB_LEN && !have_data) {
      have_data = true;
      data = f.data;
      data_len = f.len;
    } else {
      rc = GOOP_EPARSE;
      break;
    }
  }
  if (rc < 0 || !have_type || !have_data) {
    if (len != GOOP_ED25519_PRIVKEY_PB_SIZE)
      return goop__errbuf(why, why_len, GOOP_EPARSE,
                          "not a libp2p Ed25519 private key (%d bytes expected, got %zu)",
                          GOOP_ED25519_PRIVKEY_PB_SIZE, len);
    return goop__errbuf(why, why_len, GOOP_EPARSE, "not a libp2p private key (malformed protobuf)");
  }
  if (type != GOOP_KEY_ED25519) {
    if (type <= GOOP_KEY_ECDSA)
      return goop__errbuf(why, why_len, GOOP_EKEYTYPE,
                          "unsupported key type %s (only Ed25519 identities are supported)",
                          key_type_name(type));
    return goop__errbuf(why, why_len, GOOP_EKEYTYPE, "unknown key type %llu", (unsigned long long)type);
  }
  if (data_len != SEED_SIZE + PUB_SIZE && data_len != SEED_SIZE + 2 * PUB_SIZE)
    return goop__errbuf(why, why_len, GOOP_EPARSE,
                        "not a libp2p Ed25519 private key (64 bytes of key data expected, got %zu)",
                        data_len);
  if (data_len == SEED_SIZE + 2 * PUB_SIZE &&
      goop__memeq_ct(data + SEED_SIZE, data + SEED_SIZE + PUB_SIZE, PUB_SIZE) != 0)
    return goop__errbuf(why, why_len, GOOP_EPARSE, "legacy Ed25519 key with two different public keys");

  goop_identity *id = NULL;
  rc = identity_from_seed(data, &id);
  if (rc < 0)
    return goop__errbuf(why, why_len, rc, "cannot load Ed25519 key: %s", goop_strerror(rc));
  if (goop__memeq_ct(id->pub, data + SEED_SIZE, PUB_SIZE) != 0) {
    goop_identity_free(id);
    return goop__errbuf(why, why_len, GOOP_EPARSE, "Ed25519 public key does not match the private key");
  }
  *ret = id;
  return 0;
}

int goop_identity_from_bytes(const uint8_t *buf, size_t len, goop_identity **ret) {
  goop_return_val_if_fail(ret != NULL, GOOP_EINVAL);
  return parse_private(buf, len, ret, NULL, 0);
}

void goop_identity_to_bytes(const goop_identity *id, uint8_t out[GOOP_ED25519_PRIVKEY_PB_SIZE]) {
  if (!id || !out)
    return;
  out[0] = 0x08;
  out[1] = GOOP_KEY_ED25519;
  out[2] = 0x12;
  out[3] = SEED_SIZE + PUB_SIZE;
  memcpy(out + 4, id->seed, SEED_SIZE);
  memcpy(out + 4 + SEED_SIZE, id->pub, PUB_SIZE);
}

void goop_identity_peer_id(const goop_identity *id, goop_peer_id *ret) {
  if (!id || !ret)
    return;
  *ret = id->peer_id;
}

void goop_identity_public_key(const goop_identity *id, uint8_t out[GOOP_ED25519_PUBKEY_PB_SIZE]) {
  if (!id || !out)
    return;
  public_key_pb(id->pub, out);
}

void goop_identity_raw_public_key(const goop_identity *id, uint8_t out[32]) {
  if (!id || !out)
    return;
  memcpy(out, id->pub, PUB_SIZE);
}

int goop_identity_sign(const goop_identity *id, const uint8_t *msg, size_t len,
                       uint8_t sig[GOOP_ED25519_SIG_SIZE]) {
  goop_return_val_if_fail(id != NULL && sig != NULL && (msg != NULL || len == 0), GOOP_EINVAL);
  static const uint8_t empty[1];
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (!ctx)
    return GOOP_ENOMEM;
  int rc = GOOP_ECRYPTO;
  size_t sig_len = GOOP_ED25519_SIG_SIZE;
  if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, id->pkey) == 1 &&
      EVP_DigestSign(ctx, sig, &sig_len, msg ? msg : empty, len) == 1 && sig_len == GOOP_ED25519_SIG_SIZE)
    rc = 0;
  EVP_MD_CTX_free(ctx);
  ERR_clear_error();
  return rc;
}

/* ---- files ------------------------------------------------------------------ */

int goop_identity_load(const char *path, goop_identity **ret, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(path != NULL && ret != NULL, GOOP_EINVAL);
  uint8_t *buf = NULL;
  size_t len = 0;
  int rc = goop__read_file(path, KEYFILE_MAX, &buf, &len);
  switch (rc) {
  case 0:
    break;
  case GOOP_ENOENT:
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: no such file", path);
  case GOOP_EACCES:
  case GOOP_EPERM:
    return goop__errbuf(errbuf, errbuf_len, GOOP_EACCES, "%s: permission denied", path);
  case GOOP_EMSGSIZE:
    return goop__errbuf(errbuf, errbuf_len, GOOP_EPARSE,
                        "%s: not a libp2p Ed25519 private key (%d bytes expected, file is larger than %d)",
                        path, GOOP_ED25519_PRIVKEY_PB_SIZE, KEYFILE_MAX);
  case GOOP_EISDIR:
    return goop__errbuf(errbuf, errbuf_len, GOOP_EIO, "%s: is a directory", path);
  case GOOP_EINVAL:
    return goop__errbuf(errbuf, errbuf_len, GOOP_EIO, "%s: not a regular file", path);
  case GOOP_ENOMEM:
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: out of memory", path);
  default:
    return goop__errbuf(errbuf, errbuf_len, GOOP_EIO, "%s: cannot read key file: %s", path,
                        goop_strerror(rc));
  }

  char why[256];
  goop_identity *id = NULL;
  rc = parse_private(buf, len, &id, why, sizeof(why));
  goop__wipe(buf, len);
  free(buf);
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: %s", path, why);
  *ret = id;
  return 0;
}

/* Create the parent directory of |path| (mode 0700) if it does not exist. */
static int make_parent(const char *path, char *errbuf, size_t errbuf_len) {
  char *copy = strdup(path);
  if (!copy)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "%s: out of memory", path);
  const char *dir = dirname(copy);
  int rc = 0;
  if (strcmp(dir, ".") != 0 && strcmp(dir, "/") != 0) {
    rc = goop__mkdir_p(dir, 0700);
    if (rc < 0)
      rc = goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot create directory %s: %s", path, dir,
                        goop_strerror(rc));
  }
  free(copy);
  return rc;
}

int goop_identity_save(const goop_identity *id, const char *path, char *errbuf, size_t errbuf_len) {
  goop_return_val_if_fail(id != NULL && path != NULL && *path != '\0', GOOP_EINVAL);
  int rc = make_parent(path, errbuf, errbuf_len);
  if (rc < 0)
    return rc;
  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE];
  goop_identity_to_bytes(id, pb);
  rc = goop__write_file_atomic(path, pb, sizeof(pb), 0600);
  goop__wipe(pb, sizeof(pb));
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write key file: %s", path, goop_strerror(rc));
  return 0;
}

static void fsync_parent(const char *path) {
  char *copy = strdup(path);
  if (!copy)
    return;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

/*
 * Like goop_identity_save() but never replaces an existing |path|: the key
 * is written completely under a temporary name and then hard-linked into
 * place, which fails with GOOP_EEXIST if |path| appeared in the meantime.
 */
static int save_new(const goop_identity *id, const char *path, char *errbuf, size_t errbuf_len) {
  int rc = make_parent(path, errbuf, errbuf_len);
  if (rc < 0)
    return rc;
  size_t plen = strlen(path);
  char *tmp = malloc(plen + 16);
  if (!tmp)
    return goop__errbuf(errbuf, errbuf_len, GOOP_ENOMEM, "%s: out of memory", path);
  memcpy(tmp, path, plen);
  memcpy(tmp + plen, ".new-XXXXXX", 12);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    rc = goop__from_errno(errno);
    free(tmp);
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write key file: %s", path, goop_strerror(rc));
  }
  close(fd);

  uint8_t pb[GOOP_ED25519_PRIVKEY_PB_SIZE];
  goop_identity_to_bytes(id, pb);
  rc = goop__write_file_atomic(tmp, pb, sizeof(pb), 0600);
  goop__wipe(pb, sizeof(pb));
  if (rc == 0 && link(tmp, path) != 0) {
    int e = errno;
    if (e == EEXIST) {
      rc = GOOP_EEXIST;
    } else if (e == EPERM || e == EOPNOTSUPP || e == ENOSYS) {
      /* No hard links on this file system: check, then rename (small race window). */
      struct stat st;
      if (lstat(path, &st) == 0)
        rc = GOOP_EEXIST;
      else if (rename(tmp, path) != 0)
        rc = goop__from_errno(errno);
    } else {
      rc = goop__from_errno(e);
    }
  }
  (void)unlink(tmp);
  free(tmp);
  if (rc == 0)
    fsync_parent(path);
  if (rc < 0 && rc != GOOP_EEXIST)
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot write key file: %s", path, goop_strerror(rc));
  return rc;
}

int goop_identity_load_or_create(const char *path, goop_identity **ret, bool *ret_created, char *errbuf,
                                 size_t errbuf_len) {
  goop_return_val_if_fail(path != NULL && *path != '\0' && ret != NULL, GOOP_EINVAL);
  goop_identity *id = NULL;
  int rc = goop_identity_load(path, &id, errbuf, errbuf_len);
  if (rc != GOOP_ENOENT) {
    if (rc == 0) {
      *ret = id;
      if (ret_created)
        *ret_created = false;
    }
    return rc;
  }

  rc = goop_identity_generate(&id);
  if (rc < 0)
    return goop__errbuf(errbuf, errbuf_len, rc, "%s: cannot generate a key: %s", path, goop_strerror(rc));
  rc = save_new(id, path, errbuf, errbuf_len);
  if (rc == GOOP_EEXIST) {
    /* Someone else created the file first: use theirs. */
    goop_identity_free(id);
    id = NULL;
    rc = goop_identity_load(path, &id, errbuf, errbuf_len);
    if (rc < 0)
      return rc;
    *ret = id;
    if (ret_created)
      *ret_created = false;
    return 0;
  }
  if (rc < 0) {
    goop_identity_free(id);
    return rc;
  }
  *ret = id;
  if (ret_created)
    *ret_created = true;
  return 0;
}
