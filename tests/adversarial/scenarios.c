/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The table of misbehaving servers and the outcome each must have. The
 * texts are pieces of the engine's messages: enough to tell one failure
 * from another, not so much that rewording a sentence breaks the table. */

#include "scenarios.h"

#include <errno.h>

/* OK() sets defaults that a case then overrides (".n_exports = 2"), which
 * is what designated initializers are for. */
#pragma GCC diagnostic ignored "-Woverride-init"

#define HS "handshake: "
#define TLS "tls: "

#define FAIL(err, text, leave) { .on = true, .error = (err), .prefix = HS, .needle = (text), .verdict = (leave), .n_exports = -1, .flags = -1 }
#define FAIL_TLS(err, text, leave) { .on = true, .error = (err), .prefix = TLS, .needle = (text), .verdict = (leave), .n_exports = -1, .flags = -1 }
#define OK(leave, ...) { .on = true, .verdict = (leave), .n_exports = -1, .flags = -1, __VA_ARGS__ }

/* A TLS failure whose message must not mention some text. */
#define FAIL_TLS_NOT(err, text, unwanted_text, leave) { .on = true, .error = (err), .prefix = TLS, .needle = (text), .unwanted = (unwanted_text), .verdict = (leave), .n_exports = -1, .flags = -1 }

/* The same outcome whatever the goal. */
#define ALL(e) { [ADV_GO] = e, [ADV_INFO] = e, [ADV_LIST] = e }
/* Attach and Probe (NBD_OPT_GO / NBD_OPT_INFO) only. */
#define GO_INFO(e) { [ADV_GO] = e, [ADV_INFO] = e }

#define GIB (UINT64_C(1) << 30)

/* Stream still in step with the server after its refusal: the client says
 * goodbye with NBD_OPT_ABORT. Broken stream: it just hangs up. */
#define ABORT "abort"
#define CLOSE "close"
#define GONE "gone"
#define DISC "disc"

