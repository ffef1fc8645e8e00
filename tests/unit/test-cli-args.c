/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The nbdlink binary's command line, run as a subprocess without a daemon:
 * --help and --version, usage errors (exit 2, message and hint), and
 * failures that happen before the bus is reached (exit 1). */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

typedef struct Result {
        int status;
        char *out;
        char *err;
} Result;

static void result_clear(Result *r) {
        g_free(r->out);
        g_free(r->err);
}

static const char *nbdlink_path(void) {
        static char *path = NULL;

        if (!path) {
                const char *root = g_getenv("NBDLINK_BUILD_ROOT");

                g_assert_nonnull(root);
                path = g_build_filename(root, "client", "nbdlink", NULL);
        }
        return path;
}

/* Runs nbdlink with the arguments (NULL-terminated) against a system bus
 * address that does not exist, so nothing can reach a real daemon. */
static Result run_va(const char *first, va_list ap) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_auto(GStrv) envp = g_get_environ();
        g_autoptr(GError) error = NULL;
        Result r = {};
        int wait_status;

        envp = g_environ_setenv(envp, "DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/nbdlink-test", TRUE);
        g_ptr_array_add(argv, (char *) nbdlink_path());
        for (const char *a = first; a; a = va_arg(ap, const char *))
                g_ptr_array_add(argv, (char *) a);
        g_ptr_array_add(argv, NULL);

        /* stdin is /dev/null (not a terminal): no polkit prompt either. */
        if (!g_spawn_sync(NULL, (char **) argv->pdata, envp, G_SPAWN_DEFAULT, NULL, NULL,
                          &r.out, &r.err, &wait_status, &error))
                g_error("spawn %s: %s", nbdlink_path(), error->message);
        g_assert_true(WIFEXITED(wait_status));
        r.status = WEXITSTATUS(wait_status);
        return r;
}

static Result run(const char *first, ...) {
        va_list ap;
        Result r;

        va_start(ap, first);
        r = run_va(first, ap);
        va_end(ap);
        return r;
}

static void assert_usage(Result r, const char *verb, const char *message) {
        g_autofree char *expected = g_strdup_printf("nbdlink: %s\nTry 'nbdlink %s%s--help' for more information.\n",
                                                    message, verb ?: "", verb ? " " : "");
        g_assert_cmpint(r.status, ==, 2);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_cmpstr(r.err, ==, expected);
        result_clear(&r);
}

static void assert_failed(Result r, const char *message) {
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        if (!g_str_has_prefix(r.err, message))
                g_error("stderr '%s' does not begin with '%s'", r.err, message);
        result_clear(&r);
}

static void test_version(void) {
        Result r = run("--version", NULL);

        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "nbdlink "));
        g_assert_true(g_str_has_suffix(r.out, "\n"));
        g_assert_cmpstr(r.err, ==, "");
        result_clear(&r);

        r = run("-V", NULL);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "nbdlink "));
        result_clear(&r);
}

static void test_help(void) {
        static const char *const verbs[] = { "attach", "detach", "list", "exports", "info", "monitor" };
        Result r = run("--help", NULL);

        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "Usage: nbdlink [OPTIONS] COMMAND"));
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                g_assert_nonnull(strstr(r.out, verbs[i]));
        g_assert_cmpstr(r.err, ==, "");
        result_clear(&r);

        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
                g_autofree char *prefix = g_strdup_printf("Usage: nbdlink %s ", verbs[i]);

                r = run(verbs[i], "--help", NULL);
                g_assert_cmpint(r.status, ==, 0);
                g_assert_true(g_str_has_prefix(r.out, prefix));
                g_assert_nonnull(strstr(r.out, "--no-ask-password"));
                g_assert_cmpstr(r.err, ==, "");
                result_clear(&r);

                /* -h, and --help after other arguments, too; nothing is contacted. */
                r = run(verbs[i], "nbd://h/x", "-h", NULL);
                g_assert_cmpint(r.status, ==, 0);
                g_assert_true(g_str_has_prefix(r.out, prefix));
                result_clear(&r);
        }

        r = run("attach", "--help", NULL);
        g_assert_nonnull(strstr(r.out, "--read-only"));
        g_assert_nonnull(strstr(r.out, "--psk-user"));
        result_clear(&r);
}

