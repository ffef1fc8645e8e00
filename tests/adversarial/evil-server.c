/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A deliberately broken NBD server for tests. It listens on 127.0.0.1 (a
 * port the kernel picks, printed as "port N") or on a listening socket it
 * is handed, and answers every connection with one chosen misbehaviour.
 * Afterwards it prints one line per connection, "verdict WORD", saying how
 * the client took its leave: "abort" (NBD_OPT_ABORT), "disc" (NBD_CMD_DISC),
 * "close" (hung up without either) or "gone" (the server hung up first).
 *
 * The wire constants are spelled out here again on purpose, from the
 * protocol document and not from nbdlink's own header, so that a mistake
 * there cannot hide itself. */

#include <endian.h>
#include <errno.h>
#include <gnutls/gnutls.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC_NBD       UINT64_C(0x4e42444d41474943)
#define MAGIC_IHAVEOPT  UINT64_C(0x49484156454f5054)
#define MAGIC_OLDSTYLE  UINT64_C(0x0000420281861253)
#define MAGIC_REPLY     UINT64_C(0x0003e889045565a9)
#define MAGIC_REQUEST   UINT32_C(0x25609513)

#define OPT_EXPORT_NAME 1u
#define OPT_ABORT       2u
#define OPT_LIST        3u
#define OPT_STARTTLS    5u
#define OPT_INFO        6u
#define OPT_GO          7u
#define OPT_STRUCTURED  8u

#define REP_ACK         1u
#define REP_SERVER      2u
#define REP_INFO        3u
#define REP_ERR(n)      (UINT32_C(0x80000000) | (n))
#define REP_ERR_UNSUP    REP_ERR(1)
#define REP_ERR_POLICY   REP_ERR(2)
#define REP_ERR_TLS_REQD REP_ERR(5)
#define REP_ERR_UNKNOWN  REP_ERR(6)
#define REP_ERR_SHUTDOWN REP_ERR(7)

#define INFO_EXPORT      0u
#define INFO_NAME        1u
#define INFO_DESCRIPTION 2u
#define INFO_BLOCK_SIZE  3u

#define HS_FIXED_NEWSTYLE 1u
#define HS_NO_ZEROES      2u
#define TX_HAS_FLAGS      1u
#define TX_SEND_FLUSH     4u

#define GIB (UINT64_C(1) << 30)

/* However the client behaves, a connection's process ends after this. */
#define DRAIN_LIMIT_MS 30000
#define DRAIN_BUF_MAX (1u << 20)

typedef struct Peer {
        int fd;
        gnutls_session_t tls;
        gnutls_psk_server_credentials_t psk;
        bool client_closed;     /* a send failed: the client hung up */
} Peer;

/* What happens after the scripted part. */
typedef enum After {
        AFTER_DRAIN,            /* read until the client hangs up */
        AFTER_CLOSE,            /* hang up */
        AFTER_RESET,            /* hang up with a TCP reset */
} After;

static const char *arg_scenario;
static const char *arg_psk_hex;

static bool put(Peer *p, const void *buf, size_t n) {
        const uint8_t *q = buf;

        while (n > 0) {
                ssize_t k;

                if (p->tls) {
                        k = gnutls_record_send(p->tls, q, n);
                        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                                continue;
                } else {
                        k = send(p->fd, q, n, MSG_NOSIGNAL);
                        if (k < 0 && errno == EINTR)
                                continue;
                }
                if (k <= 0) {
                        p->client_closed = true;
                        return false;
                }
                q += k;
                n -= (size_t) k;
        }
        return true;
}

static bool get(Peer *p, void *buf, size_t n) {
        uint8_t *q = buf;

        while (n > 0) {
                ssize_t k;

                if (p->tls) {
                        k = gnutls_record_recv(p->tls, q, n);
                        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                                continue;
                } else {
                        k = recv(p->fd, q, n, 0);
                        if (k < 0 && errno == EINTR)
                                continue;
                }
                if (k <= 0) {
                        p->client_closed = true;
                        return false;
                }
                q += k;
                n -= (size_t) k;
        }
        return true;
}

static bool put_u16(Peer *p, uint16_t v) {
        v = htobe16(v);
        return put(p, &v, sizeof(v));
}

static bool put_u32(Peer *p, uint32_t v) {
        v = htobe32(v);
        return put(p, &v, sizeof(v));
}

static bool put_u64(Peer *p, uint64_t v) {
        v = htobe64(v);
        return put(p, &v, sizeof(v));
}

static bool reply_header(Peer *p, uint64_t magic, uint32_t option, uint32_t type, uint32_t len) {
        return put_u64(p, magic) && put_u32(p, option) && put_u32(p, type) && put_u32(p, len);
}

static bool reply(Peer *p, uint32_t option, uint32_t type, const void *data, uint32_t len) {
        return reply_header(p, MAGIC_REPLY, option, type, len) && (len == 0 || put(p, data, len));
}

