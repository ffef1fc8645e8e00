/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a persistent device (attached through netlink, outliving the daemon)
 * needs remembered: one small state file per device under /run/nbdlink,
 * written atomically, the backend identifier the kernel keeps for it, and
 * the backoff between reconnect attempts. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/time-util.h"

#define PERSIST_STATE_DIR "/run/nbdlink"
#define PERSIST_DEFAULT_DEAD_TIMEOUT_SEC 60u
/* First retry soon (a restarting server is often back within a second),
 * then doubling, but never sleeping so long that a server that is back
 * waits more than a few seconds for us. */
#define PERSIST_BACKOFF_MIN_USEC (250 * USEC_PER_MSEC)
#define PERSIST_BACKOFF_MAX_USEC (5 * USEC_PER_SEC)
#define PERSIST_STATE_MAX_SIZE (16u * 1024u)

typedef struct PersistState {
        int index;                      /* N of /dev/nbdN */
        uint32_t owner_uid;
        char *host;                     /* as the caller wrote it */
        uint16_t port;                  /* the option 'port', 0 when not given */
        char *export_name;
        char *backend;                  /* NBD_ATTR_BACKEND_IDENTIFIER */
        uint64_t size;
        uint16_t flags;
        uint32_t block_size;
        uint32_t connections;
        uint32_t timeout_sec;           /* connect and handshake, for reconnects */
        uint32_t dead_timeout_sec;
        uint32_t io_timeout_sec;        /* the kernel's per-request timeout */
        bool read_only;
        bool tls;                       /* kTLS: the credentials are not kept (see device-persist.c) */
        /* The option 'persist': a dead link is reconnected. Without it the
         * device still outlives nbdlinkd (the kernel runs it through
         * netlink), but a dead link ends it. */
        bool reconnect;
        uint64_t attached_since;        /* µs, realtime */
        uint64_t dead_since;            /* µs, realtime; 0 while the link is alive */
} PersistState;

void persist_state_done(PersistState *s);

/* Writes dir/nbdN: a temporary file in dir, fsync, rename over the old one,
 * so a reader sees the old or the new file, never half of one. */
int persist_state_write(const char *dir, const PersistState *s);
/* Reads dir/nbd<index>. -ENOENT when there is none; -EINVAL for a file that
 * is not ours, is too large, or lacks a key. */
int persist_state_read(const char *dir, int index, PersistState *ret);
int persist_state_remove(const char *dir, int index);
/* The indexes of every state file in dir, ascending, in a malloc()ed array.
 * A missing dir is an empty list. */
int persist_state_list(const char *dir, int **ret, size_t *ret_n);

/* "nbdlink:<host>:<port>/<export>" with bytes outside printable ASCII
 * escaped as \xNN, so that the sysfs "backend" reads back as written; an
 * export too long for NBD_NL_BACKEND_MAX is cut and followed by a hash of
 * the whole name. address is nbd_address_format()'s text. */
int persist_backend_id(const char *address, const char *export_name, char **ret);

/* Sleep before reconnect attempt number attempt (0-based): exponential
 * from PERSIST_BACKOFF_MIN_USEC up to PERSIST_BACKOFF_MAX_USEC, then a
 * random point in its upper half ("equal jitter") so that many devices of
 * one server do not reconnect in lockstep. random is any 32-bit value. */
usec_t persist_backoff_usec(unsigned attempt, uint32_t random);
