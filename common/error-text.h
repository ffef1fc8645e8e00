/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Failures below the bus are a negative errno plus a message written into
 * a buffer the caller owns; this writes that message. One helper for every
 * layer, so that every message is cut the same way: never inside a UTF-8
 * character, since it may end up in a D-Bus error, which carries UTF-8 only. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

/* Formats into error (when it is not NULL and error_size > 0) and returns
 * r, so that "return error_setf(error, size, -EINVAL, ...)" reads as what it
 * does. */
_printf_(4, 5) int error_setf(char *error, size_t error_size, int r, const char *format, ...);
