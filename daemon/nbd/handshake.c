/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client side of the NBD handshake (NetworkBlockDevice/nbd doc/proto.md)
 * as a state machine: each state does one I/O step and names the next, so
 * the code can be read side by side with the protocol. Everything the server
 * sends is checked (magic, echoed option, reply type, exact or maximum
 * length) before it is used or memory is allocated for it. */

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "handshake.h"
#include "nbd-errors.h"
#include "nbd-protocol.h"
#include "utf8.h"


/* How long, within the deadline, we wait for the server's answer to
 * NBD_OPT_ABORT: the spec lets either side close without it. */
#define ABORT_REPLY_WAIT_USEC (1 * USEC_PER_SEC)

enum HandshakeState {
        HS_START,
        HS_RECV_GREETING,               /* NBDMAGIC + IHAVEOPT or oldstyle magic */
        HS_RECV_OLDSTYLE,               /* size, flags, 124 zeroes */
        HS_RECV_HANDSHAKE_FLAGS,        /* 16-bit handshake flags */
        HS_SEND_CLIENT_FLAGS,           /* 32-bit client flags */
        HS_SEND_STARTTLS,
        HS_RECV_STARTTLS_REPLY,
        HS_TLS_HANDSHAKE,
        HS_PICK_OPTION,                 /* which option serves the goal */
        HS_SEND_GO,                     /* NBD_OPT_GO or NBD_OPT_INFO */
        HS_RECV_GO_REPLY,               /* repeated: INFO replies until ACK */
        HS_SEND_EXPORT_NAME,
        HS_RECV_EXPORT_NAME_REPLY,
        HS_SEND_LIST,
        HS_RECV_LIST_REPLY,             /* repeated: SERVER replies until ACK */
        HS_SEND_DISC,                   /* in transmission, but not staying: Probe, or a failure */
        HS_SEND_ABORT,
        HS_RECV_ABORT_REPLY,
        HS_DONE,
        HS_FAILED,
        _HS_MAX,
};

static const char *const tls_mode_table[_TLS_MODE_MAX] = {
        [TLS_MODE_OFF] = "off",
        [TLS_MODE_ON] = "on",
        [TLS_MODE_REQUIRE] = "require",
};

const char *tls_mode_to_string(TlsMode m) {
        if (m < 0 || m >= _TLS_MODE_MAX)
                return NULL;
        return tls_mode_table[m];
}

TlsMode tls_mode_from_string(const char *s) {
        if (!s)
                return _TLS_MODE_INVALID;
        for (TlsMode m = 0; m < _TLS_MODE_MAX; m++)
                if (strcmp(s, tls_mode_table[m]) == 0)
                        return m;
        return _TLS_MODE_INVALID;
}

static const char *option_to_string(uint32_t option) {
        switch (option) {
        case NBD_OPT_EXPORT_NAME: return "NBD_OPT_EXPORT_NAME";
        case NBD_OPT_ABORT:       return "NBD_OPT_ABORT";
        case NBD_OPT_LIST:        return "NBD_OPT_LIST";
        case NBD_OPT_STARTTLS:    return "NBD_OPT_STARTTLS";
        case NBD_OPT_INFO:        return "NBD_OPT_INFO";
        case NBD_OPT_GO:          return "NBD_OPT_GO";
        default:                  return "option";
        }
}

static const char *export_name(const Handshake *hs) {
        return hs->options.export_name ? hs->options.export_name : "";
}

static bool is_power_of_2(uint32_t v) {
        return v != 0 && (v & (v - 1)) == 0;
}

/* Records the first failure: errno and message. Later failures (say, the
 * NBD_OPT_ABORT that follows) never overwrite it. Returns error. */
_printf_(3, 4)
static int hs_fail(Handshake *hs, int error, const char *fmt, ...) {
        va_list ap;

        if (hs->error.code != 0)
                return hs->error.code;

        hs->error.code = error;
        va_start(ap, fmt);
        (void) vsnprintf(hs->error.message, sizeof(hs->error.message), fmt, ap);
        va_end(ap);
        /* A long message (a server's text, a caller's name) is cut by
         * bytes; it must stay UTF-8 to become a bus error. */
        utf8_trim_partial(hs->error.message);
        return error;
}

/* Turns an I/O failure into the handshake's error, saying what we were
 * doing: a server that goes away mid-handshake broke the protocol. */
static int hs_io_fail(Handshake *hs, int r, const char *doing) {
        switch (r) {
        case -ETIMEDOUT:
                return hs_fail(hs, -ETIMEDOUT, "handshake: timed out while %s", doing);
        case -EPIPE:
        case -ECONNRESET:
                /* Under TLS 1.3 the client finishes its side of the handshake
                 * before the server has checked our certificate; a server
                 * that rejects it often just drops the session without an
                 * alert. A session cut without close_notify is a TLS
                 * failure, and the likeliest cause is worth naming. */
                if (conn_is_tls(hs->conn))
                        return hs_fail(hs, -ECONNABORTED,
                                       "tls: server closed the TLS session while %s "
                                       "(did it reject our certificate?)", doing);
                return hs_fail(hs, -EPROTO, "handshake: server closed the connection while %s", doing);
        case -ECONNABORTED:
                return hs_fail(hs, -ECONNABORTED, "tls: session failed while %s", doing);
        default:
                return hs_fail(hs, r, "handshake: I/O error while %s: %s", doing, strerror(-r));
        }
}

static int hs_read(Handshake *hs, void *buf, size_t n, const char *doing) {
        int r = conn_read_full(hs->conn, buf, n);
        return r < 0 ? hs_io_fail(hs, r, doing) : 0;
}

