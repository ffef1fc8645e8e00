/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ioctl sequence of the kernel hand-off, through the recording fake:
 * order, values, the ENOTTY → BLKROSET fallback, BLKROSET on every attach,
 * the multi-conn check, the EBUSY retry, the cleanup after a failure, the
 * block size and the request size held to the server's maximum. */

#include <errno.h>
#include <string.h>

#include "kernel-fake.h"
#include "nbd-protocol.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>

static const int socks[] = { 7, 8, 9, 10 };

static KernelAttach attach_one(void) {
        return (KernelAttach) {
                .index = 3,
                .socks = socks,
                .n_socks = 1,
                .size = 1024 * 1024,
                .flags = NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH,
                .block_size = 4096,
                .io_timeout_sec = 30,
        };
}

static void test_sequence(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_cmpstr(f.log, ==,
                        "set_sock 7\n"
                        "set_blksize 4096\n"
                        "set_size_blocks 256\n"
                        "set_timeout 30\n"
                        "set_flags 0x5\n"
                        "blkroset 0\n");

        /* DO_IT ending with EPIPE is a normal end; queue and sockets are cleared. */
        f = (KernelFake) {};
        f.fail_op_errno[KFAKE_DO_IT] = EPIPE;
        g_assert_cmpint(kernel_run(&kernel_ops_fake, &f, 99), ==, 0);
        g_assert_cmpstr(f.log, ==, "do_it\nclear_que\nclear_sock\n");

        f = (KernelFake) {};
        g_assert_cmpint(kernel_request_detach(&kernel_ops_fake, &f, 99), ==, 0);
        g_assert_cmpstr(f.log, ==, "disconnect\n");

        /* A server that ignores NBD_CMD_DISC is cut off. */
        f = (KernelFake) {};
        g_assert_cmpint(kernel_force_detach(&kernel_ops_fake, &f, 99), ==, 0);
        g_assert_cmpstr(f.log, ==, "clear_sock\n");

        /* Any other DO_IT error is reported, and cleanup still happens. */
        f = (KernelFake) {};
        f.fail_op_errno[KFAKE_DO_IT] = ETIMEDOUT;
        g_assert_cmpint(kernel_run(&kernel_ops_fake, &f, 99), ==, -ETIMEDOUT);
        g_assert_cmpstr(f.log, ==, "do_it\nclear_que\nclear_sock\n");
}

static void test_read_only_and_odd_size(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        a.read_only = true;
        a.size = 1000;                  /* no multiple of 512: whole blocks only */
        a.block_size = 0;               /* default */
        a.io_timeout_sec = 0;           /* never; clears an earlier user's */
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_cmpstr(f.log, ==,
                        "set_sock 7\n"
                        "set_blksize 512\n"
                        "set_size_blocks 1\n"
                        "set_timeout 0\n"
                        "set_flags 0x7\n"
                        "blkroset 1\n");

        /* 4096-byte blocks: the last partial block is left out too. */
        f = (KernelFake) {};
        a = attach_one();
        a.size = 3 * 4096 + 512;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_nonnull(strstr(f.log, "set_blksize 4096\nset_size_blocks 3\n"));
        g_assert_cmpuint(kernel_device_size(3 * 4096 + 512, 4096), ==, 3 * 4096);
        g_assert_cmpuint(kernel_device_size(1000, 512), ==, 512);
}

/* blockdev --setro outlives whoever ran it: every attach sets the flag,
 * whether NBD_SET_FLAGS worked or not. */
static void test_blkroset_always(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_true(g_str_has_suffix(f.log, "set_flags 0x5\nblkroset 0\n"));

        f = (KernelFake) {};
        a.read_only = true;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_true(g_str_has_suffix(f.log, "set_flags 0x7\nblkroset 1\n"));

        /* A server's own read-only flag counts the same. */
        f = (KernelFake) {};
        a = attach_one();
        a.flags |= NBD_FLAG_READ_ONLY;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_true(g_str_has_suffix(f.log, "set_flags 0x7\nblkroset 1\n"));
}

