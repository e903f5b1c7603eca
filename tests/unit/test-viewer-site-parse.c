/* Unit test of the viewer's site-route parsers (cli/viewer/site-parse.c). */
#include "site-parse.h"
#include "tap.h"

static void test_range(void) {
  uint64_t s = 99, l = 99;
  CHECK_INT_EQ(site_parse_range(NULL, 10, &s, &l), 0);
  CHECK_INT_EQ(site_parse_range("items=0-1", 10, &s, &l), 0);
  CHECK_INT_EQ(site_parse_range("bytes=0-1,3-4", 10, &s, &l), 0);
  CHECK_INT_EQ(site_parse_range("bytes=2-5", 10, &s, &l), 1);
  CHECK(s == 2 && l == 4);
  CHECK_INT_EQ(site_parse_range("bytes=7-", 10, &s, &l), 1);
  CHECK(s == 7 && l == 3);
  CHECK_INT_EQ(site_parse_range("bytes=-3", 10, &s, &l), 1);
  CHECK(s == 7 && l == 3);
  CHECK_INT_EQ(site_parse_range("bytes=-30", 10, &s, &l), 1);
  CHECK(s == 0 && l == 10);
  CHECK_INT_EQ(site_parse_range("bytes=5-100", 10, &s, &l), 1);
  CHECK(s == 5 && l == 5);
  CHECK_INT_EQ(site_parse_range("bytes=10-", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=5-4", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=-0", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=-", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=abc", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=1-2x", 10, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=0-0", 0, &s, &l), -1);
  CHECK_INT_EQ(site_parse_range("bytes=99999999999999999999999-", 10, &s, &l), -1);
}

static void test_etag(void) {
  CHECK(site_etag_matches("\"a\"", "\"a\""));
  CHECK(site_etag_matches("W/\"a\"", "\"a\""));
  CHECK(site_etag_matches("\"x\", \"a\"", "\"a\""));
  CHECK(site_etag_matches("*", "\"a\""));
  CHECK(!site_etag_matches("\"ab\"", "\"a\""));
  CHECK(!site_etag_matches(NULL, "\"a\""));
  CHECK(!site_etag_matches("\"unterminated", "\"a\""));
}

static void test_paths(void) {
  CHECK(!site_path_tricky(""));
  CHECK(!site_path_tricky("index.html"));
  CHECK(!site_path_tricky("a/b.c/d%20e"));
  CHECK(site_path_tricky(".."));
  CHECK(site_path_tricky("a/../b"));
  CHECK(site_path_tricky("a/./b"));
  CHECK(site_path_tricky("a\\b"));
  CHECK(site_path_tricky("%2e%2e/x"));
  CHECK(site_path_tricky("a%2fb"));
  CHECK(site_path_tricky("a%5Cb"));
  CHECK(site_path_tricky("a%zz"));
  CHECK(site_path_tricky("a%"));
  CHECK(site_path_tricky("a\x01"));
  CHECK_STR_EQ(site_rel_path_ok("/a/b.html"), "a/b.html");
  CHECK(site_rel_path_ok("images/x.png") != NULL);
  CHECK(site_rel_path_ok("") == NULL);
  CHECK(site_rel_path_ok("a//b") == NULL);
  CHECK(site_rel_path_ok("a/") == NULL);
  CHECK(site_rel_path_ok("../x") == NULL);
  CHECK(site_rel_path_ok("a/./x") == NULL);
  CHECK(site_rel_path_ok("lua") == NULL);
  CHECK(site_rel_path_ok("lua/x.lua") == NULL);
  CHECK(site_rel_path_ok("lua2/x") != NULL);
  CHECK(site_rel_path_ok("a\\b") == NULL);
  CHECK(site_is_image("images/a.PNG"));
  CHECK(site_is_image("a.svg"));
  CHECK(!site_is_image("a.png.txt"));
  CHECK(!site_is_image("png"));
}

static void test_multipart(void) {
  const char *ct = "multipart/form-data; boundary=XyZ";
  const char *body = "--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\na/b.txt\r\n"
                     "--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"b.txt\"\r\n"
                     "Content-Type: text/plain\r\n\r\nline1\r\nline2\r\n--XyZ--\r\n";
  struct site_part p = {0}, f = {0};
  CHECK_INT_EQ(site_multipart_fields(ct, (const uint8_t *)body, strlen(body), &p, &f), 0);
  CHECK(p.found && p.len == 7 && memcmp(p.data, "a/b.txt", 7) == 0);
  CHECK(f.found && f.len == 12 && memcmp(f.data, "line1\r\nline2", 12) == 0);
  struct site_part p2 = {0}, f2 = {0};
  CHECK_INT_EQ(site_multipart_fields("multipart/form-data; boundary=\"XyZ\"", (const uint8_t *)body,
                                     strlen(body), &p2, &f2),
               0);
  CHECK(p2.found && f2.found);
  struct site_part p3 = {0}, f3 = {0};
  CHECK_INT_EQ(site_multipart_fields("text/plain", (const uint8_t *)body, strlen(body), &p3, &f3), -1);
  CHECK_INT_EQ(site_multipart_fields(ct, (const uint8_t *)body, 30, &p3, &f3), -1);
  const char *bad = "--XyZ\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\nno end";
  CHECK_INT_EQ(site_multipart_fields(ct, (const uint8_t *)bad, strlen(bad), &p3, &f3), -1);
  CHECK_INT_EQ(
      site_multipart_fields("multipart/form-data; boundary=", (const uint8_t *)body, strlen(body), &p3, &f3),
      -1);
}

int main(void) {
  RUN(test_range);
  RUN(test_etag);
  RUN(test_paths);
  RUN(test_multipart);
  return tap_done();
}