const AdvCase adv_cases[] = {
        /* Controls: the server itself works. */
        { "good", "good", TLS_MODE_OFF, false, {
                [ADV_GO] = OK(CLOSE, .check_size = true, .size = GIB, .description = "a good disk"),
                [ADV_INFO] = OK(ABORT, .check_size = true, .size = GIB, .description = "a good disk"),
                [ADV_LIST] = OK(ABORT, .n_exports = 2),
        } },
        { "good-tls", "good-tls", TLS_MODE_REQUIRE, false, {
                [ADV_GO] = OK(CLOSE, .check_size = true, .size = GIB),
                [ADV_INFO] = OK(ABORT, .check_size = true, .size = GIB),
                [ADV_LIST] = OK(ABORT, .n_exports = 2),
        } },

        /* The greeting. */
        { "bad-magic", "bad-magic", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "not an NBD server (it did not begin with NBD's greeting)", CLOSE)) },
        { "bad-style", "bad-style", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "unknown negotiation style (magic 0x1234567812345678)", CLOSE)) },
        { "close-mid-greeting", "close-mid-greeting", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "server closed the connection while reading the greeting", GONE)) },
        { "non-fixed-newstyle-tls-required", "non-fixed-newstyle", TLS_MODE_REQUIRE, false,
          ALL(FAIL(-EPROTONOSUPPORT, "does not speak fixed newstyle negotiation", NULL)) },
        { "oldstyle-garbage-flags", "oldstyle-garbage-flags", TLS_MODE_OFF, false, {
                /* Oldstyle cannot select the export asked for ("disk"): the
                 * server is in transmission already, so it gets
                 * NBD_CMD_DISC, not a bare close. */
                [ADV_GO] = FAIL(-ENOENT, "oldstyle negotiation, which serves one unnamed export and cannot select \"disk\"", DISC),
                [ADV_INFO] = FAIL(-ENOENT, "oldstyle negotiation, which serves one unnamed export", DISC),
                [ADV_LIST] = FAIL(-EOPNOTSUPP, "oldstyle negotiation, which cannot list exports", CLOSE),
        } },
        { "oldstyle-tls-required", "oldstyle-garbage-flags", TLS_MODE_REQUIRE, false,
          ALL(FAIL(-EPROTONOSUPPORT, "TLS required, but the server speaks oldstyle negotiation", CLOSE)) },

        /* Time: one deadline for everything, however the server dawdles. */
        { "stall-before-greeting", "stall-before-greeting", TLS_MODE_OFF, true, {
                [ADV_INFO] = FAIL(-ETIMEDOUT, "timed out while reading the greeting", CLOSE),
                [ADV_LIST] = FAIL(-ETIMEDOUT, "timed out while reading the greeting", CLOSE),
        } },
        { "stall-after-greeting", "stall-after-greeting", TLS_MODE_OFF, true, {
                [ADV_INFO] = FAIL(-ETIMEDOUT, "timed out while reading an option reply", CLOSE),
        } },
        { "trickle", "trickle", TLS_MODE_OFF, true, {
                [ADV_INFO] = FAIL(-ETIMEDOUT, "timed out while reading the greeting", CLOSE),
                [ADV_LIST] = FAIL(-ETIMEDOUT, "timed out while reading the greeting", CLOSE),
        } },
        { "starttls-stall", "starttls-stall", TLS_MODE_REQUIRE, true, {
                [ADV_INFO] = FAIL_TLS(-ETIMEDOUT, "timed out during the TLS handshake", CLOSE),
        } },

        /* Connections that break. */
        { "reset-mid-reply", "reset-mid-reply", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "server closed the connection while reading an option reply", NULL)) },
        { "close-mid-payload", "close-mid-payload", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EPROTO, "server closed the connection while reading NBD_INFO_EXPORT", GONE),
                [ADV_INFO] = FAIL(-EPROTO, "server closed the connection while reading NBD_INFO_EXPORT", GONE),
                [ADV_LIST] = FAIL(-EPROTO, "server closed the connection while", GONE),
        } },
        { "export-name-close", "export-name-close", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-ENOENT, "server closed the connection after NBD_OPT_EXPORT_NAME: no export \"disk\"", GONE)) },
        /* Before NBD_OPT_EXPORT_NAME, which cannot say no, LIST is asked. */
        { "export-name-unlisted", "export-name-unlisted", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-ENOENT, "server has no export \"disk\" (not in its NBD_OPT_LIST)", ABORT)) },

        /* Export sizes and flags: what no kernel can address is TooLarge
         * for Probe too, and a server in transmission gets NBD_CMD_DISC. */
        { "size-2p63", "size-2p63", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EFBIG, "has 9223372036854775808 bytes, more than the kernel can address", DISC),
                [ADV_INFO] = FAIL(-EFBIG, "has 9223372036854775808 bytes, more than the kernel can address", ABORT),
        } },
        { "size-max-export-name", "size-max-export-name", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EFBIG, "has 18446744073709551615 bytes, more than the kernel can address", DISC)) },
        /* Whether the kernel can take these is the attach's question, not
         * the handshake's: a Probe reports them as they are. */
        { "size-odd-max", "size-odd-max", TLS_MODE_OFF, false, {
                [ADV_GO] = OK(CLOSE, .check_size = true, .size = INT64_MAX),
                [ADV_INFO] = OK(ABORT, .check_size = true, .size = INT64_MAX),
        } },
        { "size-zero", "size-zero", TLS_MODE_OFF, false, {
                [ADV_GO] = OK(CLOSE, .check_size = true, .size = 0),
                [ADV_INFO] = OK(ABORT, .check_size = true, .size = 0),
        } },
        { "no-has-flags", "no-has-flags", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "lack NBD_FLAG_HAS_FLAGS", CLOSE)) },

        /* Block sizes. */
        { "block-min-3", "block-min-3", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "minimum block size 3 is not a power of two", CLOSE)) },
        { "block-pref-below-min", "block-pref-below-min", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "preferred block size 512 is not a power of two of at least 512 and the minimum 4096", CLOSE)) },
        { "block-pref-below-512", "block-pref-below-512", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "preferred block size 256 is not a power of two of at least 512", CLOSE)) },
        /* proto.md lets the maximum payload be below the preferred size
         * and no multiple of the minimum (the kernel hand-off, not the
         * handshake, decides whether it can be held to it). */
        { "block-max-below-pref", "block-max-below-pref", TLS_MODE_OFF, false, {
                [ADV_GO] = OK(CLOSE),
                [ADV_INFO] = OK(ABORT),
        } },
        { "block-max-below-min", "block-max-below-min", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "maximum payload 2048 is below the minimum block size 4096", CLOSE)) },
        { "block-min-over-64k", "block-min-over-64k", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "minimum block size 131072 is not a power of two up to 64 KiB", CLOSE)) },

        /* Lengths of NBD_REP_INFO. */
        { "info-len0", "info-len0", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EPROTO, "NBD_REP_INFO of 0 bytes is too short", CLOSE),
                [ADV_INFO] = FAIL(-EPROTO, "NBD_REP_INFO of 0 bytes is too short", CLOSE),
                [ADV_LIST] = FAIL(-EPROTO, "unexpected reply type 3 to NBD_OPT_LIST", CLOSE),
        } },
        { "info-export-11", "info-export-11", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "NBD_INFO_EXPORT of 11 bytes, expected 12", CLOSE)) },
        { "info-export-13", "info-export-13", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "NBD_INFO_EXPORT of 13 bytes, expected 12", CLOSE)) },
        { "info-block-size-13", "info-block-size-13", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "NBD_INFO_BLOCK_SIZE of 13 bytes, expected 14", CLOSE)) },
        { "info-4gib", "info-4gib", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "NBD_REP_INFO of 4294967295 bytes is over the limit", CLOSE)) },
        { "info-flood", "info-flood", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "more than 64 NBD_REP_INFO replies", CLOSE)) },
        { "info-name-too-long", "info-name-too-long", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "export name in NBD_INFO_NAME of 4097 bytes is over the limit of 4096", CLOSE)) },
        { "info-name-bad-utf8", "info-name-bad-utf8", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "export name in NBD_INFO_NAME is not valid UTF-8", CLOSE)) },
        { "info-name-nul", "info-name-nul", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-EPROTO, "export name in NBD_INFO_NAME is not valid UTF-8", CLOSE)) },
        { "description-garbage", "description-garbage", TLS_MODE_OFF, false, {
                /* Shown to people: kept, with every control and bad byte escaped. */
                [ADV_GO] = OK(CLOSE, .description = "caf\xc3\xa9 \\x1b[31mred\\x07 \\x80 \\xed\\xa0\\x80!"),
                [ADV_INFO] = OK(ABORT, .description = "caf\xc3\xa9 \\x1b[31mred\\x07 \\x80 \\xed\\xa0\\x80!"),
                [ADV_LIST] = OK(ABORT, .n_exports = 1, .description = "caf\xc3\xa9 \\x1b[31mred\\x07 \\x80 \\xed\\xa0\\x80!"),
        } },

        /* Replies that do not fit the question. */
        { "ack-without-export", "ack-without-export", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EPROTO, "acknowledged NBD_OPT_GO without sending NBD_INFO_EXPORT", CLOSE),
                [ADV_INFO] = FAIL(-EPROTO, "acknowledged NBD_OPT_INFO without sending NBD_INFO_EXPORT", CLOSE),
                /* An empty list is a fine answer. */
                [ADV_LIST] = OK(ABORT, .n_exports = 0),
        } },
        { "ack-with-payload", "ack-with-payload", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "with 4 bytes of payload", CLOSE)) },
        { "bad-reply-magic", "bad-reply-magic", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "bad option reply magic 0x0003e889045565aa", CLOSE)) },
        { "wrong-echo", "wrong-echo", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EPROTO, "server answered option 6 to NBD_OPT_GO", CLOSE),
                [ADV_INFO] = FAIL(-EPROTO, "server answered option 7 to NBD_OPT_INFO", CLOSE),
                [ADV_LIST] = FAIL(-EPROTO, "server answered option 7 to NBD_OPT_LIST", CLOSE),
        } },
        { "unsolicited-reply", "unsolicited-reply", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "server answered option 8 to", CLOSE)) },
        { "wrong-reply-type", "wrong-reply-type", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EPROTO, "unexpected reply type 2 to NBD_OPT_GO", CLOSE),
                [ADV_INFO] = FAIL(-EPROTO, "unexpected reply type 2 to NBD_OPT_INFO", CLOSE),
                [ADV_LIST] = FAIL(-EPROTO, "unexpected reply type 3 to NBD_OPT_LIST", CLOSE),
        } },

        /* NBD_OPT_LIST. */
        { "list-100000", "list-100000", TLS_MODE_OFF, false,
          { [ADV_LIST] = FAIL(-EPROTO, "server lists more than 10000 exports", CLOSE) } },
        { "list-10000", "list-10000", TLS_MODE_OFF, false,
          { [ADV_LIST] = OK(ABORT, .n_exports = 10000) } },
        /* Every entry within its limits, 80 MiB in all: refused at 16 MiB,
         * before the answer outgrows a D-Bus message. */
        { "list-huge", "list-huge", TLS_MODE_OFF, false,
          { [ADV_LIST] = FAIL(-EPROTO, "server's export list is over the limit of 16 MiB", CLOSE) } },
        { "server-name-overflow", "server-name-overflow", TLS_MODE_OFF, false,
          { [ADV_LIST] = FAIL(-EPROTO, "export name of 100 bytes in an NBD_REP_SERVER of 8 bytes", CLOSE) } },
        { "server-too-short", "server-too-short", TLS_MODE_OFF, false,
          { [ADV_LIST] = FAIL(-EPROTO, "NBD_REP_SERVER of 3 bytes is too short", CLOSE) } },
        { "server-4gib", "server-4gib", TLS_MODE_OFF, false,
          { [ADV_LIST] = FAIL(-EPROTO, "NBD_REP_SERVER of 4294967295 bytes is over the limit", CLOSE) } },

        /* Error replies. */
        { "error-4gib", "error-4gib", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "claims 4294967295 bytes, over the limit of 4096", CLOSE)) },
        { "unsup-4gib", "unsup-4gib", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTO, "claims 4294967295 bytes, over the limit of 4096", CLOSE)) },
        { "err-shutdown", "err-shutdown", TLS_MODE_OFF, false, {
                [ADV_GO] = FAIL(-EIO, "refused NBD_OPT_GO with NBD_REP_ERR_SHUTDOWN: going down", ABORT),
                [ADV_INFO] = FAIL(-EIO, "refused NBD_OPT_INFO with NBD_REP_ERR_SHUTDOWN: going down", ABORT),
                [ADV_LIST] = FAIL(-EIO, "refused NBD_OPT_LIST with NBD_REP_ERR_SHUTDOWN: going down", ABORT),
        } },
        { "err-unknown-code", "err-unknown-code", TLS_MODE_OFF, false,
          ALL(FAIL(-EIO, "with unknown error 65535 (0x8000ffff): what", ABORT)) },
        { "err-text-garbage", "err-text-garbage", TLS_MODE_OFF, false,
          ALL(FAIL(-EPERM, "with NBD_REP_ERR_POLICY: no\\x1b[2J\\xff\\x00way", ABORT)) },
        { "err-tls-reqd", "err-tls-reqd", TLS_MODE_OFF, false,
          ALL(FAIL(-EPROTONOSUPPORT, "NBD_REP_ERR_TLS_REQD: use TLS", ABORT)) },
        { "err-unknown-export", "err-unknown-export", TLS_MODE_OFF, false,
          GO_INFO(FAIL(-ENOENT, "has no export \"disk\" (NBD_REP_ERR_UNKNOWN): no such disk", ABORT)) },

        /* STARTTLS. */
        /* Whatever the server sent there, it was no TLS: the message must
         * not send the user off to check a key that is fine. */
        { "starttls-garbage", "starttls-garbage", TLS_MODE_REQUIRE, false,
          ALL(FAIL_TLS_NOT(-ECONNABORTED, "", "PSK", CLOSE)) },
        { "starttls-double-ack", "starttls-double-ack", TLS_MODE_REQUIRE, false,
          ALL(FAIL_TLS_NOT(-ECONNABORTED, "", "PSK", CLOSE)) },
        { "tls-then-garbage", "tls-then-garbage", TLS_MODE_REQUIRE, false,
          ALL(FAIL_TLS(-ECONNABORTED, "session failed while reading an option reply", CLOSE)) },
        /* A TLS session cut without close_notify is a TLS failure (the
         * engine's choice, so that a server rejecting our certificate
         * after the TLS 1.3 handshake is reported as such), hang-up and
         * reset alike; without TLS the same are ProtocolError. */
        { "tls-then-close", "tls-then-close", TLS_MODE_REQUIRE, false,
          ALL(FAIL_TLS(-ECONNABORTED, "server closed the TLS session while reading an option reply", GONE)) },
        { "tls-then-reset", "tls-then-reset", TLS_MODE_REQUIRE, false,
          ALL(FAIL_TLS(-ECONNABORTED, "while reading an option reply", GONE)) },
        { "starttls-refused", "starttls-refused", TLS_MODE_REQUIRE, false,
          ALL(FAIL(-EPROTONOSUPPORT, "TLS required, but the server refused NBD_OPT_STARTTLS with NBD_REP_ERR_POLICY: no TLS here", ABORT)) },
        { "starttls-second-reply", "starttls-second-reply", TLS_MODE_ON, false,
          ALL(FAIL(-EPROTO, "server answered option 5 to", CLOSE)) },
        { "starttls-second-ack-tls", "starttls-second-ack-tls", TLS_MODE_REQUIRE, false,
          ALL(FAIL(-EPROTO, "server answered option 5 to", CLOSE)) },
        { "starttls-error-4gib", "starttls-error-4gib", TLS_MODE_ON, false,
          ALL(FAIL(-EPROTO, "NBD_OPT_STARTTLS claims 4294967295 bytes", CLOSE)) },
        { "starttls-error-4gib-required", "starttls-error-4gib", TLS_MODE_REQUIRE, false,
          ALL(FAIL(-EPROTO, "NBD_OPT_STARTTLS claims 4294967295 bytes", CLOSE)) },
};

