/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every fuzz target shares: the libFuzzer entry point (which the
 * corpus replay test calls without libFuzzer) and an assertion that stays
 * on in every build type, since a fuzzer finds bugs only by crashing. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(expr)                                                                \
        do {                                                                            \
                if (!(expr)) {                                                          \
                        fprintf(stderr, "%s:%d: invariant broken: %s\n",                \
                                __FILE__, __LINE__, #expr);                             \
                        abort();                                                        \
                }                                                                       \
        } while (0)
