/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.nbdlink.NBD1.Error.* names and their errno values, shared by the
 * daemon, the client and the tests (docs/errors.md). */
#pragma once

#include <systemd/sd-bus.h>

#define NBDLINK_ERROR_PREFIX "org.nbdlink.NBD1.Error."

#define NBDLINK_ERROR_NOT_AUTHORIZED     NBDLINK_ERROR_PREFIX "NotAuthorized"
#define NBDLINK_ERROR_INVALID_ARGUMENT   NBDLINK_ERROR_PREFIX "InvalidArgument"
#define NBDLINK_ERROR_NO_SUCH_DEVICE     NBDLINK_ERROR_PREFIX "NoSuchDevice"
#define NBDLINK_ERROR_DEVICE_BUSY        NBDLINK_ERROR_PREFIX "DeviceBusy"
#define NBDLINK_ERROR_NOT_ATTACHED       NBDLINK_ERROR_PREFIX "NotAttached"
#define NBDLINK_ERROR_CONNECTION_REFUSED NBDLINK_ERROR_PREFIX "ConnectionRefused"
#define NBDLINK_ERROR_HOST_NOT_FOUND     NBDLINK_ERROR_PREFIX "HostNotFound"
#define NBDLINK_ERROR_TIMED_OUT          NBDLINK_ERROR_PREFIX "TimedOut"
#define NBDLINK_ERROR_EXPORT_NOT_FOUND   NBDLINK_ERROR_PREFIX "ExportNotFound"
#define NBDLINK_ERROR_SERVER_POLICY      NBDLINK_ERROR_PREFIX "ServerPolicy"
#define NBDLINK_ERROR_TLS_REQUIRED       NBDLINK_ERROR_PREFIX "TLSRequired"
#define NBDLINK_ERROR_TLS_FAILED         NBDLINK_ERROR_PREFIX "TLSFailed"
#define NBDLINK_ERROR_PROTOCOL_ERROR     NBDLINK_ERROR_PREFIX "ProtocolError"
#define NBDLINK_ERROR_UNSUPPORTED        NBDLINK_ERROR_PREFIX "Unsupported"
#define NBDLINK_ERROR_TOO_LARGE          NBDLINK_ERROR_PREFIX "TooLarge"
#define NBDLINK_ERROR_LIMIT_EXCEEDED     NBDLINK_ERROR_PREFIX "LimitExceeded"
#define NBDLINK_ERROR_CANCELLED          NBDLINK_ERROR_PREFIX "Cancelled"
#define NBDLINK_ERROR_FAILED             NBDLINK_ERROR_PREFIX "Failed"

/* Terminated by SD_BUS_ERROR_MAP_END; exported for the client and tests. */
extern const sd_bus_error_map nbdlink_bus_error_map[];

/* Registers nbdlink_bus_error_map with sd_bus_error_add_map() so that
 * sd_bus_error_get_errno() and sd_bus_error_set_errno() know the names.
 * Safe to call more than once. */
int nbdlink_bus_error_register(void);

/* The error name the table gives a (positive or negative) errno;
 * anything not in the table is "Failed". Never NULL. */
const char *nbdlink_bus_error_name_from_errno(int error);