static void test_enotty_blkroset(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        a.flags |= NBD_FLAG_READ_ONLY;
        f.fail_op_errno[KFAKE_SET_FLAGS] = ENOTTY;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_cmpstr(f.log, ==,
                        "set_sock 7\n"
                        "set_blksize 4096\n"
                        "set_size_blocks 256\n"
                        "set_timeout 30\n"
                        "set_flags 0x7\n"
                        "blkroset 1\n");

        /* Writable export on such a kernel: BLKROSET 0, explicitly. */
        f = (KernelFake) {};
        a = attach_one();
        f.fail_op_errno[KFAKE_SET_FLAGS] = ENOTTY;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_nonnull(strstr(f.log, "set_flags 0x5\nblkroset 0\n"));

        /* A failing BLKROSET fails the attach; the caller says goodbye on
         * the sockets, then clears the device. */
        f = (KernelFake) {};
        f.fail_op_errno[KFAKE_SET_FLAGS] = ENOTTY;
        f.fail_op_errno[KFAKE_BLKROSET] = EACCES;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, -EACCES);
        g_assert_true(g_str_has_suffix(f.log, "blkroset 0\n"));
        kernel_clear(&kernel_ops_fake, &f, 99);
        g_assert_true(g_str_has_suffix(f.log, "blkroset 0\nclear_que\nclear_sock\n"));
        g_assert_true(g_str_has_prefix(err.message, "device nbd3: BLKROSET failed"));
}

static void test_multi_conn(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        a.n_socks = 4;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, -EINVAL);
        g_assert_cmpstr(f.log, ==, "");         /* refused before any ioctl */
        g_assert_nonnull(strstr(err.message, "NBD_FLAG_CAN_MULTI_CONN"));
        g_assert_true(g_str_has_prefix(err.message, "device nbd3: "));

        a.flags |= NBD_FLAG_CAN_MULTI_CONN;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_true(g_str_has_prefix(f.log, "set_sock 7\nset_sock 8\nset_sock 9\nset_sock 10\nset_blksize 4096\n"));
}

static void test_ebusy(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        /* udev lets go after two tries. */
        f.fail_op_errno[KFAKE_SET_SOCK] = EBUSY;
        f.fail_count[KFAKE_SET_SOCK] = 2;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, 0);
        g_assert_true(g_str_has_prefix(f.log, "set_sock 7\nbackoff 0\nset_sock 7\nbackoff 1\nset_sock 7\nset_blksize"));

        /* It never does: DeviceBusy, and the device is cleared. */
        f = (KernelFake) {};
        f.fail_op_errno[KFAKE_SET_SOCK] = EBUSY;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, -EBUSY);
        g_assert_true(g_str_has_suffix(f.log, "backoff 4\nset_sock 7\n"));
        g_assert_true(g_str_has_prefix(err.message, "device nbd3: in use"));
}

static void test_limits(void) {
        KernelFake f = {};
        KernelAttach a = attach_one();
        Error err = {};

        a.size = UINT64_MAX;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, -EFBIG);
        g_assert_cmpstr(f.log, ==, "");

        /* The kernel refuses the size: TooLarge. */
        a = attach_one();
        f.fail_op_errno[KFAKE_SET_SIZE_BLOCKS] = EINVAL;
        g_assert_cmpint(kernel_attach(&kernel_ops_fake, &f, 99, &a, &err), ==, -EFBIG);
        g_assert_true(g_str_has_suffix(f.log, "set_size_blocks 256\n"));
}

