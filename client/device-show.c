/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The JSON object of a device. Keys stay what they were; a device of
 * another tool has the same keys, with null for what only the daemon
 * could say, so that a consumer needs no second schema. */
#include <string.h>

#include "device-show.h"
#include "nbd-flags.h"
#include "nbd-uri.h"

char *device_info_uri(const DeviceInfo *d) {
        const char *host = d->host;

        if (!d->managed || !host || !*host)
                return NULL;
        /* What a root caller named as "unix:PATH". */
        if (strncmp(host, "unix:", 5) == 0)
                return nbd_uri_format(d->tls, NULL, 0, host + 5, strlen(host + 5), d->export_name);
        return nbd_uri_format(d->tls, host, d->port, NULL, 0, d->export_name);
}

static void string_or_null(JsonWriter *w, const char *key, bool known, const char *s) {
        json_key(w, key);
        if (known && s)
                json_string(w, s);
        else
                json_null(w);
}

static void uint_or_null(JsonWriter *w, const char *key, bool known, uint64_t v) {
        json_key(w, key);
        if (known)
                json_uint(w, v);
        else
                json_null(w);
}

static void bool_or_null(JsonWriter *w, const char *key, bool known, bool b) {
        json_key(w, key);
        if (known)
                json_bool(w, b);
        else
                json_null(w);
}

void device_info_json_fields(JsonWriter *w, const DeviceInfo *d) {
        _cleanup_free_ char *owner = d->has_owner ? uid_to_name(d->owner_uid) : NULL;
        _cleanup_free_ char *uri = device_info_uri(d);
        bool m = d->managed;

        string_or_null(w, "device", true, d->device);
        string_or_null(w, "object", m, d->object);
        string_or_null(w, "host", m, d->host);
        uint_or_null(w, "port", m, d->port);
        string_or_null(w, "export", m, d->export_name);
        uint_or_null(w, "size", true, d->size);
        uint_or_null(w, "block_size", m, d->block_size);
        bool_or_null(w, "read_only", true, d->read_only);
        uint_or_null(w, "flags", m, d->flags);
        json_key(w, "flag_names");
        if (m)
                nbd_flags_json(w, d->flags);
        else
                json_null(w);
        uint_or_null(w, "connections", m, d->connections);
        bool_or_null(w, "tls", m, d->tls);
        string_or_null(w, "tls_mode", m, d->tls_mode);
        bool_or_null(w, "persistent", m, d->persistent);
        string_or_null(w, "state", true, d->state);
        uint_or_null(w, "owner_uid", d->has_owner, d->owner_uid);
        string_or_null(w, "owner", d->has_owner, owner);
        uint_or_null(w, "attached_since", m, d->attached_since);
        json_key(w, "managed");
        json_bool(w, m);
        string_or_null(w, "uri", true, uri);
}

void device_info_json(JsonWriter *w, const DeviceInfo *d) {
        json_begin_object(w);
        device_info_json_fields(w, d);
        json_end_object(w);
}