static bool info_export(Peer *p, uint32_t option, uint64_t size, uint16_t flags) {
        return reply_header(p, MAGIC_REPLY, option, REP_INFO, 12) &&
                put_u16(p, INFO_EXPORT) && put_u64(p, size) && put_u16(p, flags);
}

static bool info_block_size(Peer *p, uint32_t option, uint32_t min, uint32_t pref, uint32_t max) {
        return reply_header(p, MAGIC_REPLY, option, REP_INFO, 14) &&
                put_u16(p, INFO_BLOCK_SIZE) && put_u32(p, min) && put_u32(p, pref) && put_u32(p, max);
}

static bool info_string(Peer *p, uint32_t option, uint16_t type, const void *s, uint32_t len) {
        return reply_header(p, MAGIC_REPLY, option, REP_INFO, 2 + len) &&
                put_u16(p, type) && (len == 0 || put(p, s, len));
}

static bool server_entry(Peer *p, const char *name, const char *description) {
        uint32_t n = strlen(name), d = strlen(description);

        return reply_header(p, MAGIC_REPLY, OPT_LIST, REP_SERVER, 4 + n + d) &&
                put_u32(p, n) && put(p, name, n) && put(p, description, d);
}

static bool greeting(Peer *p, uint16_t flags) {
        return put_u64(p, MAGIC_NBD) && put_u64(p, MAGIC_IHAVEOPT) && put_u16(p, flags);
}

/* Reads one option and throws its payload away: its number, or -1. */
static int64_t read_option(Peer *p) {
        struct { uint64_t magic; uint32_t option, length; } __attribute__((packed)) h;
        uint8_t buf[4096];

        if (!get(p, &h, sizeof(h)))
                return -1;
        if (be64toh(h.magic) != MAGIC_IHAVEOPT) {
                fprintf(stderr, "evil-server: client sent option magic 0x%016llx\n", (unsigned long long) be64toh(h.magic));
                return -1;
        }
        for (uint32_t left = be32toh(h.length); left > 0;) {
                uint32_t k = left < sizeof(buf) ? left : sizeof(buf);

                if (!get(p, buf, k))
                        return -1;
                left -= k;
        }
        return be32toh(h.option);
}

/* Fixed newstyle greeting, the client's flags, then its first option. */
static int64_t first_option(Peer *p) {
        uint32_t cflags;

        if (!greeting(p, HS_FIXED_NEWSTYLE | HS_NO_ZEROES) || !get(p, &cflags, sizeof(cflags)))
                return -1;
        return read_option(p);
}

/* What a well-behaved server answers to GO, INFO and LIST. */
static bool answer_well(Peer *p, uint32_t o) {
        if (o == OPT_LIST)
                return server_entry(p, "disk", "a good disk") &&
                        server_entry(p, "other", "") &&
                        reply(p, OPT_LIST, REP_ACK, NULL, 0);
        return info_string(p, o, INFO_NAME, "disk", 4) &&
                info_string(p, o, INFO_DESCRIPTION, "a good disk", 11) &&
                info_block_size(p, o, 512, 4096, 32u << 20) &&
                info_export(p, o, GIB, TX_HAS_FLAGS | TX_SEND_FLUSH) &&
                reply(p, o, REP_ACK, NULL, 0);
}

static int psk_cb(gnutls_session_t session, const char *username, gnutls_datum_t *key) {
        gnutls_datum_t hex = { (unsigned char *) arg_psk_hex, strlen(arg_psk_hex) };

        return gnutls_hex_decode2(&hex, key) < 0 ? -1 : 0;
}

/* The server side of a PSK TLS handshake after STARTTLS was acknowledged. */
static bool start_tls(Peer *p) {
        int r;

        if (!arg_psk_hex) {
                fprintf(stderr, "evil-server: this scenario needs --psk\n");
                return false;
        }
        if (gnutls_psk_allocate_server_credentials(&p->psk) < 0)
                return false;
        gnutls_psk_set_server_credentials_function(p->psk, psk_cb);
        if (gnutls_init(&p->tls, GNUTLS_SERVER) < 0)
                return false;
        if (gnutls_priority_set_direct(p->tls, "NORMAL:+ECDHE-PSK:+DHE-PSK:+PSK", NULL) < 0 ||
            gnutls_credentials_set(p->tls, GNUTLS_CRD_PSK, p->psk) < 0)
                return false;
        gnutls_transport_set_int(p->tls, p->fd);
        do
                r = gnutls_handshake(p->tls);
        while (r < 0 && !gnutls_error_is_fatal(r));
        if (r < 0) {
                fprintf(stderr, "evil-server: TLS handshake failed: %s\n", gnutls_strerror(r));
                return false;
        }
        return true;
}

/* Fixed newstyle, STARTTLS acknowledged, TLS up, then the first option. */
static int64_t first_option_tls(Peer *p) {
        int64_t o = first_option(p);

        if (o != OPT_STARTTLS || !reply(p, o, REP_ACK, NULL, 0) || !start_tls(p))
                return -1;
        return read_option(p);
}

