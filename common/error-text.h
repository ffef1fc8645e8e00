/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A failure below the bus: a negative errno (or a failure code below) and
 * a message a person can act on. Every layer
 * reports with an Error, and bus-error.c alone turns it into a D-Bus error.
 * A message is cut so that it stays UTF-8: it may end up in a D-Bus error,
 * which carries nothing else. */
#pragma once

#include <stddef.h>

#include "util/macro.h"

#define ERROR_MESSAGE_MAX 8192

/* Failures whose meaning is no errno's: past every errno value, so that they
 * travel as negative numbers like the others, and only bus-error.c gives
 * them names. */
typedef enum NbdlinkFailure {
        /* polkit would ask for a password, but the call did not allow it
         * → org.freedesktop.DBus.Error.InteractiveAuthorizationRequired */
        NBDLINK_ERR_INTERACTIVE_REQUIRED = -10001,
        /* a limit of contract.h: too much in flight for this uid or for all
         * → org.nbdlink.NBD1.Error.LimitExceeded */
        NBDLINK_ERR_LIMIT_EXCEEDED = -10002,
} NbdlinkFailure;

typedef struct Error {
        int code;                       /* negative; 0 while nothing failed */
        char message[ERROR_MESSAGE_MAX];
} Error;

/* Records code and the formatted message in e, unless e is NULL (the
 * caller wants no details). Returns code, so that
 * "return error_set(e, -EINVAL, ...)" reads as what it does. */
_printf_(3, 4) int error_set(Error *e, int code, const char *format, ...);

/* e's message, "" when there is none (or e is NULL). */
const char *error_message(const Error *e);
