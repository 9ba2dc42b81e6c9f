/*
 * net-admin-helper: the client of the host service (docs/SERVICE.md, "The client").
 *
 * It trusts nothing of its caller: the environment is cleared, only the pid argument is parsed,
 * the container's network namespace is opened exactly once (with CAP_SYS_PTRACE raised when it
 * is permitted, as a file-capability install grants), then every capability is dropped and
 * no_new_privs set before the control socket is touched. The service is reached on an abstract
 * UNIX socket of the current network namespace and must be owned by root. Every failure of the
 * client itself is one line "<command>: <message>" on stderr and exit status 1.
 *
 * The administrator (root) also starts the service when there is none, and replaces one that
 * leaves a cwg_destroy unanswered. Starting needs the privileges dropped above, so an admin
 * client forks a starter first that keeps them, does nothing but start the service on request,
 * and exits with the client.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef WGTS_NODE
#error "WGTS_NODE must be the absolute path of the node binary (binding.gyp defines it)"
#endif
/* The control socket's abstract name and the service's uid; tests build variants of both. */
#ifndef WGTS_CONTROL_NAME
#define WGTS_CONTROL_NAME "wireguard-ts/control"
#endif
#ifndef WGTS_ADMIN_UID
#define WGTS_ADMIN_UID 0
#endif

#define TAG "WGTS1"
#define MAX_PACKET 65536
#define SILENCE_MS 5000
#define START_WAIT_MS 10000
#define KILL_WAIT_MS 5000
#define MAX_PID 4194304
/* The service script, relative to the package root (this executable is build/Release/ in it). */
#define SERVICE_SCRIPT "/dist/src/cli/service.js"

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD 77 /* Linux 6.5 */
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

static const char *who = "net-admin-helper";

/* 0, or -1 with errno set. */
static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return -1;
    if (w == 0) {
      errno = EIO;
      return -1;
    }
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

/* The one failure path: "<command>: <message>\n" on stderr, exit 1, nothing on stdout. */
__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
  char msg[768], line[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  for (char *c = msg; *c; c++)
    if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = '?';
  int n = snprintf(line, sizeof line, "%s: %s\n", who, msg);
  (void)write_all(2, line, n < 0 ? 0 : (size_t)n >= sizeof line ? sizeof line - 1 : (size_t)n);
  _exit(1);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* Closed standard descriptors become /dev/null, so no socket of ours can take their place. */
static void sane_stdio(void) {
  for (int fd = 0; fd < 3; fd++) {
    if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF) continue;
    int n = open("/dev/null", O_RDWR);
    if (n < 0) _exit(1);
    if (n != fd) {
      dup2(n, fd);
      close(n);
    }
  }
}

static int is_device_command(const char *c) {
  return !strcmp(c, "cwg_create") || !strcmp(c, "cwg_connect") || !strcmp(c, "cwg_destroy") || !strcmp(c, "show");
}

/* A canonical decimal pid: digits only, no leading zero, 1..MAX_PID. */
static int canonical_pid(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 7 || s[0] == '0') return 0;
  long v = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  return v >= 1 && v <= MAX_PID;
}

/* ---- capabilities (capget/capset directly: no libcap) ---- */

struct caps {
  struct __user_cap_header_struct hdr;
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
};

static int caps_get(struct caps *c) {
  memset(c, 0, sizeof *c);
  c->hdr.version = _LINUX_CAPABILITY_VERSION_3;
  return (int)syscall(SYS_capget, &c->hdr, c->data);
}

static int caps_set(struct caps *c) {
  c->hdr.version = _LINUX_CAPABILITY_VERSION_3;
  c->hdr.pid = 0;
  return (int)syscall(SYS_capset, &c->hdr, c->data);
}

/* CAP_SYS_PTRACE into the effective set if it is permitted (drop_privileges clears it). */
static void raise_ptrace(void) {
  struct caps c;
  if (caps_get(&c) < 0) return;
  uint32_t bit = 1U << (CAP_SYS_PTRACE % 32);
  if (!(c.data[CAP_SYS_PTRACE / 32].permitted & bit)) return;
  c.data[CAP_SYS_PTRACE / 32].effective |= bit;
  (void)caps_set(&c);
}

