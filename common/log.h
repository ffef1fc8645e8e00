/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The daemon's one way to say something: a line on stderr with a syslog
 * priority. Under systemd stderr is a journal stream, and the line then
 * starts with "<N>" so that the journal files it at that priority
 * (journalctl -p err shows the errors); on a terminal or in a test log it
 * is the plain text. Any thread may log; a line is one write(2). */
#pragma once

#include <syslog.h>

#include "util/macro.h"

/* Lines above this priority (LOG_DEBUG is the highest number) are dropped.
 * LOG_INFO unless changed. */
void log_set_max_level(int level);

/* Logs format at level; with error != 0, errno is set from it first, so
 * that %m in format names it. Returns -abs(error), so that
 * "return log_error_errno(r, ...)" passes r on. */
_printf_(3, 4) int log_internal(int level, int error, const char *format, ...);

#define log_error(...)   ((void) log_internal(LOG_ERR, 0, __VA_ARGS__))
#define log_warning(...) ((void) log_internal(LOG_WARNING, 0, __VA_ARGS__))
#define log_notice(...)  ((void) log_internal(LOG_NOTICE, 0, __VA_ARGS__))
#define log_info(...)    ((void) log_internal(LOG_INFO, 0, __VA_ARGS__))
#define log_debug(...)   ((void) log_internal(LOG_DEBUG, 0, __VA_ARGS__))

#define log_error_errno(error, ...)   log_internal(LOG_ERR, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_internal(LOG_WARNING, (error), __VA_ARGS__)
