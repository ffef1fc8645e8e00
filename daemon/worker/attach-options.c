/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a caller asked for with an attach or a query, as the worker takes it. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "attach-options.h"
#include "util/macro.h"

void attach_options_init(AttachOptions *o, uint32_t default_timeout_sec) {
        *o = (AttachOptions) {
                .tls = TLS_MODE_OFF,
                .tls_ca_fd = -EBADF,
                .tls_cert_fd = -EBADF,
                .tls_key_fd = -EBADF,
                .tls_psk_fd = -EBADF,
                .socket_fd = -EBADF,
                .connections = 1,
                .timeout_sec = default_timeout_sec ?: ATTACH_DEFAULT_TIMEOUT_SEC,
                .io_timeout_sec = ATTACH_DEFAULT_IO_TIMEOUT_SEC,
                .tls_ktls = true,
        };
}

void attach_options_done(AttachOptions *o) {
        free(o->tls_hostname);
        free(o->tls_username);
        free(o->device);
        o->tls_hostname = o->tls_username = o->device = NULL;
        o->tls_ca_fd = safe_close(o->tls_ca_fd);
        o->tls_cert_fd = safe_close(o->tls_cert_fd);
        o->tls_key_fd = safe_close(o->tls_key_fd);
        o->tls_psk_fd = safe_close(o->tls_psk_fd);
        o->socket_fd = safe_close(o->socket_fd);
}

static const char *const kernel_interface_table[_KERNEL_INTERFACE_MAX] = {
        [KERNEL_INTERFACE_AUTO] = "auto",
        [KERNEL_INTERFACE_NETLINK] = "netlink",
        [KERNEL_INTERFACE_IOCTL] = "ioctl",
};

const char *kernel_interface_to_string(KernelInterface k) {
        return k >= 0 && k < _KERNEL_INTERFACE_MAX ? kernel_interface_table[k] : NULL;
}

KernelInterface kernel_interface_from_string(const char *s) {
        for (int k = 0; k < _KERNEL_INTERFACE_MAX; k++)
                if (strcmp(s, kernel_interface_table[k]) == 0)
                        return k;
        return _KERNEL_INTERFACE_INVALID;
}
