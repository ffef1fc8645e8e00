/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Waiting for udev (udev-settle.h). Two sockets on the uevent broadcast,
 * joined before the device starts: the kernel's group says which events
 * there were (by sequence number), udevd's group says which of them it has
 * finished. udevd runs an event only after every earlier event of the same
 * device, its parent and its children, and broadcasts it with the
 * kernel's sequence number once its rules have run: when every number the
 * kernel gave for the disk and its partitions has come back from udevd,
 * udev is done with the device. udevadm settle would wait for every
 * device's events, and writing "change" to the device's uevent file (what
 * udevadm trigger --settle does) needs a writable /sys, which the unit
 * does not give the daemon. */

#include <errno.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "udev-settle.h"
#include "util/macro.h"

/* udevd's control socket: there while udevd runs. */
#define UDEV_CONTROL_PATH "/run/udev/control"
/* A partition table holds at most 256 entries on an nbd device (its
 * minors); events past that many would be another device's business. */
#define SETTLE_MAX_EVENTS 512u
/* udevd's largest messages: every property of a device. */
#define UEVENT_MAX_SIZE (1024u * 1024u)
/* Enough for a burst of events from many devices at boot while we are
 * busy elsewhere; udevd's own monitor asks for 128 MiB. */
#define UEVENT_RCVBUF (4u * 1024u * 1024u)

/* libudev's monitor header: "libudev\0", a magic number (big endian),
 * then where the KEY=VALUE pairs are. */
#define UDEV_MONITOR_MAGIC 0xfeedcafeu
#define UDEV_HEADER_PREFIX "libudev"
#define UDEV_HEADER_MIN_SIZE 24u

struct UdevSettle {
        int index;
        int kernel_fd;
        int udev_fd;
        bool lost;                      /* the kernel's socket overran */
        uint64_t pending[SETTLE_MAX_EVENTS];    /* the kernel's, not yet finished */
        size_t n_pending;
        uint64_t done[SETTLE_MAX_EVENTS];       /* finished by udevd */
        size_t n_done;
};

int uevent_socket_open(unsigned group) {
        struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = group };
        int fd, one = 1, size = UEVENT_RCVBUF;

        fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, NETLINK_KOBJECT_UEVENT);
        if (fd < 0)
                return negative_errno();
        /* FORCE needs CAP_NET_ADMIN, which the daemon has; tests may not. */
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) < 0)
                (void) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
        /* udevd's messages are believed only from root (see receive()). */
        if (group == UEVENT_GROUP_UDEV && setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0)
                goto fail;
        if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                goto fail;
        return fd;
fail:;
        int r = negative_errno();
        safe_close(fd);
        return r;
}

static uint32_t read_u32(const uint8_t *p, bool big_endian) {
        uint32_t v;

        if (big_endian)
                return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
        memcpy(&v, p, sizeof(v));
        return v;
}

int uevent_parse(const void *buf, size_t n, bool from_udev, Uevent *ret) {
        const char *p = buf, *end = p + n;
        const char *devpath = NULL, *seqnum = NULL;

        if (from_udev) {
                const uint8_t *h = buf;
                uint32_t off, len;

                if (n < UDEV_HEADER_MIN_SIZE || memcmp(h, UDEV_HEADER_PREFIX, sizeof(UDEV_HEADER_PREFIX)) != 0 ||
                    read_u32(h + 8, true) != UDEV_MONITOR_MAGIC)
                        return -EBADMSG;
                /* Host byte order, as udevd wrote them. */
                off = read_u32(h + 16, false);
                len = read_u32(h + 20, false);
                if (off < UDEV_HEADER_MIN_SIZE || off > n || len > n - off)
                        return -EBADMSG;
                p = (const char *) buf + off;
                end = p + len;
        } else {
                /* "ACTION@DEVPATH", then the pairs. */
                const char *z = memchr(p, '\0', n);
                if (!z || !memchr(p, '@', (size_t) (z - p)))
                        return -EBADMSG;
                p = z + 1;
        }

        while (p < end) {
                const char *z = memchr(p, '\0', (size_t) (end - p));
                if (!z)
                        return -EBADMSG;
                if (strncmp(p, "DEVPATH=", 8) == 0)
                        devpath = p + 8;
                else if (strncmp(p, "SEQNUM=", 7) == 0)
                        seqnum = p + 7;
                p = z + 1;
        }
        if (!devpath || !seqnum || *seqnum < '0' || *seqnum > '9')
                return -EBADMSG;

        char *e;
        errno = 0;
        unsigned long long v = strtoull(seqnum, &e, 10);
        if (errno != 0 || *e != '\0')
                return -EBADMSG;
        *ret = (Uevent) { .devpath = devpath, .seqnum = v };
        return 0;
}