static int hs_discard(Handshake *hs, size_t n, const char *doing) {
        int r = conn_discard(hs->conn, n);
        return r < 0 ? hs_io_fail(hs, r, doing) : 0;
}

static int hs_write(Handshake *hs, const void *buf, size_t n, const char *doing) {
        int r = conn_write_full(hs->conn, buf, n);
        return r < 0 ? hs_io_fail(hs, r, doing) : 0;
}

static int send_option(Handshake *hs, uint32_t option, const void *data, uint32_t len) {
        struct nbd_option o = {
                .magic = htobe64(NBD_IHAVEOPT),
                .option = htobe32(option),
                .length = htobe32(len),
        };
        int r;

        r = hs_write(hs, &o, sizeof(o), "sending an option");
        if (r < 0)
                return r;
        if (len > 0)
                r = hs_write(hs, data, len, "sending an option");
        return r;
}

/* Reads an option reply header and checks what every reply must satisfy:
 * the reply magic and the echo of the option we sent. */
static int recv_option_reply(Handshake *hs, uint32_t option, struct nbd_option_reply *ret) {
        struct nbd_option_reply rep;
        int r;

        r = hs_read(hs, &rep, sizeof(rep), "reading an option reply");
        if (r < 0)
                return r;

        rep.magic = be64toh(rep.magic);
        rep.option = be32toh(rep.option);
        rep.type = be32toh(rep.type);
        rep.length = be32toh(rep.length);

        if (rep.magic != NBD_REP_MAGIC)
                return hs_fail(hs, -EPROTO, "handshake: bad option reply magic 0x%016" PRIx64, (uint64_t) rep.magic);
        if (rep.option != option)
                return hs_fail(hs, -EPROTO, "handshake: server answered option %" PRIu32 " to %s",
                               (uint32_t) rep.option, option_to_string(option));
        *ret = rep;
        return 0;
}

/* Reads the text of an error reply (bit 31 set), checked against the
 * limit before anything is read, and returns it sanitized. */
static int read_error_message(Handshake *hs, uint32_t option, const struct nbd_option_reply *rep, char **ret) {
        char msg[NBD_MAX_STRING];
        char *clean;
        int r;

        if (rep->length > NBD_MAX_STRING)
                return hs_fail(hs, -EPROTO, "handshake: server's error message for %s claims %" PRIu32 " bytes, over the limit of %u",
                               option_to_string(option), (uint32_t) rep->length, NBD_MAX_STRING);
        r = hs_read(hs, msg, rep->length, "reading an error message");
        if (r < 0)
                return r;

        clean = utf8_escape_n(msg, rep->length);
        if (!clean)
                return hs_fail(hs, -ENOMEM, "handshake: out of memory");
        hs->server_error = rep->type;
        *ret = clean;
        return 0;
}

/* A failure after which the stream is still in step with the server: say
 * goodbye with NBD_OPT_ABORT (a soft disconnect, as the spec asks of
 * clients; after NBD_REP_ERR_SHUTDOWN it demands it) and report the failure
 * afterwards. Returns 0: the state machine goes on to the goodbye. */
static int hs_fail_soft(Handshake *hs) {
        hs->state = hs->info.fixed_newstyle ? HS_SEND_ABORT : HS_FAILED;
        return 0;
}

/* A failure after the server entered transmission (oldstyle greeting,
 * NBD_OPT_EXPORT_NAME answered, NBD_OPT_GO acknowledged): it now expects
 * requests, so the goodbye is NBD_CMD_DISC, never a bare close. Returns 0:
 * the state machine goes on to the goodbye. */
static int hs_fail_in_transmission(Handshake *hs) {
        hs->state = HS_SEND_DISC;
        return 0;
}

/* An error reply: keeps the server's message in hs->error and maps the
 * type to errno (unknown types become -EIO with their number). */
static int handle_error_reply(Handshake *hs, uint32_t option, const struct nbd_option_reply *rep) {
        _cleanup_free_ char *msg = NULL;
        const char *name;
        int r;

        r = read_error_message(hs, option, rep, &msg);
        if (r < 0)
                return r;

        name = nbd_rep_error_to_string(rep->type);
        if (!name)
                (void) hs_fail(hs, -EIO, "handshake: server refused %s with unknown error %" PRIu32 " (0x%08" PRIx32 ")%s%s",
                               option_to_string(option), (uint32_t) (rep->type & ~NBD_REP_FLAG_ERROR), (uint32_t) rep->type,
                               *msg ? ": " : "", msg);
        else if (rep->type == NBD_REP_ERR_UNKNOWN && option != NBD_OPT_LIST)
                (void) hs_fail(hs, -ENOENT, "handshake: server has no export \"%s\" (%s)%s%s",
                               export_name(hs), name, *msg ? ": " : "", msg);
        else
                (void) hs_fail(hs, nbd_rep_error_to_errno(rep->type), "handshake: server refused %s with %s%s%s",
                               option_to_string(option), name, *msg ? ": " : "", msg);
        return hs_fail_soft(hs);
}

static int state_start(Handshake *hs) {
        if (hs->options.tls != TLS_MODE_OFF && !hs->options.tls_config)
                return hs_fail(hs, -EINVAL, "handshake: TLS requested without a TLS configuration");
        if (hs->options.tls < 0 || hs->options.tls >= _TLS_MODE_MAX)
                return hs_fail(hs, -EINVAL, "handshake: invalid TLS mode");
        if (hs->options.goal != HANDSHAKE_LIST &&
            strlen(export_name(hs)) > NBD_MAX_STRING)
                return hs_fail(hs, -EINVAL, "handshake: export name longer than %u bytes", NBD_MAX_STRING);

        if (hs->options.tls != TLS_MODE_OFF) {
                Error e = {};
                int r;

                /* Credentials are checked before a byte is exchanged: a
                 * typo in a PSK file must not cost a half-done STARTTLS. */
                r = conn_prepare_tls(hs->conn, hs->options.tls_config, &e);
                if (r < 0)
                        return hs_fail(hs, r, "%s", e.message[0] ? e.message : "tls: cannot load the TLS credentials");
        }

        hs->state = HS_RECV_GREETING;
        return 0;
}

