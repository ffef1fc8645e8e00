/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real KernelOps: nbd ioctls on /dev/nbdN. Kept apart from kernel.c
 * because <linux/nbd.h> and nbd-protocol.h both define the NBD_FLAG_*
 * names. PRIVILEGED: everything here runs as root on a device node that
 * nbd_device_open() checked. */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/nbd.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "util/macro.h"
#include "util/time-util.h"

static int xioctl(int fd, unsigned long request, unsigned long arg) {
        return ioctl(fd, request, arg) < 0 ? negative_errno() : 0;
}

static int real_set_sock(void *u, int fd, int sock)           { return xioctl(fd, NBD_SET_SOCK, (unsigned long) sock); }
static int real_set_blksize(void *u, int fd, uint64_t v)      { return xioctl(fd, NBD_SET_BLKSIZE, (unsigned long) v); }
static int real_set_size(void *u, int fd, uint64_t v)         { return xioctl(fd, NBD_SET_SIZE, (unsigned long) v); }
static int real_set_size_blocks(void *u, int fd, uint64_t v)  { return xioctl(fd, NBD_SET_SIZE_BLOCKS, (unsigned long) v); }
static int real_set_timeout(void *u, int fd, uint64_t v)      { return xioctl(fd, NBD_SET_TIMEOUT, (unsigned long) v); }
static int real_set_flags(void *u, int fd, uint64_t v)        { return xioctl(fd, NBD_SET_FLAGS, (unsigned long) v); }
static int real_do_it(void *u, int fd)                        { return xioctl(fd, NBD_DO_IT, 0); }
static int real_disconnect(void *u, int fd)                   { return xioctl(fd, NBD_DISCONNECT, 0); }
static int real_clear_que(void *u, int fd)                    { return xioctl(fd, NBD_CLEAR_QUE, 0); }
static int real_clear_sock(void *u, int fd)                   { return xioctl(fd, NBD_CLEAR_SOCK, 0); }

static int real_blkroset(void *u, int fd, bool ro) {
        int v = ro;
        return ioctl(fd, BLKROSET, &v) < 0 ? negative_errno() : 0;
}

static int real_flush(void *u, int fd) {
        return fsync(fd) < 0 ? negative_errno() : 0;
}

static int real_wait_started(void *u, int index, uint64_t timeout_usec, const int *stop) {
        usec_t deadline = deadline_after(timeout_usec);
        long pause_ns = 50 * 1000;
        char path[64];
        int fd;

        /* The kernel publishes "pid" once NBD_DO_IT has started the device,
         * which takes it microseconds after the call; nothing announces it
         * (no uevent for a size set from zero, no notification on sysfs
         * attributes). So look at once, then with pauses that start short
         * and double up to 10 ms: a fixed 10 ms pause cost every attach 5 ms
         * on average and up to 10. */
        (void) snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", index);
        while (access(path, F_OK) < 0) {
                if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
                        return -ECANCELED;
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) nanosleep(&(struct timespec) { .tv_nsec = pause_ns }, NULL);
                pause_ns = MIN(pause_ns * 2, 10L * 1000 * 1000);
        }

        /* Partitions are scanned on the first open after start; do it now so
         * nbdNpM exist by the time the caller hears "attached". */
        (void) snprintf(path, sizeof(path), "/dev/nbd%d", index);
        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return negative_errno();
        safe_close(fd);
        return 0;
}

static void real_backoff(void *u, unsigned attempt) {
        (void) nanosleep(&(struct timespec) { .tv_nsec = 100 * 1000 * 1000 }, NULL);
}

static int real_netlink(void *u, NbdNlCommand cmd, const NbdNlConfig *c, int *ret_index) {
        NbdNetlink nl = NBD_NETLINK_NULL;
        int r;

        /* A socket per request: requests come from worker threads, and
         * opening one costs a family lookup, nothing more. */
        r = nbd_netlink_open(&nl);
        if (r < 0)
                return r;
        r = nbd_netlink_request(&nl, cmd, c, ret_index, NULL);
        nbd_netlink_close(&nl);
        return r;
}

const KernelOps kernel_ops_real = {
        .set_sock = real_set_sock,
        .set_blksize = real_set_blksize,
        .set_size = real_set_size,
        .set_size_blocks = real_set_size_blocks,
        .set_timeout = real_set_timeout,
        .set_flags = real_set_flags,
        .blkroset = real_blkroset,
        .do_it = real_do_it,
        .disconnect = real_disconnect,
        .clear_que = real_clear_que,
        .clear_sock = real_clear_sock,
        .flush = real_flush,
        .wait_started = real_wait_started,
        .backoff = real_backoff,
        .netlink = real_netlink,
};

