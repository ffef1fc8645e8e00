/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a process holds, counted in /proc: the tests check that a case left
 * no descriptor or thread behind, in the test process itself or in the
 * nbdlinkd it started, and how much memory it took at its peak. */
#pragma once

#include <sys/types.h>

/* The open descriptors of process pid (0: this process), from
 * /proc/PID/fd; the count includes the one that reads the directory. Fails
 * the test when the directory cannot be read. */
unsigned proc_count_fds(pid_t pid);

/* The threads of process pid (0: this process), from /proc/PID/task. */
unsigned proc_count_threads(pid_t pid);

/* As proc_count_fds(), but -1 when the process is gone: for sampling a
 * process that a test may have killed. */
int proc_try_count_fds(pid_t pid);

/* The number on the "key:" line of /proc/PID/status (0: this process):
 * "Threads", or "VmRSS" and "VmHWM" (the peak) in KiB. -1 when the process
 * or the line is gone. */
long proc_status_value(pid_t pid, const char *key);

/* Makes the current resident set size process pid's peak (VmHWM) again,
 * so that the next peak is one of what follows (writes 5 to
 * /proc/PID/clear_refs). 0, or negative errno. */
int proc_reset_peak_rss(pid_t pid);
