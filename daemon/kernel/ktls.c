/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* kTLS hand-off: the decision (a pure function over facts about the
 * session and the kernel) and the key installation with the kernel's
 * TLS_TX/TLS_RX socket options, from the state GnuTLS exports.
 *
 * Why TLS 1.2 only. Once the kernel's NBD driver owns a kTLS socket, every
 * record that is not application data ends the device: the driver reads
 * with plain kernel_recvmsg() without room for the record-type control
 * message, so the kernel's TLS layer answers -EIO, the driver marks the
 * connection dead and I/O fails. TLS 1.3 sends handshake records after the handshake at any time:
 * NewSessionTicket (servers send these right after the handshake, and may
 * send more later) and KeyUpdate, which GnuTLS servers (nbdkit, qemu-nbd,
 * nbd-server all use GnuTLS) send on their own after 2^24 records, a
 * volume a block device reaches. Tickets sent right after the handshake
 * would be consumed by the option haggling, but a KeyUpdate cannot be
 * drained in advance, and only recent kernels (not 6.1) can rekey a kTLS
 * socket at all. TLS 1.2
 * has no post-handshake messages besides a renegotiation request, which
 * none of these servers sends. So a session that should be able to go to
 * the kernel is negotiated as TLS 1.2 with AES-GCM (KTLS_PRIORITY_*), and
 * anything else, TLS 1.3 included, takes the relay. A server that will
 * not negotiate that (TLS 1.3 only, no AES-GCM) is dialled again without
 * the restriction (connect_one() in connect-many.c) and relayed. */

#include <errno.h>
#include <fcntl.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "error-text.h"
#include "gnutls-dl.h"
#include "ktls.h"

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

/* TLS content type and alert of a close_notify. */
#define TLS_RECORD_TYPE_ALERT 21
#define TLS_ALERT_LEVEL_WARNING 1
#define TLS_ALERT_CLOSE_NOTIFY 0

struct Ktls {
        Conn *conn;
        bool own_keys;          /* we installed the keys, not GnuTLS */
};

static const char *const transport_mode_table[_TRANSPORT_MODE_MAX] = {
        [TRANSPORT_MODE_NONE] = "none",
        [TRANSPORT_MODE_RELAY] = "relay",
        [TRANSPORT_MODE_KTLS] = "ktls",
};

const char *transport_mode_to_string(TransportMode m) {
        if (m < 0 || m >= _TRANSPORT_MODE_MAX)
                return NULL;
        return transport_mode_table[m];
}

bool ktls_kernel_supported(void) {
        char buf[256], *save = NULL;
        FILE *f;
        size_t n;

        f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "re");
        if (!f)
                return false;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = 0;

        for (char *w = strtok_r(buf, " \t\n", &save); w; w = strtok_r(NULL, " \t\n", &save))
                if (strcmp(w, "tls") == 0)
                        return true;
        return false;
}

bool ktls_wanted_for_handshake(bool option) {
        return option && ktls_kernel_supported();
}

static bool fd_is_tcp(int fd) {
        int protocol = 0;
        socklen_t len = sizeof(protocol);

        return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) == 0 && protocol == IPPROTO_TCP;
}

int ktls_facts_from_conn(KtlsFacts *ret, const Conn *conn, bool wanted) {
        gnutls_session_t s;

        if (!ret || !conn)
                return -EINVAL;
        s = conn_tls_session(conn);
        if (!s || conn_fd(conn) < 0)
                return -EINVAL;

        *ret = (KtlsFacts) {
                .wanted = wanted,
                .kernel = ktls_kernel_supported(),
                .tcp = fd_is_tcp(conn_fd(conn)),
                .version = sym_gnutls_protocol_get_version(s),
                .cipher = sym_gnutls_cipher_get(s),
                .gnutls_ktls = sym_gnutls_transport_is_ktls_enabled(s),
                .pending = sym_gnutls_record_check_pending(s),
        };
        return 0;
}