static int state_recv_greeting(Handshake *hs) {
        struct nbd_greeting g;
        int r;

        r = hs_read(hs, &g, sizeof(g), "reading the greeting");
        if (r < 0)
                return r;
        g.magic = be64toh(g.magic);
        g.style = be64toh(g.style);

        /* Whatever answered is not NBD, so its bytes are none of the
         * caller's business: root connected there on the caller's behalf,
         * and they may be anything (a banner, a terminal escape). */
        if (g.magic != NBD_MAGIC)
                return hs_fail(hs, -EPROTO, "handshake: not an NBD server (it did not begin with NBD's greeting)");

        if (g.style == NBD_OLDSTYLE_MAGIC) {
                hs->info.oldstyle = true;
                /* Oldstyle has no options at all, so nothing can be
                 * negotiated: no TLS, no export list. */
                if (hs->options.tls == TLS_MODE_REQUIRE)
                        return hs_fail(hs, -EPROTONOSUPPORT, "handshake: TLS required, but the server speaks oldstyle negotiation, which has no TLS");
                if (hs->options.goal == HANDSHAKE_LIST)
                        return hs_fail(hs, -EOPNOTSUPP, "handshake: the server speaks oldstyle negotiation, which cannot list exports");
                hs->state = HS_RECV_OLDSTYLE;
        } else if (g.style == NBD_IHAVEOPT)
                hs->state = HS_RECV_HANDSHAKE_FLAGS;
        else
                return hs_fail(hs, -EPROTO, "handshake: unknown negotiation style (magic 0x%016" PRIx64 ")", (uint64_t) g.style);
        return 0;
}

static int set_export(Handshake *hs, uint64_t size, uint16_t flags) {
        if (!(flags & NBD_FLAG_HAS_FLAGS))
                return hs_fail(hs, -EPROTO, "handshake: transmission flags 0x%04x lack NBD_FLAG_HAS_FLAGS", flags);
        hs->info.size = size;
        hs->info.flags = flags;
        hs->got_export = true;
        return 0;
}

/* Once the export is settled (GO or INFO acknowledged, EXPORT_NAME
 * answered, oldstyle greeting read): what no kernel could attach is
 * TooLarge for every goal, Probe included, so that Probe never promises
 * what Attach cannot do. The block layer counts bytes in a signed 64-bit
 * loff_t. Records the error and returns it, or 0. */
static int check_export(Handshake *hs) {
        if (hs->info.size > INT64_MAX)
                return hs_fail(hs, -EFBIG, "handshake: export \"%s\" has %" PRIu64 " bytes, more than the kernel can address",
                               export_name(hs), hs->info.size);
        return 0;
}

static int state_recv_oldstyle(Handshake *hs) {
        struct nbd_oldstyle_rest o;
        uint32_t flags;
        int r;

        r = hs_read(hs, &o, sizeof(o), "reading the oldstyle greeting");
        if (r < 0)
                return r;
        flags = be32toh(o.flags);

        /* The high half holds handshake flags (none defined for oldstyle),
         * the low half the transmission flags. Very old servers did not
         * set NBD_FLAG_HAS_FLAGS; tolerate that here only. */
        r = set_export(hs, be64toh(o.size), (uint16_t) (flags & 0xffff) | NBD_FLAG_HAS_FLAGS);
        if (r < 0)
                return r;

        /* Oldstyle serves one export and cannot be asked for another:
         * attaching it under a name it never heard of would hand the
         * caller the wrong disk. */
        if (*export_name(hs)) {
                (void) hs_fail(hs, -ENOENT,
                               "handshake: the server speaks oldstyle negotiation, which serves one unnamed export and cannot select \"%s\"",
                               export_name(hs));
                return hs_fail_in_transmission(hs);
        }
        if (check_export(hs) < 0)
                return hs_fail_in_transmission(hs);

        /* A Probe has what it wants; the server expects transmission
         * requests now, so it gets a proper NBD_CMD_DISC. */
        hs->state = hs->options.goal == HANDSHAKE_GO ? HS_DONE : HS_SEND_DISC;
        return 0;
}

static int state_recv_handshake_flags(Handshake *hs) {
        uint16_t flags;
        int r;

        r = hs_read(hs, &flags, sizeof(flags), "reading the handshake flags");
        if (r < 0)
                return r;
        /* Unknown handshake flags are ignored, as the spec asks. */
        hs->handshake_flags = be16toh(flags);
        hs->info.fixed_newstyle = hs->handshake_flags & NBD_FLAG_FIXED_NEWSTYLE;

        if (!hs->info.fixed_newstyle && hs->options.tls == TLS_MODE_REQUIRE)
                return hs_fail(hs, -EPROTONOSUPPORT, "handshake: TLS required, but the server does not speak fixed newstyle negotiation, which STARTTLS needs");

        hs->client_flags = 0;
        if (hs->info.fixed_newstyle)
                hs->client_flags |= NBD_FLAG_C_FIXED_NEWSTYLE;
        if (hs->handshake_flags & NBD_FLAG_NO_ZEROES)
                hs->client_flags |= NBD_FLAG_C_NO_ZEROES;

        hs->state = HS_SEND_CLIENT_FLAGS;
        return 0;
}

