/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbd ioctls in the order drivers/block/nbd.c wants them. Every call goes
 * through a KernelOps table so that the sequence, and the fallbacks for old
 * kernels, can be tested on machines without nbd. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error-text.h"
#include "kernel.h"
#include "nbd-protocol.h"
#include "util/macro.h"
#include "util/time-util.h"


int kernel_pick_block_size(uint32_t requested, uint32_t server_min, uint32_t server_max,
                           uint32_t *ret, Error *error) {
        uint32_t bs;

        if (server_min > KERNEL_MAX_BLOCK_SIZE)
                return error_set(error, -EOPNOTSUPP,
                            "server's minimum block size %u is larger than the kernel's limit %u",
                            server_min, KERNEL_MAX_BLOCK_SIZE);
        /* max_sectors_kb cannot go below a page: the kernel would send
         * requests the server refuses. */
        if (server_max != 0 && server_max < KERNEL_MIN_REQUEST_CAP)
                return error_set(error, -EOPNOTSUPP,
                            "server's maximum request size %u is below the smallest the kernel can be held to (%u)",
                            server_max, KERNEL_MIN_REQUEST_CAP);

        if (requested != 0) {
                if (requested < server_min || (server_max != 0 && requested > server_max))
                        return error_set(error, -EINVAL,
                                    "block size %u is outside the server's limits %u..%u",
                                    requested, server_min, server_max);
                *ret = requested;
                return 0;
        }

        /* The server's minimum is a power of two (handshake.c checks), so
         * this is one too. */
        bs = MAX(KERNEL_DEFAULT_BLOCK_SIZE, server_min);
        *ret = bs;
        return 0;
}

int kernel_limit_requests(const KernelOps *ops, void *userdata, int index, uint32_t max_payload,
                          uint32_t *ret_saved_kb, Error *error) {
        uint32_t cur_kb = 0, hw_kb = 0, want_kb;
        int r;

        *ret_saved_kb = 0;
        if (max_payload == 0 || max_payload == UINT32_MAX)
                return 0;
        if (max_payload < KERNEL_MIN_REQUEST_CAP)
                return error_set(error, -EOPNOTSUPP,
                            "device nbd%d: server's maximum request size %u is below the smallest the kernel can be held to (%u)",
                            index, max_payload, KERNEL_MIN_REQUEST_CAP);

        r = ops->get_max_request_kb(userdata, index, &cur_kb, &hw_kb);
        if (r < 0)
                return error_set(error, r, "device nbd%d: cannot read the request size limit: %s",
                            index, strerror(-r));

        /* Whole pages: the logical block size divides it then, whatever it is. */
        want_kb = max_payload / KERNEL_MIN_REQUEST_CAP * (KERNEL_MIN_REQUEST_CAP / 1024);
        if (hw_kb > 0)
                want_kb = MIN(want_kb, hw_kb);
        if (cur_kb <= want_kb)
                return 0;

        r = ops->set_max_request_kb(userdata, index, want_kb);
        if (r < 0)
                return error_set(error, r,
                            "device nbd%d: cannot hold requests to the server's maximum of %u bytes: %s",
                            index, max_payload, strerror(-r));
        *ret_saved_kb = cur_kb;
        return 0;
}

void kernel_restore_requests(const KernelOps *ops, void *userdata, int index, uint32_t saved_kb) {
        if (saved_kb > 0)
                (void) ops->set_max_request_kb(userdata, index, saved_kb);
}

void kernel_clear(const KernelOps *ops, void *userdata, int dev_fd) {
        (void) ops->clear_que(userdata, dev_fd);
        (void) ops->clear_sock(userdata, dev_fd);
}

int kernel_attach(const KernelOps *ops, void *userdata, int dev_fd, const KernelAttach *a,
                  Error *error) {
        uint32_t bs = a->block_size ?: KERNEL_DEFAULT_BLOCK_SIZE;
        uint64_t flags = a->flags;
        uint64_t blocks;
        int r;

        if (a->n_socks < 1)
                return error_set(error, -EINVAL, "device nbd%d: no connection to hand over", a->index);
        /* The kernel would accept the sockets and then refuse to start. */
        if (a->n_socks > 1 && !(a->flags & NBD_FLAG_CAN_MULTI_CONN))
                return error_set(error, -EINVAL,
                            "device nbd%d: the server does not allow %zu connections (no NBD_FLAG_CAN_MULTI_CONN)",
                            a->index, a->n_socks);
        if (a->size > INT64_MAX)
                return error_set(error, -EFBIG,
                            "device nbd%d: export size %llu does not fit the kernel's limits",
                            a->index, (unsigned long long) a->size);
        blocks = kernel_device_size(a->size, bs) / bs;
        if (blocks > (uint64_t) (unsigned long) -1)
                return error_set(error, -EFBIG,
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
                if (r == -EBUSY)
                        return error_set(error, r, "device nbd%d: in use by another task", a->index);
                if (r < 0)
                        return error_set(error, r, "device nbd%d: NBD_SET_SOCK failed: %s", a->index, strerror(-r));
        }

        r = ops->set_blksize(userdata, dev_fd, bs);
        if (r < 0)
                return error_set(error, r, "device nbd%d: NBD_SET_BLKSIZE %u failed: %s", a->index, bs, strerror(-r));

        r = ops->set_size_blocks(userdata, dev_fd, blocks);
        if (r == -EINVAL)
                return error_set(error, -EFBIG, "device nbd%d: export size %llu does not fit the kernel's limits",
                            a->index, (unsigned long long) a->size);
        if (r < 0)
                return error_set(error, r, "device nbd%d: NBD_SET_SIZE_BLOCKS failed: %s", a->index, strerror(-r));

        /* 0 too: it clears a timeout an earlier user of the device set. */
        r = ops->set_timeout(userdata, dev_fd, a->io_timeout_sec);
        if (r < 0)
                return error_set(error, r, "device nbd%d: NBD_SET_TIMEOUT failed: %s", a->index, strerror(-r));

        if (a->read_only)
                flags |= NBD_FLAG_READ_ONLY;
        r = ops->set_flags(userdata, dev_fd, flags);
        if (r < 0 && r != -ENOTTY)
                return error_set(error, r, "device nbd%d: NBD_SET_FLAGS failed: %s", a->index, strerror(-r));

        /* NBD_SET_FLAGS sets the disk's read-only state at start; BLKROSET
         * sets another flag, the block device's, which outlives whoever set
         * it (blockdev --setro) and would keep a writable export read-only.
         * Without NBD_SET_FLAGS (ENOTTY, kernels before it) this is the
         * read-only switch. */
        r = ops->blkroset(userdata, dev_fd, flags & NBD_FLAG_READ_ONLY);
        if (r < 0)
                return error_set(error, r, "device nbd%d: BLKROSET failed: %s", a->index, strerror(-r));

        return 0;
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
        return ops->disconnect(userdata, dev_fd);
}

int kernel_force_detach(const KernelOps *ops, void *userdata, int dev_fd) {
        return ops->clear_sock(userdata, dev_fd);
}

