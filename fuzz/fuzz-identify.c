/*
 * Identify: the input is decoded as one raw message, as a delimited stream
 * (split in two at a point taken from the input), and as a signed peer
 * record; a decoded message is re-encoded and its record verified.
 */
#include <stdint.h>
#include <stdlib.h>

#include "identify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  goop_identify id;
  goop_identify_init(&id);
  if (goop_identify_decode(&id, data, size) == 0) {
    goop_buf out;
    goop_buf_init(&out, 0);
    if (goop_identify_encode(&id, &out) == 0) {
      goop_identify again;
      goop_identify_init(&again);
      if (goop_identify_decode(&again, out.data, out.len) != 0)
        abort(); /* what we encode must decode */
      goop_identify_clear(&again);
    }
    goop_buf_reset(&out);
    size_t n;
    (void)goop_identify_encode_msgs(&id, &out, &n);
    goop_buf_free(&out);
    if (id.present & GOOP_ID_F_SIGNED_RECORD) {
      goop_peer_record rec;
      if (goop_peer_record_open(id.signed_peer_record.data, id.signed_peer_record.len, &rec) == 0)
        goop_peer_record_clear(&rec);
    }
  }
  goop_identify_clear(&id);

  goop_identify_init(&id);
  goop_identify_reader r;
  goop_identify_reader_init(&r, &id);
  size_t split = size ? data[0] % (size + 1) : 0;
  if (goop_identify_reader_feed(&r, data, split) == 0 &&
      goop_identify_reader_feed(&r, data + split, size - split) == 0)
    (void)goop_identify_reader_finish(&r, NULL);
  goop_identify_reader_clear(&r);
  goop_identify_clear(&id);

  goop_peer_record rec;
  if (goop_peer_record_open(data, size, &rec) == 0)
    goop_peer_record_clear(&rec);
  goop_envelope e;
  (void)goop_envelope_parse(data, size, &e);
  return 0;
}