/* Effective, permitted, inheritable and ambient emptied, no_new_privs set; fails closed. */
static void drop_privileges(void) {
  struct caps c;
  memset(&c, 0, sizeof c);
  if (caps_set(&c) < 0) fail("cannot drop capabilities: %s", strerror(errno));
  (void)prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); /* emptied with P anyway */
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) fail("cannot set no_new_privs: %s", strerror(errno));
  if (caps_get(&c) < 0) fail("cannot read capabilities: %s", strerror(errno));
  for (int i = 0; i < _LINUX_CAPABILITY_U32S_3; i++)
    if (c.data[i].effective || c.data[i].permitted || c.data[i].inheritable) fail("capabilities remain after dropping them");
}

/* ---- the starter (admin only): starts the service with the privileges the client gives up ---- */

struct start_result {
  int err;
  char what[PATH_MAX + 64];
};

static int starter_req = -1, starter_ans = -1;

/*
 * node <script> in a session of its own (fork, setsid, fork: never a session leader, and not
 * our child), cwd /, umask 022, stdio on /dev/null, default signal dispositions and mask, no
 * descriptor of ours, an empty environment. Reports exec failures through a CLOEXEC pipe.
 */
static void start_service(struct start_result *res) {
  memset(res, 0, sizeof *res);
  char exe[PATH_MAX], path[PATH_MAX + 64], script[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) {
    res->err = errno ? errno : ENOENT;
    snprintf(res->what, sizeof res->what, "/proc/self/exe");
    return;
  }
  exe[n] = 0;
  for (int up = 0; up < 3; up++) { /* .../build/Release/net-admin-helper -> ... */
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
  }
  snprintf(path, sizeof path, "%s%s", exe, SERVICE_SCRIPT);
  if (!realpath(path, script)) {
    res->err = errno;
    snprintf(res->what, sizeof res->what, "%s", path);
    return;
  }
  int ep[2];
  if (pipe2(ep, O_CLOEXEC) < 0) {
    res->err = errno;
    snprintf(res->what, sizeof res->what, "pipe");
    return;
  }
  pid_t child = fork();
  if (child < 0) {
    res->err = errno;
    snprintf(res->what, sizeof res->what, "fork");
    close(ep[0]);
    close(ep[1]);
    return;
  }
  if (child == 0) {
    close(ep[0]);
    if (setsid() < 0) _exit(1);
    pid_t grandchild = fork();
    if (grandchild != 0) _exit(grandchild < 0 ? 1 : 0);
    int err = 0;
    if (chdir("/") < 0) err = errno;
    umask(022);
    int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (dn < 0 || dup2(dn, 0) < 0 || dup2(dn, 1) < 0 || dup2(dn, 2) < 0) err = errno;
    sigset_t all;
    sigemptyset(&all);
    sigprocmask(SIG_SETMASK, &all, NULL);
    for (int sig = 1; sig < NSIG; sig++) signal(sig, SIG_DFL); /* fails harmlessly for some */
    (void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    if (err == 0) {
      char *const av[] = {(char *)WGTS_NODE, script, NULL};
      char *const ev[] = {NULL};
      execve(WGTS_NODE, av, ev);
      err = errno;
    }
    (void)write_all(ep[1], (const char *)&err, sizeof err);
    _exit(127);
  }
  close(ep[1]);
  int status;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  int err = 0;
  ssize_t r;
  do r = read(ep[0], &err, sizeof err);
  while (r < 0 && errno == EINTR);
  close(ep[0]);
  if (r == (ssize_t)sizeof err) {
    res->err = err;
    snprintf(res->what, sizeof res->what, "%s %s", WGTS_NODE, script);
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    res->err = EAGAIN;
    snprintf(res->what, sizeof res->what, "fork");
  }
}

static void starter_spawn(void) {
  int req[2], ans[2];
  if (pipe2(req, O_CLOEXEC) < 0) return;
  if (pipe2(ans, O_CLOEXEC) < 0) {
    close(req[0]);
    close(req[1]);
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    close(req[0]);
    close(req[1]);
    close(ans[0]);
    close(ans[1]);
    return;
  }
  if (pid == 0) {
    close(req[1]);
    close(ans[0]);
    /* Hold none of the caller's descriptors: its stdout must see EOF when the client exits. */
    int dn = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (dn >= 0) {
      dup2(dn, 0);
      dup2(dn, 1);
      dup2(dn, 2);
    }
    for (;;) {
      char c;
      ssize_t n = read(req[0], &c, 1);
      if (n < 0 && errno == EINTR) continue;
      if (n != 1) _exit(0); /* the client is gone */
      struct start_result res;
      start_service(&res);
      if (write_all(ans[1], (const char *)&res, sizeof res) < 0) _exit(0);
    }
  }
  close(req[0]);
  close(ans[1]);
  starter_req = req[1];
  starter_ans = ans[0];
}

static void request_start(void) {
  struct start_result res;
  char c = 's';
  if (starter_req < 0) fail("cannot start the service: no starter process (fork failed)");
  if (write_all(starter_req, &c, 1) < 0) fail("cannot start the service: the starter process is gone");
  size_t got = 0;
  while (got < sizeof res) {
    ssize_t n = read(starter_ans, (char *)&res + got, sizeof res - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("cannot start the service: the starter process is gone");
    got += (size_t)n;
  }
  if (res.err) fail("cannot start the service: %s: %s", res.what, strerror(res.err));
}

/* ---- the connection ---- */

struct conn {
  int fd;
  pid_t pid;
  int pidfd;
};

static int connect_once(struct conn *c) {
  struct sockaddr_un sa;
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  size_t n = strlen(WGTS_CONTROL_NAME);
  memcpy(sa.sun_path + 1, WGTS_CONTROL_NAME, n);
  socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) fail("cannot create a socket: %s", strerror(errno));
  /* Bounds connect (a full backlog) and every send by the same silence limit. */
  struct timeval tv = {.tv_sec = SILENCE_MS / 1000, .tv_usec = 0};
  if (setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0) fail("cannot set a socket timeout: %s", strerror(errno));
  int r;
  do r = connect(s, (struct sockaddr *)&sa, len);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    close(s);
    return e;
  }
  struct ucred cred;
  socklen_t clen = sizeof cred;
  if (getsockopt(s, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0) fail("cannot read the service's credentials: %s", strerror(errno));
  if (cred.uid != WGTS_ADMIN_UID)
    fail("the control socket @%s belongs to uid %u, not to %s: refusing to talk to it", WGTS_CONTROL_NAME,
         (unsigned)cred.uid, WGTS_ADMIN_UID == 0 ? "root" : "the service's uid");
  c->fd = s;
  c->pid = cred.pid;
  c->pidfd = -1;
  clen = sizeof c->pidfd;
  if (getsockopt(s, SOL_SOCKET, SO_PEERPIDFD, &c->pidfd, &clen) < 0) c->pidfd = -1;
  return 0;
}

static void conn_close(struct conn *c) {
  if (c->fd >= 0) close(c->fd);
  if (c->pidfd >= 0) close(c->pidfd);
  c->fd = c->pidfd = -1;
}

static void connect_service(struct conn *c, int admin) {
  int e = connect_once(c);
  if (e == 0) return;
  if ((e == ECONNREFUSED || e == ENOENT) && admin) {
    request_start();
    int64_t deadline = now_ms() + START_WAIT_MS;
    int pause = 5;
    for (;;) {
      sleep_ms(pause);
      if (pause < 50) pause *= 2;
      e = connect_once(c);
      if (e == 0) return;
      if (e != ECONNREFUSED && e != ENOENT) break;
      if (now_ms() >= deadline) fail("the service did not start within %d s", START_WAIT_MS / 1000);
    }
  }
  if (e == ECONNREFUSED || e == ENOENT) fail("the service is not running (nothing listens on @%s)", WGTS_CONTROL_NAME);
  if (e == EAGAIN) fail("the service does not accept connections (nothing within %d s)", SILENCE_MS / 1000);
  fail("cannot connect to the service: %s", strerror(e));
}

/* ---- one request ---- */

enum outcome { DONE, SILENT, CLOSED, MALFORMED };

struct answer {
  int code;
  const char *out, *err;
  size_t outlen, errlen;
};

static char reply[MAX_PACKET];

static int send_request(struct conn *c, const char *req, size_t len, int nsfd) {
  union {
    struct cmsghdr align;
    char raw[CMSG_SPACE(sizeof(int))];
  } ctl;
  struct iovec iov = {.iov_base = (void *)req, .iov_len = len};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
  if (nsfd >= 0) {
    memset(&ctl, 0, sizeof ctl);
    m.msg_control = ctl.raw;
    m.msg_controllen = sizeof ctl.raw;
    struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cm), &nsfd, sizeof nsfd);
  }
  ssize_t n;
  do n = sendmsg(c->fd, &m, MSG_NOSIGNAL);
  while (n < 0 && errno == EINTR);
  if (n == (ssize_t)len) return DONE;
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return SILENT;
  if (n < 0 && (errno == EPIPE || errno == ECONNRESET)) return CLOSED;
  if (n < 0 && errno == EMSGSIZE) fail("the request is too large for the control socket");
  fail("cannot send the request: %s", n < 0 ? strerror(errno) : "short send");
}

