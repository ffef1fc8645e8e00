/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The one function that turns (negative errno, message) into a reply's
 * error, with the names of common/error-names.h. */
#pragma once

#include <systemd/sd-bus.h>

#include "error-names.h"
#include "error-text.h"

/* The one place that picks a bus error: fills e with the name for r and the
 * message (or strerror(r) when message is NULL or empty). Returns r, which
 * must be negative, so handlers can "return nbdlink_bus_error_set(...)". */
int nbdlink_bus_error_set(sd_bus_error *e, int r, const char *message);
int nbdlink_bus_error_setf(sd_bus_error *e, int r, const char *format, ...) __attribute__((__format__(printf, 3, 4)));
