/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* State files of persistent devices ("key=value" lines, values escaped),
 * the backend identifier, and the reconnect backoff. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file-util.h"
#include "netlink.h"
#include "persist.h"
#include "util/macro.h"

#define STATE_MAGIC "nbdlink-persist 1"

void persist_state_done(PersistState *s) {
        if (!s)
                return;
        free(s->host);
        free(s->export_name);
        free(s->backend);
        s->host = s->export_name = s->backend = NULL;
}

/* Printable ASCII but '\\' as is, everything else as \xNN. */
static char *escape(const char *s) {
        size_t n = strlen(s);
        char *out = malloc(n * 4 + 1), *p = out;

        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c < 0x20 || c >= 0x7f || c == '\\')
                        p += sprintf(p, "\\x%02x", c);
                else
                        *p++ = (char) c;
        }
        *p = 0;
        return out;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static int unescape(const char *s, char **ret) {
        size_t n = strlen(s);
        char *out = malloc(n + 1), *p = out;

        if (!out)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;

                if (s[i] != '\\') {
                        *p++ = s[i];
                        continue;
                }
                if (i + 3 >= n || s[i + 1] != 'x' ||
                    (hi = unhex(s[i + 2])) < 0 || (lo = unhex(s[i + 3])) < 0 || (hi == 0 && lo == 0)) {
                        free(out);
                        return -EINVAL;
                }
                *p++ = (char) (hi << 4 | lo);
                i += 3;
        }
        *p = 0;
        *ret = out;
        return 0;
}

int persist_state_write(const char *dir, const PersistState *s) {
        _cleanup_free_ char *host = NULL, *export_name = NULL, *backend = NULL, *text = NULL;
        char name[32];

        host = escape(strempty(s->host));
        export_name = escape(strempty(s->export_name));
        backend = escape(strempty(s->backend));
        if (!host || !export_name || !backend)
                return -ENOMEM;
        if (asprintf(&text,
                     STATE_MAGIC "\n"
                     "index=%d\n"
                     "owner=%" PRIu32 "\n"
                     "host=%s\n"
                     "port=%u\n"
                     "export=%s\n"
                     "backend=%s\n"
                     "size=%" PRIu64 "\n"
                     "flags=%u\n"
                     "block-size=%" PRIu32 "\n"
                     "connections=%" PRIu32 "\n"
                     "timeout=%" PRIu32 "\n"
                     "dead-timeout=%" PRIu32 "\n"
                     "io-timeout=%" PRIu32 "\n"
                     "read-only=%d\n"
                     "tls=%d\n"
                     "reconnect=%d\n"
                     "attached-since=%" PRIu64 "\n"
                     "dead-since=%" PRIu64 "\n",
                     s->index, s->owner_uid, host, s->port, export_name, backend, s->size, s->flags,
                     s->block_size, s->connections, s->timeout_sec, s->dead_timeout_sec, s->io_timeout_sec,
                     s->read_only, s->tls, s->reconnect, s->attached_since, s->dead_since) < 0) {
                text = NULL;
                return -ENOMEM;
        }
        (void) snprintf(name, sizeof(name), "nbd%d", s->index);
        /* Owner and parameters of a root-owned device: root reads them. */
        return write_file_atomic(dir, name, text, 0600);
}

static int parse_u64(const char *v, uint64_t max, uint64_t *ret) {
        char *end;
        unsigned long long x;

        if (!*v || *v == '-' || *v == '+' || *v == ' ')
                return -EINVAL;
        errno = 0;
        x = strtoull(v, &end, 10);
        if (errno != 0 || *end || x > max)
                return -EINVAL;
        *ret = x;
        return 0;
}