bool ktls_usable(const KtlsFacts *f, const char **ret_reason) {
        const char *reason = NULL;

        if (!f->wanted)
                reason = "kTLS is turned off (tls-ktls)";
        else if (!f->tcp)
                reason = "the connection is not TCP";
        else if (f->version != GNUTLS_TLS1_2)
                /* See the top of this file. */
                reason = "only TLS 1.2 sessions go to the kernel: TLS 1.3 key updates and tickets would reach the NBD driver";
        else if (f->cipher != GNUTLS_CIPHER_AES_128_GCM && f->cipher != GNUTLS_CIPHER_AES_256_GCM)
                reason = "the cipher is not AES-GCM";
        else if (f->pending > 0)
                /* Bytes GnuTLS decrypted would be lost to the kernel. */
                reason = "GnuTLS still holds received data";
        else if (f->gnutls_ktls != 0 && f->gnutls_ktls != GNUTLS_KTLS_DUPLEX)
                reason = "GnuTLS moved only one direction into the kernel";
        else if (f->gnutls_ktls == 0 && !f->kernel)
                reason = "the kernel has no TLS support (the tls module is not loaded)";

        if (ret_reason)
                *ret_reason = reason;
        return !reason;
}


/* One direction's keys into the socket, as TLS 1.2 AES-GCM wants them:
 * the 4-byte implicit salt, the key, and the record sequence number, which
 * also serves as the first explicit nonce for sending (as GnuTLS does). */
static int install_direction(int fd, gnutls_session_t s, gnutls_cipher_algorithm_t cipher, bool read) {
        union {
                struct tls12_crypto_info_aes_gcm_128 gcm128;
                struct tls12_crypto_info_aes_gcm_256 gcm256;
        } info = {};
        gnutls_datum_t mac = {}, iv = {}, key = {};
        unsigned char seq[8];
        socklen_t len;
        int r;

        r = sym_gnutls_record_get_state(s, read, &mac, &iv, &key, seq);
        if (r < 0)
                return -EINVAL;

        if (cipher == GNUTLS_CIPHER_AES_128_GCM) {
                struct tls12_crypto_info_aes_gcm_128 *c = &info.gcm128;

                if (key.size != sizeof(c->key) || iv.size < sizeof(c->salt))
                        return -EINVAL;
                c->info.version = TLS_1_2_VERSION;
                c->info.cipher_type = TLS_CIPHER_AES_GCM_128;
                memcpy(c->key, key.data, sizeof(c->key));
                memcpy(c->salt, iv.data, sizeof(c->salt));
                memcpy(c->iv, seq, sizeof(c->iv));
                memcpy(c->rec_seq, seq, sizeof(c->rec_seq));
                len = sizeof(*c);
        } else if (cipher == GNUTLS_CIPHER_AES_256_GCM) {
                struct tls12_crypto_info_aes_gcm_256 *c = &info.gcm256;

                if (key.size != sizeof(c->key) || iv.size < sizeof(c->salt))
                        return -EINVAL;
                c->info.version = TLS_1_2_VERSION;
                c->info.cipher_type = TLS_CIPHER_AES_GCM_256;
                memcpy(c->key, key.data, sizeof(c->key));
                memcpy(c->salt, iv.data, sizeof(c->salt));
                memcpy(c->iv, seq, sizeof(c->iv));
                memcpy(c->rec_seq, seq, sizeof(c->rec_seq));
                len = sizeof(*c);
        } else
                return -EOPNOTSUPP;

        r = setsockopt(fd, SOL_TLS, read ? TLS_RX : TLS_TX, &info, len) < 0 ? -errno : 0;
        explicit_bzero(&info, sizeof(info));
        return r;
}