static void test_block_size(void) {
        Error err = {};
        uint32_t bs = 0;

        /* max(512, server minimum), whatever the server prefers. */
        g_assert_cmpint(kernel_pick_block_size(0, 0, 0, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 512);
        g_assert_cmpint(kernel_pick_block_size(0, 1, 33554432, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 512);          /* qemu-nbd: 1 / 4096 / 32 MiB */
        g_assert_cmpint(kernel_pick_block_size(0, 512, UINT32_MAX, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 512);
        g_assert_cmpint(kernel_pick_block_size(0, 1024, 0, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 1024);
        g_assert_cmpint(kernel_pick_block_size(0, 4096, 65536, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 4096);
        g_assert_cmpint(kernel_pick_block_size(0, 8192, 0, &bs, &err), ==, -EOPNOTSUPP);
        /* Requests cannot be held below a page. */
        g_assert_cmpint(kernel_pick_block_size(0, 512, 2048, &bs, &err), ==, -EOPNOTSUPP);
        g_assert_nonnull(strstr(err.message, "maximum request size 2048"));

        /* The caller's, within the server's limits. */
        g_assert_cmpint(kernel_pick_block_size(1024, 0, 0, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 1024);
        g_assert_cmpint(kernel_pick_block_size(4096, 1, 33554432, &bs, &err), ==, 0);
        g_assert_cmpuint(bs, ==, 4096);
        g_assert_cmpint(kernel_pick_block_size(512, 1024, 0, &bs, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err.message, "outside the server's limits"));
}

/* The server's maximum payload becomes max_sectors_kb when it is lower than
 * what the device allows, in whole pages, and is put back afterwards. */
static void test_max_request(void) {
        Error err = {};
        KernelFake f = {};
        uint32_t saved = 99;

        /* No maximum, or one above the device's: nothing to do. */
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 0, &saved, &err), ==, 0);
        g_assert_cmpuint(saved, ==, 0);
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, UINT32_MAX, &saved, &err), ==, 0);
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 32 * 1024 * 1024, &saved, &err), ==, 0);
        g_assert_cmpuint(saved, ==, 0);
        g_assert_cmpstr(f.log, ==, "");

        /* 64 KiB under the default 128 KiB. */
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 65536, &saved, &err), ==, 0);
        g_assert_cmpstr(f.log, ==, "max_request_kb nbd3 64\n");
        g_assert_cmpuint(saved, ==, 128);
        kernel_restore_requests(&kernel_ops_fake, &f, 3, saved);
        g_assert_cmpstr(f.log, ==, "max_request_kb nbd3 64\nmax_request_kb nbd3 128\n");

        /* Not a whole number of pages: rounded down. */
        f = (KernelFake) {};
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 65536 + 3000, &saved, &err), ==, 0);
        g_assert_cmpstr(f.log, ==, "max_request_kb nbd3 64\n");

        /* Below a page the kernel cannot be held: Unsupported. */
        f = (KernelFake) {};
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 1024, &saved, &err), ==, -EOPNOTSUPP);
        g_assert_cmpstr(f.log, ==, "");

        /* A device whose hardware limit is lower still keeps it. */
        f = (KernelFake) { .max_request_kb = 512, .max_hw_request_kb = 256 };
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 1024 * 1024, &saved, &err), ==, 0);
        g_assert_cmpstr(f.log, ==, "max_request_kb nbd3 256\n");

        /* The kernel refuses: the attach fails with its reason. */
        f = (KernelFake) {};
        f.fail_op_errno[KFAKE_SET_MAX_REQUEST] = EINVAL;
        g_assert_cmpint(kernel_limit_requests(&kernel_ops_fake, &f, 3, 65536, &saved, &err), ==, -EINVAL);
        g_assert_nonnull(strstr(err.message, "server's maximum of 65536 bytes"));
        g_assert_cmpuint(saved, ==, 0);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/kernel/sequence", test_sequence);
        g_test_add_func("/kernel/read-only-odd-size", test_read_only_and_odd_size);
        g_test_add_func("/kernel/enotty-blkroset", test_enotty_blkroset);
        g_test_add_func("/kernel/multi-conn", test_multi_conn);
        g_test_add_func("/kernel/ebusy-retry", test_ebusy);
        g_test_add_func("/kernel/limits", test_limits);
        g_test_add_func("/kernel/block-size", test_block_size);
        g_test_add_func("/kernel/blkroset-always", test_blkroset_always);
        g_test_add_func("/kernel/max-request", test_max_request);
        return g_test_run();
}
