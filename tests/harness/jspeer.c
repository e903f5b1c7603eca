/*
 * A js-libp2p test peer as a child process, driven by JSON lines on the
 * caller's libevent loop. See jspeer.h.
 */
#include "jspeer.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <goop/common.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES (16u << 20)

struct goop_jspeer {
  struct event_base *base;
  pid_t pid;
  bool reaped;
  int status; /* raw waitpid status once reaped */
  int in_fd;  /* the child's stdin */
  int out_fd; /* the child's stdout */
  struct event *rd;
  struct event *tick;
  char *line;
  size_t len, cap;
  bool discarding; /* the current line is too long */
  bool eof;
  json_t *queue; /* parsed lines not taken yet */
  int next_id;
  char *peer_id;
  json_t *addrs;
};

static uint64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const char *goop_jspeer_program(void) {
  const char *p = getenv("GOOP_JS_PEER");
  if (p && *p)
    return p;
#ifdef TEST_DATA_DIR
  static const char fallback[] = TEST_DATA_DIR "/../interop/js-peer.sh";
  if (access(fallback, X_OK) == 0)
    return fallback;
#endif
  return NULL;
}

static void handle_line(goop_jspeer *js, const char *line, size_t len) {
  if (len == 0)
    return;
  json_error_t err;
  json_t *j = json_loadb(line, len, 0, &err);
  if (!j || !json_is_object(j)) {
    fprintf(stderr, "jspeer[%d]: not a JSON object: %.*s\n", (int)js->pid, (int)(len > 300 ? 300 : len),
            line);
    json_decref(j);
    return;
  }
  if (getenv("GOOP_JSPEER_TRACE"))
    fprintf(stderr, "jspeer[%d] < %.*s\n", (int)js->pid, (int)(len > 300 ? 300 : len), line);
  json_array_append_new(js->queue, j);
}

static void on_readable(evutil_socket_t fd, short what, void *arg) {
  (void)what;
  goop_jspeer *js = arg;
  char buf[65536];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
      return;
    if (n <= 0) {
      if (js->len && !js->discarding)
        handle_line(js, js->line, js->len);
      js->len = 0;
      js->eof = true;
      event_del(js->rd);
      return;
    }
    for (ssize_t i = 0; i < n; i++) {
      char c = buf[i];
      if (c == '\n') {
        if (!js->discarding)
          handle_line(js, js->line, js->len);
        js->len = 0;
        js->discarding = false;
        continue;
      }
      if (js->discarding)
        continue;
      if (js->len + 1 >= js->cap) {
        if (js->cap >= LINE_MAX_BYTES) {
          fprintf(stderr, "jspeer[%d]: line longer than %u bytes dropped\n", (int)js->pid, LINE_MAX_BYTES);
          js->discarding = true;
          js->len = 0;
          continue;
        }
        size_t ncap = js->cap ? js->cap * 2 : 4096;
        char *nl = realloc(js->line, ncap);
        if (!nl) {
          js->discarding = true;
          js->len = 0;
          continue;
        }
        js->line = nl;
        js->cap = ncap;
      }
      js->line[js->len++] = c;
    }
  }
}

static void on_tick(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  (void)arg;
}

int goop_jspeer_spawn(struct event_base *base, const char *program, const char *const *args,
                      goop_jspeer **ret) {
  if (!base || !ret)
    return GOOP_EINVAL;
  if (!program)
    program = goop_jspeer_program();
  if (!program)
    return GOOP_ENOENT;
  size_t nargs = 0;
  while (args && args[nargs])
    nargs++;
  char **argv = calloc(nargs + 2, sizeof(char *));
  if (!argv)
    return GOOP_ENOMEM;
  argv[0] = (char *)program;
  for (size_t i = 0; i < nargs; i++)
    argv[i + 1] = (char *)args[i];

  int rc = 0;
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  goop_jspeer *js = calloc(1, sizeof(*js));
  if (!js) {
    rc = GOOP_ENOMEM;
    goto fail_argv;
  }
  js->base = base;
  js->in_fd = js->out_fd = -1;
  js->next_id = 1;
  js->queue = json_array();
  if (!js->queue) {
    rc = GOOP_ENOMEM;
    goto fail_js;
  }
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
    rc = -errno;
    goto fail_pipes;
  }
  /* A write to a child that died must fail with EPIPE, not kill the test. */
  signal(SIGPIPE, SIG_IGN);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    rc = -errno;
    goto fail_pipes;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0)
      _exit(126);
    execv(program, argv);
    fprintf(stderr, "jspeer: exec %s: %s\n", program, strerror(errno));
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  js->pid = pid;
  js->in_fd = in[1];
  js->out_fd = out[0];
  fcntl(js->out_fd, F_SETFL, fcntl(js->out_fd, F_GETFL) | O_NONBLOCK);
  js->rd = event_new(base, js->out_fd, EV_READ | EV_PERSIST, on_readable, js);
  js->tick = evtimer_new(base, on_tick, js);
  if (!js->rd || !js->tick || event_add(js->rd, NULL) != 0) {
    free(argv);
    goop_jspeer_close(js, 0);
    return GOOP_ENOMEM;
  }
  free(argv);
  *ret = js;
  return 0;