static void test_usage_errors(void) {
        assert_usage(run(NULL), NULL, "missing command");
        assert_usage(run("frobnicate", NULL), NULL, "unknown command 'frobnicate'");
        assert_usage(run("--bogus", NULL), NULL, "invalid option '--bogus'");
        assert_usage(run("-x", "list", NULL), NULL, "invalid option '-x'");

        assert_usage(run("attach", NULL), "attach", "missing TARGET");
        assert_usage(run("attach", "--bogus", "h", NULL), "attach", "invalid option '--bogus'");
        assert_usage(run("attach", "-z", "h", NULL), "attach", "invalid option '-z'");
        assert_usage(run("attach", "h", "--timeout", NULL), "attach", "option '--timeout' needs an argument");
        assert_usage(run("attach", "h", "-t", NULL), "attach", "option '-t' needs an argument");
        assert_usage(run("attach", "--timeout", "0", "h", NULL), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '0'");
        assert_usage(run("attach", "--timeout=1x", "h", NULL), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '1x'");
        assert_usage(run("attach", "--timeout", "3601", "h", NULL), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '3601'");
        assert_usage(run("attach", "--connections", "17", "h", NULL), "attach",
                     "--connections wants a number from 1 to 16, not '17'");
        assert_usage(run("attach", "--connections", "0", "h", NULL), "attach",
                     "--connections wants a number from 1 to 16, not '0'");
        assert_usage(run("attach", "-c", "99999999999", "h", NULL), "attach",
                     "--connections wants a number from 1 to 16, not '99999999999'");
        assert_usage(run("attach", "--block-size", "1000", "h", NULL), "attach",
                     "--block-size wants a power of two from 512 to 4096, not '1000'");
        /* The kernel takes block sizes up to the page size only. */
        assert_usage(run("attach", "--block-size", "8192", "h", NULL), "attach",
                     "--block-size wants a power of two from 512 to 4096, not '8192'");
        assert_usage(run("attach", "--device", "sda", "h", NULL), "attach",
                     "--device wants /dev/nbdN or nbdN, not 'sda'");
        assert_usage(run("attach", "--device", "/dev/nbd12345", "h", NULL), "attach",
                     "--device wants /dev/nbdN or nbdN, not '/dev/nbd12345'");
        assert_usage(run("attach", "--tls=maybe", "h", NULL), "attach",
                     "--tls wants off, on or require, not 'maybe'");
        assert_usage(run("attach", "h", "e", "extra", NULL), "attach", "unexpected argument 'extra'");
        assert_usage(run("attach", "nbd://h/x", "y", NULL), "attach",
                     "the export is named twice, in the URI and as 'y'");
        assert_usage(run("attach", "http://h/x", NULL), "attach",
                     "uri: unknown scheme 'http' (expected nbd, nbds, nbd+unix or nbds+unix)");
        assert_usage(run("attach", "nbd://h:65536/x", NULL), "attach",
                     "uri: port '65536' is out of range (1-65535)");
        assert_usage(run("attach", "h", "\xff", NULL), "attach", "export name is not valid UTF-8");
        assert_usage(run("attach", "--cert", "c.pem", "h", NULL), "attach", "--cert and --key go together");
        assert_usage(run("attach", "--psk-user", "u", "h", NULL), "attach",
                     "a PSK user name needs a PSK file (--psk FILE)");
        assert_usage(run("attach", "--ca", "ca.pem", "--psk", "k", "h", NULL), "attach",
                     "choose X.509 certificates or a PSK, not both");
        assert_usage(run("attach", "--tls=off", "nbds://h/x", NULL), "attach",
                     "nbds:// URIs require TLS; --tls=off contradicts it");
        assert_usage(run("attach", "--tls=off", "--ca", "ca.pem", "h", NULL), "attach",
                     "TLS settings given with --tls=off");
        assert_usage(run("attach", "nbd://h/x?tls-type=psk", NULL), "attach",
                     "the URI asks for tls-type=psk: give --psk FILE");
        assert_usage(run("attach", "--psk", "k", "nbd://h/x?tls-psk-file=k2", NULL), "attach",
                     "--psk and the URI's tls-psk-file= both name a PSK file");
        assert_usage(run("attach", "--psk", "k", "--psk-user", "bob", "nbd://alice@h/x", NULL), "attach",
                     "--psk-user and the URI's user name differ");
        assert_usage(run("attach", "--ca", "c", "nbd://h/x?tls-certificates=/d", NULL), "attach",
                     "the URI's tls-certificates= and --ca/--cert/--key cannot be combined");

        assert_usage(run("exports", NULL), "exports", "missing TARGET");
        assert_usage(run("exports", "h", "e", NULL), "exports", "unexpected argument 'e'");
        assert_usage(run("exports", "--read-only", "h", NULL), "exports", "option '--read-only' is only for attach");
        assert_usage(run("info", "--persist", "h", NULL), "info", "option '--persist' is only for attach");
        assert_usage(run("info", "-d", "nbd0", "h", NULL), "info", "invalid option '-d'");
        assert_usage(run("info", "nbd://h/x?bogus=1", NULL), "info", "uri: unknown query parameter 'bogus'");

        assert_usage(run("detach", NULL), "detach", "missing DEVICE (or --all)");
        assert_usage(run("detach", "--all", "nbd0", NULL), "detach", "--all takes no device names");
        assert_usage(run("detach", "sda", NULL), "detach", "'sda' is not an NBD device (/dev/nbdN or nbdN)");
        assert_usage(run("detach", "nbd0", "", NULL), "detach", "'' is not an NBD device (/dev/nbdN or nbdN)");
        assert_usage(run("detach", "--json=1", "nbd0", NULL), "detach", "invalid option '--json=1'");
        assert_usage(run("list", "extra", NULL), "list", "unexpected argument 'extra'");
        assert_usage(run("list", "--all", NULL), "list", "invalid option '--all'");
        assert_usage(run("monitor", "x", NULL), "monitor", "unexpected argument 'x'");
}

static void test_local_failures(void) {
        g_autofree char *dir = g_dir_make_tmp("nbdlink-test-XXXXXX", NULL);
        g_autofree char *missing = g_build_filename(dir, "missing.pem", NULL);
        g_autofree char *sock = g_build_filename(dir, "no.sock", NULL);
        g_autofree char *uri = g_strdup_printf("nbd+unix:///x?socket=%s", sock);
        g_autofree char *msg = NULL;

        msg = g_strdup_printf("nbdlink: open CA certificate '%s': No such file or directory (ENOENT)\n", missing);
        assert_failed(run("attach", "--ca", missing, "nbd://h/x", NULL), msg);
        g_free(msg);

        msg = g_strdup_printf("nbdlink: open PSK file '%s': Is a directory (EISDIR)\n", dir);
        assert_failed(run("info", "--psk", dir, "h", NULL), msg);
        g_free(msg);

        msg = g_strdup_printf("nbdlink: connect to unix:%s: No such file or directory (ENOENT)\n", sock);
        assert_failed(run("exports", uri, NULL), msg);

        /* Everything parsed: the next step is the bus, which is not there. */
        assert_failed(run("list", NULL), "nbdlink: connect to the system bus: ");
        assert_failed(run("--json", "detach", "--all", NULL), "nbdlink: connect to the system bus: ");
        assert_failed(run("attach", "--no-ask-password", "-r", "nbd://[::1]:10810/x", NULL),
                      "nbdlink: connect to the system bus: ");

        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/args/version", test_version);
        g_test_add_func("/cli/args/help", test_help);
        g_test_add_func("/cli/args/usage-errors", test_usage_errors);
        g_test_add_func("/cli/args/local-failures", test_local_failures);
        return g_test_run();
}
