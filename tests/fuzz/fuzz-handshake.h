/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The libFuzzer entry point, declared for the corpus replay test that
 * calls it without libFuzzer. */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