static int state_send_client_flags(Handshake *hs) {
        uint32_t flags = htobe32(hs->client_flags);
        int r;

        r = hs_write(hs, &flags, sizeof(flags), "sending the client flags");
        if (r < 0)
                return r;

        if (hs->options.tls != TLS_MODE_OFF && hs->info.fixed_newstyle)
                /* First, so that no option travels in clear text. */
                hs->state = HS_SEND_STARTTLS;
        else
                hs->state = HS_PICK_OPTION;
        return 0;
}

static int state_send_starttls(Handshake *hs) {
        int r;

        r = send_option(hs, NBD_OPT_STARTTLS, NULL, 0);
        if (r < 0)
                return r;
        hs->state = HS_RECV_STARTTLS_REPLY;
        return 0;
}

static int state_recv_starttls_reply(Handshake *hs) {
        struct nbd_option_reply rep;
        int r;

        r = recv_option_reply(hs, NBD_OPT_STARTTLS, &rep);
        if (r < 0)
                return r;

        if (rep.type == NBD_REP_ACK) {
                if (rep.length != 0)
                        return hs_fail(hs, -EPROTO, "handshake: NBD_REP_ACK to NBD_OPT_STARTTLS with %" PRIu32 " bytes of payload", (uint32_t) rep.length);
                hs->state = HS_TLS_HANDSHAKE;
                return 0;
        }

        if (!(rep.type & NBD_REP_FLAG_ERROR))
                return hs_fail(hs, -EPROTO, "handshake: unexpected reply type %" PRIu32 " to NBD_OPT_STARTTLS", (uint32_t) rep.type);

        if (hs->options.tls == TLS_MODE_REQUIRE) {
                _cleanup_free_ char *msg = NULL;
                const char *name = nbd_rep_error_to_string(rep.type);

                /* Never fall back to plaintext: the caller's answer is "TLS
                 * required", with the server's reason kept. */
                r = read_error_message(hs, NBD_OPT_STARTTLS, &rep, &msg);
                if (r < 0)
                        return r;
                if (name)
                        (void) hs_fail(hs, -EPROTONOSUPPORT, "handshake: TLS required, but the server refused NBD_OPT_STARTTLS with %s%s%s",
                                       name, *msg ? ": " : "", msg);
                else
                        (void) hs_fail(hs, -EPROTONOSUPPORT, "handshake: TLS required, but the server refused NBD_OPT_STARTTLS with error 0x%08" PRIx32 "%s%s",
                                       (uint32_t) rep.type, *msg ? ": " : "", msg);
                return hs_fail_soft(hs);
        }

        /* TLS_MODE_ON: a server that does not know STARTTLS (UNSUP) or will
         * not do it for us (POLICY) leaves us free to carry on in
         * plaintext. Any other error is not such an answer: SHUTDOWN
         * demands a soft disconnect, and INVALID, PLATFORM or an unknown
         * error from a server that claims TLS is nothing to downgrade on. */
        if (rep.type != NBD_REP_ERR_UNSUP && rep.type != NBD_REP_ERR_POLICY)
                return handle_error_reply(hs, NBD_OPT_STARTTLS, &rep);
        if (rep.length > NBD_MAX_STRING)
                return hs_fail(hs, -EPROTO, "handshake: server's error message for NBD_OPT_STARTTLS claims %" PRIu32 " bytes, over the limit of %u",
                               (uint32_t) rep.length, NBD_MAX_STRING);
        r = hs_discard(hs, rep.length, "reading an error message");
        if (r < 0)
                return r;
        hs->state = HS_PICK_OPTION;
        return 0;
}

static int state_tls_handshake(Handshake *hs) {
        Error e = {};
        int r;

        r = conn_start_tls(hs->conn, hs->options.tls_config, &e);
        if (r < 0) {
                hs->tls_ktls_refused = conn_tls_ktls_refused(hs->conn);
                /* The spec: after a failed TLS negotiation only a hard
                 * disconnect is possible. */
                return hs_fail(hs, r, "%s", e.message[0] ? e.message : "tls: handshake failed");
        }
        hs->info.tls = true;
        hs->state = HS_PICK_OPTION;
        return 0;
}

static int state_pick_option(Handshake *hs) {
        switch (hs->options.goal) {
        case HANDSHAKE_LIST:
                hs->state = HS_SEND_LIST;
                break;
        case HANDSHAKE_GO:
        case HANDSHAKE_INFO:
                /* Non-fixed newstyle knows no option but EXPORT_NAME (and
                 * LIST): anything else would make it hang up. */
                hs->state = hs->info.fixed_newstyle ? HS_SEND_GO : HS_SEND_EXPORT_NAME;
                break;
        default:
                return hs_fail(hs, -EINVAL, "handshake: invalid goal %d", (int) hs->options.goal);
        }
        return 0;
}