/* "WGTS1\0done\0<code>\0<stdout>\0<stderr>": exactly five fields, code canonical 0..255. */
static int parse_done(const char *p, size_t n, struct answer *a) {
  static const char head[] = TAG "\0done\0";
  if (n < sizeof head - 1 || memcmp(p, head, sizeof head - 1)) return -1;
  const char *f = p + sizeof head - 1, *end = p + n;
  const char *z1 = memchr(f, 0, (size_t)(end - f));
  if (!z1) return -1;
  size_t clen = (size_t)(z1 - f);
  if (clen == 0 || clen > 3 || (clen > 1 && f[0] == '0')) return -1;
  int code = 0;
  for (size_t i = 0; i < clen; i++) {
    if (f[i] < '0' || f[i] > '9') return -1;
    code = code * 10 + (f[i] - '0');
  }
  if (code > 255) return -1;
  const char *o = z1 + 1;
  const char *z2 = memchr(o, 0, (size_t)(end - o));
  if (!z2) return -1;
  const char *e = z2 + 1;
  if (memchr(e, 0, (size_t)(end - e))) return -1;
  a->code = code;
  a->out = o;
  a->outlen = (size_t)(z2 - o);
  a->err = e;
  a->errlen = (size_t)(end - e);
  return 0;
}

