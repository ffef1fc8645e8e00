/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Generic a{sv} dictionaries (Probe results, changed properties) kept as
 * a list of basic values, printable for humans and as JSON. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "json.h"

typedef struct Prop {
        char *key;
        char type;              /* D-Bus type of the value: s, o, b, y, n, q, i, u, x, t, d; 0 if other */
        char *s;
        uint64_t u;
        int64_t i;
        double d;
        bool b;
} Prop;

/* Reads an a{sv} (the message positioned at it). Values of types other
 * than the basic ones are skipped but keep their key, with type 0. */
int props_read(sd_bus_message *m, Prop **ret, size_t *ret_n);
void props_free(Prop *p, size_t n);
const Prop *props_find(const Prop *p, size_t n, const char *key);

/* Bus names to JSON keys: "ReadOnly" → "read_only", "TLSMode" →
 * "tls_mode", "block-size-min" → "block_size_min". Caller frees. */
char *json_key_from_bus_name(const char *name);

/* Writes one value (type 0 becomes null). */
void prop_json_value(JsonWriter *w, const Prop *p);
/* Writes {"key": value, ...} with keys converted as above. */
void props_json_object(JsonWriter *w, const Prop *p, size_t n);
/* The value as text for humans (strings unquoted). Caller frees. */
char *prop_to_string(const Prop *p);
