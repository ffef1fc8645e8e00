/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel's generic netlink family "nbd", spoken over raw AF_NETLINK
 * sockets: messages built and parsed by pure functions (unit-tested byte by
 * byte), and a small socket wrapper for requests and the multicast group
 * that announces dead links. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The commands of <linux/nbd-netlink.h>, by their own names here so that
 * this header can sit next to nbd-protocol.h. Values are the kernel's. */
typedef enum NbdNlCommand {
        NBD_NL_CONNECT = 1,
        NBD_NL_DISCONNECT = 2,
        NBD_NL_RECONFIGURE = 3,
        NBD_NL_LINK_DEAD = 4,
        NBD_NL_STATUS = 5,
} NbdNlCommand;

/* Large enough for CONNECT with ATTACH_MAX_CONNECTIONS sockets and a
 * backend identifier of NBD_NL_BACKEND_MAX bytes. */
#define NBD_NL_BUFFER_SIZE 8192u
/* The kernel prints the identifier into a sysfs page ("%s\n"): stay well
 * below a page so it reads back whole. */
#define NBD_NL_BACKEND_MAX 1024u

typedef struct NbdNlConfig {
        int index;                      /* N of /dev/nbdN; -1: the kernel picks (CONNECT, STATUS) */
        const int *socks;               /* CONNECT, RECONFIGURE */
        size_t n_socks;
        uint64_t size;                  /* CONNECT: bytes */
        uint64_t block_size;            /* CONNECT */
        uint64_t server_flags;          /* CONNECT: transmission flags (READ_ONLY included) */
        uint64_t timeout_sec;           /* CONNECT: kernel I/O timeout; 0: not sent */
        uint64_t dead_timeout_sec;      /* CONNECT: how long I/O waits for a new socket; 0: not sent */
        const char *backend;            /* CONNECT, RECONFIGURE; NULL: not sent */
} NbdNlConfig;

/* Writes a CTRL_CMD_GETFAMILY request for "nbd" into buf. Returns the
 * length, or -ENOBUFS. */
int nbd_nl_build_get_family(void *buf, size_t size, uint32_t seq);

/* Writes an nbd request (NLM_F_REQUEST|NLM_F_ACK) for cmd with the
 * attributes that command takes from c. Returns the length; -ENOBUFS when
 * buf is too small, -EINVAL for a config the command cannot use (no
 * sockets for CONNECT, no index for DISCONNECT/RECONFIGURE, a backend
 * longer than NBD_NL_BACKEND_MAX). */
int nbd_nl_build(void *buf, size_t size, uint16_t family, uint32_t seq, NbdNlCommand cmd,
                 const NbdNlConfig *c);

/* Reads the family id and the id of the multicast group "nbd_mc_group"
 * from a CTRL_CMD_NEWFAMILY reply. -ENOENT when the family is not there
 * (an NLMSG_ERROR), -EPROTO for anything malformed. */
int nbd_nl_parse_family(const void *buf, size_t len, uint16_t *ret_family, uint32_t *ret_group);

/* Walks the messages in one datagram answering request seq. From a
 * genetlink reply of family it takes NBD_ATTR_INDEX (CONNECT's answer) into
 * *ret_index, or from STATUS's device list the first device's index and
 * "connected" into *ret_index and *ret_connected (either pointer may be
 * NULL). Returns 1 when the datagram held the final
 * ACK, 0 when more is to come, a negative errno from an NLMSG_ERROR, or
 * -EPROTO. */
int nbd_nl_parse_reply(const void *buf, size_t len, uint16_t family, uint32_t seq,
                       int *ret_index, int *ret_connected);

/* Calls cb for every NBD_CMD_LINK_DEAD of family in the datagram, with the
 * index it names. Other messages are skipped. Returns how many it found,
 * or -EPROTO. */
int nbd_nl_parse_link_dead(const void *buf, size_t len, uint16_t family,
                           void (*cb)(int index, void *userdata), void *userdata);

typedef struct NbdNetlink {
        int fd;
        uint16_t family;
        uint32_t group;                 /* multicast group of LINK_DEAD */
        uint32_t seq;
} NbdNetlink;

#define NBD_NETLINK_NULL ((NbdNetlink) { .fd = -EBADF })

/* Opens a NETLINK_GENERIC socket (SOCK_CLOEXEC) and resolves the nbd
 * family. -ENOENT when the nbd module is not loaded. PRIVILEGED: the nbd
 * commands need CAP_SYS_ADMIN. */
int nbd_netlink_open(NbdNetlink *ret);
void nbd_netlink_close(NbdNetlink *nl);
/* Joins the multicast group and makes the socket non-blocking, for an
 * event loop that reads LINK_DEAD. */
int nbd_netlink_subscribe(NbdNetlink *nl);
/* Sends cmd and waits for its ACK. *ret_index: the index the kernel
 * answered (CONNECT) or reported (STATUS), else unchanged; *ret_connected:
 * STATUS's "connected". Negative errno as the kernel answered. */
int nbd_netlink_request(NbdNetlink *nl, NbdNlCommand cmd, const NbdNlConfig *c,
                        int *ret_index, int *ret_connected);
