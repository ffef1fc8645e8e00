/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The test harness itself: each server starts on a run-time port, answers
 * with an NBD greeting through net_connect(), and is gone after stop, even
 * when the test process dies without cleaning up. */

#include "net.h"
#include "util/macro.h"

#include <glib.h>
#include <signal.h>
#include <sys/wait.h>

#include "pki.h"
#include "servers.h"

static void assert_greeting(const TestServer *s) {
        char host[64];
        Error error = {};
        char buf[16];
        NbdAddress a = {};
        ssize_t n;
        size_t got = 0;
        int fd = -EBADF;

        g_snprintf(host, sizeof(host), "127.0.0.1:%u", s->port);
        g_assert_cmpint(nbd_address_parse(&a, host, 0, &error), ==, 0);
        if (net_connect(&a, deadline_after(10 * USEC_PER_SEC), &fd, &error) < 0)
                g_error("%s", error.message);
        nbd_address_done(&a);

        while (got < sizeof(buf)) {
                n = read(fd, buf + got, sizeof(buf) - got);
                g_assert_cmpint(n, >, 0);
                got += (size_t) n;
        }
        g_assert_cmpmem(buf, 8, "NBDMAGIC", 8);
        g_assert_cmpmem(buf + 8, 8, "IHAVEOPT", 8);
        close(fd);
}

static void assert_gone(pid_t pid) {
        g_assert_cmpint(kill(pid, 0), <, 0);
        g_assert_cmpint(errno, ==, ESRCH);
}

static void test_nbdkit(void) {
        TestServer *s = test_nbdkit_start("memory", "size=1M", NULL);
        pid_t pid = s->pid;

        g_assert_cmpuint(s->port, >, 0);
        assert_greeting(s);
        test_server_stop(s);
        assert_gone(pid);
}

static void test_qemu_nbd(void) {
        char *dir = test_scratch_subdir("img"), *img = test_make_image(dir, "a.img", 1024 * 1024);
        TestServer *s = test_qemu_nbd_start(img, "--export-name=a", NULL);
        pid_t pid = s->pid;

        assert_greeting(s);
        /* --persistent: a second client after the first left. */
        assert_greeting(s);
        test_server_stop(s);
        assert_gone(pid);
        g_free(img);
        g_free(dir);
}

static void test_nbd_server(void) {
        char *dir = test_scratch_subdir("img"), *img = test_make_image(dir, "a.img", 1024 * 1024);
        char *sections = g_strdup_printf("[a]\nexportname = %s\n", img);
        TestServer *s = test_nbd_server_start(sections);
        pid_t pid = s->pid;

        g_assert_cmpint(s->guard, >, 0);
        assert_greeting(s);
        assert_greeting(s);
        test_server_stop(s);
        assert_gone(pid);
        g_free(sections);
        g_free(img);
        g_free(dir);
}

/* A test process that dies without cleaning up takes its servers along:
 * PR_SET_PDEATHSIG for direct children, the guard for nbd-server. */
static void test_crash_cleanup(void) {
        char *dir = test_scratch_subdir("img"), *img = test_make_image(dir, "a.img", 1024 * 1024);
        char *sections = g_strdup_printf("[a]\nexportname = %s\n", img);
        int p[2], status;
        pid_t child, pids[2];

        g_assert_cmpint(pipe(p), ==, 0);
        child = fork();
        g_assert_cmpint(child, >=, 0);
        if (child == 0) {
                TestServer *a = test_nbdkit_start("memory", "size=1M", NULL);
                TestServer *b = test_nbd_server_start(sections);
                pid_t out[2] = { a->pid, b->pid };

                (void) !write(p[1], out, sizeof(out));
                _exit(0);       /* no stop, no cleanup */
        }
        close(p[1]);
        g_assert_cmpint(read(p[0], pids, sizeof(pids)), ==, sizeof(pids));
        close(p[0]);
        g_assert_cmpint(waitpid(child, &status, 0), ==, child);

        for (unsigned i = 0; i < G_N_ELEMENTS(pids); i++) {
                gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

                /* The nbd-server daemon may be reparented to us (we are a
                 * subreaper once nbd-server ran): reap it if so. */
                while (kill(pids[i], 0) == 0) {
                        (void) waitpid(pids[i], &status, WNOHANG);
                        if (g_get_monotonic_time() > deadline)
                                g_error("server %d outlived its test process", (int) pids[i]);
                        g_usleep(10 * 1000);
                }
        }
        g_free(sections);
        g_free(img);
        g_free(dir);
}

static void test_pki(void) {
        TestPki *pki = test_pki_new();
        const char *files[] = {
                pki->ca_cert, pki->client_cert, pki->client_key, pki->other_ca_cert,
                pki->psk_file, pki->wrong_psk_file, pki->unknown_user_psk_file,
        };
        char *text = NULL, *server_cert;

        for (size_t i = 0; i < G_N_ELEMENTS(files); i++)
                g_assert_true(g_file_test(files[i], G_FILE_TEST_IS_REGULAR));
        server_cert = g_build_filename(pki->server_dir, "server-cert.pem", NULL);
        g_assert_true(g_file_test(server_cert, G_FILE_TEST_IS_REGULAR));

        g_assert_true(g_file_get_contents(pki->psk_file, &text, NULL, NULL));
        g_assert_true(g_str_has_prefix(text, "nbdlink:"));
        g_free(text);
        g_free(server_cert);
        test_pki_free(pki);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        test_log_server_versions();

        g_test_add_func("/servers/nbdkit", test_nbdkit);
        g_test_add_func("/servers/qemu-nbd", test_qemu_nbd);
        g_test_add_func("/servers/nbd-server", test_nbd_server);
        g_test_add_func("/servers/crash-cleanup", test_crash_cleanup);
        g_test_add_func("/servers/pki", test_pki);

        r = g_test_run();
        test_servers_cleanup();
        return r;
}
