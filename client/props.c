/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* a{sv} into plain values. Only basic types appear in nbdlink's
 * dictionaries; anything else is kept as a key without a value so a newer
 * daemon does not break an older client. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "props.h"
#include "util/macro.h"

void props_free(Prop *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(p[i].key);
                free(p[i].s);
        }
        free(p);
}

const Prop *props_find(const Prop *p, size_t n, const char *key) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(p[i].key, key) == 0)
                        return p + i;
        return NULL;
}

static int read_value(sd_bus_message *m, Prop *p) {
        const char *contents, *s;
        char type;
        int r;

        r = sd_bus_message_peek_type(m, &type, &contents);
        if (r < 0)
                return r;
        if (type != 'v' || !contents || strlen(contents) != 1)
                return sd_bus_message_skip(m, "v");

        r = sd_bus_message_enter_container(m, 'v', contents);
        if (r < 0)
                return r;

        p->type = contents[0];
        switch (p->type) {
        case 's':
        case 'o':
        case 'g':
                r = sd_bus_message_read_basic(m, p->type, &s);
                if (r >= 0) {
                        p->s = strdup(s);
                        if (!p->s)
                                r = -ENOMEM;
                }
                break;
        case 'b': {
                int b;
                r = sd_bus_message_read_basic(m, 'b', &b);
                p->b = b;
                break;
        }
        case 'y': {
                uint8_t v;
                r = sd_bus_message_read_basic(m, 'y', &v);
                p->u = v;
                break;
        }
        case 'q': {
                uint16_t v;
                r = sd_bus_message_read_basic(m, 'q', &v);
                p->u = v;
                break;
        }
        case 'u': {
                uint32_t v;
                r = sd_bus_message_read_basic(m, 'u', &v);
                p->u = v;
                break;
        }
        case 't':
                r = sd_bus_message_read_basic(m, 't', &p->u);
                break;
        case 'n': {
                int16_t v;
                r = sd_bus_message_read_basic(m, 'n', &v);
                p->i = v;
                break;
        }
        case 'i': {
                int32_t v;
                r = sd_bus_message_read_basic(m, 'i', &v);
                p->i = v;
                break;
        }
        case 'x':
                r = sd_bus_message_read_basic(m, 'x', &p->i);
                break;
        case 'd':
                r = sd_bus_message_read_basic(m, 'd', &p->d);
                break;
        default:
                /* A unix fd or another type nobody sends here: drop it. */
                p->type = 0;
                r = sd_bus_message_skip(m, contents);
                break;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

typedef struct PropList {
        Prop *props;
        size_t n;
} PropList;

static int prop_entry(sd_bus_message *m, const char *key, void *userdata) {
        PropList *l = userdata;
        Prop *q;

        q = reallocarray(l->props, l->n + 1, sizeof(Prop));
        if (!q)
                return -ENOMEM;
        l->props = q;
        l->props[l->n] = (Prop) { .key = strdup(key) };
        l->n++;
        if (!l->props[l->n - 1].key)
                return -ENOMEM;
        return read_value(m, l->props + l->n - 1);
}

int props_read(sd_bus_message *m, Prop **ret, size_t *ret_n) {
        PropList l = {};
        int r;

        r = bus_read_dict(m, prop_entry, &l);
        if (r < 0) {
                props_free(l.props, l.n);
                return r;
        }
        *ret = l.props;
        *ret_n = l.n;
        return 0;
}

char *json_key_from_bus_name(const char *name) {
        size_t n = strlen(name);
        char *out = malloc(2 * n + 1), *o = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                char c = name[i];

                if (c == '-') {
                        *o++ = '_';
                        continue;
                }
                /* A word starts at an upper-case letter after a lower-case
                 * one or a digit, or at the last capital of an acronym
                 * followed by lower case ("TLSMode" → "tls_mode"). */
                if (isupper((unsigned char) c) && i > 0 &&
                    (islower((unsigned char) name[i - 1]) || isdigit((unsigned char) name[i - 1]) ||
                     (isupper((unsigned char) name[i - 1]) && i + 1 < n && islower((unsigned char) name[i + 1]))))
                        *o++ = '_';
                *o++ = (char) tolower((unsigned char) c);
        }
        *o = 0;
        return out;
}

void prop_json_value(JsonWriter *w, const Prop *p) {
        switch (p->type) {
        case 's':
        case 'o':
        case 'g':
                json_string(w, p->s);
                break;
        case 'b':
                json_bool(w, p->b);
                break;
        case 'y':
        case 'q':
        case 'u':
        case 't':
                json_uint(w, p->u);
                break;
        case 'n':
        case 'i':
        case 'x':
                json_int(w, p->i);
                break;
        case 'd':
                json_double(w, p->d);
                break;
        default:
                json_null(w);
                break;
        }
}

void props_json_object(JsonWriter *w, const Prop *p, size_t n) {
        json_begin_object(w);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *k = json_key_from_bus_name(p[i].key);

                json_key(w, k ?: p[i].key);
                prop_json_value(w, p + i);
        }
        json_end_object(w);
}

char *prop_to_string(const Prop *p) {
        char *s = NULL;
        int r;

        switch (p->type) {
        case 's':
        case 'o':
        case 'g':
                return strdup(p->s);
        case 'b':
                return strdup(p->b ? "yes" : "no");
        case 'y':
        case 'q':
        case 'u':
        case 't':
                r = asprintf(&s, "%" PRIu64, p->u);
                break;
        case 'n':
        case 'i':
        case 'x':
                r = asprintf(&s, "%" PRIi64, p->i);
                break;
        case 'd':
                r = asprintf(&s, "%g", p->d);
                break;
        default:
                return strdup("?");
        }
        return r < 0 ? NULL : s;
}
