/*
 * Holds every packet of one NFQUEUE queue for a fixed time, then lets it go, in the order the
 * packets came: a one-way delay for test networks on a kernel without netem.
 *
 *   delay <queue number> <milliseconds>
 *
 * Prints "ready" once it takes packets. Exits, letting every held packet go, on SIGTERM or when
 * its standard input closes (the test that started it is gone). A queue too long to hold lets
 * packets through at once rather than drop them; so does the kernel while nothing reads the queue
 * (fail-open).
 */
#define _GNU_SOURCE /* ppoll */
#include <arpa/inet.h>
#include <errno.h>
#include <libnetfilter_queue/libnetfilter_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* The verdict that lets a packet go on (linux/netfilter.h, whose struct in_addr clashes with glibc's). */
#ifndef NF_ACCEPT
#define NF_ACCEPT 1
#endif

#ifndef SOL_NETLINK
#define SOL_NETLINK 270
#endif

#define MAX_HELD 65536

struct held {
  uint32_t id;
  uint64_t due_ns;
};

static struct held ring[MAX_HELD];
static unsigned head, tail;
static uint64_t delay_ns;
static volatile sig_atomic_t stopping;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int on_packet(struct nfq_q_handle *queue, struct nfgenmsg *message, struct nfq_data *data, void *context) {
  (void)message;
  (void)context;
  struct nfqnl_msg_packet_hdr *header = nfq_get_msg_packet_hdr(data);
  if (!header) return 0;
  uint32_t id = ntohl(header->packet_id);
  if (tail - head >= MAX_HELD) return nfq_set_verdict(queue, id, NF_ACCEPT, 0, NULL);
  ring[tail % MAX_HELD] = (struct held){id, now_ns() + delay_ns};
  tail++;
  return 0;
}

static void release(struct nfq_q_handle *queue, uint64_t until_ns) {
  while (head != tail && ring[head % MAX_HELD].due_ns <= until_ns) {
    nfq_set_verdict(queue, ring[head % MAX_HELD].id, NF_ACCEPT, 0, NULL);
    head++;
  }
}

static void stop(int signal) {
  (void)signal;
  stopping = 1;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: delay <queue number> <milliseconds>\n");
    return 2;
  }
  uint16_t queue_number = (uint16_t)atoi(argv[1]);
  delay_ns = (uint64_t)atoi(argv[2]) * 1000000u;
  struct nfq_handle *handle = nfq_open();
  if (!handle) {
    perror("nfq_open");
    return 1;
  }
  struct nfq_q_handle *queue = nfq_create_queue(handle, queue_number, &on_packet, NULL);
  if (!queue) {
    perror("nfq_create_queue");
    return 1;
  }
  if (nfq_set_mode(queue, NFQNL_COPY_META, 0) < 0) {
    perror("nfq_set_mode");
    return 1;
  }
  nfq_set_queue_maxlen(queue, MAX_HELD);
  nfq_set_queue_flags(queue, NFQA_CFG_F_FAIL_OPEN, NFQA_CFG_F_FAIL_OPEN);
  int fd = nfq_fd(handle);
  int on = 1;
  setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on);
  nfnl_rcvbufsiz(nfq_nfnlh(handle), 16 * 1024 * 1024);
  struct sigaction action = {.sa_handler = stop};
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  printf("ready\n");
  fflush(stdout);

  static char buffer[65536];
  struct pollfd polled[2] = {{.fd = fd, .events = POLLIN}, {.fd = STDIN_FILENO, .events = POLLIN}};
  while (!stopping) {
    struct timespec wait = {.tv_sec = 0, .tv_nsec = 100000000};
    if (head != tail) {
      uint64_t now = now_ns(), due = ring[head % MAX_HELD].due_ns;
      uint64_t left = due > now ? due - now : 0;
      wait = (struct timespec){.tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u)};
    }
    if (ppoll(polled, 2, &wait, NULL) < 0 && errno != EINTR) break;
    if (polled[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char byte;
      if (read(STDIN_FILENO, &byte, 1) <= 0) break;
    }
    if (polled[0].revents & POLLIN) {
      for (;;) {
        ssize_t length = recv(fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (length <= 0) break;
        nfq_handle_packet(handle, buffer, (int)length);
      }
    }
    release(queue, now_ns());
  }
  release(queue, UINT64_MAX);
  nfq_destroy_queue(queue);
  nfq_close(handle);
  return 0;
}
