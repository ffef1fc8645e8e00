/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a process holds, counted in /proc: the tests check that a case left
 * no descriptor or thread behind, in the test process itself or in the
 * nbdlinkd it started. */
#pragma once

#include <sys/types.h>

/* The open descriptors of process pid (0: this process), from
 * /proc/PID/fd; the count includes the one that reads the directory. Fails
 * the test when the directory cannot be read. */
unsigned proc_count_fds(pid_t pid);

/* The threads of process pid (0: this process), from /proc/PID/task. */
unsigned proc_count_threads(pid_t pid);
