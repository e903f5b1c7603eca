/* HTML escaping shared by the viewer and the rendezvous pages. */
#ifndef GOOP_CLI_HTML_H
#define GOOP_CLI_HTML_H

#include <stddef.h>

/* The entity that replaces |c| in HTML text or attribute values, or NULL if
 * |c| stands for itself. */
static inline const char *html_entity(char c) {
  switch (c) {
  case '&':
    return "&amp;";
  case '<':
    return "&lt;";
  case '>':
    return "&gt;";
  case '"':
    return "&quot;";
  case '\'':
    return "&#39;";
  default:
    return NULL;
  }
}

#endif
