/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* STARTTLS for the handshake: a GnuTLS client session over the Conn's
 * socket, with X.509 (CA bytes, CA directory or system trust, optional
 * client certificate) or PSK credentials given as bytes. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "conn-internal.h"
#include "tls.h"

int blob_read_fd(Blob *ret, int fd, size_t max_size) {
        return -EOPNOTSUPP;
}

void blob_done(Blob *b) {
        if (!b)
                return;
        erase_and_free(b->data, b->size);
        b->data = NULL;
        b->size = 0;
}

void conn_tls_free(Conn *c) {
}

int conn_start_tls(Conn *c, const TlsConfig *cfg, char *error, size_t error_size) {
        snprintf(error, error_size, "tls: not implemented");
        return -ECONNABORTED;
}
