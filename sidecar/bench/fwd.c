/* The latency floor of a forwarder pair on this machine: a minimal plain-TCP forwarder, no TLS,
 * no policy, one thread, poll(2), TCP_NODELAY on both legs, one read and one write per chunk.
 * Two of them in a row (client side -> server side -> upstream) are what a sidecar pair would
 * cost if its own work were free; sidecar/bench/latency.sh measures them beside the real pairs.
 *   cc -O2 -o /var/tmp/fwd sidecar/bench/fwd.c
 *   taskset -c 0 /var/tmp/fwd 127.0.0.1:42531 127.0.0.1:42080 &   # server-side forwarder
 *   taskset -c 0 /var/tmp/fwd 127.0.0.1:42532 127.0.0.1:42531 &   # client-side forwarder
 * Loopback only (both addresses must be 127.0.0.1); at most 64 connections at once. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXC 64

static int addr_of(const char *s, struct sockaddr_in *a) {
  const char *colon = strrchr(s, ':');
  if (!colon || strncmp(s, "127.0.0.1:", 10) != 0) return -1;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_port = htons((unsigned short)atoi(colon + 1));
  a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return 0;
}

static void nodelay(int fd) {
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

int main(int argc, char **argv) {
  struct sockaddr_in listen_at, upstream;
  if (argc != 3 || addr_of(argv[1], &listen_at) || addr_of(argv[2], &upstream)) {
    fprintf(stderr, "usage: fwd 127.0.0.1:LISTEN 127.0.0.1:UPSTREAM\n");
    return 2;
  }
  int l = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&listen_at, sizeof listen_at) || listen(l, 128)) {
    perror("fwd: listen");
    return 1;
  }
  /* fds[0] the listener; then pairs (client, upstream) at 1+2i, 2+2i; -1 when free. */
  struct pollfd fds[1 + 2 * MAXC];
  fds[0].fd = l;
  fds[0].events = POLLIN;
  for (int i = 1; i < 1 + 2 * MAXC; i++) fds[i].fd = -1, fds[i].events = POLLIN;
  static char buf[65536];
  for (;;) {
    if (poll(fds, 1 + 2 * MAXC, -1) < 0) {
      if (errno == EINTR) continue;
      perror("fwd: poll");
      return 1;
    }
    if (fds[0].revents & POLLIN) {
      int c = accept(l, NULL, NULL);
      int slot = -1;
      for (int i = 0; i < MAXC; i++)
        if (fds[1 + 2 * i].fd < 0) { slot = i; break; }
      int u = c >= 0 && slot >= 0 ? socket(AF_INET, SOCK_STREAM, 0) : -1;
      if (u >= 0 && connect(u, (struct sockaddr *)&upstream, sizeof upstream) == 0) {
        nodelay(c);
        nodelay(u);
        fds[1 + 2 * slot].fd = c;
        fds[2 + 2 * slot].fd = u;
      } else {
        if (c >= 0) close(c);
        if (u >= 0) close(u);
      }
    }
    for (int i = 1; i < 1 + 2 * MAXC; i++) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      int peer = (i % 2) ? i + 1 : i - 1;
      ssize_t n = read(fds[i].fd, buf, sizeof buf), off = 0;
      while (n > 0 && off < n) {
        ssize_t w = write(fds[peer].fd, buf + off, n - off);
        if (w <= 0) { n = -1; break; }
        off += w;
      }
      if (n <= 0) {
        close(fds[i].fd);
        close(fds[peer].fd);
        fds[i].fd = fds[peer].fd = -1;
        fds[i].revents = fds[peer].revents = 0;
      }
    }
  }
}