bool uevent_devpath_is_device(const char *devpath, int index) {
        char name[32];
        const char *p;
        size_t l;

        /* /devices/virtual/block/nbdN, and /devices/virtual/block/nbdN/nbdNpM
         * for its partitions: not nbdNM. */
        l = (size_t) snprintf(name, sizeof(name), "/block/nbd%d", index);
        for (p = strstr(devpath, name); p; p = strstr(p + 1, name))
                if (p[l] == '\0' || p[l] == '/')
                        return true;
        return false;
}

int udev_settle_begin(int index, UdevSettle **ret) {
        _cleanup_free_ UdevSettle *s = NULL;
        int r;

        *ret = NULL;
        if (access(UDEV_CONTROL_PATH, F_OK) < 0)
                return 0;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->index = index;
        s->kernel_fd = s->udev_fd = -EBADF;
        /* udevd's first: an outcome can only follow its event. */
        r = uevent_socket_open(UEVENT_GROUP_UDEV);
        if (r < 0)
                return r;
        s->udev_fd = r;
        r = uevent_socket_open(UEVENT_GROUP_KERNEL);
        if (r < 0) {
                safe_close(s->udev_fd);
                return r;
        }
        s->kernel_fd = r;
        *ret = TAKE_PTR(s);
        return 0;
}

UdevSettle *udev_settle_free(UdevSettle *s) {
        if (!s)
                return NULL;
        safe_close(s->kernel_fd);
        safe_close(s->udev_fd);
        free(s);
        return NULL;
}

/* A message buffer that grows to the largest message seen: udevd sends
 * every property of a device, and an export name of 4096 bytes shows up
 * in three of them. */
typedef struct Buffer {
        char *data;
        size_t size;
} Buffer;

/* One message off fd, believed only from the kernel (port 0) for the
 * kernel's group and from root's udevd for udev's. 1 with *ret set (its
 * pointers into b), 0 for a message to ignore, -EAGAIN for nothing (more)
 * to read, -ENOBUFS after an overrun. */
static int receive(int fd, bool from_udev, Buffer *b, Uevent *ret) {
        union {
                struct cmsghdr h;
                uint8_t buf[CMSG_SPACE(sizeof(struct ucred))];
        } control = {};
        struct sockaddr_nl sender = {};
        struct iovec iov;
        struct msghdr mh = {
                .msg_name = &sender, .msg_namelen = sizeof(sender),
                .msg_iov = &iov, .msg_iovlen = 1,
                .msg_control = &control, .msg_controllen = sizeof(control),
        };
        const struct ucred *cred = NULL;
        ssize_t n;

        /* How long the next message is, without taking it. */
        n = recv(fd, NULL, 0, MSG_PEEK | MSG_TRUNC | MSG_DONTWAIT);
        if (n < 0)
                return errno == ENOBUFS ? -ENOBUFS : errno == EAGAIN || errno == EINTR ? -EAGAIN : negative_errno();
        if ((size_t) n >= b->size) {
                size_t size = MAX((size_t) n + 1, 2 * b->size);
                char *p;

                if (size > UEVENT_MAX_SIZE)
                        size = UEVENT_MAX_SIZE;
                p = realloc(b->data, size);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->size = size;
        }

        iov = (struct iovec) { .iov_base = b->data, .iov_len = b->size - 1 };
        n = recvmsg(fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0)
                return errno == ENOBUFS ? -ENOBUFS : errno == EAGAIN || errno == EINTR ? -EAGAIN : negative_errno();
        /* Larger than any device's properties could be: not udev's. */
        if (mh.msg_flags & MSG_TRUNC)
                return 0;
        b->data[n] = '\0';

        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
                if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS &&
                    c->cmsg_len == CMSG_LEN(sizeof(struct ucred)))
                        cred = (const struct ucred *) CMSG_DATA(c);

        if (from_udev ? sender.nl_pid == 0 || !cred || cred->uid != 0 : sender.nl_pid != 0)
                return 0;
        return uevent_parse(b->data, (size_t) n, from_udev, ret) < 0 ? 0 : 1;
}

