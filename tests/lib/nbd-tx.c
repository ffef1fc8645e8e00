/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test NBD transmission client: wire structs of the transmission
 * phase, converted right after reading. */

#include "nbd-tx.h"

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <glib.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NBD_TX_REQUEST_MAGIC UINT32_C(0x25609513)
#define NBD_TX_SIMPLE_REPLY_MAGIC UINT32_C(0x67446698)

struct nbd_tx_request {
        uint32_t magic;
        uint16_t flags;
        uint16_t type;
        uint64_t handle;
        uint64_t offset;
        uint32_t length;
} __attribute__((__packed__));
static_assert(sizeof(struct nbd_tx_request) == 28, "wire size");

struct nbd_tx_reply {
        uint32_t magic;
        uint32_t error;
        uint64_t handle;
} __attribute__((__packed__));
static_assert(sizeof(struct nbd_tx_reply) == 16, "wire size");

static int write_full(int fd, const void *buf, size_t n) {
        const uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

static int read_full(int fd, void *buf, size_t n) {
        uint8_t *p = buf;

        while (n > 0) {
                ssize_t k = read(fd, p, n);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EPIPE;
                p += k;
                n -= (size_t) k;
        }
        return 0;
}

int nbd_tx_send_request(int fd, uint16_t type, uint64_t handle, uint64_t offset, uint32_t length, const void *payload) {
        struct nbd_tx_request req = {
                .magic = htobe32(NBD_TX_REQUEST_MAGIC),
                .type = htobe16(type),
                .handle = htobe64(handle),
                .offset = htobe64(offset),
                .length = htobe32(length),
        };
        int r;

        r = write_full(fd, &req, sizeof(req));
        if (r < 0 || type != NBD_TX_CMD_WRITE)
                return r;
        return write_full(fd, payload, length);
}

int nbd_tx_recv_reply(int fd, uint64_t *ret_handle, void *buf, size_t len) {
        struct nbd_tx_reply rep;
        uint32_t error;
        int r;

        r = read_full(fd, &rep, sizeof(rep));
        if (r < 0)
                return r;
        if (be32toh(rep.magic) != NBD_TX_SIMPLE_REPLY_MAGIC)
                return -EPROTO;
        error = be32toh(rep.error);
        if (ret_handle)
                *ret_handle = be64toh(rep.handle);
        if (error != 0)
                return (int) (error & 0x7fffffff);
        if (buf && len > 0)
                return read_full(fd, buf, len);
        return 0;
}

static int one_request(int fd, uint16_t type, uint64_t offset, void *buf, uint32_t len) {
        static uint64_t next_handle = 1;
        uint64_t handle = __atomic_fetch_add(&next_handle, 1, __ATOMIC_RELAXED), got = 0;
        int r;

        r = nbd_tx_send_request(fd, type, handle, offset, len, buf);
        if (r < 0)
                return r;
        r = nbd_tx_recv_reply(fd, &got, type == NBD_TX_CMD_READ ? buf : NULL, type == NBD_TX_CMD_READ ? len : 0);
        if (r != 0)
                return r;
        return got == handle ? 0 : -EPROTO;
}

int nbd_tx_read(int fd, uint64_t offset, void *buf, uint32_t len) {
        return one_request(fd, NBD_TX_CMD_READ, offset, buf, len);
}

int nbd_tx_write(int fd, uint64_t offset, const void *buf, uint32_t len) {
        return one_request(fd, NBD_TX_CMD_WRITE, offset, (void *) buf, len);
}

int nbd_tx_flush(int fd) {
        return one_request(fd, NBD_TX_CMD_FLUSH, 0, NULL, 0);
}

int nbd_tx_disc(int fd) {
        return nbd_tx_send_request(fd, NBD_TX_CMD_DISC, 0, 0, 0, NULL);
}

int nbd_tx_wait_eof(int fd, int timeout_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        uint8_t b;
        ssize_t k;
        int r;

        r = poll(&p, 1, timeout_ms);
        if (r < 0)
                return -errno;
        if (r == 0)
                return -ETIMEDOUT;
        k = read(fd, &b, 1);
        if (k < 0)
                return errno == ECONNRESET ? 0 : -errno;
        return k == 0 ? 0 : -EPROTO;
}

void nbd_tx_fill_pattern(uint8_t *buf, size_t n, unsigned seed) {
        for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t) ((i * 2654435761u + seed) >> 7);
}

void nbd_tx_exercise(int fd, uint64_t disk_size) {
        const struct { uint64_t offset; uint32_t len; } cases[] = {
                { 0, 512 }, { 4096, 4096 }, { 65536, 65536 + 17 }, { 1u << 20, 3u << 20 }, { disk_size - 1, 1 },
        };

        g_assert_cmpuint(disk_size, >=, 4u << 20);
        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree uint8_t *w = g_malloc(cases[i].len), *rd = g_malloc(cases[i].len);

                nbd_tx_fill_pattern(w, cases[i].len, (unsigned) i);
                g_assert_cmpint(nbd_tx_write(fd, cases[i].offset, w, cases[i].len), ==, 0);
                g_assert_cmpint(nbd_tx_read(fd, cases[i].offset, rd, cases[i].len), ==, 0);
                g_assert_cmpmem(w, cases[i].len, rd, cases[i].len);
        }
        g_assert_cmpint(nbd_tx_flush(fd), ==, 0);
}