const size_t adv_n_cases = sizeof(adv_cases) / sizeof(adv_cases[0]);

const char *adv_bus_error_name(int error) {
        switch (error < 0 ? -error : error) {
        case EACCES:          return "org.nbdlink.NBD1.Error.NotAuthorized";
        case EINVAL:          return "org.nbdlink.NBD1.Error.InvalidArgument";
        case ENODEV:          return "org.nbdlink.NBD1.Error.NoSuchDevice";
        case EBUSY:           return "org.nbdlink.NBD1.Error.DeviceBusy";
        case ENXIO:           return "org.nbdlink.NBD1.Error.NotAttached";
        case ECONNREFUSED:    return "org.nbdlink.NBD1.Error.ConnectionRefused";
        case EHOSTUNREACH:    return "org.nbdlink.NBD1.Error.HostNotFound";
        case ETIMEDOUT:       return "org.nbdlink.NBD1.Error.TimedOut";
        case ENOENT:          return "org.nbdlink.NBD1.Error.ExportNotFound";
        case EPERM:           return "org.nbdlink.NBD1.Error.ServerPolicy";
        case EPROTONOSUPPORT: return "org.nbdlink.NBD1.Error.TLSRequired";
        case ECONNABORTED:    return "org.nbdlink.NBD1.Error.TLSFailed";
        case EPROTO:          return "org.nbdlink.NBD1.Error.ProtocolError";
        case EOPNOTSUPP:      return "org.nbdlink.NBD1.Error.Unsupported";
        case EFBIG:           return "org.nbdlink.NBD1.Error.TooLarge";
        case ECANCELED:       return "org.nbdlink.NBD1.Error.Cancelled";
        default:              return "org.nbdlink.NBD1.Error.Failed";
        }
}

const char *adv_goal_to_string(AdvGoal g) {
        switch (g) {
        case ADV_GO:   return "go";
        case ADV_INFO: return "info";
        case ADV_LIST: return "list";
        default:       return NULL;
        }
}

HandshakeGoal adv_goal_to_handshake(AdvGoal g) {
        switch (g) {
        case ADV_INFO: return HANDSHAKE_INFO;
        case ADV_LIST: return HANDSHAKE_LIST;
        case ADV_GO:
        default:       return HANDSHAKE_GO;
        }
}
