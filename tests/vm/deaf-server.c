/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* An NBD server for the vm suite that ignores NBD_CMD_DISC, as some servers
 * in the field do: fixed newstyle, one export served from memory with simple
 * replies, and after NBD_CMD_DISC it says nothing more and keeps the
 * connection open until the client closes it. Detach has to cope with it.
 *
 * usage: deaf-server FD SIZE
 *   FD    a listening TCP socket the test passes down (no port race)
 *   SIZE  the export's size in bytes, a multiple of 512
 * Connections are served one after the other; it runs until killed. */

#include <assert.h>
#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define NBD_MAGIC           UINT64_C(0x4e42444d41474943)      /* "NBDMAGIC" */
#define NBD_IHAVEOPT        UINT64_C(0x49484156454f5054)      /* "IHAVEOPT" */
#define NBD_REP_MAGIC       UINT64_C(0x0003e889045565a9)
#define NBD_REQUEST_MAGIC   UINT32_C(0x25609513)
#define NBD_SIMPLE_REPLY_MAGIC UINT32_C(0x67446698)

#define NBD_FLAG_FIXED_NEWSTYLE (1u << 0)
#define NBD_FLAG_NO_ZEROES      (1u << 1)
#define NBD_FLAG_C_KNOWN        (NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES)

#define NBD_OPT_EXPORT_NAME 1u
#define NBD_OPT_ABORT       2u
#define NBD_OPT_INFO        6u
#define NBD_OPT_GO          7u

#define NBD_REP_ACK         1u
#define NBD_REP_INFO        3u
#define NBD_REP_ERR_UNSUP   (UINT32_C(1) << 31 | 1u)
#define NBD_REP_ERR_INVALID (UINT32_C(1) << 31 | 3u)

#define NBD_INFO_EXPORT     0u

#define NBD_FLAG_HAS_FLAGS  (1u << 0)
#define NBD_FLAG_SEND_FLUSH (1u << 2)
#define EXPORT_FLAGS        (NBD_FLAG_HAS_FLAGS | NBD_FLAG_SEND_FLUSH)

#define NBD_CMD_READ  0u
#define NBD_CMD_WRITE 1u
#define NBD_CMD_DISC  2u
#define NBD_CMD_FLUSH 3u

#define NBD_EINVAL 22u

#define MAX_OPTION_LENGTH  4096u                /* a name of up to 4 KiB and its info requests */
#define MAX_REQUEST_LENGTH (32u * 1024 * 1024)  /* the kernel's requests are far smaller */

struct greeting {
        uint64_t magic;
        uint64_t ihaveopt;
        uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(struct greeting) == 18, "wire size");

struct option_header {
        uint64_t magic;
        uint32_t option;
        uint32_t length;
} __attribute__((packed));
static_assert(sizeof(struct option_header) == 16, "wire size");

struct option_reply {
        uint64_t magic;
        uint32_t option;
        uint32_t type;
        uint32_t length;
} __attribute__((packed));
static_assert(sizeof(struct option_reply) == 20, "wire size");

struct info_export {
        uint16_t info;
        uint64_t size;
        uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(struct info_export) == 12, "wire size");

struct export_name_reply {
        uint64_t size;
        uint16_t flags;
} __attribute__((packed));
static_assert(sizeof(struct export_name_reply) == 10, "wire size");

struct request {
        uint32_t magic;
        uint16_t flags;
        uint16_t type;
        uint64_t cookie;
        uint64_t offset;
        uint32_t length;
} __attribute__((packed));
static_assert(sizeof(struct request) == 28, "wire size");

struct simple_reply {
        uint32_t magic;
        uint32_t error;
        uint64_t cookie;
} __attribute__((packed));
static_assert(sizeof(struct simple_reply) == 16, "wire size");

static uint8_t *disk;
static uint64_t disk_size;