static int state_send_go(Handshake *hs) {
        static const uint16_t requests[] = {
                NBD_INFO_EXPORT,
                NBD_INFO_NAME,
                NBD_INFO_DESCRIPTION,
                NBD_INFO_BLOCK_SIZE,
        };
        const char *name = export_name(hs);
        size_t len = strlen(name);
        uint8_t buf[4 + NBD_MAX_STRING + 2 + sizeof(requests)];
        uint32_t len_be = htobe32((uint32_t) len);
        uint16_t n_be = htobe16(ELEMENTSOF(requests));
        uint8_t *p = buf;
        int r;

        memcpy(p, &len_be, 4);
        p += 4;
        memcpy(p, name, len);
        p += len;
        memcpy(p, &n_be, 2);
        p += 2;
        for (size_t i = 0; i < ELEMENTSOF(requests); i++) {
                uint16_t v = htobe16(requests[i]);
                memcpy(p, &v, 2);
                p += 2;
        }

        /* With require_multi_conn, NBD_OPT_INFO first: a server that does
         * not allow several connections is told goodbye with NBD_OPT_ABORT
         * before it entered transmission on any of them. */
        hs->current_option = hs->options.goal == HANDSHAKE_INFO ||
                             (hs->options.require_multi_conn && !hs->multi_conn_checked) ? NBD_OPT_INFO : NBD_OPT_GO;
        r = send_option(hs, hs->current_option, buf, (uint32_t) (p - buf));
        if (r < 0)
                return r;
        hs->tried_go = true;
        hs->n_info_replies = 0;
        hs->got_export = false;
        hs->state = HS_RECV_GO_REPLY;
        return 0;
}

static int set_block_size(Handshake *hs, uint32_t min, uint32_t pref, uint32_t max) {
        /* The constraints proto.md ("Block size constraints") puts on
         * NBD_INFO_BLOCK_SIZE: the minimum a power of two up to 64 KiB, the
         * preferred size a power of two of at least 512 and the minimum,
         * and a maximum payload that is at least the minimum. The maximum
         * need not be a multiple of the minimum, nor reach the preferred
         * size. */
        if (!is_power_of_2(min) || min > 64 * 1024)
                return hs_fail(hs, -EPROTO, "handshake: minimum block size %" PRIu32 " is not a power of two up to 64 KiB", min);
        if (!is_power_of_2(pref) || pref < min || pref < 512)
                return hs_fail(hs, -EPROTO, "handshake: preferred block size %" PRIu32 " is not a power of two of at least 512 and the minimum %" PRIu32,
                               pref, min);
        if (max < min)
                return hs_fail(hs, -EPROTO, "handshake: maximum payload %" PRIu32 " is below the minimum block size %" PRIu32,
                               max, min);
        hs->info.block_min = min;
        hs->info.block_preferred = pref;
        hs->info.block_max = max;
        return 0;
}

/* Reads a string of len bytes into a fresh buffer. Names must be valid
 * UTF-8 without NUL (they go back to the server and onto the bus as they
 * are); descriptions are only shown, so bad bytes are replaced. */
static int read_string(Handshake *hs, size_t len, bool is_name, const char *what, char **ret) {
        char buf[NBD_MAX_STRING + 1];
        char *s;
        int r;

        if (len > NBD_MAX_STRING)
                return hs_fail(hs, -EPROTO, "handshake: %s of %zu bytes is over the limit of %u", what, len, NBD_MAX_STRING);
        r = hs_read(hs, buf, len, what);
        if (r < 0)
                return r;
        buf[len] = 0;

        if (is_name) {
                if (!utf8_is_valid(buf, len))
                        return hs_fail(hs, -EPROTO, "handshake: %s is not valid UTF-8 or contains NUL", what);
                s = strdup(buf);
        } else
                s = utf8_escape_n(buf, len);
        if (!s)
                return hs_fail(hs, -ENOMEM, "handshake: out of memory");
        *ret = s;
        return 0;
}

static int handle_info_reply(Handshake *hs, uint32_t length) {
        uint16_t type;
        int r;

        if (++hs->n_info_replies > NBD_MAX_INFO_REPLIES)
                return hs_fail(hs, -EPROTO, "handshake: more than %u NBD_REP_INFO replies", NBD_MAX_INFO_REPLIES);
        if (length < sizeof(type))
                return hs_fail(hs, -EPROTO, "handshake: NBD_REP_INFO of %" PRIu32 " bytes is too short", length);
        if (length > NBD_MAX_OPTION_REPLY)
                return hs_fail(hs, -EPROTO, "handshake: NBD_REP_INFO of %" PRIu32 " bytes is over the limit of %u", length, NBD_MAX_OPTION_REPLY);

        r = hs_read(hs, &type, sizeof(type), "reading NBD_REP_INFO");
        if (r < 0)
                return r;
        type = be16toh(type);
        length -= sizeof(type);

        switch (type) {
        case NBD_INFO_EXPORT: {
                struct { uint64_t size; uint16_t flags; } _packed_ e;

                if (length != sizeof(e))
                        return hs_fail(hs, -EPROTO, "handshake: NBD_INFO_EXPORT of %" PRIu32 " bytes, expected %zu", length + 2, sizeof(e) + 2);
                r = hs_read(hs, &e, sizeof(e), "reading NBD_INFO_EXPORT");
                if (r < 0)
                        return r;
                return set_export(hs, be64toh(e.size), be16toh(e.flags));
        }
        case NBD_INFO_BLOCK_SIZE: {
                struct { uint32_t min, pref, max; } _packed_ b;

                if (length != sizeof(b))
                        return hs_fail(hs, -EPROTO, "handshake: NBD_INFO_BLOCK_SIZE of %" PRIu32 " bytes, expected %zu", length + 2, sizeof(b) + 2);
                r = hs_read(hs, &b, sizeof(b), "reading NBD_INFO_BLOCK_SIZE");
                if (r < 0)
                        return r;
                return set_block_size(hs, be32toh(b.min), be32toh(b.pref), be32toh(b.max));
        }
        case NBD_INFO_NAME: {
                char *s;

                r = read_string(hs, length, true, "export name in NBD_INFO_NAME", &s);
                if (r < 0)
                        return r;
                free(hs->info.name);
                hs->info.name = s;
                return 0;
        }
        case NBD_INFO_DESCRIPTION: {
                char *s;

                r = read_string(hs, length, false, "description in NBD_INFO_DESCRIPTION", &s);
                if (r < 0)
                        return r;
                free(hs->info.description);
                hs->info.description = s;
                return 0;
        }
        default:
                /* Information we did not ask for or do not know: the spec
                 * says to ignore it. */
                return hs_discard(hs, length, "skipping an unknown NBD_REP_INFO");
        }
}

