/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs evil-server as a child of the test: its stdout is a pipe from which
 * the port and the per-connection verdicts are read with a time limit, so
 * a server that misbehaves in ways it should not cannot hang the test. */

#include "evil-spawn.h"
#include "util/time-util.h"

#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static char *server_path(void) {
        const char *root = g_getenv("NBDLINK_BUILD_ROOT");

        if (root)
                return g_build_filename(root, "tests", "adversarial", "evil-server", NULL);
        /* Run by hand: the server is built next to the test. */
        g_autofree char *self = g_file_read_link("/proc/self/exe", NULL);
        g_autofree char *dir = g_path_get_dirname(self);
        return g_build_filename(dir, "evil-server", NULL);
}

/* One line from the server, without its newline, or NULL at the deadline
 * or end of file. */
static char *read_line(EvilServer *s, usec_t deadline) {
        GString *line = g_string_new(NULL);

        for (;;) {
                struct pollfd p = { .fd = s->out, .events = POLLIN };
                int timeout = deadline_poll_timeout(deadline);
                char c;
                ssize_t k;

                if (timeout == 0 || poll(&p, 1, timeout) <= 0)
                        break;
                k = read(s->out, &c, 1);
                if (k <= 0)
                        break;
                if (c == '\n')
                        return g_string_free(line, FALSE);
                g_string_append_c(line, c);
        }
        g_string_free(line, TRUE);
        return NULL;
}

int evil_server_start(EvilServer *s, const char *scenario, const char *psk_hex) {
        g_autofree char *path = server_path();
        g_autofree char *line = NULL;
        int pipefd[2];
        pid_t pid;

        *s = (EvilServer) { .pid = -1, .out = -1 };
        if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
                g_error("%s is missing: build the tests first", path);
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;

        pid = fork();
        if (pid < 0) {
                int r = -errno;
                close(pipefd[0]);
                close(pipefd[1]);
                return r;
        }
        if (pid == 0) {
                const char *argv[] = { path, "--scenario", scenario, psk_hex ? "--psk" : NULL, psk_hex, NULL };

                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (dup2(pipefd[1], STDOUT_FILENO) < 0)
                        _exit(127);
                execv(path, (char **) argv);
                _exit(127);
        }
        close(pipefd[1]);
        s->pid = pid;
        s->out = pipefd[0];

        line = read_line(s, deadline_after(10 * USEC_PER_SEC));
        if (!line || !g_str_has_prefix(line, "port ")) {
                evil_server_stop(s);
                return -EIO;
        }
        s->port = (uint16_t) strtoul(line + 5, NULL, 10);
        return 0;
}

char *evil_server_verdict(EvilServer *s, int timeout_ms) {
        usec_t deadline = deadline_after((usec_t) timeout_ms * USEC_PER_MSEC);

        for (;;) {
                g_autofree char *line = read_line(s, deadline);

                if (!line)
                        return NULL;
                if (g_str_has_prefix(line, "verdict "))
                        return g_strdup(line + 8);
        }
}

void evil_server_stop(EvilServer *s) {
        if (s->pid > 0) {
                (void) kill(s->pid, SIGKILL);
                (void) waitpid(s->pid, NULL, 0);
                s->pid = -1;
        }
        if (s->out >= 0) {
                close(s->out);
                s->out = -1;
        }
}
