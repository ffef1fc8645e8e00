/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* common/log.c: plain lines for a terminal or a test log, "<N>" priority
 * prefixes only when stderr is the journal stream systemd named, the
 * maximum level, %m from the error, and the error handed back. */

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#include <glib.h>

/* Runs fn with stderr redirected to a fresh file, in a child process so
 * that the module's one-time decision about the journal starts anew.
 * Returns what fn logged. */
static char *capture(void (*fn)(void), bool as_journal) {
        char path[] = "/tmp/nbdlink-test-log-XXXXXX";
        g_autofree char *out = NULL;
        int fd, status;
        pid_t pid;

        fd = mkstemp(path);
        g_assert_cmpint(fd, >=, 0);
        pid = fork();
        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                struct stat st;

                if (dup2(fd, STDERR_FILENO) < 0)
                        _exit(1);
                unsetenv("JOURNAL_STREAM");
                if (as_journal && fstat(STDERR_FILENO, &st) == 0) {
                        char v[64];
                        snprintf(v, sizeof(v), "%llu:%llu", (unsigned long long) st.st_dev,
                                 (unsigned long long) st.st_ino);
                        setenv("JOURNAL_STREAM", v, 1);
                }
                fn();
                _exit(0);
        }
        g_assert_cmpint(waitpid(pid, &status, 0), ==, pid);
        g_assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        g_assert_true(g_file_get_contents(path, &out, NULL, NULL));
        close(fd);
        unlink(path);
        return g_steal_pointer(&out);
}

static void log_some(void) {
        log_info("Attached %s.", "/dev/nbd0");
        log_debug("not shown at the default level");
        if (log_error_errno(-ENOENT, "Failed to open %s: %m", "x") != -ENOENT)
                _exit(2);
        log_set_max_level(LOG_DEBUG);
        log_debug("shown now");
}

static void test_plain(void) {
        g_autofree char *out = capture(log_some, false);

        g_assert_cmpstr(out, ==,
                        "Attached /dev/nbd0.\n"
                        "Failed to open x: No such file or directory\n"
                        "shown now\n");
}

static void test_journal(void) {
        g_autofree char *out = capture(log_some, true);

        g_assert_cmpstr(out, ==,
                        "<6>Attached /dev/nbd0.\n"
                        "<3>Failed to open x: No such file or directory\n"
                        "<7>shown now\n");
}

static void log_long(void) {
        char big[5000];

        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        log_warning("%s", big);
}

/* A line over the buffer is cut, but still one line. */
static void test_long_line(void) {
        g_autofree char *out = capture(log_long, false);
        size_t n = strlen(out);

        g_assert_cmpuint(n, >, 1000);
        g_assert_cmpuint(n, <, 5000);
        g_assert_true(out[n - 1] == '\n');
        g_assert_null(memchr(out, '\n', n - 1));
}

static void log_hostile(void) {
        log_info("Attaching export '%s'.", "x\nnbdlinkd: Detached all devices.\x1b[2J\xe2\x80\xae");
}

/* A name with a newline cannot forge a line of its own, nor clear the
 * screen of whoever reads the log. */
static void test_hostile_text(void) {
        g_autofree char *out = capture(log_hostile, false);

        g_assert_cmpstr(out, ==,
                        "Attaching export 'x\\x0anbdlinkd: Detached all devices.\\x1b[2J\\u202E'.\n");
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/log/plain", test_plain);
        g_test_add_func("/log/journal", test_journal);
        g_test_add_func("/log/long-line", test_long_line);
        g_test_add_func("/log/hostile-text", test_hostile_text);
        return g_test_run();
}