static int state_recv_go_reply(Handshake *hs) {
        struct nbd_option_reply rep;
        uint32_t option = hs->current_option;
        int r;

        r = recv_option_reply(hs, option, &rep);
        if (r < 0)
                return r;

        switch (rep.type) {
        case NBD_REP_INFO:
                return handle_info_reply(hs, rep.length);

        case NBD_REP_ACK:
                if (rep.length != 0)
                        return hs_fail(hs, -EPROTO, "handshake: NBD_REP_ACK to %s with %" PRIu32 " bytes of payload",
                                       option_to_string(option), (uint32_t) rep.length);
                if (!hs->got_export)
                        return hs_fail(hs, -EPROTO, "handshake: server acknowledged %s without sending NBD_INFO_EXPORT",
                                       option_to_string(option));
                if (option == NBD_OPT_GO)
                        /* Transmission starts now. */
                        return check_export(hs) < 0 ? hs_fail_in_transmission(hs) : (hs->state = HS_DONE, 0);
                if (check_export(hs) < 0)
                        return hs_fail_soft(hs);
                if (hs->options.goal == HANDSHAKE_GO) {
                        /* The INFO that goes before GO (require_multi_conn). */
                        hs->multi_conn_checked = true;
                        if (!(hs->info.flags & NBD_FLAG_CAN_MULTI_CONN)) {
                                (void) hs_fail(hs, -EINVAL,
                                               "handshake: the server does not allow more than one connection to export \"%s\" "
                                               "(no NBD_FLAG_CAN_MULTI_CONN): more than one could see stale data",
                                               export_name(hs));
                                return hs_fail_soft(hs);
                        }
                        hs->state = HS_SEND_GO;
                        return 0;
                }
                /* INFO: done, leave politely. */
                hs->state = HS_SEND_ABORT;
                return 0;

        case NBD_REP_ERR_UNSUP:
                /* A server that predates NBD_OPT_GO/INFO: fall back to
                 * NBD_OPT_EXPORT_NAME, which every newstyle server has,
                 * after asking NBD_OPT_LIST whether the export exists:
                 * EXPORT_NAME cannot say "no such export", only hang up. */
                if (rep.length > NBD_MAX_STRING)
                        return hs_fail(hs, -EPROTO, "handshake: server's error message for %s claims %" PRIu32 " bytes, over the limit of %u",
                                       option_to_string(option), (uint32_t) rep.length, NBD_MAX_STRING);
                r = hs_discard(hs, rep.length, "reading an error message");
                if (r < 0)
                        return r;
                hs->multi_conn_checked = true;
                hs->checking_listed = *export_name(hs) != 0;
                hs->state = hs->checking_listed ? HS_SEND_LIST : HS_SEND_EXPORT_NAME;
                return 0;

        default:
                if (rep.type & NBD_REP_FLAG_ERROR)
                        return handle_error_reply(hs, option, &rep);
                return hs_fail(hs, -EPROTO, "handshake: unexpected reply type %" PRIu32 " to %s",
                               (uint32_t) rep.type, option_to_string(option));
        }
}

static int state_send_export_name(Handshake *hs) {
        const char *name = export_name(hs);
        int r;

        r = send_option(hs, NBD_OPT_EXPORT_NAME, name, (uint32_t) strlen(name));
        if (r < 0)
                return r;
        /* From here on the server can no longer answer with an error
         * reply: it either describes the export or hangs up. */
        hs->state = HS_RECV_EXPORT_NAME_REPLY;
        return 0;
}

static int state_recv_export_name_reply(Handshake *hs) {
        struct nbd_export_name_reply e;
        int r;

        r = conn_read_full(hs->conn, &e, sizeof(e));
        if (r == -EPIPE || r == -ECONNRESET)
                /* The only way NBD_OPT_EXPORT_NAME can say no, and a missing
                 * export is the likeliest reason (a listed export was
                 * checked for before, where the server could list). */
                return hs_fail(hs, -ENOENT, "handshake: server closed the connection after NBD_OPT_EXPORT_NAME: no export \"%s\" "
                               "(or the server wants TLS first)", export_name(hs));
        if (r < 0)
                return hs_io_fail(hs, r, "reading the NBD_OPT_EXPORT_NAME reply");

        r = set_export(hs, be64toh(e.size), be16toh(e.flags));
        if (r < 0)
                return r;

        if (!(hs->client_flags & NBD_FLAG_C_NO_ZEROES)) {
                r = hs_discard(hs, NBD_OLDSTYLE_ZEROES, "reading the NBD_OPT_EXPORT_NAME reply");
                if (r < 0)
                        return r;
        }

        if (check_export(hs) < 0)
                return hs_fail_in_transmission(hs);
        hs->state = hs->options.goal == HANDSHAKE_GO ? HS_DONE : HS_SEND_DISC;
        return 0;
}

/* The listing asked for before NBD_OPT_EXPORT_NAME is in: go on only if
 * the export is there. The list itself is not a result of this goal. */