fail_pipes:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0)
      close(in[i]);
    if (out[i] >= 0)
      close(out[i]);
  }
  json_decref(js->queue);
fail_js:
  free(js);
fail_argv:
  free(argv);
  return rc;
}

/* Run the loop once, at most |max_ms| (>= 1). */
static void run_once(goop_jspeer *js, uint64_t max_ms) {
  if (max_ms == 0)
    max_ms = 1;
  struct timeval tv = {(time_t)(max_ms / 1000u), (suseconds_t)((max_ms % 1000u) * 1000u)};
  evtimer_add(js->tick, &tv);
  event_base_loop(js->base, EVLOOP_ONCE);
  evtimer_del(js->tick);
}

void goop_jspeer_poll(goop_jspeer *js, int max_ms) {
  run_once(js, max_ms > 0 ? (uint64_t)max_ms : 1);
}

bool goop_jspeer_run_until(goop_jspeer *js, const volatile bool *flag, int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (;;) {
    if (*flag)
      return true;
    uint64_t now = now_ms();
    if (now >= deadline)
      return false;
    uint64_t left = deadline - now;
    run_once(js, left < 50 ? left : 50);
  }
}

void goop_jspeer_run_for(goop_jspeer *js, int ms) {
  static const bool never = false;
  (void)goop_jspeer_run_until(js, &never, ms);
}

uint64_t goop_jspeer_now_ms(void) {
  return now_ms();
}

typedef json_t *(*match_fn)(goop_jspeer *js, const void *arg);

/* Run the loop until |match| returns a message or the deadline passes. */
static json_t *wait_for(goop_jspeer *js, match_fn match, const void *arg, int timeout_ms) {
  uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  for (;;) {
    json_t *m = match(js, arg);
    if (m)
      return m;
    uint64_t now = now_ms();
    if (js->eof || now >= deadline)
      return NULL;
    uint64_t left = deadline - now;
    run_once(js, left < 100 ? left : 100);
  }
}

struct event_match {
  const char *name, *key, *value;
};

static json_t *take_event(goop_jspeer *js, const void *arg) {
  const struct event_match *em = arg;
  size_t i;
  json_t *m;
  json_array_foreach(js->queue, i, m) {
    const char *ev = json_string_value(json_object_get(m, "event"));
    if (!ev || strcmp(ev, em->name) != 0)
      continue;
    if (em->key) {
      const char *v = json_string_value(json_object_get(m, em->key));
      if (!v || !em->value || strcmp(v, em->value) != 0)
        continue;
    }
    json_incref(m);
    json_array_remove(js->queue, i);
    return m;
  }
  return NULL;
}

static json_t *take_reply(goop_jspeer *js, const void *arg) {
  int id = *(const int *)arg;
  size_t i;
  json_t *m;
  json_array_foreach(js->queue, i, m) {
    json_t *jid = json_object_get(m, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) != id || json_object_get(m, "event"))
      continue;
    json_incref(m);
    json_array_remove(js->queue, i);
    return m;
  }
  return NULL;
}

json_t *goop_jspeer_wait_event(goop_jspeer *js, const char *name, const char *key, const char *value,
                               int timeout_ms) {
  if (!js || !name)
    return NULL;
  struct event_match em = {name, key, value};
  return wait_for(js, take_event, &em, timeout_ms);
}

json_t *goop_jspeer_wait_reply(goop_jspeer *js, int id, int timeout_ms) {
  if (!js)
    return NULL;
  return wait_for(js, take_reply, &id, timeout_ms);
}

int goop_jspeer_wait_listening(goop_jspeer *js, int timeout_ms) {
  if (!js)
    return GOOP_EINVAL;
  json_t *m = goop_jspeer_wait_event(js, "listening", NULL, NULL, timeout_ms);
  if (!m)
    return js->eof ? GOOP_ECLOSED : GOOP_ETIMEDOUT;
  const char *id = json_string_value(json_object_get(m, "peer_id"));
  json_t *addrs = json_object_get(m, "addrs");
  if (!id || !json_is_array(addrs)) {
    json_decref(m);
    return GOOP_EPROTO;
  }
  free(js->peer_id);
  js->peer_id = strdup(id);
  json_decref(js->addrs);
  js->addrs = json_incref(addrs);
  json_decref(m);
  return js->peer_id ? 0 : GOOP_ENOMEM;
}

