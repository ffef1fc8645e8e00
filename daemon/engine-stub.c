/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Stand-ins for the parts of the NBD engine (connections, TLS, handshake,
 * networking) that are not in this tree yet, so the daemon builds and its
 * bus API can be tested. Each block is compiled only while the real file is
 * missing (see meson.build) and fails honestly with -EOPNOTSUPP. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handshake.h"
#include "net.h"
#include "tls.h"

#ifdef NBDLINK_STUB_CONN
int conn_new_fd(Conn **ret, int fd) {
        return -EOPNOTSUPP;
}
Conn *conn_free(Conn *c) {
        return NULL;
}
void conn_set_deadline(Conn *c, usec_t deadline) {
}
int conn_fd(const Conn *c) {
        return -EBADF;
}
#endif

#ifdef NBDLINK_STUB_TLS
int blob_read_fd(Blob *ret, int fd, size_t max_size) {
        *ret = (Blob) {};
        return -EOPNOTSUPP;
}
void blob_done(Blob *b) {
        erase_and_free(b->data, b->size);
        *b = (Blob) {};
}
#endif

#ifdef NBDLINK_STUB_HANDSHAKE
void handshake_init(Handshake *hs, Conn *conn, const HandshakeOptions *options) {
        *hs = (Handshake) { .options = *options, .conn = conn };
}
int handshake_run(Handshake *hs) {
        hs->error_code = -EOPNOTSUPP;
        (void) snprintf(hs->error, sizeof(hs->error), "handshake: not built into this nbdlinkd");
        return hs->error_code;
}
Conn *handshake_take_conn(Handshake *hs) {
        Conn *c = hs->conn;
        hs->conn = NULL;
        return c;
}
void handshake_done(Handshake *hs) {
        hs->conn = conn_free(hs->conn);
        nbd_export_info_done(&hs->info);
        nbd_export_entries_free(hs->exports, hs->n_exports);
        hs->exports = NULL;
        hs->n_exports = 0;
}
void nbd_export_info_done(NbdExportInfo *info) {
        free(info->name);
        free(info->description);
        info->name = info->description = NULL;
}
void nbd_export_info_move(NbdExportInfo *dst, NbdExportInfo *src) {
        *dst = *src;
        *src = (NbdExportInfo) {};
}
void nbd_export_entries_free(NbdExportEntry *e, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(e[i].name);
                free(e[i].description);
        }
        free(e);
}
#endif

#ifdef NBDLINK_STUB_NET
int nbd_address_parse(NbdAddress *ret, const char *s, uint16_t port_override, char *error, size_t error_size) {
        *ret = (NbdAddress) {};
        if (strncmp(s, "unix:", 5) == 0)
                ret->unix_path = strdup(s + 5);
        else
                ret->host = strdup(s);
        if (!ret->host && !ret->unix_path)
                return -ENOMEM;
        ret->port = port_override ?: NBD_DEFAULT_PORT;
        return 0;
}
void nbd_address_done(NbdAddress *a) {
        free(a->host);
        free(a->unix_path);
        *a = (NbdAddress) {};
}
int net_connect(const NbdAddress *a, usec_t deadline, int *ret_fd, char *error, size_t error_size) {
        (void) snprintf(error, error_size, "connect: not built into this nbdlinkd");
        return -EOPNOTSUPP;
}
#endif
