/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The kernel hand-off of the ioctl path: a small table of operations (the
 * real ioctls, or a recording fake in tests) and the sequences built on it
 * — attach (SET_SOCK…SET_FLAGS), run (DO_IT), detach and cleanup. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error-text.h"
#include "netlink.h"
#include "udev-settle.h"

#define KERNEL_DEFAULT_BLOCK_SIZE 512u
#define KERNEL_MAX_BLOCK_SIZE 4096u     /* the kernel takes up to the page size */
/* The block layer will not cap requests below one page (max_sectors_kb). */
#define KERNEL_MIN_REQUEST_CAP 4096u
#define KERNEL_EBUSY_RETRIES 5

/* Every operation returns 0 or a negative errno. dev_fd is the descriptor
 * nbd_device_open() returned. */
typedef struct KernelOps {
        int (*set_sock)(void *userdata, int dev_fd, int sock);
        int (*set_blksize)(void *userdata, int dev_fd, uint64_t block_size);
        int (*set_size_blocks)(void *userdata, int dev_fd, uint64_t blocks);
        int (*set_timeout)(void *userdata, int dev_fd, uint64_t seconds);
        int (*set_flags)(void *userdata, int dev_fd, uint64_t flags);
        int (*blkroset)(void *userdata, int dev_fd, bool read_only);
        int (*do_it)(void *userdata, int dev_fd);
        int (*disconnect)(void *userdata, int dev_fd);
        int (*clear_que)(void *userdata, int dev_fd);
        int (*clear_sock)(void *userdata, int dev_fd);
        int (*flush)(void *userdata, int dev_fd);
        /* The largest request the kernel may send, in KiB
         * (/sys/block/nbdN/queue/max_sectors_kb), and the largest it could
         * be set to (max_hw_sectors_kb). */
        int (*get_max_request_kb)(void *userdata, int index, uint32_t *ret_kb, uint32_t *ret_hw_kb);
        int (*set_max_request_kb)(void *userdata, int index, uint32_t kb);
        /* Waits (bounded, and giving up once *stop is set) until the device
         * runs, then opens it once so the kernel scans its partitions. */
        int (*wait_started)(void *userdata, int index, uint64_t timeout_usec, const int *stop);
        /* Sleeps before an EBUSY retry (the fake does not). */
        void (*backoff)(void *userdata, unsigned attempt);
        /* The persistent path: one generic netlink request to the nbd
         * family (CONNECT, RECONFIGURE, DISCONNECT, STATUS); *ret_index as
         * nbd_netlink_request() gives it. */
        int (*netlink)(void *userdata, NbdNlCommand cmd, const NbdNlConfig *c, int *ret_index);
        /* Before the device starts: begins listening for what udev makes
         * of it (udev-settle.h); *ret NULL when there is nothing to wait
         * for (no udevd; the fake). */
        int (*udev_settle_begin)(void *userdata, int index, UdevSettle **ret);
} KernelOps;

extern const KernelOps kernel_ops_real;

typedef struct KernelAttach {
        int index;                      /* N of /dev/nbdN, for messages */
        const int *socks;               /* connected, in the transmission phase */
        size_t n_socks;
        uint64_t size;                  /* bytes, as the server said; the kernel gets whole blocks */
        uint16_t flags;                 /* transmission flags */
        uint32_t block_size;            /* 0: default */
        uint32_t max_payload;           /* the server's maximum payload; 0: none given */
        bool read_only;                 /* asked by the caller */
        uint32_t io_timeout_sec;        /* the kernel's per-request timeout; 0: never */
} KernelAttach;

/* The logical block size to give the kernel: the caller's, else
 * max(512, server minimum). Never the server's preferred size: a server that
 * prefers 4096 (qemu-nbd) would hide the partitions of an image written with
 * 512-byte sectors. -EOPNOTSUPP when the server's minimum is larger than the
 * kernel can do, or its maximum payload smaller than the kernel can be held
 * to; -EINVAL when the caller's size is outside the server's limits. */
int kernel_pick_block_size(uint32_t requested, uint32_t server_min, uint32_t server_max,
                           uint32_t *ret, Error *error);

/* The size given to the kernel: whole logical blocks; a partial block at the
 * end could not be read or written within the server's alignment. */
static inline uint64_t kernel_device_size(uint64_t size, uint32_t block_size) {
        return block_size > 0 ? size - size % block_size : size;
}

/* Holds the kernel's requests to nbd<index> to the server's maximum
 * payload (max_sectors_kb), when that is below what the device allows now.
 * *ret_saved_kb is the value to put back when the device ends (0: nothing
 * was changed). A max_payload of 0 or 0xffffffff means no limit. */
int kernel_limit_requests(const KernelOps *ops, void *userdata, int index, uint32_t max_payload,
                          uint32_t *ret_saved_kb, Error *error);
/* Puts back what kernel_limit_requests() changed; saved_kb 0 is a no-op. */
void kernel_restore_requests(const KernelOps *ops, void *userdata, int index, uint32_t saved_kb);

/* Configures the device: NBD_SET_SOCK per connection (an EBUSY on the first
 * one — udev still holding the device after a detach — is retried a few
 * times), NBD_SET_BLKSIZE, NBD_SET_SIZE_BLOCKS (the size rounded down to
 * whole blocks), NBD_SET_TIMEOUT, NBD_SET_FLAGS, then BLKROSET with the
 * read-only state asked for: the block layer keeps BLKROSET's flag across
 * devices' lifetimes, so a writable attach must clear what an earlier user
 * set. Where NBD_SET_FLAGS is ENOTTY (kernels before it) that BLKROSET is
 * the only read-only switch there is. More than one connection without
 * NBD_FLAG_CAN_MULTI_CONN is -EINVAL before any ioctl. Must run on the
 * thread that will call kernel_run(). On failure the sockets are still in
 * the transmission phase and the device may hold them: the caller says
 * goodbye on them (NBD_CMD_DISC), then calls kernel_clear(). */
int kernel_attach(const KernelOps *ops, void *userdata, int dev_fd, const KernelAttach *a,
                  Error *error);

/* NBD_DO_IT: blocks while the device runs. 0 when it ended normally (EPIPE,
 * the historical "disconnected" answer, counts as normal), else negative
 * errno. Then clears queue and sockets, as a detach must. */
int kernel_run(const KernelOps *ops, void *userdata, int dev_fd);

/* Asks a running device to stop: NBD_DISCONNECT, which only sends the
 * server NBD_CMD_DISC; kernel_run() returns on the attaching thread once the
 * server has closed. The caller flushes first, and follows up with
 * kernel_force_detach() if the server does not close. Any thread may call
 * it. */
int kernel_request_detach(const KernelOps *ops, void *userdata, int dev_fd);

/* NBD_CLEAR_SOCK from any thread: the kernel shuts its sockets down, fails
 * what is still queued, and NBD_DO_IT returns. For a server that ignores
 * NBD_CMD_DISC and keeps the connection open. */
int kernel_force_detach(const KernelOps *ops, void *userdata, int dev_fd);

/* Undoes a partial configuration: NBD_CLEAR_QUE, NBD_CLEAR_SOCK. */
void kernel_clear(const KernelOps *ops, void *userdata, int dev_fd);