static int check_listed(Handshake *hs) {
        bool found = false;

        for (size_t i = 0; i < hs->n_exports; i++)
                if (strcmp(hs->exports[i].name, export_name(hs)) == 0)
                        found = true;
        nbd_export_entries_free(hs->exports, hs->n_exports);
        hs->exports = NULL;
        hs->n_exports = hs->n_allocated = hs->list_bytes = 0;
        hs->checking_listed = false;

        if (!found) {
                (void) hs_fail(hs, -ENOENT, "handshake: server has no export \"%s\" (not in its NBD_OPT_LIST)",
                               export_name(hs));
                return hs_fail_soft(hs);
        }
        hs->state = HS_SEND_EXPORT_NAME;
        return 0;
}

static int state_send_list(Handshake *hs) {
        int r;

        r = send_option(hs, NBD_OPT_LIST, NULL, 0);
        if (r < 0)
                return r;
        hs->state = HS_RECV_LIST_REPLY;
        return 0;
}

static int state_recv_list_reply(Handshake *hs) {
        struct nbd_option_reply rep;
        uint32_t name_len;
        NbdExportEntry *e;
        int r;

        r = recv_option_reply(hs, NBD_OPT_LIST, &rep);
        if (r < 0)
                return r;

        if (rep.type == NBD_REP_ACK) {
                if (rep.length != 0)
                        return hs_fail(hs, -EPROTO, "handshake: NBD_REP_ACK to NBD_OPT_LIST with %" PRIu32 " bytes of payload", (uint32_t) rep.length);
                if (hs->checking_listed)
                        return check_listed(hs);
                /* Non-fixed newstyle servers know no NBD_OPT_ABORT. */
                hs->state = hs->info.fixed_newstyle ? HS_SEND_ABORT : HS_DONE;
                return 0;
        }
        if ((rep.type & NBD_REP_FLAG_ERROR) && hs->checking_listed && rep.type != NBD_REP_ERR_SHUTDOWN) {
                /* A server that will not list (UNSUP, POLICY, …) may still
                 * have the export: ask for it. */
                if (rep.length > NBD_MAX_STRING)
                        return hs_fail(hs, -EPROTO, "handshake: server's error message for NBD_OPT_LIST claims %" PRIu32 " bytes, over the limit of %u",
                                       (uint32_t) rep.length, NBD_MAX_STRING);
                r = hs_discard(hs, rep.length, "reading an error message");
                if (r < 0)
                        return r;
                hs->checking_listed = false;
                hs->state = HS_SEND_EXPORT_NAME;
                return 0;
        }
        if (rep.type & NBD_REP_FLAG_ERROR)
                return handle_error_reply(hs, NBD_OPT_LIST, &rep);
        if (rep.type != NBD_REP_SERVER)
                return hs_fail(hs, -EPROTO, "handshake: unexpected reply type %" PRIu32 " to NBD_OPT_LIST", (uint32_t) rep.type);

        if (hs->n_exports >= NBD_MAX_LIST_ENTRIES)
                return hs_fail(hs, -EPROTO, "handshake: server lists more than %u exports", NBD_MAX_LIST_ENTRIES);
        if (rep.length < sizeof(name_len))
                return hs_fail(hs, -EPROTO, "handshake: NBD_REP_SERVER of %" PRIu32 " bytes is too short", (uint32_t) rep.length);
        if (rep.length > sizeof(name_len) + 2 * NBD_MAX_STRING)
                return hs_fail(hs, -EPROTO, "handshake: NBD_REP_SERVER of %" PRIu32 " bytes is over the limit", (uint32_t) rep.length);

        size_t max_bytes = hs->options.max_list_bytes > 0 ? MIN(hs->options.max_list_bytes, (size_t) NBD_MAX_LIST_BYTES)
                                                          : NBD_MAX_LIST_BYTES;
        if (rep.length - sizeof(name_len) > max_bytes - hs->list_bytes)
                return hs_fail(hs, -EPROTO, "handshake: server's export list is over the limit of %zu MiB",
                               max_bytes / (1024u * 1024u));

        r = hs_read(hs, &name_len, sizeof(name_len), "reading NBD_REP_SERVER");
        if (r < 0)
                return r;
        name_len = be32toh(name_len);
        if (name_len > rep.length - sizeof(name_len))
                return hs_fail(hs, -EPROTO, "handshake: export name of %" PRIu32 " bytes in an NBD_REP_SERVER of %" PRIu32 " bytes",
                               name_len, (uint32_t) rep.length);

        /* Grow in steps so that a long list costs few reallocations. */
        if (hs->n_exports == hs->n_allocated) {
                size_t n = MAX(hs->n_allocated * 2, (size_t) 16);

                e = reallocarray(hs->exports, n, sizeof(*e));
                if (!e)
                        return hs_fail(hs, -ENOMEM, "handshake: out of memory");
                hs->exports = e;
                hs->n_allocated = n;
        }
        e = &hs->exports[hs->n_exports];
        *e = (NbdExportEntry) {};

        r = read_string(hs, name_len, true, "export name in NBD_REP_SERVER", &e->name);
        if (r < 0)
                return r;
        r = read_string(hs, rep.length - sizeof(name_len) - name_len, false, "export description in NBD_REP_SERVER", &e->description);
        if (r < 0) {
                free(e->name);
                return r;
        }
        hs->n_exports++;
        hs->list_bytes += rep.length - sizeof(name_len);
        return 0;
}

static struct nbd_request disc_request(void) {
        return (struct nbd_request) {
                .magic = htobe32(NBD_REQUEST_MAGIC),
                .type = htobe16(NBD_CMD_DISC),
        };
}

static int state_send_disc(Handshake *hs) {
        struct nbd_request req = disc_request();

        /* Best effort: a Probe already has its answer, a failure its error. */
        (void) conn_write_full(hs->conn, &req, sizeof(req));
        hs->state = hs->error.code < 0 ? HS_FAILED : HS_DONE;
        return 0;
}