/* 0 once all of buf came, -1 at EOF or on an error. */
static int read_full(int fd, void *buf, size_t len) {
        uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = read(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

static int write_full(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;

        while (len > 0) {
                ssize_t n = write(fd, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

/* Reads and drops len bytes (a payload we do not keep). */
static int discard(int fd, uint64_t len) {
        uint8_t buf[65536];

        while (len > 0) {
                size_t n = len < sizeof(buf) ? (size_t) len : sizeof(buf);

                if (read_full(fd, buf, n) < 0)
                        return -1;
                len -= n;
        }
        return 0;
}

/* Writes all of iov, finishing partial writes. */
static int writev_full(int fd, struct iovec *iov, int n_iov) {
        while (n_iov > 0) {
                ssize_t n = writev(fd, iov, n_iov);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -1;
                while (n_iov > 0 && (size_t) n >= iov->iov_len) {
                        n -= (ssize_t) iov->iov_len;
                        iov++;
                        n_iov--;
                }
                if (n_iov > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + n;
                        iov->iov_len -= (size_t) n;
                }
        }
        return 0;
}

static int option_reply(int fd, uint32_t option, uint32_t type, const void *data, uint32_t len) {
        struct option_reply r = {
                .magic = htobe64(NBD_REP_MAGIC),
                .option = htobe32(option),
                .type = htobe32(type),
                .length = htobe32(len),
        };

        struct iovec iov[2] = {
                { .iov_base = &r, .iov_len = sizeof(r) },
                { .iov_base = (void *) data, .iov_len = len },
        };

        return writev_full(fd, iov, len > 0 ? 2 : 1);
}

/* NBD_OPT_INFO and NBD_OPT_GO carry: u32 name length, name, u16 number of
 * information requests, u16 each. */
static bool go_data_valid(const uint8_t *data, uint32_t len) {
        uint32_t name_len;
        uint16_t n_info;

        if (len < 6)
                return false;
        memcpy(&name_len, data, 4);
        name_len = be32toh(name_len);
        if (name_len > len - 6)
                return false;
        memcpy(&n_info, data + 4 + name_len, 2);
        n_info = be16toh(n_info);
        return len == 4 + name_len + 2 + 2 * (uint32_t) n_info;
}

/* The option haggling: 1 when the client goes on to transmission, 0 when
 * it aborted, -1 when it broke the protocol or went away. */
static int handshake(int fd) {
        struct greeting g = {
                .magic = htobe64(NBD_MAGIC),
                .ihaveopt = htobe64(NBD_IHAVEOPT),
                .flags = htobe16(NBD_FLAG_FIXED_NEWSTYLE | NBD_FLAG_NO_ZEROES),
        };
        uint8_t data[MAX_OPTION_LENGTH];
        uint32_t client_flags;
        bool no_zeroes;

        if (write_full(fd, &g, sizeof(g)) < 0 || read_full(fd, &client_flags, 4) < 0)
                return -1;
        client_flags = be32toh(client_flags);
        /* The protocol says: close on flags we do not know. */
        if (client_flags & ~NBD_FLAG_C_KNOWN) {
                fprintf(stderr, "deaf-server: unknown client flags 0x%" PRIx32 "\n", client_flags);
                return -1;
        }
        no_zeroes = client_flags & NBD_FLAG_NO_ZEROES;

        for (;;) {
                struct option_header h;
                uint32_t option, len;

                if (read_full(fd, &h, sizeof(h)) < 0)
                        return -1;
                option = be32toh(h.option);
                len = be32toh(h.length);
                if (be64toh(h.magic) != NBD_IHAVEOPT) {
                        fprintf(stderr, "deaf-server: bad option magic\n");
                        return -1;
                }
                if (len > MAX_OPTION_LENGTH) {
                        fprintf(stderr, "deaf-server: option %" PRIu32 " of %" PRIu32 " bytes is over the limit\n",
                                option, len);
                        return -1;
                }
                if (read_full(fd, data, len) < 0)
                        return -1;

                switch (option) {
                case NBD_OPT_ABORT:
                        (void) option_reply(fd, option, NBD_REP_ACK, NULL, 0);
                        return 0;

                case NBD_OPT_EXPORT_NAME: {
                        static const uint8_t zeroes[124];
                        struct export_name_reply r = {
                                .size = htobe64(disk_size),
                                .flags = htobe16(EXPORT_FLAGS),
                        };

                        if (write_full(fd, &r, sizeof(r)) < 0 ||
                            (!no_zeroes && write_full(fd, zeroes, sizeof(zeroes)) < 0))
                                return -1;
                        return 1;
                }

                case NBD_OPT_INFO:
                case NBD_OPT_GO: {
                        struct info_export info = {
                                .info = htobe16(NBD_INFO_EXPORT),
                                .size = htobe64(disk_size),
                                .flags = htobe16(EXPORT_FLAGS),
                        };

                        if (!go_data_valid(data, len)) {
                                if (option_reply(fd, option, NBD_REP_ERR_INVALID, NULL, 0) < 0)
                                        return -1;
                                break;
                        }
                        /* Any name is our one export; information requests
                         * beyond NBD_INFO_EXPORT may go unanswered. */
                        if (option_reply(fd, option, NBD_REP_INFO, &info, sizeof(info)) < 0 ||
                            option_reply(fd, option, NBD_REP_ACK, NULL, 0) < 0)
                                return -1;
                        if (option == NBD_OPT_GO)
                                return 1;
                        break;
                }

                default:
                        if (option_reply(fd, option, NBD_REP_ERR_UNSUP, NULL, 0) < 0)
                                return -1;
                        break;
                }
        }
}

static int simple_reply(int fd, uint64_t cookie, uint32_t error, const void *data, size_t len) {
        struct simple_reply r = {
                .magic = htobe32(NBD_SIMPLE_REPLY_MAGIC),
                .error = htobe32(error),
                .cookie = cookie,       /* opaque: echoed as it came */
        };
        /* Header and data in one write: two would meet Nagle's algorithm. */
        struct iovec iov[2] = {
                { .iov_base = &r, .iov_len = sizeof(r) },
                { .iov_base = (void *) data, .iov_len = len },
        };

        return writev_full(fd, iov, len > 0 ? 2 : 1);
}

/* After NBD_CMD_DISC: no reply, no close; whatever comes is dropped until
 * the client closes the connection. */
static void play_deaf(int fd) {
        uint8_t buf[4096];
        ssize_t n;

        fprintf(stderr, "deaf-server: NBD_CMD_DISC ignored, the connection stays open\n");
        while ((n = read(fd, buf, sizeof(buf))) != 0)
                if (n < 0 && errno != EINTR)
                        break;
        fprintf(stderr, "deaf-server: the client closed the connection\n");
}

static void transmission(int fd) {
        for (;;) {
                struct request rq;
                uint64_t offset;
                uint32_t length, error = 0;
                uint16_t type;
                bool in_range;

                if (read_full(fd, &rq, sizeof(rq)) < 0)
                        return;
                if (be32toh(rq.magic) != NBD_REQUEST_MAGIC) {
                        fprintf(stderr, "deaf-server: bad request magic\n");
                        return;
                }
                type = be16toh(rq.type);
                offset = be64toh(rq.offset);
                length = be32toh(rq.length);

                if (type == NBD_CMD_DISC) {
                        play_deaf(fd);
                        return;
                }
                /* A write's payload of that size cannot be skipped safely
                 * either: hang up. */
                if (length > MAX_REQUEST_LENGTH) {
                        fprintf(stderr, "deaf-server: request of %" PRIu32 " bytes is over the limit\n", length);
                        return;
                }
                in_range = offset <= disk_size && length <= disk_size - offset;

                switch (type) {
                case NBD_CMD_READ:
                        if (!in_range)
                                error = NBD_EINVAL;
                        if (simple_reply(fd, rq.cookie, error, error ? NULL : disk + offset, error ? 0 : length) < 0)
                                return;
                        break;

                case NBD_CMD_WRITE:
                        if (in_range) {
                                if (read_full(fd, disk + offset, length) < 0)
                                        return;
                        } else {
                                if (discard(fd, length) < 0)
                                        return;
                                error = NBD_EINVAL;
                        }
                        if (simple_reply(fd, rq.cookie, error, NULL, 0) < 0)
                                return;
                        break;

                case NBD_CMD_FLUSH:
                        if (simple_reply(fd, rq.cookie, 0, NULL, 0) < 0)
                                return;
                        break;

                default:
                        /* Not advertised; carries no payload. */
                        if (simple_reply(fd, rq.cookie, NBD_EINVAL, NULL, 0) < 0)
                                return;
                        break;
                }
        }
}

static int parse_number(const char *text, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long v;

        errno = 0;
        v = strtoull(text, &end, 10);
        if (errno != 0 || end == text || *end || text[0] == '-' || v > max)
                return -1;
        *ret = v;
        return 0;
}

int main(int argc, char **argv) {
        uint64_t listen_fd;

        if (argc != 3 || parse_number(argv[1], INT32_MAX, &listen_fd) < 0 ||
            parse_number(argv[2], UINT64_C(1) << 30, &disk_size) < 0 || disk_size % 512 != 0) {
                fprintf(stderr, "usage: deaf-server LISTEN-FD SIZE (bytes, a multiple of 512, up to 1 GiB)\n");
                return 2;
        }
        disk = calloc(1, disk_size ? disk_size : 1);
        if (!disk) {
                fprintf(stderr, "deaf-server: out of memory\n");
                return 1;
        }
        /* A client gone mid-reply must not kill the server. */
        signal(SIGPIPE, SIG_IGN);

        for (;;) {
                int fd = accept4((int) listen_fd, NULL, NULL, SOCK_CLOEXEC);

                if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED)
                                continue;
                        fprintf(stderr, "deaf-server: accept: %s\n", strerror(errno));
                        return 1;
                }
                if (handshake(fd) == 1)
                        transmission(fd);
                close(fd);
        }
}
