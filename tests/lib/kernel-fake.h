/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A KernelOps for tests: records each call as a line of text and fails the
 * operations a test asks it to, so the kernel hand-off can be checked on a
 * machine without nbd. */
#pragma once

#include <stdint.h>

#include "kernel.h"

/* A fake that records each call as a line ("set_sock 5\n", ...) and fails
 * the operations the test asks it to. */
typedef struct KernelFake {
        char log[4096];
        size_t log_len;
        int fail_op_errno[16];          /* indexed by KernelFakeOp; 0: succeed */
        unsigned fail_count[16];        /* fail only this many times; 0: always */
        uint32_t max_request_kb;        /* what get_max_request_kb() reports; 0: 128 */
        uint32_t max_hw_request_kb;     /* 0: 32768 */
} KernelFake;

typedef enum KernelFakeOp {
        KFAKE_SET_SOCK, KFAKE_SET_BLKSIZE, KFAKE_SET_SIZE_BLOCKS,
        KFAKE_SET_TIMEOUT, KFAKE_SET_FLAGS, KFAKE_BLKROSET, KFAKE_DO_IT,
        KFAKE_DISCONNECT, KFAKE_CLEAR_QUE, KFAKE_CLEAR_SOCK, KFAKE_FLUSH,
        KFAKE_WAIT_STARTED, KFAKE_NETLINK, KFAKE_SET_MAX_REQUEST,
        _KFAKE_MAX,
} KernelFakeOp;

extern const KernelOps kernel_ops_fake;
