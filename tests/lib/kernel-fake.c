/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A KernelOps that records each call as a line of text and fails the
 * operations a test asks it to, so the ioctl sequence can be checked on a
 * machine without nbd. */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>

#include "kernel-fake.h"
#include "util/macro.h"

_printf_(2, 3)
static void fake_log(KernelFake *f, const char *format, ...) {
        va_list ap;
        int k;

        if (f->log_len + 1 >= sizeof(f->log))
                return;
        va_start(ap, format);
        k = vsnprintf(f->log + f->log_len, sizeof(f->log) - f->log_len, format, ap);
        va_end(ap);
        if (k > 0)
                f->log_len = MIN(sizeof(f->log) - 1, f->log_len + (size_t) k);
}

#define fake_record(u, op, ...)                                 \
        ({                                                      \
                fake_log((u), __VA_ARGS__);                     \
                fake_result((u), (op));                         \
        })

static int fake_result(KernelFake *f, KernelFakeOp op) {
        int e = f->fail_op_errno[op];

        if (e == 0)
                return 0;
        /* A count makes the failure transient, like udev's EBUSY. */
        if (f->fail_count[op] > 0 && --f->fail_count[op] == 0)
                f->fail_op_errno[op] = 0;
        return -e;
}

static int fake_set_sock(void *u, int fd, int sock)          { return fake_record(u, KFAKE_SET_SOCK, "set_sock %d\n", sock); }
static int fake_set_blksize(void *u, int fd, uint64_t v)     { return fake_record(u, KFAKE_SET_BLKSIZE, "set_blksize %llu\n", (unsigned long long) v); }
static int fake_set_size_blocks(void *u, int fd, uint64_t v) { return fake_record(u, KFAKE_SET_SIZE_BLOCKS, "set_size_blocks %llu\n", (unsigned long long) v); }
static int fake_set_timeout(void *u, int fd, uint64_t v)     { return fake_record(u, KFAKE_SET_TIMEOUT, "set_timeout %llu\n", (unsigned long long) v); }
static int fake_set_flags(void *u, int fd, uint64_t v)       { return fake_record(u, KFAKE_SET_FLAGS, "set_flags 0x%llx\n", (unsigned long long) v); }
static int fake_blkroset(void *u, int fd, bool ro)           { return fake_record(u, KFAKE_BLKROSET, "blkroset %d\n", ro); }
static int fake_do_it(void *u, int fd)                       { return fake_record(u, KFAKE_DO_IT, "do_it\n"); }
static int fake_disconnect(void *u, int fd)                  { return fake_record(u, KFAKE_DISCONNECT, "disconnect\n"); }
static int fake_clear_que(void *u, int fd)                   { return fake_record(u, KFAKE_CLEAR_QUE, "clear_que\n"); }
static int fake_clear_sock(void *u, int fd)                  { return fake_record(u, KFAKE_CLEAR_SOCK, "clear_sock\n"); }
static int fake_flush(void *u, int fd)                       { return fake_record(u, KFAKE_FLUSH, "flush\n"); }
static int fake_wait_started(void *u, int index, uint64_t t, const int *stop) { return fake_record(u, KFAKE_WAIT_STARTED, "wait_started nbd%d\n", index); }

static int fake_get_max_request_kb(void *u, int index, uint32_t *ret_kb, uint32_t *ret_hw_kb) {
        KernelFake *f = u;

        *ret_kb = f->max_request_kb ?: 128;
        *ret_hw_kb = f->max_hw_request_kb ?: 32768;
        return 0;
}

static int fake_set_max_request_kb(void *u, int index, uint32_t kb) {
        return fake_record(u, KFAKE_SET_MAX_REQUEST, "max_request_kb nbd%d %u\n", index, kb);
}

static int fake_netlink(void *u, NbdNlCommand cmd, const NbdNlConfig *c, int *ret_index) {
        static const char *const names[] = {
                [NBD_NL_CONNECT] = "connect", [NBD_NL_DISCONNECT] = "disconnect",
                [NBD_NL_RECONFIGURE] = "reconfigure", [NBD_NL_LINK_DEAD] = "link_dead",
                [NBD_NL_STATUS] = "status",
        };
        /* The message itself is built, so a config the kernel would never
         * see fails here as it would for real. */
        uint8_t buf[NBD_NL_BUFFER_SIZE];
        int r = nbd_nl_build(buf, sizeof(buf), 0x10, 1, cmd, c);

        fake_log(u, "netlink %s nbd%d", (unsigned) cmd < ELEMENTSOF(names) && names[cmd] ? names[cmd] : "?", c->index);
        if (cmd == NBD_NL_CONNECT)
                fake_log(u, " size=%llu bs=%llu flags=0x%llx timeout=%llu dead=%llu",
                         (unsigned long long) c->size, (unsigned long long) c->block_size,
                         (unsigned long long) c->server_flags, (unsigned long long) c->timeout_sec,
                         (unsigned long long) c->dead_timeout_sec);
        for (size_t i = 0; i < c->n_socks; i++)
                fake_log(u, " sock=%d", c->socks[i]);
        if (c->backend)
                fake_log(u, " backend=%s", c->backend);
        fake_log(u, "\n");
        if (r < 0)
                return r;
        if (ret_index && cmd == NBD_NL_CONNECT)
                *ret_index = c->index;
        return fake_result(u, KFAKE_NETLINK);
}

static void fake_backoff(void *u, unsigned attempt) {
        fake_log(u, "backoff %u\n", attempt);
}

/* No udevd behind the fake: nothing to wait for. */
static int fake_udev_settle_begin(void *u, int index, UdevSettle **ret) {
        *ret = NULL;
        return 0;
}

const KernelOps kernel_ops_fake = {
        .set_sock = fake_set_sock,
        .set_blksize = fake_set_blksize,
        .set_size_blocks = fake_set_size_blocks,
        .set_timeout = fake_set_timeout,
        .set_flags = fake_set_flags,
        .blkroset = fake_blkroset,
        .do_it = fake_do_it,
        .disconnect = fake_disconnect,
        .clear_que = fake_clear_que,
        .clear_sock = fake_clear_sock,
        .flush = fake_flush,
        .get_max_request_kb = fake_get_max_request_kb,
        .set_max_request_kb = fake_set_max_request_kb,
        .wait_started = fake_wait_started,
        .backoff = fake_backoff,
        .netlink = fake_netlink,
        .udev_settle_begin = fake_udev_settle_begin,
};