/* Sleeps ms, or less when the client hangs up (which ends the wait). */
static void wait_for_client(Peer *p, int ms) {
        struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
        uint8_t b;

        while (poll(&pfd, 1, ms) > 0) {
                ssize_t k = recv(p->fd, &b, 1, MSG_PEEK);

                if (k <= 0) {
                        p->client_closed = true;
                        return;
                }
                /* The client still talks: take what it says, keep waiting. */
                if (recv(p->fd, &b, 1, 0) <= 0)
                        return;
        }
}

/* ---- the scenarios ---------------------------------------------------- */

#define OPTION_OR_GONE(p)                               \
        int64_t o = first_option(p);                    \
        if (o < 0)                                      \
                return AFTER_CLOSE

static After sc_good(Peer *p) {
        OPTION_OR_GONE(p);
        answer_well(p, o);
        return AFTER_DRAIN;
}

static After sc_good_tls(Peer *p) {
        int64_t o = first_option_tls(p);

        if (o < 0)
                return AFTER_CLOSE;
        answer_well(p, o);
        return AFTER_DRAIN;
}

static After sc_bad_magic(Peer *p) {
        (void) (put(p, "NBDMAGIX", 8) && put_u64(p, MAGIC_IHAVEOPT) && put_u16(p, HS_FIXED_NEWSTYLE));
        return AFTER_DRAIN;
}

static After sc_bad_style(Peer *p) {
        (void) (put_u64(p, MAGIC_NBD) && put_u64(p, UINT64_C(0x1234567812345678)) && put_u16(p, HS_FIXED_NEWSTYLE));
        return AFTER_DRAIN;
}

static After sc_stall_before_greeting(Peer *p) {
        wait_for_client(p, DRAIN_LIMIT_MS);
        return AFTER_DRAIN;
}

static After sc_stall_after_greeting(Peer *p) {
        greeting(p, HS_FIXED_NEWSTYLE | HS_NO_ZEROES);
        wait_for_client(p, DRAIN_LIMIT_MS);
        return AFTER_DRAIN;
}

/* A well-formed greeting, one byte a second: any single read finishes in
 * time, only a deadline for the whole handshake stops it. */
static After sc_trickle(Peer *p) {
        uint8_t g[18];
        uint64_t m1 = htobe64(MAGIC_NBD), m2 = htobe64(MAGIC_IHAVEOPT);
        uint16_t f = htobe16(HS_FIXED_NEWSTYLE | HS_NO_ZEROES);

        memcpy(g, &m1, 8);
        memcpy(g + 8, &m2, 8);
        memcpy(g + 16, &f, 2);
        for (size_t i = 0; i < sizeof(g) && !p->client_closed; i++) {
                if (!put(p, g + i, 1))
                        break;
                wait_for_client(p, 1000);
        }
        return AFTER_DRAIN;
}

static After sc_close_mid_greeting(Peer *p) {
        put(p, "NBDMAGICIH", 10);
        return AFTER_CLOSE;
}

static After sc_reset_mid_reply(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (put_u64(p, MAGIC_REPLY) && put_u16(p, 0));
        /* Give the bytes a moment to arrive before the reset overtakes
         * them (or not: either way the client sees a broken stream). */
        usleep(50 * 1000);
        return AFTER_RESET;
}

static After sc_close_mid_payload(Peer *p) {
        OPTION_OR_GONE(p);
        if (o == OPT_LIST)
                (void) (reply_header(p, MAGIC_REPLY, o, REP_SERVER, 20) && put_u32(p, 16) && put(p, "abc", 3));
        else
                (void) (reply_header(p, MAGIC_REPLY, o, REP_INFO, 12) && put_u16(p, INFO_EXPORT) && put(p, "abc", 3));
        return AFTER_CLOSE;
}

/* Oldstyle, every flag bit set and the reserved bytes not zero. */
static After sc_oldstyle_garbage_flags(Peer *p) {
        uint8_t junk[124];

        memset(junk, 0xff, sizeof(junk));
        (void) (put_u64(p, MAGIC_NBD) && put_u64(p, MAGIC_OLDSTYLE) && put_u64(p, GIB) &&
                put_u32(p, UINT32_MAX) && put(p, junk, sizeof(junk)));
        return AFTER_DRAIN;
}

