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
#include "cli-run.h"
#include "servers.h"

static TestServer *nbdkit;

static const char *example_path(void) {
        static char *path = NULL;

        if (!path)
                path = g_build_filename(builddir(), "tests", "examples", "nbd-file-manager", NULL);
        return path;
}

/* nbd-file-manager with the arguments, on the private bus that the
 * environment names. */
#define run_example(...) cli_run(example_path(), FALSE, (const char *const[]) { __VA_ARGS__, NULL })

static void test_list_exports(void) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);
        CliResult r = run_example(host);

        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.err, ==, "");
        g_assert_cmpstr(r.out, ==,
                        "export photos: holiday pictures\n"
                        "export music: holiday pictures\n");
        cli_result_clear(&r);
}

static void test_list_exports_refused(void) {
        CliResult r = run_example("127.0.0.1:1");

        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: list exports of 127.0.0.1:1: "));
        g_assert_true(g_str_has_suffix(r.err, " (org.nbdlink.NBD1.Error.ConnectionRefused)\n"));
        cli_result_clear(&r);
}

/* Without nbd.ko the attach fails; the example reports it and watched the
 * device object come and go meanwhile. */
static void test_attach_without_nbd(void) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);
        CliResult r;

        if (nbd_module_loaded()) {
                g_test_skip("this kernel has nbd: the vm suite covers attaching");
                return;
        }
        r = run_example(host, "photos");
        g_assert_cmpint(r.status, ==, 1);
        g_assert_true(g_str_has_prefix(r.out, "export photos: holiday pictures\n"));
        g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: attach 127.0.0.1:"));
        g_assert_true(g_str_has_suffix(r.err, " (org.nbdlink.NBD1.Error.NoSuchDevice)\n"));
        cli_result_clear(&r);
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
