/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Priority-tagged lines on stderr (log.h). */

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "utf8.h"

static int max_level = LOG_INFO;

/* 0: not decided yet, 1: stderr is the journal, -1: it is not. */
static int to_journal;

void log_set_max_level(int level) {
        __atomic_store_n(&max_level, LOG_PRI(level), __ATOMIC_RELAXED);
}

/* systemd passes JOURNAL_STREAM=<dev>:<inode> of the stream it connected
 * stdout and stderr to; only when stderr is still that stream do "<N>"
 * prefixes reach a reader that understands them. */
static bool stderr_is_journal(void) {
        int v = __atomic_load_n(&to_journal, __ATOMIC_RELAXED);
        unsigned long long dev, ino;
        const char *e;
        struct stat st;

        if (v != 0)
                return v > 0;

        e = getenv("JOURNAL_STREAM");
        v = -1;
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) >= 0 &&
            st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino)
                v = 1;
        /* Every thread that races here decides the same. */
        __atomic_store_n(&to_journal, v, __ATOMIC_RELAXED);
        return v > 0;
}

int log_internal(int level, int error, const char *format, ...) {
        _cleanup_free_ char *escaped = NULL;
        char line[2048], text[2048];
        va_list ap;
        int saved = errno, n = 0, k;

        if (error < 0)
                error = -error;
        if (LOG_PRI(level) > __atomic_load_n(&max_level, __ATOMIC_RELAXED))
                return -error;

        if (stderr_is_journal())
                n = snprintf(line, sizeof(line), "<%d>", LOG_PRI(level));

        if (error != 0)
                errno = error;
        va_start(ap, format);
        k = vsnprintf(text, sizeof(text), format, ap);
        va_end(ap);
        if (k < 0)
                text[0] = 0;
        utf8_trim_partial(text);

        /* A name a caller or a server chose ends up in lines here: a
         * newline in it must not start a line of its own that looks like
         * ours, nor an escape sequence rewrite the terminal that shows it. */
        escaped = utf8_needs_escape(text) ? utf8_escape(text) : NULL;
        k = snprintf(line + n, sizeof(line) - (size_t) n - 1, "%s", escaped ?: text);
        if (k < 0)
                k = 0;
        n = MIN((size_t) n + (size_t) k, sizeof(line) - 2);
        line[n++] = '\n';

        /* One write, so that lines of several threads never interleave. */
        (void) !write(STDERR_FILENO, line, (size_t) n);
        errno = saved;
        return -error;
}
