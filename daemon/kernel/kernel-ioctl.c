/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real KernelOps: nbd ioctls on /dev/nbdN. Kept apart from kernel.c
 * because <linux/nbd.h> and nbd-protocol.h both define the NBD_FLAG_*
 * names. PRIVILEGED: everything here runs as root on a device node that
 * nbd_device_open() checked. */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <linux/nbd.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kernel.h"
#include "udev-settle.h"
#include "util/macro.h"
#include "util/time-util.h"

static int xioctl(int fd, unsigned long request, unsigned long arg) {
        return ioctl(fd, request, arg) < 0 ? negative_errno() : 0;
}

static int real_set_sock(void *u, int fd, int sock)           { return xioctl(fd, NBD_SET_SOCK, (unsigned long) sock); }
static int real_set_blksize(void *u, int fd, uint64_t v)      { return xioctl(fd, NBD_SET_BLKSIZE, (unsigned long) v); }
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

static int max_request_path(char *buf, size_t size, int index, const char *name) {
        int k = snprintf(buf, size, "/sys/block/nbd%d/queue/%s", index, name);
        return k < 0 || (size_t) k >= size ? -ENAMETOOLONG : 0;
}

static int read_sysfs_u32(const char *path, uint32_t *ret) {
        _cleanup_close_ int fd = -EBADF;
        char buf[32];
        unsigned long v;
        ssize_t n;
        char *end;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        n = read(fd, buf, sizeof(buf) - 1);
        if (n < 0)
                return negative_errno();
        buf[n] = 0;
        errno = 0;
        v = strtoul(buf, &end, 10);
        if (errno != 0 || end == buf || (*end != '\n' && *end != 0) || v > UINT32_MAX)
                return -EBADMSG;
        *ret = (uint32_t) v;
        return 0;
}

static int real_get_max_request_kb(void *u, int index, uint32_t *ret_kb, uint32_t *ret_hw_kb) {
        char path[96];
        int r;

        r = max_request_path(path, sizeof(path), index, "max_sectors_kb");
        if (r < 0)
                return r;
        r = read_sysfs_u32(path, ret_kb);
        if (r < 0)
                return r;
        r = max_request_path(path, sizeof(path), index, "max_hw_sectors_kb");
        if (r < 0)
                return r;
        return read_sysfs_u32(path, ret_hw_kb);
}

static int real_set_max_request_kb(void *u, int index, uint32_t kb) {
        _cleanup_close_ int fd = -EBADF;
        char path[96], buf[16];
        int r, n;

        r = max_request_path(path, sizeof(path), index, "max_sectors_kb");
        if (r < 0)
                return r;
        fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        n = snprintf(buf, sizeof(buf), "%u\n", kb);
        if (write(fd, buf, (size_t) n) != n)
                return errno > 0 ? -errno : -EIO;
        return 0;
}

static void uevent_socket_drain(int fd) {
        char buf[4096];

        for (;;) {
                ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);

                /* ENOBUFS: events were lost to an overrun; the look after
                 * the drain decides anyway. */
                if (n < 0 && errno == ENOBUFS)
                        continue;
                if (n <= 0)
                        return;
        }
}

static int real_wait_started(void *u, int index, uint64_t timeout_usec, const int *stop) {
        usec_t deadline = deadline_after(timeout_usec);
        _cleanup_close_ int uevent_fd = -EBADF;
        char path[64];
        int fd;

        /* The kernel publishes "pid" once NBD_DO_IT has started the device,
         * microseconds after the call, and announces it with a "change"
         * uevent for the disk (its new capacity). Joining the broadcast
         * before the first look means the event cannot slip between the
         * look and the wait; any uevent wakes us, and the look decides.
         * The wait is capped at 10 ms only so that `stop` is seen, and so
         * that a kernel that sends no event, or a socket that cannot be
         * had, still gets there by looking. */
        uevent_fd = uevent_socket_open(UEVENT_GROUP_KERNEL);
        (void) snprintf(path, sizeof(path), "/sys/block/nbd%d/pid", index);
        while (access(path, F_OK) < 0) {
                usec_t now = now_usec(CLOCK_MONOTONIC);

                if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE))
                        return -ECANCELED;
                if (now >= deadline)
                        return -ETIMEDOUT;
                if (uevent_fd >= 0) {
                        (void) poll(&(struct pollfd) { .fd = uevent_fd, .events = POLLIN }, 1,
                                    (int) MIN((deadline - now + 999) / 1000, 10));
                        uevent_socket_drain(uevent_fd);
                } else
                        (void) nanosleep(&(struct timespec) { .tv_nsec = 1000 * 1000 }, NULL);
        }
        uevent_fd = safe_close(uevent_fd);

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

static int udev_settle_begin_real(void *u, int index, UdevSettle **ret) {
        return udev_settle_begin(index, ret);
}

const KernelOps kernel_ops_real = {
        .set_sock = real_set_sock,
        .set_blksize = real_set_blksize,
        .set_size_blocks = real_set_size_blocks,
        .set_timeout = real_set_timeout,
        .set_flags = real_set_flags,
        .blkroset = real_blkroset,
        .do_it = real_do_it,
        .disconnect = real_disconnect,
        .clear_que = real_clear_que,
        .clear_sock = real_clear_sock,
        .flush = real_flush,
        .get_max_request_kb = real_get_max_request_kb,
        .set_max_request_kb = real_set_max_request_kb,
        .wait_started = real_wait_started,
        .backoff = real_backoff,
        .netlink = real_netlink,
        .udev_settle_begin = udev_settle_begin_real,
};