int handshake_end_transmission(Handshake *hs) {
        struct nbd_request req = disc_request();
        int r;

        if (!hs->conn || hs->state != HS_DONE || hs->options.goal != HANDSHAKE_GO)
                return 0;
        r = conn_write_full(hs->conn, &req, sizeof(req));
        hs->state = HS_FAILED;
        return r;
}

int nbd_send_disc(int fd) {
        struct nbd_request req = disc_request();
        ssize_t n;

        /* 28 bytes fit any socket buffer that is not full; never wait on a
         * server that stopped reading. */
        n = send(fd, &req, sizeof(req), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0)
                return negative_errno();
        return (size_t) n == sizeof(req) ? 0 : -EAGAIN;
}

static int state_send_abort(Handshake *hs) {
        struct nbd_option o = {
                .magic = htobe64(NBD_IHAVEOPT),
                .option = htobe32(NBD_OPT_ABORT),
        };

        /* Not through hs_write(): a server that does not stay for the
         * goodbye fails neither a finished Probe or list nor changes the
         * error already recorded. */
        if (conn_write_full(hs->conn, &o, sizeof(o)) < 0)
                hs->state = hs->error.code < 0 ? HS_FAILED : HS_DONE;
        else
                hs->state = HS_RECV_ABORT_REPLY;
        return 0;
}

static int state_recv_abort_reply(Handshake *hs) {
        struct nbd_option_reply rep;
        usec_t deadline, saved;

        /* The spec lets the server close instead of answering, so the
         * answer is awaited briefly and whatever happens is fine. */
        saved = conn_get_deadline(hs->conn);
        deadline = deadline_after(ABORT_REPLY_WAIT_USEC);
        conn_set_deadline(hs->conn, MIN(saved, deadline));
        (void) conn_read_full(hs->conn, &rep, sizeof(rep));
        conn_set_deadline(hs->conn, saved);

        hs->state = hs->error.code < 0 ? HS_FAILED : HS_DONE;
        return 0;
}

typedef int (*state_func)(Handshake *hs);

static const state_func state_table[_HS_MAX] = {
        [HS_START]                      = state_start,
        [HS_RECV_GREETING]              = state_recv_greeting,
        [HS_RECV_OLDSTYLE]              = state_recv_oldstyle,
        [HS_RECV_HANDSHAKE_FLAGS]       = state_recv_handshake_flags,
        [HS_SEND_CLIENT_FLAGS]          = state_send_client_flags,
        [HS_SEND_STARTTLS]              = state_send_starttls,
        [HS_RECV_STARTTLS_REPLY]        = state_recv_starttls_reply,
        [HS_TLS_HANDSHAKE]              = state_tls_handshake,
        [HS_PICK_OPTION]                = state_pick_option,
        [HS_SEND_GO]                    = state_send_go,
        [HS_RECV_GO_REPLY]              = state_recv_go_reply,
        [HS_SEND_EXPORT_NAME]           = state_send_export_name,
        [HS_RECV_EXPORT_NAME_REPLY]     = state_recv_export_name_reply,
        [HS_SEND_LIST]                  = state_send_list,
        [HS_RECV_LIST_REPLY]            = state_recv_list_reply,
        [HS_SEND_DISC]                  = state_send_disc,
        [HS_SEND_ABORT]                 = state_send_abort,
        [HS_RECV_ABORT_REPLY]           = state_recv_abort_reply,
};

void handshake_init(Handshake *hs, Conn *conn, const HandshakeOptions *options) {
        *hs = (Handshake) {
                .options = *options,
                .conn = conn,
                .state = HS_START,
        };
}

int handshake_run(Handshake *hs) {
        if (!hs->conn)
                return hs_fail(hs, -EBADF, "handshake: no connection");

        while (hs->state != HS_DONE && hs->state != HS_FAILED) {
                int r;

                if (hs->state < 0 || hs->state >= _HS_MAX || !state_table[hs->state])
                        return hs_fail(hs, -EINVAL, "handshake: invalid state %d", hs->state);

                r = state_table[hs->state](hs);
                if (r < 0)
                        hs->state = HS_FAILED;
        }

        if (hs->state == HS_FAILED) {
                if (hs->error.code >= 0)
                        (void) hs_fail(hs, -EIO, "handshake: failed");
                return hs->error.code;
        }

        if (hs->options.goal != HANDSHAKE_LIST && !hs->info.name) {
                hs->info.name = strdup(export_name(hs));
                if (!hs->info.name)
                        return hs_fail(hs, -ENOMEM, "handshake: out of memory");
        }
        hs->info.tls = conn_is_tls(hs->conn);
        return 0;
}

Conn *handshake_take_conn(Handshake *hs) {
        return TAKE_PTR(hs->conn);
}

void handshake_done(Handshake *hs) {
        if (!hs)
                return;
        hs->conn = conn_free(hs->conn);
        nbd_export_info_done(&hs->info);
        nbd_export_entries_free(hs->exports, hs->n_exports);
        hs->exports = NULL;
        hs->n_exports = hs->n_allocated = 0;
}

void nbd_export_info_done(NbdExportInfo *info) {
        if (!info)
                return;
        free(info->name);
        info->name = NULL;
        free(info->description);
        info->description = NULL;
}

void nbd_export_info_move(NbdExportInfo *dst, NbdExportInfo *src) {
        *dst = *src;
        src->name = NULL;
        src->description = NULL;
}

void nbd_export_entries_free(NbdExportEntry *e, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(e[i].name);
                free(e[i].description);
        }
        free(e);
}
