/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who a test's bus caller is: one of the polkit suite's users, which the
 * caller programs become before they connect, and the process polkit
 * knows an authentication agent by. */
#pragma once

#include <stdint.h>

/* Drops the groups, then the gid and the uid of the calling process to
 * those of user `name`, for good. 0, or negative errno (-ESRCH: no such
 * user) after a message on stderr that names `program`. */
int caller_become_user(const char *program, const char *name);

/* The calling process's start time in clock ticks since boot (field 22 of
 * /proc/self/stat): polkit (since 0.105) keys an agent registered for a
 * unix-process subject by pid and start time. 0, or negative errno. */
int caller_process_start_time(uint64_t *ret);