const char *goop_jspeer_peer_id(const goop_jspeer *js) {
  return js ? js->peer_id : NULL;
}

const char *goop_jspeer_addr(const goop_jspeer *js, size_t i) {
  return js && js->addrs ? json_string_value(json_array_get(js->addrs, i)) : NULL;
}

int goop_jspeer_send(goop_jspeer *js, json_t *cmd) {
  if (!js || !json_is_object(cmd))
    return GOOP_EINVAL;
  if (js->in_fd < 0)
    return GOOP_ECLOSED;
  int id = js->next_id++;
  json_object_set_new(cmd, "id", json_integer(id));
  char *text = json_dumps(cmd, JSON_COMPACT);
  if (!text)
    return GOOP_ENOMEM;
  if (getenv("GOOP_JSPEER_TRACE"))
    fprintf(stderr, "jspeer[%d] > %s\n", (int)js->pid, text);
  size_t len = strlen(text);
  int rc = id;
  size_t off = 0;
  /* Lines are short; the child reads stdin all the time, so a blocking write is fine. */
  char nl = '\n';
  while (off < len + 1) {
    const char *p = off < len ? text + off : &nl;
    size_t n = off < len ? len - off : 1;
    ssize_t w = write(js->in_fd, p, n);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0) {
      rc = w < 0 ? -errno : GOOP_EIO;
      break;
    }
    off += (size_t)w;
  }
  free(text);
  return rc;
}

json_t *goop_jspeer_call(goop_jspeer *js, json_t *cmd, int timeout_ms) {
  if (!cmd)
    return NULL;
  int id = goop_jspeer_send(js, cmd);
  json_decref(cmd);
  if (id < 0)
    return NULL;
  return goop_jspeer_wait_reply(js, id, timeout_ms);
}

bool goop_jspeer_eof(const goop_jspeer *js) {
  return js ? js->eof : true;
}

pid_t goop_jspeer_pid(const goop_jspeer *js) {
  return js ? js->pid : -1;
}

int goop_jspeer_kill(goop_jspeer *js, int sig) {
  if (!js || js->pid <= 0 || js->reaped)
    return GOOP_EINVAL;
  return kill(js->pid, sig) == 0 ? 0 : -errno;
}

static bool try_reap(goop_jspeer *js, bool block) {
  if (js->reaped || js->pid <= 0)
    return true;
  for (;;) {
    pid_t r = waitpid(js->pid, &js->status, block ? 0 : WNOHANG);
    if (r < 0 && errno == EINTR)
      continue;
    if (r == js->pid || r < 0) {
      js->reaped = true;
      if (r < 0)
        js->status = -1;
      return true;
    }
    return false;
  }
}

int goop_jspeer_close(goop_jspeer *js, int timeout_ms) {
  if (!js)
    return GOOP_EINVAL;
  if (js->in_fd >= 0 && !js->eof && timeout_ms > 0) {
    json_t *cmd = json_pack("{s:s}", "cmd", "exit");
    if (cmd) {
      (void)goop_jspeer_send(js, cmd);
      json_decref(cmd);
    }
  }
  if (js->in_fd >= 0)
    close(js->in_fd);
  js->in_fd = -1;
  /* Keep the loop (and so the C hosts) running while the child shuts down. */
  uint64_t deadline = now_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
  while (!try_reap(js, false) && now_ms() < deadline)
    run_once(js, 20);
  if (!js->reaped) {
    kill(js->pid, SIGKILL);
    try_reap(js, true);
  }
  int rc;
  if (js->status < 0)
    rc = GOOP_EIO;
  else if (WIFEXITED(js->status))
    rc = WEXITSTATUS(js->status);
  else if (WIFSIGNALED(js->status))
    rc = 128 + WTERMSIG(js->status);
  else
    rc = GOOP_EIO;
  if (js->rd)
    event_free(js->rd);
  if (js->tick)
    event_free(js->tick);
  if (js->out_fd >= 0)
    close(js->out_fd);
  free(js->line);
  json_decref(js->queue);
  json_decref(js->addrs);
  free(js->peer_id);
  free(js);
  return rc;
}

/* ---- reply helpers ---- */

bool goop_jspeer_ok(const json_t *reply) {
  return reply && json_is_true(json_object_get(reply, "ok"));
}

const char *goop_jspeer_error(const json_t *reply) {
  if (!reply)
    return "(no reply)";
  const char *e = json_string_value(json_object_get(reply, "error"));
  return e ? e : "";
}

bool goop_jspeer_array_has(const json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    const char *t = json_string_value(v);
    if (t && s && strcmp(t, s) == 0)
      return true;
  }
  return false;
}
