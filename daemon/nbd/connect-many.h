/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The connections of one device, opened at once: each connect and handshake
 * runs on its own thread under the same deadline, so N connections take about
 * as long as one, and the first failure stops the others. */
#pragma once

#include <stddef.h>

#include "contract.h"
#include "error-text.h"
#include "handshake.h"
#include "net.h"
#include "util/time-util.h"


typedef struct ConnectManyParams {
        size_t n;                       /* 1 … ATTACH_MAX_CONNECTIONS */
        const NbdAddress *addr;         /* where slots without a socket connect */
        /* Optional: n already connected sockets, -EBADF for a slot that
         * connects to addr. Taken: every entry is -EBADF afterwards. */
        int *socks;
        HandshakeOptions handshake;     /* the same for every connection */
        usec_t deadline;
        /* Optional: another thread sets it to make connect_many() give up. */
        const int *cancelled;
        /* Optional: an fd that becomes readable once cancelled, so that name
         * resolution and connecting stop at once (net_connect_cancellable).
         * A pointer, so that leaving it out cannot mean fd 0. */
        const int *cancel_fd;
        /* Optional: called with each socket as soon as it exists and with
         * -EBADF before that socket is closed, so that a canceller can shut
         * down exactly the sockets that are live. May run on any of the
         * threads. */
        void (*publish)(void *userdata, size_t slot, int fd);
        void *userdata;
} ConnectManyParams;

/* Opens p->n connections and negotiates each up to the transmission phase.
 * On success hs[0 … n-1] hold their Conns (still published), all with the
 * same size and flags. More than one connection to a server without
 * NBD_FLAG_CAN_MULTI_CONN is -EINVAL. On failure every connection is closed
 * (and unpublished), hs[] are empty, and the errno and message are those of
 * the first connection that failed by itself, not of those stopped because
 * of it; -ECANCELED when *p->cancelled was set. */
int connect_many(const ConnectManyParams *p, Handshake *hs, Error *error);

/* handshake_done() on each of n. */
void handshakes_done(Handshake *hs, size_t n);
