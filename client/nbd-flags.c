/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* NBD transmission flags by name. The values are the protocol's; nbdlink
 * shares no header with the daemon's protocol engine, so they are written
 * out again here, each with the name the NBD protocol document gives it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "nbd-flags.h"
#include "util/macro.h"

static const char *const flag_names[16] = {
        [0]  = "has-flags",             /* NBD_FLAG_HAS_FLAGS */
        [1]  = "read-only",             /* NBD_FLAG_READ_ONLY */
        [2]  = "send-flush",            /* NBD_FLAG_SEND_FLUSH */
        [3]  = "send-fua",              /* NBD_FLAG_SEND_FUA */
        [4]  = "rotational",            /* NBD_FLAG_ROTATIONAL */
        [5]  = "send-trim",             /* NBD_FLAG_SEND_TRIM */
        [6]  = "send-write-zeroes",     /* NBD_FLAG_SEND_WRITE_ZEROES */
        [7]  = "send-df",               /* NBD_FLAG_SEND_DF */
        [8]  = "can-multi-conn",        /* NBD_FLAG_CAN_MULTI_CONN */
        [9]  = "send-resize",           /* NBD_FLAG_SEND_RESIZE */
        [10] = "send-cache",            /* NBD_FLAG_SEND_CACHE */
        [11] = "send-fast-zero",        /* NBD_FLAG_SEND_FAST_ZERO */
        [12] = "block-stat-payload",    /* NBD_FLAG_BLOCK_STAT_PAYLOAD */
};

enum {
        FLAG_READ_ONLY      = 1u << 1,
        FLAG_SEND_FLUSH     = 1u << 2,
        FLAG_SEND_FUA       = 1u << 3,
        FLAG_ROTATIONAL     = 1u << 4,
        FLAG_SEND_TRIM      = 1u << 5,
        FLAG_WRITE_ZEROES   = 1u << 6,
        FLAG_CAN_MULTI_CONN = 1u << 8,
        FLAG_SEND_CACHE     = 1u << 10,
        FLAG_SEND_FAST_ZERO = 1u << 11,
};

const char *nbd_flag_name(unsigned bit, char buf[static NBD_FLAG_NAME_MAX]) {
        if (bit < ELEMENTSOF(flag_names) && flag_names[bit])
                return flag_names[bit];
        snprintf(buf, NBD_FLAG_NAME_MAX, "bit-%u", bit & 0xffu);
        return buf;
}

void nbd_flags_json(JsonWriter *w, uint16_t flags) {
        json_begin_array(w);
        for (unsigned bit = 0; bit < 16; bit++)
                if (flags & (1u << bit)) {
                        char buf[NBD_FLAG_NAME_MAX];

                        json_string(w, nbd_flag_name(bit, buf));
                }
        json_end_array(w);
}

typedef enum CapabilityKind {
        CAP_TRUE,       /* a probe that succeeded says yes */
        CAP_FLAG,       /* the flag is set */
        CAP_NOT_FLAG,   /* the flag is clear */
        CAP_TLS,        /* the probe negotiated TLS */
        CAP_UNKNOWN,    /* nbdinfo's name, but a probe cannot tell */
} CapabilityKind;

struct NbdCapability {
        bool is;
        const char *name;
        CapabilityKind kind;
        uint16_t flag;
};

/* nbdinfo's names, in the order its manual lists them. */
static const NbdCapability capabilities[] = {
        { false, "cache",            CAP_FLAG,     FLAG_SEND_CACHE },
        { false, "connect",          CAP_TRUE,     0 },
        /* NBD_FLAG_SEND_DF counts only with structured replies, and the
         * daemon's probe does not ask for them: the flag would say "no"
         * for servers that can. */
        { false, "df",               CAP_UNKNOWN,  0 },
        { false, "fast-zero",        CAP_FLAG,     FLAG_SEND_FAST_ZERO },
        { false, "flush",            CAP_FLAG,     FLAG_SEND_FLUSH },
        { false, "fua",              CAP_FLAG,     FLAG_SEND_FUA },
        { false, "multi-conn",       CAP_FLAG,     FLAG_CAN_MULTI_CONN },
        { false, "read",             CAP_TRUE,     0 },
        { false, "structured-reply", CAP_UNKNOWN,  0 },
        { false, "block-status",     CAP_UNKNOWN,  0 },
        { false, "extents",          CAP_UNKNOWN,  0 },
        { false, "trim",             CAP_FLAG,     FLAG_SEND_TRIM },
        { false, "write",            CAP_NOT_FLAG, FLAG_READ_ONLY },
        { false, "zero",             CAP_FLAG,     FLAG_WRITE_ZEROES },
        { true,  "read-only",        CAP_FLAG,     FLAG_READ_ONLY },
        { true,  "rotational",       CAP_FLAG,     FLAG_ROTATIONAL },
        { true,  "tls",              CAP_TLS,      0 },
};

int nbd_capability_lookup(bool is, const char *name, const NbdCapability **ret) {
        for (size_t i = 0; i < ELEMENTSOF(capabilities); i++) {
                const NbdCapability *c = capabilities + i;

                if (c->is != is || strcmp(c->name, name) != 0)
                        continue;
                if (c->kind == CAP_UNKNOWN)
                        return -EOPNOTSUPP;
                *ret = c;
                return 0;
        }
        return -ENOENT;
}

bool nbd_capability_test(const NbdCapability *c, uint16_t flags, bool tls) {
        switch (c->kind) {
        case CAP_TRUE:
                return true;
        case CAP_FLAG:
                return (flags & c->flag) != 0;
        case CAP_NOT_FLAG:
                return (flags & c->flag) == 0;
        case CAP_TLS:
                return tls;
        case CAP_UNKNOWN:
        default:
                return false;
        }
}

char *nbd_capability_names(bool is) {
        char *buf = NULL;
        size_t size = 0;
        bool first = true;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(capabilities); i++)
                if (capabilities[i].is == is && capabilities[i].kind != CAP_UNKNOWN) {
                        fprintf(f, "%s%s", first ? "" : ", ", capabilities[i].name);
                        first = false;
                }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}
