/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GDBus example (tests/examples/nbd-file-manager) against the real
 * nbdlinkd on the private bus, with nbdkit on loopback: its export list,
 * and its error report when attaching cannot work on this kernel. The
 * attach, watch and detach it exists for run in the vm suite. */

#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "device-name.h"
#include "device-node.h"
#include "options.h"

/* After nbdlink headers: they bring GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "servers.h"

static TestServer *nbdkit;

typedef struct Result {
        int status;
        char *out;
        char *err;
} Result;

static Result run_example(const char *first, ...) G_GNUC_NULL_TERMINATED;
static Result run_example(const char *first, ...) {
        g_autofree char *exe = g_build_filename(builddir(), "tests", "examples", "nbd-file-manager", NULL);
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        Result r = {};
        int wait_status;
        va_list ap;

        g_ptr_array_add(argv, exe);
        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *))
                g_ptr_array_add(argv, (char *) a);
        va_end(ap);
        g_ptr_array_add(argv, NULL);

        if (!g_spawn_sync(NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, child_setup, NULL,
                          &r.out, &r.err, &wait_status, &error))
                g_error("spawn %s: %s", exe, error->message);
        g_assert_true(WIFEXITED(wait_status));
        r.status = WEXITSTATUS(wait_status);
        g_test_message("nbd-file-manager exited %d; stdout: %s; stderr: %s", r.status, r.out, r.err);
        return r;
}

static void result_clear(Result *r) {
        g_clear_pointer(&r->out, g_free);
        g_clear_pointer(&r->err, g_free);
}

static void test_list_exports(void) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);
        Result r = run_example(host, NULL);

        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.err, ==, "");
        g_assert_cmpstr(r.out, ==,
                        "export photos: holiday pictures\n"
                        "export music: holiday pictures\n");
        result_clear(&r);
}

static void test_list_exports_refused(void) {
        Result r = run_example("127.0.0.1:1", NULL);

        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: list exports of 127.0.0.1:1: "));
        g_assert_true(g_str_has_suffix(r.err, " (org.nbdlink.NBD1.Error.ConnectionRefused)\n"));
        result_clear(&r);
}

/* Without nbd.ko the attach fails; the example reports it and watched the
 * device object come and go meanwhile. */
static void test_attach_without_nbd(void) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);
        Result r;

        if (nbd_module_loaded()) {
                g_test_skip("this kernel has nbd: the vm suite covers attaching");
                return;
        }
        r = run_example(host, "photos", NULL);
        g_assert_cmpint(r.status, ==, 1);
        g_assert_true(g_str_has_prefix(r.out, "export photos: holiday pictures\n"));
        g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: attach 127.0.0.1:"));
        g_assert_true(g_str_has_suffix(r.err, " (org.nbdlink.NBD1.Error.NoSuchDevice)\n"));
        result_clear(&r);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/example/file-manager/list-exports", test_list_exports);
        g_test_add_func("/example/file-manager/list-exports-refused", test_list_exports_refused);
        g_test_add_func("/example/file-manager/attach-without-nbd", test_attach_without_nbd);

        start_all();
        nbdkit = test_nbdkit_start("--filter=exportname", "memory", "size=1M",
                                   "exportname=photos", "exportname=music", "exportname-list=explicit",
                                   "exportdesc=fixed:holiday pictures", NULL);
        r = g_test_run();
        test_server_stop(nbdkit);
        test_servers_cleanup();
        stop_all();
        return r;
}
