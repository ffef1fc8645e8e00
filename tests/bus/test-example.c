/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The GDBus example (tests/examples/nbd-file-manager) against the real
 * nbdlinkd on the private bus, with nbdkit on loopback: its export list,
 * and its error reports when attaching cannot work here, in both its
 * modes. The attach, watch and detach it exists for run in the vm suite;
 * --open's mount through udisks in the system tier. */

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

/* --open: what the daemon refuses before anything is attached comes back
 * as its error, and nothing is printed on stdout. */
static void assert_open_refused(const char *uri, const char *error_name, const char *message) {
        g_autofree char *prefix = g_strdup_printf("nbd-file-manager: attach %s: ", uri);
        g_autofree char *suffix = g_strdup_printf(" (%s)\n", error_name);
        CliResult r = run_example("--open", uri, "--no-interaction");

        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_true(g_str_has_prefix(r.err, prefix));
        g_assert_true(g_str_has_suffix(r.err, suffix));
        g_assert_nonnull(strstr(r.err, message));
        cli_result_clear(&r);
}

static void test_open_bad_uri(void) {
        /* nbdlink's own HOST:PORT is not a URI */
        assert_open_refused("127.0.0.1:10809", "org.nbdlink.NBD1.Error.InvalidArgument", "not an NBD URI");
        assert_open_refused("nbd://[::1/photos", "org.nbdlink.NBD1.Error.InvalidArgument", "uri: ");
        assert_open_refused("nbds://127.0.0.1/photos?tls-psk-file=/etc/shadow",
                            "org.nbdlink.NBD1.Error.InvalidArgument", "tls-psk-file");
}

/* A good URI gets as far as this kernel lets it: without nbd.ko the
 * attach fails, and there is nothing to detach. */
static void test_open_without_nbd(void) {
        g_autofree char *uri = g_strdup_printf("nbd://127.0.0.1:%u/photos", nbdkit->port);

        if (nbd_module_loaded()) {
                g_test_skip("this kernel has nbd: the system tier covers --open");
                return;
        }
        assert_open_refused(uri, "org.nbdlink.NBD1.Error.NoSuchDevice", "nbd kernel module is not loaded");
}

/* A caller polkit does not allow (nobody, on a bus without polkitd) gets
 * the daemon's NotAuthorized, not a hang. */
static void test_open_not_authorized(void) {
        g_autofree char *uri = g_strdup_printf("nbd://127.0.0.1:%u/photos", nbdkit->port);
        CliResult r;

        if (getuid() != 0) {
                g_test_skip("needs root to switch to another uid");
                return;
        }
        r = cli_run(example_path(), TRUE, (const char *const[]) { "--open", uri, "--no-interaction", NULL });
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: attach nbd://127.0.0.1:"));
        g_assert_true(g_str_has_suffix(r.err, " (org.nbdlink.NBD1.Error.NotAuthorized)\n"));
        cli_result_clear(&r);
}

/* --open takes no HOST or EXPORT and is not --wait-disconnect: a usage
 * error, status 2, before the bus is touched. */
static void test_open_usage(void) {
        const char *const *cases[] = {
                (const char *const[]) { "--open", "nbd://127.0.0.1/photos", "127.0.0.1", NULL },
                (const char *const[]) { "--open", "nbd://127.0.0.1/photos", "--wait-disconnect", NULL },
                (const char *const[]) { "--open", NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                CliResult r = cli_run(example_path(), FALSE, cases[i]);

                g_assert_cmpint(r.status, ==, 2);
                g_assert_cmpstr(r.out, ==, "");
                g_assert_true(g_str_has_prefix(r.err, "nbd-file-manager: "));
                cli_result_clear(&r);
        }
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/example/file-manager/list-exports", test_list_exports);
        g_test_add_func("/example/file-manager/list-exports-refused", test_list_exports_refused);
        g_test_add_func("/example/file-manager/attach-without-nbd", test_attach_without_nbd);
        g_test_add_func("/example/file-manager/open-bad-uri", test_open_bad_uri);
        g_test_add_func("/example/file-manager/open-without-nbd", test_open_without_nbd);
        g_test_add_func("/example/file-manager/open-not-authorized", test_open_not_authorized);
        g_test_add_func("/example/file-manager/open-usage", test_open_usage);

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
