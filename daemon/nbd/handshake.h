/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of the NBD handshake phase as an explicit state machine:
 * greeting (oldstyle, newstyle, fixed newstyle), optional STARTTLS, then
 * NBD_OPT_GO (falling back to NBD_OPT_EXPORT_NAME), NBD_OPT_INFO or
 * NBD_OPT_LIST. Blocking I/O under the Conn's deadline: run it in a worker
 * thread, never in the event loop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conn.h"
#include "tls.h"
#include "util/time-util.h"

#define HANDSHAKE_DEFAULT_TIMEOUT_USEC (30 * USEC_PER_SEC)

typedef enum TlsMode {
        TLS_MODE_OFF,           /* never STARTTLS */
        TLS_MODE_ON,            /* STARTTLS when the server offers it */
        TLS_MODE_REQUIRE,       /* STARTTLS or fail; never plaintext */
        _TLS_MODE_MAX,
        _TLS_MODE_INVALID = -EINVAL,
} TlsMode;

const char *tls_mode_to_string(TlsMode m);
TlsMode tls_mode_from_string(const char *s);

typedef enum HandshakeGoal {
        HANDSHAKE_GO,           /* enter transmission (attach) */
        HANDSHAKE_INFO,         /* describe one export, then NBD_OPT_ABORT (Probe) */
        HANDSHAKE_LIST,         /* list exports, then NBD_OPT_ABORT (ListExports) */
} HandshakeGoal;

typedef struct HandshakeOptions {
        HandshakeGoal goal;
        const char *export_name;        /* GO and INFO; "" is the default export */
        TlsMode tls;
        const TlsConfig *tls_config;    /* required unless tls is TLS_MODE_OFF */
        /* GO for one of several connections: NBD_OPT_INFO first, and a
         * server without NBD_FLAG_CAN_MULTI_CONN is -EINVAL before it
         * entered transmission. */
        bool require_multi_conn;
        /* LIST: names and descriptions in all, at most; 0 is
         * NBD_MAX_LIST_BYTES, and more is never allowed. */
        size_t max_list_bytes;
} HandshakeOptions;

typedef struct NbdExportInfo {
        uint64_t size;
        uint16_t flags;                 /* transmission flags (NBD_FLAG_*) */
        uint32_t block_min;             /* 0: the server did not say */
        uint32_t block_preferred;
        uint32_t block_max;
        char *name;                     /* as the server named it, else as asked */
        char *description;              /* NULL unless the server sent one */
        bool tls;                       /* the transmission phase runs over TLS */
        bool oldstyle;
        bool fixed_newstyle;
} NbdExportInfo;

typedef struct NbdExportEntry {
        char *name;
        char *description;              /* "" when the server sent none */
} NbdExportEntry;

typedef enum HandshakeState HandshakeState;

typedef struct Handshake {
        /* Inputs. */
        HandshakeOptions options;
        Conn *conn;                     /* owned */

        /* Progress. */
        int state;                      /* HandshakeState, see handshake.c */
        uint16_t handshake_flags;
        uint32_t client_flags;
        bool tried_go;
        bool got_export;                /* NBD_INFO_EXPORT seen for this GO/INFO */
        uint32_t current_option;        /* NBD_OPT_GO or NBD_OPT_INFO in flight */
        unsigned n_info_replies;
        size_t n_allocated;             /* capacity of exports */
        size_t list_bytes;              /* names and descriptions listed so far */
        bool tls_ktls_refused;          /* see conn_tls_ktls_refused() */
        bool multi_conn_checked;        /* the INFO before GO is behind us */
        bool checking_listed;           /* LIST before EXPORT_NAME: is the export there? */

        /* Results. */
        NbdExportInfo info;
        NbdExportEntry *exports;
        size_t n_exports;

        /* Failure: the first one, as the error table of docs/errors.md
         * maps it, with a message that starts with the phase ("handshake: ",
         * "tls: ") and carries the server's own text; and the server's
         * NBD_REP_ERR_* if it refused (else 0). */
        Error error;
        uint32_t server_error;
} Handshake;

/* Takes ownership of conn, whose deadline bounds the whole handshake. */
void handshake_init(Handshake *hs, Conn *conn, const HandshakeOptions *options);
/* Runs to the end. 0 on success (info/exports filled; for HANDSHAKE_GO the
 * Conn is in the transmission phase); negative errno on failure with
 * hs->error set. */
int handshake_run(Handshake *hs);
/* After a successful HANDSHAKE_GO whose connection will not be handed on
 * (a sibling failed, the kernel refused): NBD_CMD_DISC through the Conn (TLS
 * or not), the one clean way out of transmission. No-op in any other state.
 * Returns what the write returned. */
int handshake_end_transmission(Handshake *hs);
/* The same on a plain descriptor in the transmission phase: the kernel's
 * end of a relay, a kTLS socket, or a plaintext TCP socket. Never blocks;
 * 0 or negative errno. */
int nbd_send_disc(int fd);
/* Hands the connection out (for the kernel or the TLS relay). */
Conn *handshake_take_conn(Handshake *hs);
/* Frees what the handshake still owns (results included). */
void handshake_done(Handshake *hs);

void nbd_export_info_done(NbdExportInfo *info);
/* Moves the results out so they outlive handshake_done(). */
void nbd_export_info_move(NbdExportInfo *dst, NbdExportInfo *src);
void nbd_export_entries_free(NbdExportEntry *e, size_t n);
