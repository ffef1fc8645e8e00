/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* How to reach an NBD server: a connect that tries every resolved address
 * under one deadline, and what every data socket needs to notice a server
 * that is gone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error-text.h"
#include "address.h"
#include "util/time-util.h"

/* Connects a stream socket (SOCK_CLOEXEC) to the address before the
 * deadline, trying resolved addresses in parallel. Returns the fd in *ret_fd;
 * negative errno: -EHOSTUNREACH (resolution or routing), -ECONNREFUSED,
 * -ETIMEDOUT, with a message prefixed "connect: " in error. */
int net_connect(const NbdAddress *a, usec_t deadline, int *ret_fd, Error *error);
/* The same, giving up with -ECANCELED ("connect: cancelled …") as soon as
 * cancel_fd (an eventfd or pipe, or -EBADF for none) becomes readable: it is
 * polled next to the resolver's wait and the connecting sockets. Nothing
 * reads from it, so one write cancels every later call too. */
int net_connect_cancellable(const NbdAddress *a, usec_t deadline, int cancel_fd,
                            int *ret_fd, Error *error);

/* After the kernel stopped using a connection: 1 when the server ended it
 * (its FIN or a reset arrived before we shut the socket down), 0 when it
 * fell silent and our side ended it (the kernel's I/O timeout), -EPROTOTYPE
 * for a socket that is not TCP, else negative errno. */
int net_tcp_peer_ended(int fd);

/* How a data socket notices a peer that is gone without a word (a host
 * powered off, a network that dropped it): keepalive probes after 30 s
 * idle, every 10 s, 6 unanswered end it; and data left unacknowledged for
 * 90 s ends it too (TCP_USER_TIMEOUT). The kernel's I/O then fails, or a
 * persistent device reconnects, instead of waiting forever when the I/O
 * timeout is 0 (the default). */
#define NET_KEEPALIVE_IDLE_SEC 30
#define NET_KEEPALIVE_INTERVAL_SEC 10
#define NET_KEEPALIVE_COUNT 6
#define NET_USER_TIMEOUT_SEC 90

/* Sets the above on a TCP socket. 0 for other sockets (a unix socket's
 * peer cannot vanish unnoticed), negative errno if a setting failed. */
int net_set_keepalive(int fd);

struct addrinfo;
/* The connect half of net_connect() for addresses resolved already: starts
 * one attempt every 250 ms (sooner when one fails), alternating address
 * families, and keeps the first that succeeds. host and port only name the
 * server in messages. Same errors as net_connect(). */
int net_connect_addrinfo(const struct addrinfo *list, const char *host, uint16_t port,
                         usec_t deadline, int *ret_fd, Error *error);

/* Host name lookups running now, on threads of their own; at most
 * LIMIT_RESOLVERS_TOTAL, beyond which a lookup fails at once with
 * NBDLINK_ERR_LIMIT_EXCEEDED. */
unsigned net_resolvers_running(void);