int ktls_new(Ktls **ret, Conn *conn, bool wanted, int *ret_kernel_fd, Error *error) {
        _cleanup_close_ int kernel_fd = -EBADF;
        const char *reason;
        KtlsFacts facts;
        gnutls_session_t s;
        bool own_keys = false;
        Ktls *k;
        int fd, flags, r;

        if (!ret || !conn || !ret_kernel_fd)
                return error_set(error, -EINVAL, "ktls: invalid arguments");

        r = ktls_facts_from_conn(&facts, conn, wanted);
        if (r < 0)
                return error_set(error, -EOPNOTSUPP, "ktls: the connection does not run TLS");
        if (!ktls_usable(&facts, &reason))
                return error_set(error, -EOPNOTSUPP, "ktls: %s", reason);

        s = conn_tls_session(conn);
        fd = conn_fd(conn);

        if (facts.gnutls_ktls != GNUTLS_KTLS_DUPLEX) {
                /* A ULP without keys passes bytes through unchanged, so up
                 * to here the relay can still take over. */
                if (setsockopt(fd, SOL_TCP, TCP_ULP, "tls", sizeof("tls")) < 0)
                        return error_set(error, -EOPNOTSUPP, "ktls: the kernel refused the tls layer: %s", strerror(errno));

                r = install_direction(fd, s, facts.cipher, false);
                if (r < 0)
                        return error_set(error, -EOPNOTSUPP, "ktls: the kernel refused the sending keys: %s", strerror(-r));

                /* From here on the kernel encrypts what we send: GnuTLS
                 * cannot write to this socket any more. */
                r = install_direction(fd, s, facts.cipher, true);
                if (r < 0)
                        return error_set(error, r, "ktls: the kernel took the sending keys but refused the receiving keys: %s", strerror(-r));
                own_keys = true;
        }

        flags = fcntl(fd, F_GETFL);
        kernel_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (flags < 0 || kernel_fd < 0)
                return error_set(error, -errno, "ktls: cannot duplicate the socket: %s", strerror(errno));
        /* The NBD driver expects a blocking socket, as nbd-client gives it;
         * the flag is shared with our copy, which GnuTLS no longer uses. */
        if ((flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return error_set(error, -errno, "ktls: cannot make the socket blocking: %s", strerror(errno));

        k = calloc(1, sizeof(*k));
        if (!k)
                return error_set(error, -ENOMEM, "ktls: out of memory");
        k->conn = conn;
        k->own_keys = own_keys;

        *ret_kernel_fd = TAKE_FD(kernel_fd);
        *ret = k;
        return 0;
}

static ssize_t discard_push(gnutls_transport_ptr_t p, const void *data, size_t size) {
        return (ssize_t) size;
}

/* close_notify as a record of type alert, encrypted by the kernel. */
static void send_close_notify(int fd) {
        unsigned char alert[2] = { TLS_ALERT_LEVEL_WARNING, TLS_ALERT_CLOSE_NOTIFY };
        union {
                char buf[CMSG_SPACE(sizeof(unsigned char))];
                struct cmsghdr align;
        } control = {};
        struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
        struct msghdr msg = {
                .msg_iov = &iov,
                .msg_iovlen = 1,
                .msg_control = control.buf,
                .msg_controllen = sizeof(control.buf),
        };
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

        c->cmsg_level = SOL_TLS;
        c->cmsg_type = TLS_SET_RECORD_TYPE;
        c->cmsg_len = CMSG_LEN(sizeof(unsigned char));
        *CMSG_DATA(c) = TLS_RECORD_TYPE_ALERT;

        /* Fails harmlessly once the NBD driver shut the socket down. */
        (void) sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
}

Ktls *ktls_free(Ktls *k) {
        if (!k)
                return NULL;

        if (k->own_keys) {
                gnutls_session_t s = conn_tls_session(k->conn);

                send_close_notify(conn_fd(k->conn));
                /* GnuTLS does not know its keys moved: its own goodbye
                 * would be encrypted twice and land in the data stream. */
                sym_gnutls_transport_set_push_function(s, discard_push);
        }
        /* With keys GnuTLS installed, its gnutls_bye() in conn_free()
         * already goes through the kernel correctly. */
        conn_free(k->conn);
        free(k);
        return NULL;
}

Ktls *ktls_leave(Ktls *k) {
        gnutls_session_t s;

        if (!k)
                return NULL;
        s = conn_tls_session(k->conn);
        if (s) {
                /* conn_free()'s gnutls_bye() must not reach the socket,
                 * through the kernel (GnuTLS's own kTLS send uses the
                 * transport fd) or through the push function. */
                sym_gnutls_transport_set_int(s, -1);
                sym_gnutls_transport_set_push_function(s, discard_push);
        }
        conn_free(k->conn);
        free(k);
        return NULL;
}
