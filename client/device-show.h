/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An attached device as list and status show it in JSON, and the URI of
 * its export: one form for both commands. */
#pragma once

#include "common.h"
#include "json.h"

/* The NBD URI of d's export, from its Host, Port, Export and TLS
 * properties. NULL for a device of another tool, for one whose caller
 * handed over a connected socket (the daemon knows no path), and when out
 * of memory. Caller frees. */
char *device_info_uri(const DeviceInfo *d);

/* Writes d as one JSON object: the daemon's properties, "managed", the
 * owner's name, "uri" and "flag_names"; what is not known of another
 * tool's device is null. */
void device_info_json(JsonWriter *w, const DeviceInfo *d);
/* The same keys and values without the braces, for an object that says
 * more. */
void device_info_json_fields(JsonWriter *w, const DeviceInfo *d);
