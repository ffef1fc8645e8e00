/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The NBD wire format of the handshake phase (NetworkBlockDevice/nbd,
 * doc/proto.md): magics, option and reply numbers, and the packed structs
 * read off the socket. Every multi-byte field is big-endian on the wire and
 * converted right after reading. */
#pragma once

#include <assert.h>
#include <stdint.h>

#include "contract.h"
#include "util/macro.h"

#define NBD_MAGIC               UINT64_C(0x4e42444d41474943) /* "NBDMAGIC" */
#define NBD_IHAVEOPT            UINT64_C(0x49484156454f5054) /* "IHAVEOPT" */
#define NBD_OLDSTYLE_MAGIC      UINT64_C(0x0000420281861253)
#define NBD_REP_MAGIC           UINT64_C(0x0003e889045565a9)

/* Handshake flags (server → client, 16 bits). */
#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)

/* Client flags (client → server, 32 bits). */
#define NBD_FLAG_C_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_C_NO_ZEROES      (1u << 1)

/* Transmission flags (16 bits). */
#define NBD_FLAG_HAS_FLAGS          (1u << 0)
#define NBD_FLAG_READ_ONLY          (1u << 1)
#define NBD_FLAG_SEND_FLUSH         (1u << 2)
#define NBD_FLAG_SEND_FUA           (1u << 3)
#define NBD_FLAG_ROTATIONAL         (1u << 4)
#define NBD_FLAG_SEND_TRIM          (1u << 5)
#define NBD_FLAG_SEND_WRITE_ZEROES  (1u << 6)
#define NBD_FLAG_SEND_DF            (1u << 7)
#define NBD_FLAG_CAN_MULTI_CONN     (1u << 8)
#define NBD_FLAG_SEND_RESIZE        (1u << 9)
#define NBD_FLAG_SEND_CACHE         (1u << 10)
#define NBD_FLAG_SEND_FAST_ZERO     (1u << 11)

/* Options. */
#define NBD_OPT_EXPORT_NAME      1u
#define NBD_OPT_ABORT            2u
#define NBD_OPT_LIST             3u
#define NBD_OPT_PEEK_EXPORT      4u
#define NBD_OPT_STARTTLS         5u
#define NBD_OPT_INFO             6u
#define NBD_OPT_GO               7u
#define NBD_OPT_STRUCTURED_REPLY 8u

/* Option reply types; errors have bit 31 set. */
#define NBD_REP_ACK              1u
#define NBD_REP_SERVER           2u
#define NBD_REP_INFO             3u
#define NBD_REP_META_CONTEXT     4u
#define NBD_REP_FLAG_ERROR       (1u << 31)
#define NBD_REP_ERR(n)           (NBD_REP_FLAG_ERROR | (n))
#define NBD_REP_ERR_UNSUP           NBD_REP_ERR(1)
#define NBD_REP_ERR_POLICY          NBD_REP_ERR(2)
#define NBD_REP_ERR_INVALID         NBD_REP_ERR(3)
#define NBD_REP_ERR_PLATFORM        NBD_REP_ERR(4)
#define NBD_REP_ERR_TLS_REQD        NBD_REP_ERR(5)
#define NBD_REP_ERR_UNKNOWN         NBD_REP_ERR(6)
#define NBD_REP_ERR_SHUTDOWN        NBD_REP_ERR(7)
#define NBD_REP_ERR_BLOCK_SIZE_REQD NBD_REP_ERR(8)
#define NBD_REP_ERR_TOO_BIG         NBD_REP_ERR(9)
#define NBD_REP_ERR_EXT_HEADER_REQD NBD_REP_ERR(10)

/* NBD_REP_INFO types. */
#define NBD_INFO_EXPORT      0u
#define NBD_INFO_NAME        1u
#define NBD_INFO_DESCRIPTION 2u
#define NBD_INFO_BLOCK_SIZE  3u

/* Transmission-phase requests: the daemon itself only ever sends one, the
 * NBD_CMD_DISC that ends a session the kernel will not take over. */
#define NBD_REQUEST_MAGIC UINT32_C(0x25609513)
#define NBD_CMD_DISC      2u

/* Transmission-phase error values (the spec's own numbering, not errno). */
#define NBD_EPERM      1u
#define NBD_EIO        5u
#define NBD_ENOMEM     12u
#define NBD_EINVAL     22u
#define NBD_ENOSPC     28u
#define NBD_EOVERFLOW  75u
#define NBD_ENOTSUP    95u
#define NBD_ESHUTDOWN  108u

/* Limits of what nbdlink accepts from a server, beyond the contract's. */
#define NBD_MAX_OPTION_REPLY    (NBD_MAX_STRING + 64u)
#define NBD_MAX_BLOCK_SIZE      (32u * 1024u * 1024u)
#define NBD_MAX_INFO_REPLIES    64u     /* per GO/INFO before we call it a flood */
#define NBD_OLDSTYLE_ZEROES     124u

struct nbd_greeting {           /* "NBDMAGIC" then one of two magics */
        uint64_t magic;
        uint64_t style;
} _packed_;
static_assert(sizeof(struct nbd_greeting) == 16, "wire size");

struct nbd_oldstyle_rest {      /* after NBD_OLDSTYLE_MAGIC */
        uint64_t size;
        uint32_t flags;         /* high 16 bits: handshake, low 16: transmission */
        uint8_t zeroes[NBD_OLDSTYLE_ZEROES];
} _packed_;
static_assert(sizeof(struct nbd_oldstyle_rest) == 136, "wire size");

struct nbd_option {
        uint64_t magic;         /* NBD_IHAVEOPT */
        uint32_t option;
        uint32_t length;
} _packed_;
static_assert(sizeof(struct nbd_option) == 16, "wire size");

struct nbd_option_reply {
        uint64_t magic;         /* NBD_REP_MAGIC */
        uint32_t option;
        uint32_t type;
        uint32_t length;
} _packed_;
static_assert(sizeof(struct nbd_option_reply) == 20, "wire size");

struct nbd_export_name_reply {  /* answer to NBD_OPT_EXPORT_NAME */
        uint64_t size;
        uint16_t flags;
} _packed_;
static_assert(sizeof(struct nbd_export_name_reply) == 10, "wire size");

struct nbd_info_export {
        uint16_t type;
        uint64_t size;
        uint16_t flags;
} _packed_;
static_assert(sizeof(struct nbd_info_export) == 12, "wire size");

struct nbd_info_block_size {
        uint16_t type;
        uint32_t minimum;
        uint32_t preferred;
        uint32_t maximum;
} _packed_;
static_assert(sizeof(struct nbd_info_block_size) == 14, "wire size");

struct nbd_request {
        uint32_t magic;
        uint16_t flags;
        uint16_t type;
        uint64_t cookie;
        uint64_t offset;
        uint32_t length;
} _packed_;
static_assert(sizeof(struct nbd_request) == 28, "wire size");