/*
 * Sends the request and waits for `done`; heartbeats (`wait`) restart the silence timer.
 * *heard says whether anything at all came back (a dying service closes without a word).
 */
static enum outcome exchange(struct conn *c, const char *req, size_t len, int nsfd, struct answer *a, int *heard) {
  *heard = 0;
  int r = send_request(c, req, len, nsfd);
  if (r != DONE) return (enum outcome)r;
  static const char wait_msg[] = TAG "\0wait";
  int64_t deadline = now_ms() + SILENCE_MS;
  for (;;) {
    int64_t left = deadline - now_ms();
    if (left <= 0) return SILENT;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int p = poll(&pfd, 1, (int)left);
    if (p < 0 && errno == EINTR) continue;
    if (p < 0) fail("poll: %s", strerror(errno));
    if (p == 0) return SILENT;
    /* No control buffer: a descriptor the service might send is closed by the kernel. */
    struct iovec iov = {.iov_base = reply, .iov_len = sizeof reply};
    struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT);
    /* ECONNRESET (the service closed with our data unread) comes before its own packets. */
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == ECONNRESET)) continue;
    if (n < 0) fail("cannot receive the answer: %s", strerror(errno));
    if (n == 0) return CLOSED;
    if (m.msg_flags & MSG_TRUNC) return MALFORMED;
    *heard = 1;
    if ((size_t)n == sizeof wait_msg - 1 && !memcmp(reply, wait_msg, sizeof wait_msg - 1)) {
      deadline = now_ms() + SILENCE_MS;
      continue;
    }
    return parse_done(reply, (size_t)n, a) == 0 ? DONE : MALFORMED;
  }
}