int persist_state_read(const char *dir, int index, PersistState *ret) {
        _cleanup_free_ char *path = NULL, *buf = NULL;
        _cleanup_(persist_state_done) PersistState s = { .index = -1 };
        _cleanup_close_ int fd = -EBADF;
        unsigned seen = 0;
        struct stat st;
        ssize_t n;
        char *line, *save = NULL;
        int r;

        if (asprintf(&path, "%s/nbd%d", dir, index) < 0)
                return -ENOMEM;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size > PERSIST_STATE_MAX_SIZE)
                return -EINVAL;
        buf = malloc(PERSIST_STATE_MAX_SIZE + 1);
        if (!buf)
                return -ENOMEM;
        n = read(fd, buf, PERSIST_STATE_MAX_SIZE + 1);
        if (n < 0)
                return negative_errno();
        if (n > PERSIST_STATE_MAX_SIZE || memchr(buf, 0, (size_t) n))
                return -EINVAL;
        buf[n] = 0;

        line = strtok_r(buf, "\n", &save);
        if (!line || strcmp(line, STATE_MAGIC) != 0)
                return -EINVAL;

        while ((line = strtok_r(NULL, "\n", &save))) {
                char *eq = strchr(line, '=');
                const char *key, *v;
                uint64_t x = 0;

                if (!eq)
                        return -EINVAL;
                *eq = 0;
                key = line;
                v = eq + 1;

                /* Table of numeric keys: name, bit, limit, where. */
#define NUM(name, bit, max, field)                                      \
                if (strcmp(key, name) == 0) {                           \
                        if (parse_u64(v, max, &x) < 0)                  \
                                return -EINVAL;                         \
                        field = x;                                      \
                        seen |= 1u << bit;                              \
                        continue;                                       \
                }
                NUM("index", 0, INT32_MAX, s.index)
                NUM("owner", 1, UINT32_MAX, s.owner_uid)
                NUM("port", 2, UINT16_MAX, s.port)
                NUM("size", 3, INT64_MAX, s.size)
                NUM("flags", 4, UINT16_MAX, s.flags)
                NUM("block-size", 5, UINT32_MAX, s.block_size)
                NUM("connections", 6, UINT32_MAX, s.connections)
                NUM("timeout", 7, UINT32_MAX, s.timeout_sec)
                NUM("dead-timeout", 8, UINT32_MAX, s.dead_timeout_sec)
                NUM("read-only", 9, 1, s.read_only)
                NUM("attached-since", 10, UINT64_MAX, s.attached_since)
                NUM("dead-since", 11, UINT64_MAX, s.dead_since)
                /* Optional: missing in files of plaintext devices of the
                 * first persistent nbdlinkd, which refused TLS. */
                NUM("tls", 15, 1, s.tls)
                /* Optional: before it, "timeout" was the I/O timeout too. */
                NUM("io-timeout", 16, UINT32_MAX, s.io_timeout_sec)
                /* Optional: before it, every device with a state file
                 * was a persistent one. */
                NUM("reconnect", 17, 1, s.reconnect)
#undef NUM
                if (strcmp(key, "host") == 0 && !s.host) {
                        r = unescape(v, &s.host);
                        seen |= 1u << 12;
                } else if (strcmp(key, "export") == 0 && !s.export_name) {
                        r = unescape(v, &s.export_name);
                        seen |= 1u << 13;
                } else if (strcmp(key, "backend") == 0 && !s.backend) {
                        r = unescape(v, &s.backend);
                        seen |= 1u << 14;
                } else
                        /* Newer keys from a newer nbdlinkd are fine to skip. */
                        r = 0;
                if (r < 0)
                        return r;
        }

        if (!(seen & (1u << 16)))
                s.io_timeout_sec = s.timeout_sec;
        if (!(seen & (1u << 17)))
                s.reconnect = true;
        if ((seen & ((1u << 15) - 1)) != (1u << 15) - 1 || s.index != index || s.connections < 1 || s.block_size == 0)
                return -EINVAL;
        *ret = s;
        s = (PersistState) {};
        return 0;
}

int persist_state_remove(const char *dir, int index) {
        _cleanup_free_ char *path = NULL;

        if (asprintf(&path, "%s/nbd%d", dir, index) < 0)
                return -ENOMEM;
        if (unlink(path) < 0 && errno != ENOENT)
                return negative_errno();
        return 0;
}

static int cmp_int(const void *a, const void *b) {
        int x = *(const int *) a, y = *(const int *) b;
        return (x > y) - (x < y);
}

int persist_state_list(const char *dir, int **ret, size_t *ret_n) {
        _cleanup_free_ int *list = NULL;
        size_t n = 0, allocated = 0;
        struct dirent *de;
        DIR *d;

        d = opendir(dir);
        if (!d) {
                if (errno != ENOENT)
                        return negative_errno();
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        while ((de = readdir(d))) {
                char *end;
                long v;

                if (strncmp(de->d_name, "nbd", 3) != 0 || de->d_name[3] < '0' || de->d_name[3] > '9')
                        continue;
                errno = 0;
                v = strtol(de->d_name + 3, &end, 10);
                if (errno != 0 || *end || v < 0 || v > INT32_MAX)
                        continue;
                if (n == allocated) {
                        int *l = reallocarray(list, allocated ? allocated * 2 : 8, sizeof(int));
                        if (!l) {
                                closedir(d);
                                return -ENOMEM;
                        }
                        list = l;
                        allocated = allocated ? allocated * 2 : 8;
                }
                list[n++] = (int) v;
        }
        closedir(d);
        if (n > 0)
                qsort(list, n, sizeof(int), cmp_int);
        *ret = TAKE_PTR(list);
        *ret_n = n;
        return 0;
}

int persist_backend_id(const char *address, const char *export_name, char **ret) {
        _cleanup_free_ char *e = NULL;
        size_t prefix = strlen("nbdlink:") + strlen(address) + 1;
        uint64_t h = 0xcbf29ce484222325ULL;     /* FNV-1a */
        char *s;

        e = escape(export_name);
        if (!e)
                return -ENOMEM;
        if (prefix + strlen(e) > NBD_NL_BACKEND_MAX) {
                /* Room for "#" and 16 hex digits after the cut; the hash
                 * keeps two long names with one prefix apart. */
                if (prefix + 17 > NBD_NL_BACKEND_MAX)
                        return -EINVAL;
                for (const char *p = export_name; *p; p++)
                        h = (h ^ (unsigned char) *p) * 0x100000001b3ULL;
                e[NBD_NL_BACKEND_MAX - prefix - 17] = 0;
                /* Never cut an escape in half. */
                char *bs = strrchr(e, '\\');
                if (bs && strlen(bs) < 4)
                        *bs = 0;
                if (asprintf(&s, "nbdlink:%s/%s#%016" PRIx64, address, e, h) < 0)
                        return -ENOMEM;
        } else if (asprintf(&s, "nbdlink:%s/%s", address, e) < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

usec_t persist_backoff_usec(unsigned attempt, uint32_t random) {
        usec_t d = PERSIST_BACKOFF_MIN_USEC;

        for (unsigned i = 0; i < attempt && d < PERSIST_BACKOFF_MAX_USEC; i++)
                d *= 2;
        d = MIN(d, PERSIST_BACKOFF_MAX_USEC);
        return d / 2 + (usec_t) random % (d / 2 + 1);
}
