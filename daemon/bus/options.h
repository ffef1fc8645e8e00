/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Checks on what a caller hands the daemon over the bus, before any of it is
 * used: export names, hosts, and the a{sv} options of AttachWithOptions,
 * ListExports and Probe. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-bus.h>

#include "error-text.h"
#include "attach-options.h"


/* Export names: at most NBD_MAX_STRING bytes. -EINVAL with a message. */
int validate_export_name(const char *s, Error *error);
/* Hosts: non-empty, at most NBD_MAX_HOST bytes, no control characters;
 * "unix:/path" only when allow_unix (root callers). */
int validate_host(const char *s, bool allow_unix, Error *error);

/* Which option keys a method accepts. */
typedef enum OptionSet {
        OPTIONS_ATTACH,         /* AttachWithOptions: every key but AttachURI's own */
        OPTIONS_ATTACH_URI,     /* AttachURI: every key, and "device" */
        OPTIONS_QUERY,          /* ListExports and Probe: connection and TLS keys */
} OptionSet;

/* Reads an a{sv} from m into o (which attach_options_init() prepared).
 * Unknown keys, keys not in set, wrong variant types and values out of
 * range are -EINVAL, with a message naming the key. File descriptors are
 * duplicated (O_CLOEXEC) and checked: credentials must be regular files of
 * at most CREDENTIAL_MAX_SIZE bytes, "socket" a connected stream socket. */
int attach_options_parse(sd_bus_message *m, OptionSet set, AttachOptions *o, Error *error);