static After export_of_size(Peer *p, uint64_t size, uint16_t flags) {
        OPTION_OR_GONE(p);
        (void) (info_export(p, o, size, flags) && reply(p, o, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After sc_size_2p63(Peer *p) {
        return export_of_size(p, UINT64_C(1) << 63, TX_HAS_FLAGS);
}

static After sc_size_odd_max(Peer *p) {
        return export_of_size(p, INT64_MAX, TX_HAS_FLAGS);
}

static After sc_size_zero(Peer *p) {
        return export_of_size(p, 0, TX_HAS_FLAGS);
}

static After sc_no_has_flags(Peer *p) {
        return export_of_size(p, GIB, TX_SEND_FLUSH);
}

/* GO and LIST refused as unknown, then NBD_OPT_EXPORT_NAME answered with
 * 2^64-1. */
static After sc_size_max_export_name(Peer *p) {
        OPTION_OR_GONE(p);
        if (!reply(p, o, REP_ERR_UNSUP, NULL, 0) || read_option(p) != OPT_LIST ||
            !reply(p, OPT_LIST, REP_ERR_UNSUP, NULL, 0) || read_option(p) != OPT_EXPORT_NAME)
                return AFTER_DRAIN;
        (void) (put_u64(p, UINT64_MAX) && put_u16(p, TX_HAS_FLAGS));
        return AFTER_DRAIN;
}

/* GO refused as unknown; LIST names the export; NBD_OPT_EXPORT_NAME is
 * answered by hanging up, the only "no" it has. */
static After sc_export_name_close(Peer *p) {
        OPTION_OR_GONE(p);
        if (!reply(p, o, REP_ERR_UNSUP, "no GO", 5) || read_option(p) != OPT_LIST)
                return AFTER_CLOSE;
        if (server_entry(p, "disk", "") && reply(p, OPT_LIST, REP_ACK, NULL, 0))
                (void) read_option(p);
        return AFTER_CLOSE;
}

/* GO refused as unknown; LIST does not name the export. */
static After sc_export_name_unlisted(Peer *p) {
        OPTION_OR_GONE(p);
        if (!reply(p, o, REP_ERR_UNSUP, NULL, 0) || read_option(p) != OPT_LIST)
                return AFTER_CLOSE;
        (void) (server_entry(p, "other", "") && reply(p, OPT_LIST, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After block_size(Peer *p, uint32_t min, uint32_t pref, uint32_t max) {
        OPTION_OR_GONE(p);
        (void) (info_block_size(p, o, min, pref, max) && info_export(p, o, GIB, TX_HAS_FLAGS) && reply(p, o, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After sc_block_min_3(Peer *p) {
        return block_size(p, 3, 4096, 65536);
}

static After sc_block_pref_below_min(Peer *p) {
        return block_size(p, 4096, 512, 65536);
}

static After sc_block_max_below_pref(Peer *p) {
        return block_size(p, 512, 4096, 1024);
}

static After sc_block_max_below_min(Peer *p) {
        return block_size(p, 4096, 4096, 2048);
}

static After sc_block_pref_below_512(Peer *p) {
        return block_size(p, 1, 256, 65536);
}

static After sc_block_min_over_64k(Peer *p) {
        return block_size(p, 128 * 1024, 128 * 1024, 128 * 1024);
}

static After sc_info_len0(Peer *p) {
        OPTION_OR_GONE(p);
        reply_header(p, MAGIC_REPLY, o, REP_INFO, 0);
        return AFTER_DRAIN;
}

/* NBD_INFO_EXPORT claiming (and sending) len bytes instead of 12. */
static After info_export_len(Peer *p, uint32_t len) {
        uint8_t junk[16] = {};

        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_INFO, len) && put(p, junk, len));
        return AFTER_DRAIN;
}

static After sc_info_export_11(Peer *p) {
        return info_export_len(p, 11);
}

static After sc_info_export_13(Peer *p) {
        return info_export_len(p, 13);
}

static After sc_info_block_size_13(Peer *p) {
        uint8_t junk[11] = {};

        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_INFO, 13) && put_u16(p, INFO_BLOCK_SIZE) && put(p, junk, sizeof(junk)));
        return AFTER_DRAIN;
}

static After sc_info_4gib(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_INFO, UINT32_MAX) && put_u16(p, INFO_EXPORT));
        return AFTER_DRAIN;
}

static After sc_info_flood(Peer *p) {
        OPTION_OR_GONE(p);
        for (unsigned i = 0; i < 1000; i++)
                if (!info_string(p, o, 99, NULL, 0))
                        break;
        return AFTER_DRAIN;
}

static After info_name(Peer *p, const void *name, uint32_t len) {
        OPTION_OR_GONE(p);
        (void) (info_string(p, o, INFO_NAME, name, len) && info_export(p, o, GIB, TX_HAS_FLAGS) && reply(p, o, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After sc_info_name_too_long(Peer *p) {
        char name[4097];

        memset(name, 'n', sizeof(name));
        return info_name(p, name, sizeof(name));
}

static After sc_info_name_bad_utf8(Peer *p) {
        return info_name(p, "disk\xc0\xaf", 6);       /* an overlong '/' */
}

static After sc_info_name_nul(Peer *p) {
        return info_name(p, "disk\0evil", 9);
}

/* Escape sequences, a bell, a lone continuation byte and a surrogate. */
#define GARBAGE_TEXT "caf\xc3\xa9 \x1b[31mred\x07 \x80 \xed\xa0\x80!"

static After sc_description_garbage(Peer *p) {
        OPTION_OR_GONE(p);
        if (o == OPT_LIST)
                (void) (server_entry(p, "disk", GARBAGE_TEXT) && reply(p, o, REP_ACK, NULL, 0));
        else
                (void) (info_string(p, o, INFO_DESCRIPTION, GARBAGE_TEXT, strlen(GARBAGE_TEXT)) &&
                        info_export(p, o, GIB, TX_HAS_FLAGS) && reply(p, o, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After sc_ack_without_export(Peer *p) {
        OPTION_OR_GONE(p);
        reply(p, o, REP_ACK, NULL, 0);
        return AFTER_DRAIN;
}

static After sc_ack_with_payload(Peer *p) {
        OPTION_OR_GONE(p);
        if (o != OPT_LIST)
                info_export(p, o, GIB, TX_HAS_FLAGS);
        reply(p, o, REP_ACK, "junk", 4);
        return AFTER_DRAIN;
}

static After sc_bad_reply_magic(Peer *p) {
        OPTION_OR_GONE(p);
        reply_header(p, UINT64_C(0x0003e889045565aa), o, REP_ACK, 0);
        return AFTER_DRAIN;
}

static After sc_wrong_echo(Peer *p) {
        OPTION_OR_GONE(p);
        reply(p, o == OPT_GO ? OPT_INFO : OPT_GO, REP_ACK, NULL, 0);
        return AFTER_DRAIN;
}

/* A reply to an option the client never sent, before it sent any. */
static After sc_unsolicited_reply(Peer *p) {
        uint32_t cflags;

        if (!greeting(p, HS_FIXED_NEWSTYLE | HS_NO_ZEROES) || !reply(p, OPT_STRUCTURED, REP_ACK, NULL, 0) ||
            !get(p, &cflags, sizeof(cflags)))
                return AFTER_CLOSE;
        (void) read_option(p);
        return AFTER_DRAIN;
}

/* The reply type that belongs to the other kind of option. */
static After sc_wrong_reply_type(Peer *p) {
        OPTION_OR_GONE(p);
        if (o == OPT_LIST)
                info_export(p, o, GIB, TX_HAS_FLAGS);
        else
                (void) (reply_header(p, MAGIC_REPLY, o, REP_SERVER, 8) && put_u32(p, 4) && put(p, "disk", 4));
        return AFTER_DRAIN;
}

/* n entries with names and descriptions of the given lengths, then the
 * final NBD_REP_ACK, or with ack false no more replies: the server waits
 * for the client to give up. */
static After list_flood(Peer *p, unsigned n, size_t name_len, size_t desc_len, bool ack) {
        char *name, *desc;

        OPTION_OR_GONE(p);
        name = malloc(name_len + 1);
        desc = malloc(desc_len + 1);
        if (!name || !desc)
                abort();
        memset(name, 'e', name_len);
        name[name_len] = 0;
        memset(desc, 'd', desc_len);
        desc[desc_len] = 0;
        for (unsigned i = 0; i < n; i++) {
                /* Distinct names, as a real server's would be. */
                snprintf(name + name_len - 6, 7, "%06u", i);
                if (!server_entry(p, name, desc))
                        break;
        }
        if (!p->client_closed) {
                if (ack)
                        reply(p, o, REP_ACK, NULL, 0);
                else
                        wait_for_client(p, DRAIN_LIMIT_MS);
        }
        free(name);
        free(desc);
        return AFTER_DRAIN;
}

static After sc_list_100000(Peer *p) {
        return list_flood(p, 100000, 8, 0, true);
}

/* 10 000 entries of 8 KiB: within every per-entry limit, 80 MiB in all. */
static After sc_list_huge(Peer *p) {
        return list_flood(p, 10000, 4096, 4096, true);
}

/* 2047 entries of 8 KiB, just under 16 MiB of names and descriptions (as
 * much as root may be sent), and then never the final NBD_REP_ACK: what a
 * client holds for such a server is what it read before it stopped. */
static After sc_list_16mib_stall(Peer *p) {
        return list_flood(p, 2047, 4096, 4096, false);
}

/* Exactly as many entries as a client takes, short ones. */
static After sc_list_10000(Peer *p) {
        return list_flood(p, 10000, 8, 0, true);
}

static After sc_server_name_overflow(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_SERVER, 8) && put_u32(p, 100) && put(p, "disk", 4));
        return AFTER_DRAIN;
}

static After sc_server_too_short(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_SERVER, 3) && put(p, "abc", 3));
        return AFTER_DRAIN;
}

static After sc_server_4gib(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, REP_SERVER, UINT32_MAX) && put_u32(p, 4) && put(p, "disk", 4));
        return AFTER_DRAIN;
}

static After error_reply(Peer *p, uint32_t type, const char *msg, uint32_t claimed) {
        OPTION_OR_GONE(p);
        (void) (reply_header(p, MAGIC_REPLY, o, type, claimed) && put(p, msg, strlen(msg)));
        return AFTER_DRAIN;
}

static After sc_error_4gib(Peer *p) {
        return error_reply(p, REP_ERR_POLICY, "no", UINT32_MAX);
}

static After sc_unsup_4gib(Peer *p) {
        return error_reply(p, REP_ERR_UNSUP, "no", UINT32_MAX);
}

static After sc_err_shutdown(Peer *p) {
        return error_reply(p, REP_ERR_SHUTDOWN, "going down", 10);
}

static After sc_err_unknown_code(Peer *p) {
        return error_reply(p, REP_ERR(0xffff), "what", 4);
}

static After sc_err_text_garbage(Peer *p) {
        static const char msg[] = "no\x1b[2J\xff\x00way";

        OPTION_OR_GONE(p);
        reply(p, o, REP_ERR_POLICY, msg, sizeof(msg) - 1);
        return AFTER_DRAIN;
}

/* A refusal whose text would repaint a terminal (ESC, the C1 CSI U+009B),
 * turn the rest around (U+202E) and start a line of its own in a log. */
static After sc_err_text_controls(Peer *p) {
        static const char msg[] = "no\x1b[2J\xc2\x9b" "31m\xe2\x80\xae" "evil\nnbdlinkd: FAKE log line";

        OPTION_OR_GONE(p);
        reply(p, o, REP_ERR_POLICY, msg, sizeof(msg) - 1);
        return AFTER_DRAIN;
}

static After sc_err_tls_reqd(Peer *p) {
        return error_reply(p, REP_ERR_TLS_REQD, "use TLS", 7);
}

static After sc_err_unknown_export(Peer *p) {
        return error_reply(p, REP_ERR_UNKNOWN, "no such disk", 12);
}

/* TLS cases: the client asked for STARTTLS first. */
static After sc_starttls_garbage(Peer *p) {
        static const char junk[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";

        OPTION_OR_GONE(p);
        (void) (reply(p, o, REP_ACK, NULL, 0) && put(p, junk, sizeof(junk) - 1));
        return AFTER_DRAIN;
}

static After sc_starttls_double_ack(Peer *p) {
        OPTION_OR_GONE(p);
        (void) (reply(p, o, REP_ACK, NULL, 0) && reply(p, o, REP_ACK, NULL, 0));
        return AFTER_DRAIN;
}

static After sc_starttls_stall(Peer *p) {
        OPTION_OR_GONE(p);
        reply(p, o, REP_ACK, NULL, 0);
        wait_for_client(p, DRAIN_LIMIT_MS);
        return AFTER_DRAIN;
}

static After sc_starttls_refused(Peer *p) {
        return error_reply(p, REP_ERR_POLICY, "no TLS here", 11);
}

/* STARTTLS refused, and then refused a second time unasked. */
static After sc_starttls_second_reply(Peer *p) {
        OPTION_OR_GONE(p);
        if (reply(p, o, REP_ERR_POLICY, NULL, 0) && reply(p, o, REP_ERR_POLICY, NULL, 0))
                (void) read_option(p);
        return AFTER_DRAIN;
}

/* TLS up, then another STARTTLS acknowledgement inside it. */
static After sc_starttls_second_ack_tls(Peer *p) {
        int64_t o = first_option_tls(p);

        if (o < 0)
                return AFTER_CLOSE;
        reply(p, OPT_STARTTLS, REP_ACK, NULL, 0);
        return AFTER_DRAIN;
}

/* TLS up, then bytes outside the session: a broken record. */
static After sc_tls_then_garbage(Peer *p) {
        int64_t o = first_option_tls(p);

        if (o < 0)
                return AFTER_CLOSE;
        (void) (send(p->fd, "garbage, not a TLS record", 25, MSG_NOSIGNAL) < 0);
        return AFTER_DRAIN;
}

/* TLS up, then a hang-up without close_notify. */
static After sc_tls_then_close(Peer *p) {
        (void) first_option_tls(p);
        return AFTER_CLOSE;
}

/* TLS up, then a TCP reset. */
static After sc_tls_then_reset(Peer *p) {
        int64_t o = first_option_tls(p);

        return o < 0 ? AFTER_CLOSE : AFTER_RESET;
}

static After sc_starttls_error_4gib(Peer *p) {
        return error_reply(p, REP_ERR_POLICY, "no", UINT32_MAX);
}

/* Not an NBD server at all: a web server's answer, with escape sequences
 * in it, and a hang-up. */
static After sc_http_response(Peer *p) {
        static const char page[] = "HTTP/1.1 200 OK\r\n\x1b[2J\x1b[8mContent-Type: text/html\r\n\r\n"
                                   "<html>hidden</html>\n";

        (void) put(p, page, sizeof(page) - 1);
        return AFTER_CLOSE;
}

static After sc_non_fixed_newstyle(Peer *p) {
        uint32_t cflags;

        if (greeting(p, 0) && get(p, &cflags, sizeof(cflags)))
                (void) read_option(p);
        return AFTER_DRAIN;
}

typedef struct Scenario {
        const char *name;
        After (*run)(Peer *p);
} Scenario;

static const Scenario scenarios[] = {
        { "good",                       sc_good },
        { "good-tls",                   sc_good_tls },
        { "bad-magic",                  sc_bad_magic },
        { "bad-style",                  sc_bad_style },
        { "stall-before-greeting",      sc_stall_before_greeting },
        { "stall-after-greeting",       sc_stall_after_greeting },
        { "trickle",                    sc_trickle },
        { "close-mid-greeting",         sc_close_mid_greeting },
        { "reset-mid-reply",            sc_reset_mid_reply },
        { "close-mid-payload",          sc_close_mid_payload },
        { "oldstyle-garbage-flags",     sc_oldstyle_garbage_flags },
        { "size-2p63",                  sc_size_2p63 },
        { "size-odd-max",               sc_size_odd_max },
        { "size-zero",                  sc_size_zero },
        { "size-max-export-name",       sc_size_max_export_name },
        { "no-has-flags",               sc_no_has_flags },
        { "export-name-close",          sc_export_name_close },
        { "export-name-unlisted",       sc_export_name_unlisted },
        { "block-min-3",                sc_block_min_3 },
        { "block-pref-below-min",       sc_block_pref_below_min },
        { "block-max-below-pref",       sc_block_max_below_pref },
        { "block-max-below-min",        sc_block_max_below_min },
        { "block-pref-below-512",       sc_block_pref_below_512 },
        { "block-min-over-64k",         sc_block_min_over_64k },
        { "info-len0",                  sc_info_len0 },
        { "info-export-11",             sc_info_export_11 },
        { "info-export-13",             sc_info_export_13 },
        { "info-block-size-13",         sc_info_block_size_13 },
        { "info-4gib",                  sc_info_4gib },
        { "info-flood",                 sc_info_flood },
        { "info-name-too-long",         sc_info_name_too_long },
        { "info-name-bad-utf8",         sc_info_name_bad_utf8 },
        { "info-name-nul",              sc_info_name_nul },
        { "description-garbage",        sc_description_garbage },
        { "ack-without-export",         sc_ack_without_export },
        { "ack-with-payload",           sc_ack_with_payload },
        { "bad-reply-magic",            sc_bad_reply_magic },
        { "wrong-echo",                 sc_wrong_echo },
        { "unsolicited-reply",          sc_unsolicited_reply },
        { "wrong-reply-type",           sc_wrong_reply_type },
        { "list-100000",                sc_list_100000 },
        { "list-huge",                  sc_list_huge },
        { "list-10000",                 sc_list_10000 },
        { "list-16mib-stall",           sc_list_16mib_stall },
        { "server-name-overflow",       sc_server_name_overflow },
        { "server-too-short",           sc_server_too_short },
        { "server-4gib",                sc_server_4gib },
        { "error-4gib",                 sc_error_4gib },
        { "unsup-4gib",                 sc_unsup_4gib },
        { "err-shutdown",               sc_err_shutdown },
        { "err-unknown-code",           sc_err_unknown_code },
        { "err-text-garbage",           sc_err_text_garbage },
        { "err-text-controls",          sc_err_text_controls },
        { "err-tls-reqd",               sc_err_tls_reqd },
        { "err-unknown-export",         sc_err_unknown_export },
        { "starttls-garbage",           sc_starttls_garbage },
        { "starttls-double-ack",        sc_starttls_double_ack },
        { "starttls-stall",             sc_starttls_stall },
        { "starttls-refused",           sc_starttls_refused },
        { "starttls-second-reply",      sc_starttls_second_reply },
        { "starttls-second-ack-tls",    sc_starttls_second_ack_tls },
        { "starttls-error-4gib",        sc_starttls_error_4gib },
        { "tls-then-garbage",           sc_tls_then_garbage },
        { "tls-then-close",             sc_tls_then_close },
        { "tls-then-reset",             sc_tls_then_reset },
        { "non-fixed-newstyle",         sc_non_fixed_newstyle },
        { "http-response",              sc_http_response },
};

static bool contains(const uint8_t *buf, size_t n, const void *needle, size_t m) {
        return n >= m && memmem(buf, n, needle, m);
}

/* Reads whatever the client still sends until it hangs up, answers its
 * NBD_OPT_ABORT (so that it need not wait for the answer) and names the
 * way it left. */
static const char *drain(Peer *p) {
        static const uint8_t abort_opt[16] = {
                'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 0, 0, OPT_ABORT, 0, 0, 0, 0,
        };
        static const uint8_t disc_req[8] = { 0x25, 0x60, 0x95, 0x13, 0, 0, 0, 2 };
        uint8_t *buf = malloc(DRAIN_BUF_MAX);
        size_t n = 0;
        bool aborted = false, disc = false;
        struct timespec start, now;

        if (!buf)
                abort();
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd pfd = { .fd = p->fd, .events = POLLIN };
                ssize_t k;
                long left;

                clock_gettime(CLOCK_MONOTONIC, &now);
                left = DRAIN_LIMIT_MS - ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left <= 0)
                        break;
                if (!(p->tls && gnutls_record_check_pending(p->tls) > 0) && poll(&pfd, 1, (int) left) <= 0)
                        break;
                if (n == DRAIN_BUF_MAX)
                        n = 0;
                if (p->tls) {
                        k = gnutls_record_recv(p->tls, buf + n, DRAIN_BUF_MAX - n);
                        if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
                                continue;
                } else
                        k = recv(p->fd, buf + n, DRAIN_BUF_MAX - n, 0);
                if (k <= 0)
                        break;
                n += (size_t) k;
                if (!aborted && contains(buf, n, abort_opt, sizeof(abort_opt))) {
                        aborted = true;
                        (void) reply(p, OPT_ABORT, REP_ACK, NULL, 0);
                }
                if (contains(buf, n, disc_req, sizeof(disc_req)))
                        disc = true;
        }
        free(buf);
        return aborted ? "abort" : disc ? "disc" : "close";
}

static void serve(int fd, const Scenario *sc) {
        Peer p = { .fd = fd };
        const char *verdict;
        After after;

        after = sc->run(&p);
        if (after == AFTER_DRAIN && !p.client_closed)
                verdict = drain(&p);
        else if (p.client_closed)
                verdict = "close";
        else {
                if (after == AFTER_RESET) {
                        struct linger l = { .l_onoff = 1, .l_linger = 0 };

                        (void) setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
                }
                verdict = "gone";
        }
        printf("verdict %s\n", verdict);
        fflush(stdout);
        if (p.tls)
                gnutls_deinit(p.tls);
        if (p.psk)
                gnutls_psk_free_server_credentials(p.psk);
        close(fd);
}

static int listen_loopback(void) {
        struct sockaddr_in a = {
                .sin_family = AF_INET,
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        socklen_t len = sizeof(a);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || bind(fd, (struct sockaddr *) &a, sizeof(a)) < 0 || listen(fd, 16) < 0 ||
            getsockname(fd, (struct sockaddr *) &a, &len) < 0) {
                perror("evil-server: listen");
                exit(EXIT_FAILURE);
        }
        printf("port %u\n", ntohs(a.sin_port));
        fflush(stdout);
        return fd;
}

static void usage(void) {
        fprintf(stderr, "usage: evil-server --scenario NAME [--psk HEX] [--listen-fd N]\n"
                        "       evil-server --list\nscenarios:");
        for (size_t i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
                fprintf(stderr, " %s", scenarios[i].name);
        fprintf(stderr, "\n");
}

int main(int argc, char *argv[]) {
        const Scenario *sc = NULL;
        int listen_fd = -1;
        struct sigaction sa = { .sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT };

        for (int i = 1; i < argc; i++) {
                if (strcmp(argv[i], "--list") == 0) {
                        for (size_t j = 0; j < sizeof(scenarios) / sizeof(scenarios[0]); j++)
                                printf("%s\n", scenarios[j].name);
                        return EXIT_SUCCESS;
                } else if (strcmp(argv[i], "--scenario") == 0 && i + 1 < argc)
                        arg_scenario = argv[++i];
                else if (strcmp(argv[i], "--psk") == 0 && i + 1 < argc)
                        arg_psk_hex = argv[++i];
                else if (strcmp(argv[i], "--listen-fd") == 0 && i + 1 < argc)
                        listen_fd = atoi(argv[++i]);
                else {
                        usage();
                        return EXIT_FAILURE;
                }
        }
        for (size_t i = 0; arg_scenario && i < sizeof(scenarios) / sizeof(scenarios[0]); i++)
                if (strcmp(arg_scenario, scenarios[i].name) == 0)
                        sc = &scenarios[i];
        if (!sc) {
                usage();
                return EXIT_FAILURE;
        }

        /* Whoever started us may die without cleaning up: go with it. */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        /* Connections are children; nobody waits for them. */
        (void) sigaction(SIGCHLD, &sa, NULL);
        (void) signal(SIGPIPE, SIG_IGN);

        if (listen_fd < 0)
                listen_fd = listen_loopback();

        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                pid_t pid;

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        perror("evil-server: accept");
                        return EXIT_FAILURE;
                }
                pid = fork();
                if (pid < 0) {
                        perror("evil-server: fork");
                        return EXIT_FAILURE;
                }
                if (pid == 0) {
                        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                        close(listen_fd);
                        serve(fd, sc);
                        _exit(EXIT_SUCCESS);
                }
                close(fd);
        }
}
