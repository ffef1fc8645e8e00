/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbd ioctls in the order drivers/block/nbd.c wants them. Every call goes
 * through a KernelOps table so that the sequence, and the fallbacks for old
 * kernels, can be tested on machines without nbd. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "kernel.h"
#include "nbd-protocol.h"
#include "util/macro.h"
#include "util/time-util.h"

static int fail(int r, char *error, size_t error_size, const char *format, ...) _printf_(4, 5);
static int fail(int r, char *error, size_t error_size, const char *format, ...) {
        va_list ap;

        if (error && error_size > 0) {
                va_start(ap, format);
                (void) vsnprintf(error, error_size, format, ap);
                va_end(ap);
        }
        return r;
}

int kernel_pick_block_size(uint32_t requested, uint32_t server_min, uint32_t server_preferred,
                           uint32_t server_max, uint32_t *ret, char *error, size_t error_size) {
        uint32_t lo = MAX(KERNEL_DEFAULT_BLOCK_SIZE, server_min);
        uint32_t bs;

        if (lo > KERNEL_MAX_BLOCK_SIZE)
                return fail(-EOPNOTSUPP, error, error_size,
                            "server's minimum block size %u is larger than the kernel's limit %u",
                            server_min, KERNEL_MAX_BLOCK_SIZE);

        if (requested != 0) {
                if (requested < server_min || (server_max != 0 && requested > server_max))
                        return fail(-EINVAL, error, error_size,
                                    "block size %u is outside the server's limits %u..%u",
                                    requested, server_min, server_max);
                *ret = requested;
                return 0;
        }

        /* The preferred size is a hint: take it when the kernel can. */
        bs = server_preferred;
        if (bs < lo || bs > KERNEL_MAX_BLOCK_SIZE || (bs & (bs - 1)) != 0)
                bs = lo;
        /* The minimum could be an odd number; round up to a power of two. */
        while ((bs & (bs - 1)) != 0)
                bs += bs & -bs;
        if (bs > KERNEL_MAX_BLOCK_SIZE)
                return fail(-EOPNOTSUPP, error, error_size,
                            "no block size the kernel supports satisfies the server (minimum %u)", server_min);

        *ret = bs;
        return 0;
}

void kernel_clear(const KernelOps *ops, void *userdata, int dev_fd) {
        (void) ops->clear_que(userdata, dev_fd);
        (void) ops->clear_sock(userdata, dev_fd);
}

int kernel_attach(const KernelOps *ops, void *userdata, int dev_fd, const KernelAttach *a,
                  char *error, size_t error_size) {
        uint32_t bs = a->block_size ?: KERNEL_DEFAULT_BLOCK_SIZE;
        uint64_t flags = a->flags;
        int r;

        if (a->n_socks < 1)
                return fail(-EINVAL, error, error_size, "device nbd%d: no connection to hand over", a->index);
        /* The kernel would accept the sockets and then refuse to start. */
        if (a->n_socks > 1 && !(a->flags & NBD_FLAG_CAN_MULTI_CONN))
                return fail(-EINVAL, error, error_size,
                            "device nbd%d: the server does not allow %zu connections (no NBD_FLAG_CAN_MULTI_CONN)",
                            a->index, a->n_socks);
        if (a->timeout_sec == 0)
                return fail(-EINVAL, error, error_size, "device nbd%d: a timeout of 0 would never time out", a->index);
        if (a->size > INT64_MAX)
                return fail(-EFBIG, error, error_size,
                            "device nbd%d: export size %llu does not fit the kernel's limits",
                            a->index, (unsigned long long) a->size);

        for (size_t i = 0; i < a->n_socks; i++) {
                for (unsigned attempt = 0;; attempt++) {
                        r = ops->set_sock(userdata, dev_fd, a->socks[i]);
                        /* udev may still hold the device from its last use. */
                        if (r == -EBUSY && i == 0 && attempt < KERNEL_EBUSY_RETRIES) {
                                if (ops->backoff)
                                        ops->backoff(userdata, attempt);
                                continue;
                        }
                        break;
                }
                if (r == -EBUSY) {
                        fail(r, error, error_size, "device nbd%d: in use by another task", a->index);
                        goto undo;
                }
                if (r < 0) {
                        fail(r, error, error_size, "device nbd%d: NBD_SET_SOCK failed: %s", a->index, strerror(-r));
                        goto undo;
                }
        }

        r = ops->set_blksize(userdata, dev_fd, bs);
        if (r < 0) {
                fail(r, error, error_size, "device nbd%d: NBD_SET_BLKSIZE %u failed: %s", a->index, bs, strerror(-r));
                goto undo;
        }

        if (a->size % bs == 0 && a->size / bs <= (uint64_t) (unsigned long) -1)
                r = ops->set_size_blocks(userdata, dev_fd, a->size / bs);
        else if (a->size <= (uint64_t) (unsigned long) -1)
                r = ops->set_size(userdata, dev_fd, a->size);
        else
                r = -EFBIG;
        if (r < 0) {
                fail(r == -EINVAL ? -EFBIG : r, error, error_size,
                     "device nbd%d: export size %llu does not fit the kernel's limits: %s",
                     a->index, (unsigned long long) a->size, strerror(-r));
                r = r == -EINVAL ? -EFBIG : r;
                goto undo;
        }

        r = ops->set_timeout(userdata, dev_fd, a->timeout_sec);
        if (r < 0) {
                fail(r, error, error_size, "device nbd%d: NBD_SET_TIMEOUT failed: %s", a->index, strerror(-r));
                goto undo;
        }

        if (a->read_only)
                flags |= NBD_FLAG_READ_ONLY;
        r = ops->set_flags(userdata, dev_fd, flags);
        if (r == -ENOTTY) {
                /* Kernels before NBD_SET_FLAGS: read-only the generic way. */
                r = ops->blkroset(userdata, dev_fd, flags & NBD_FLAG_READ_ONLY);
                if (r < 0) {
                        fail(r, error, error_size, "device nbd%d: BLKROSET failed: %s", a->index, strerror(-r));
                        goto undo;
                }
        } else if (r < 0) {
                fail(r, error, error_size, "device nbd%d: NBD_SET_FLAGS failed: %s", a->index, strerror(-r));
                goto undo;
        }

        return 0;

undo:
        kernel_clear(ops, userdata, dev_fd);
        return r;
}

int kernel_run(const KernelOps *ops, void *userdata, int dev_fd) {
        int r;

        r = ops->do_it(userdata, dev_fd);
        if (r == -EPIPE)
                r = 0;
        kernel_clear(ops, userdata, dev_fd);
        return r;
}

int kernel_request_detach(const KernelOps *ops, void *userdata, int dev_fd) {
        int r;

        /* Data in the page cache goes to the server before it goes away. */
        (void) ops->flush(userdata, dev_fd);
        r = ops->disconnect(userdata, dev_fd);
        return r;
}