static bool seqnum_in(const uint64_t *set, size_t n, uint64_t seqnum) {
        for (size_t i = 0; i < n; i++)
                if (set[i] == seqnum)
                        return true;
        return false;
}

/* Reads what the kernel has said about our device since the last look:
 * each event udevd has not finished yet is pending. */
static int drain_kernel(UdevSettle *s, Buffer *b) {
        for (;;) {
                Uevent e;
                int r = receive(s->kernel_fd, false, b, &e);

                if (r == -EAGAIN)
                        return 0;
                if (r == -ENOBUFS) {
                        s->lost = true;
                        continue;
                }
                if (r < 0)
                        return r;
                if (r == 0 || !uevent_devpath_is_device(e.devpath, s->index))
                        continue;
                if (!seqnum_in(s->done, s->n_done, e.seqnum) && s->n_pending < SETTLE_MAX_EVENTS)
                        s->pending[s->n_pending++] = e.seqnum;
        }
}

/* Crosses off what udevd has finished, and remembers it: its outcome can
 * be read before the kernel's event, which is on another socket. */
static int drain_udev(UdevSettle *s, Buffer *b) {
        for (;;) {
                Uevent e;
                int r = receive(s->udev_fd, true, b, &e);

                if (r == -EAGAIN)
                        return 0;
                /* udevd's outcomes lost to an overrun: what we wait for
                 * may be among them, and the timeout ends the wait. */
                if (r == -ENOBUFS)
                        continue;
                if (r < 0)
                        return r;
                if (r == 0 || !uevent_devpath_is_device(e.devpath, s->index))
                        continue;
                if (s->n_done < SETTLE_MAX_EVENTS)
                        s->done[s->n_done++] = e.seqnum;
                for (size_t i = 0; i < s->n_pending; i++)
                        if (s->pending[i] == e.seqnum) {
                                s->pending[i] = s->pending[--s->n_pending];
                                break;
                        }
        }
}

int udev_settle_wait(UdevSettle *s, usec_t timeout_usec, const int *stop) {
        usec_t deadline = deadline_after(timeout_usec);
        Buffer b = {};
        int r = 0;

        if (!s)
                return 0;

        /* Each round reads both sockets again: besides the events of the
         * start and the partition scan, sent before we were called, udevd
         * may make up its own (a "change" after a writer closed the
         * device), and the wait covers those it makes before it is done
         * with ours. */
        for (;;) {
                usec_t now;

                r = drain_kernel(s, &b);
                if (r >= 0 && s->lost)
                        r = -ENOBUFS;
                if (r >= 0)
                        r = drain_udev(s, &b);
                if (r < 0 || s->n_pending == 0)
                        break;
                if (stop && __atomic_load_n(stop, __ATOMIC_ACQUIRE)) {
                        r = -ECANCELED;
                        break;
                }
                now = now_usec(CLOCK_MONOTONIC);
                if (now >= deadline) {
                        r = -ETIMEDOUT;
                        break;
                }
                /* In slices, so that stop is seen soon. */
                (void) poll((struct pollfd[]) {
                                    { .fd = s->udev_fd, .events = POLLIN },
                                    { .fd = s->kernel_fd, .events = POLLIN },
                            }, 2, (int) MIN((deadline - now + 999) / 1000, 100));
        }
        free(b.data);
        return r;
}
