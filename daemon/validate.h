/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks on everything a caller hands the daemon, before any of it is used:
 * device names, export names, hosts, the a{sv} options of AttachWithOptions,
 * ListExports and Probe, and the one way a /dev/nbdN node is opened. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "handshake.h"
#include "util/macro.h"

#define NBD_MAJOR_NUMBER 43
#define NBD_MAX_DEVICE_INDEX 9999       /* "N ≤ 4 digits" */
#define ATTACH_MAX_CONNECTIONS 16u
#define ATTACH_MAX_TIMEOUT_SEC 3600u
#define ATTACH_DEFAULT_TIMEOUT_SEC 30u
/* The kernel's per-request timeout unless the caller sets one: never. A
 * single slow request (a server flushing a large cache) must not end a
 * healthy device; a peer that is gone is noticed by TCP keepalive and
 * TCP_USER_TIMEOUT on every data socket instead (net.h). */
#define ATTACH_DEFAULT_IO_TIMEOUT_SEC 0u
#define CREDENTIAL_MAX_SIZE (1024u * 1024u)
#define VALIDATE_ERROR_MAX 512

/* Parses "", "nbdN" or "/dev/nbdN" (N decimal, 1-4 digits, no leading
 * zero). *ret_index is -1 for "" (any free device). -EINVAL otherwise. */
int device_name_parse(const char *s, int *ret_index);

/* Export names: at most NBD_MAX_STRING bytes. -EINVAL with a message. */
int validate_export_name(const char *s, char *error, size_t error_size);
/* Hosts: non-empty, at most NBD_MAX_HOST bytes, no control characters;
 * "unix:/path" only when allow_unix (root callers). */
int validate_host(const char *s, bool allow_unix, char *error, size_t error_size);

/* Which option keys a method accepts. */
typedef enum OptionSet {
        OPTIONS_ATTACH,         /* every key */
        OPTIONS_QUERY,          /* ListExports and Probe: connection and TLS keys */
} OptionSet;

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
} AttachOptions;

void attach_options_init(AttachOptions *o, uint32_t default_timeout_sec);
void attach_options_done(AttachOptions *o);

/* Reads an a{sv} from m into o (which attach_options_init() prepared).
 * Unknown keys, keys not in set, wrong variant types and values out of
 * range are -EINVAL, with a message naming the key. File descriptors are
 * duplicated (O_CLOEXEC) and checked: credentials must be regular files of
 * at most CREDENTIAL_MAX_SIZE bytes, "socket" a connected stream socket. */
int attach_options_parse(sd_bus_message *m, OptionSet set, AttachOptions *o, char *error, size_t error_size);

/* Opens path for ioctls: O_RDWR|O_NOFOLLOW|O_CLOEXEC, then fstat must show a
 * block device with the nbd major. -ENODEV (missing node, missing module,
 * wrong kind of file) with a message; other errors as open(2) gave them. */
int nbd_device_open_path(const char *path, int *ret_fd, char *error, size_t error_size);
/* The same for /dev/nbd<index>, telling a missing nbd module apart. */
int nbd_device_open(int index, int *ret_fd, char *error, size_t error_size);

/* Whether the kernel's nbd driver is there at all (sysfs). */
bool nbd_module_loaded(void);
/* Whether /sys/block/nbd<index> exists and has no running connection. */
int nbd_device_is_free(int index);