/* Kills an unresponsive service (by pidfd when the kernel gives one) and waits for it to go. */
static void kill_service(struct conn *c) {
  if (c->pidfd >= 0) {
    if (syscall(SYS_pidfd_send_signal, c->pidfd, SIGKILL, NULL, 0) < 0 && errno != ESRCH)
      fail("cannot kill the unresponsive service (pid %d): %s", (int)c->pid, strerror(errno));
    struct pollfd pfd = {.fd = c->pidfd, .events = POLLIN};
    while (poll(&pfd, 1, KILL_WAIT_MS) < 0 && errno == EINTR) {
    }
    return;
  }
  if (c->pid <= 0) fail("the service did not answer within %d s, and its pid is unknown", SILENCE_MS / 1000);
  if (kill(c->pid, SIGKILL) < 0 && errno != ESRCH)
    fail("cannot kill the unresponsive service (pid %d): %s", (int)c->pid, strerror(errno));
  int64_t deadline = now_ms() + KILL_WAIT_MS;
  while (kill(c->pid, 0) == 0 && now_ms() < deadline) sleep_ms(10);
}

/* Asking again a service that closed without a word: how often, and after what pause. */
#define RETRIES_AFTER_CLOSE 25
#define RETRY_AFTER_CLOSE_MS 200

static char request[MAX_PACKET + 1];

int main(int argc, char **argv) {
  clearenv();
  sane_stdio();
  signal(SIGPIPE, SIG_IGN);
  const char *cmd = argc > 1 ? argv[1] : "";
  if (!strcmp(cmd, "cwg_create") || !strcmp(cmd, "cwg_connect") || !strcmp(cmd, "cwg_destroy"))
    who = cmd;
  else if (!strcmp(cmd, "show"))
    who = "cwg show";
  int admin = getuid() == WGTS_ADMIN_UID && geteuid() == WGTS_ADMIN_UID;
  if (admin) starter_spawn();

  char ns[32] = "none";
  int nsfd = -1;
  if (argc > 2 && is_device_command(cmd) && canonical_pid(argv[2])) {
    char path[32];
    snprintf(path, sizeof path, "/proc/%s/ns/net", argv[2]);
    raise_ptrace();
    nsfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nsfd >= 0)
      snprintf(ns, sizeof ns, "fd");
    else
      snprintf(ns, sizeof ns, "errno:%d", errno);
  }
  drop_privileges();

  size_t len = 0;
  const char *fields[2] = {TAG, ns};
  for (int i = 0; i < 2 + argc - 1; i++) {
    const char *f = i < 2 ? fields[i] : argv[i - 1];
    size_t n = strlen(f);
    if (len + (i > 0) + n > MAX_PACKET) fail("the arguments are too long (a request is at most %d bytes)", MAX_PACKET);
    if (i > 0) request[len++] = 0;
    memcpy(request + len, f, n);
    len += n;
  }

  struct conn c;
  struct answer a;
  int heard = 0;
  connect_service(&c, admin);
  enum outcome o = exchange(&c, request, len, nsfd, &a, &heard);
  for (int tries = 0; o == CLOSED && !heard && tries < RETRIES_AFTER_CLOSE; tries++) {
    /* A service on its way out (killed, its descriptors still closing) accepted us and went
       without a word: nothing was done. Ask again whoever holds the socket now. */
    conn_close(&c);
    sleep_ms(RETRY_AFTER_CLOSE_MS);
    connect_service(&c, admin);
    o = exchange(&c, request, len, nsfd, &a, &heard);
  }
  if (o == SILENT && admin && !strcmp(cmd, "cwg_destroy")) {
    kill_service(&c);
    conn_close(&c);
    connect_service(&c, admin);
    o = exchange(&c, request, len, nsfd, &a, &heard);
    if (o == SILENT)
      fail("the service did not answer within %d s, nor did the one started in its place", SILENCE_MS / 1000);
  }
  switch (o) {
    case SILENT:
      fail("the service did not answer within %d s", SILENCE_MS / 1000);
    case CLOSED:
      fail("the service closed the connection without an answer");
    case MALFORMED:
      fail("malformed answer from the service");
    case DONE:
      break;
  }
  conn_close(&c);
  if (write_all(1, a.out, a.outlen) < 0) fail("cannot write the output: %s", strerror(errno));
  (void)write_all(2, a.err, a.errlen);
  return a.code;
}
