/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a caller asked for with an attach or a query, read from the bus by
 * the bus layer (options.h) and carried out by a worker. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

#include "contract.h"
#include "handshake.h"

#define ATTACH_DEFAULT_TIMEOUT_SEC 30u
/* The kernel's per-request timeout unless the caller sets one: never. A
 * single slow request (a server flushing a large cache) must not end a
 * healthy device; a peer that is gone is noticed by TCP keepalive and
 * TCP_USER_TIMEOUT on every data socket instead (net.h). */
#define ATTACH_DEFAULT_IO_TIMEOUT_SEC 0u
#define CREDENTIAL_MAX_SIZE (1024u * 1024u)

/* How the device goes to the kernel (option 'kernel-interface'). */
typedef enum KernelInterface {
        KERNEL_INTERFACE_AUTO,          /* netlink where the kernel has the nbd family, else ioctl */
        KERNEL_INTERFACE_NETLINK,       /* netlink or fail: the device must outlive nbdlinkd */
        KERNEL_INTERFACE_IOCTL,         /* the ioctl sequence: the device ends with nbdlinkd */
        _KERNEL_INTERFACE_MAX,
        _KERNEL_INTERFACE_INVALID = -EINVAL,
} KernelInterface;

const char *kernel_interface_to_string(KernelInterface k);
KernelInterface kernel_interface_from_string(const char *s);

typedef struct AttachOptions {
        uint16_t port;                  /* 0: from host, else NBD_DEFAULT_PORT */
        TlsMode tls;
        char *tls_hostname;
        char *tls_username;
        int tls_ca_fd;                  /* all fds owned, O_CLOEXEC, or -EBADF */
        int tls_cert_fd;
        int tls_key_fd;
        int tls_psk_fd;
        int socket_fd;
        bool read_only;
        uint32_t connections;           /* ≥ 1 */
        uint32_t timeout_sec;           /* ≥ 1: connect and the whole handshake */
        uint32_t io_timeout_sec;        /* the kernel's per-request timeout; 0: never */
        uint32_t block_size;            /* 0: negotiate */
        bool persist;
        uint32_t dead_timeout_sec;      /* 0: not given (only meaningful with persist) */
        bool tls_ktls;                  /* TLS in the kernel when it can carry it (default) */
        KernelInterface kernel_interface;
        char *device;                   /* AttachURI's "device"; NULL: the first free one */
} AttachOptions;

void attach_options_init(AttachOptions *o, uint32_t default_timeout_sec);
void attach_options_done(AttachOptions *o);
