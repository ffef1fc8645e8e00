/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libFuzzer target: the PSK file a caller passes as "tls-psk" (psktool's
 * "username:hexkey" lines), parsed when the TLS credentials are loaded.
 * Bit 0 of the first byte says whether the caller named a user
 * ("tls-username"); if so the user name runs up to the first NUL. The
 * rest is the file. */

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "conn.h"
#include "fuzz.h"
#include "tls.h"

static int devnull = -EBADF;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(conn_freep) Conn *c = NULL;
        _cleanup_free_ char *username = NULL;
        _cleanup_free_ void *file = NULL;
        Error error = {};
        TlsConfig cfg = {};
        size_t file_size;
        int fd, r;

        if (size < 1)
                return 0;
        if (data[0] & 1) {
                const uint8_t *nul = memchr(data + 1, 0, size - 1);
                size_t n = nul ? (size_t) (nul - data - 1) : size - 1;

                username = strndup((const char *) data + 1, n);
                if (!username)
                        return 0;
                data += n + (nul ? 1 : 0);
                size -= n + (nul ? 1 : 0);
        }

        /* An empty file selects no PSK at all but X.509 with the system
         * trust, which is not what this target is about. */
        file_size = size - 1;
        if (file_size == 0)
                return 0;
        /* An exact copy, so that reading one byte past the file is caught. */
        file = malloc(file_size ?: 1);
        if (!file)
                return 0;
        memcpy(file, data + 1, file_size);

        cfg.psk_file = (Blob) { .data = file, .size = file_size };
        cfg.psk_username = username;

        /* Loading credentials needs a socket Conn (a memory Conn skips
         * them), but never touches its descriptor. */
        if (devnull < 0) {
                devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                FUZZ_CHECK(devnull >= 0);
        }
        fd = fcntl(devnull, F_DUPFD_CLOEXEC, 3);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(conn_new_fd(&c, fd) == 0);

        r = conn_prepare_tls(c, &cfg, &error);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ENOMEM);
                FUZZ_CHECK(strncmp(error.message, "tls: ", 5) == 0);
                /* The message becomes a bus error, which must be UTF-8: it
                 * may echo the caller's user name (UTF-8, since it came
                 * over the bus), never the file's bytes. */
                if (!username || fuzz_utf8_valid(username))
                        FUZZ_CHECK(fuzz_utf8_valid(error.message));
                return 0;
        }
        /* Loaded once; a second call keeps what is there. */
        FUZZ_CHECK(conn_prepare_tls(c, &cfg, &error) == 0);
        return 0;
}
