/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The nbdlink binary's command line, run as a subprocess without a daemon:
 * --help and --version, usage errors (exit 2, message and hint),
 * failures that happen before the bus is reached (exit 1), and arguments
 * quoted back escaped. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "cli-run.h"

/* nbdlink with the arguments. main() points the system bus at an address
 * that does not exist, so nothing can reach a real daemon. */
#define run(...) cli_run(cli_nbdlink_path(), FALSE, (const char *const[]) { __VA_ARGS__, NULL })

static void assert_usage(CliResult r, const char *verb, const char *message) {
        g_autofree char *expected = g_strdup_printf("nbdlink: %s\nTry 'nbdlink %s%s--help' for more information.\n",
                                                    message, verb ?: "", verb ? " " : "");
        g_assert_cmpint(r.status, ==, 2);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_cmpstr(r.err, ==, expected);
        cli_result_clear(&r);
}

static void assert_failed(CliResult r, const char *message) {
        cli_assert_failed(&r, message, "");
        cli_result_clear(&r);
}

static void test_version(void) {
        CliResult r = run("--version");

        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "nbdlink "));
        g_assert_true(g_str_has_suffix(r.out, "\n"));
        g_assert_cmpstr(r.err, ==, "");
        cli_result_clear(&r);

        r = run("-V");
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "nbdlink "));
        cli_result_clear(&r);
}

static void test_help(void) {
        static const char *const verbs[] = { "attach", "detach", "list", "exports", "info", "monitor" };
        CliResult r = run("--help");

        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "Usage: nbdlink [OPTIONS] COMMAND"));
        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++)
                g_assert_nonnull(strstr(r.out, verbs[i]));
        g_assert_cmpstr(r.err, ==, "");
        cli_result_clear(&r);

        for (size_t i = 0; i < G_N_ELEMENTS(verbs); i++) {
                g_autofree char *prefix = g_strdup_printf("Usage: nbdlink %s ", verbs[i]);

                r = run(verbs[i], "--help");
                g_assert_cmpint(r.status, ==, 0);
                g_assert_true(g_str_has_prefix(r.out, prefix));
                g_assert_nonnull(strstr(r.out, "--no-ask-password"));
                g_assert_cmpstr(r.err, ==, "");
                cli_result_clear(&r);

                /* -h, and --help after other arguments, too; nothing is contacted. */
                r = run(verbs[i], "nbd://h/x", "-h");
                g_assert_cmpint(r.status, ==, 0);
                g_assert_true(g_str_has_prefix(r.out, prefix));
                cli_result_clear(&r);
        }

        r = run("attach", "--help");
        g_assert_nonnull(strstr(r.out, "--read-only"));
        g_assert_nonnull(strstr(r.out, "--psk-user"));
        cli_result_clear(&r);
}

static void test_usage_errors(void) {
        assert_usage(run(NULL), NULL, "missing command");
        assert_usage(run("frobnicate"), NULL, "unknown command 'frobnicate'");
        assert_usage(run("--bogus"), NULL, "invalid option '--bogus'");
        assert_usage(run("-x", "list"), NULL, "invalid option '-x'");

        assert_usage(run("attach"), "attach", "missing TARGET");
        assert_usage(run("attach", "--bogus", "h"), "attach", "invalid option '--bogus'");
        assert_usage(run("attach", "-z", "h"), "attach", "invalid option '-z'");
        assert_usage(run("attach", "h", "--timeout"), "attach", "option '--timeout' needs an argument");
        assert_usage(run("attach", "h", "-t"), "attach", "option '-t' needs an argument");
        assert_usage(run("attach", "--timeout", "0", "h"), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '0'");
        assert_usage(run("attach", "--timeout=1x", "h"), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '1x'");
        assert_usage(run("attach", "--timeout", "3601", "h"), "attach",
                     "--timeout wants a number of seconds from 1 to 3600, not '3601'");
        assert_usage(run("attach", "--connections", "17", "h"), "attach",
                     "--connections wants a number from 1 to 16, not '17'");
        assert_usage(run("attach", "--connections", "0", "h"), "attach",
                     "--connections wants a number from 1 to 16, not '0'");
        assert_usage(run("attach", "-c", "99999999999", "h"), "attach",
                     "--connections wants a number from 1 to 16, not '99999999999'");
        assert_usage(run("attach", "--block-size", "1000", "h"), "attach",
                     "--block-size wants a power of two from 512 to 4096, not '1000'");
        /* The kernel takes block sizes up to the page size only. */
        assert_usage(run("attach", "--block-size", "8192", "h"), "attach",
                     "--block-size wants a power of two from 512 to 4096, not '8192'");
        assert_usage(run("attach", "--device", "sda", "h"), "attach",
                     "--device wants /dev/nbdN or nbdN, not 'sda'");
        assert_usage(run("attach", "--device", "/dev/nbd12345", "h"), "attach",
                     "--device wants /dev/nbdN or nbdN, not '/dev/nbd12345'");
        assert_usage(run("attach", "--tls=maybe", "h"), "attach",
                     "--tls wants off, on or require, not 'maybe'");
        assert_usage(run("attach", "h", "e", "extra"), "attach", "unexpected argument 'extra'");
        assert_usage(run("attach", "nbd://h/x", "y"), "attach",
                     "the export is named twice, in the URI and as 'y'");
        assert_usage(run("attach", "http://h/x"), "attach",
                     "uri: unknown scheme 'http' (expected nbd, nbds, nbd+unix or nbds+unix)");
        assert_usage(run("attach", "nbd://h:65536/x"), "attach",
                     "uri: port '65536' is out of range (1-65535)");
        assert_usage(run("attach", "h", "\xff"), "attach", "export name is not valid UTF-8");
        assert_usage(run("attach", "--cert", "c.pem", "h"), "attach", "--cert and --key go together");
        assert_usage(run("attach", "--psk-user", "u", "h"), "attach",
                     "a PSK user name needs a PSK file (--psk FILE)");
        assert_usage(run("attach", "--ca", "ca.pem", "--psk", "k", "h"), "attach",
                     "choose X.509 certificates or a PSK, not both");
        assert_usage(run("attach", "--tls=off", "nbds://h/x"), "attach",
                     "nbds:// URIs require TLS; --tls=off contradicts it");
        assert_usage(run("attach", "--tls=off", "--ca", "ca.pem", "h"), "attach",
                     "TLS settings given with --tls=off");
        assert_usage(run("attach", "nbd://h/x?tls-type=psk"), "attach",
                     "the URI asks for tls-type=psk: give --psk FILE");
        assert_usage(run("attach", "--psk", "k", "nbd://h/x?tls-psk-file=k2"), "attach",
                     "--psk and the URI's tls-psk-file= both name a PSK file");
        assert_usage(run("attach", "--psk", "k", "--psk-user", "bob", "nbd://alice@h/x"), "attach",
                     "--psk-user and the URI's user name differ");
        assert_usage(run("attach", "--ca", "c", "nbd://h/x?tls-certificates=/d"), "attach",
                     "the URI's tls-certificates= and --ca/--cert/--key cannot be combined");

        assert_usage(run("exports"), "exports", "missing TARGET");
        assert_usage(run("exports", "h", "e"), "exports", "unexpected argument 'e'");
        assert_usage(run("exports", "--read-only", "h"), "exports", "option '--read-only' is only for attach");
        assert_usage(run("info", "--persist", "h"), "info", "option '--persist' is only for attach");
        assert_usage(run("info", "-d", "nbd0", "h"), "info", "invalid option '-d'");
        assert_usage(run("info", "nbd://h/x?bogus=1"), "info", "uri: unknown query parameter 'bogus'");

        assert_usage(run("detach"), "detach", "missing DEVICE (or --all)");
        assert_usage(run("detach", "--all", "nbd0"), "detach", "--all takes no device names");
        assert_usage(run("detach", "sda"), "detach", "'sda' is not an NBD device (/dev/nbdN or nbdN)");
        assert_usage(run("detach", "nbd0", ""), "detach", "'' is not an NBD device (/dev/nbdN or nbdN)");
        assert_usage(run("detach", "--json=1", "nbd0"), "detach", "invalid option '--json=1'");
        assert_usage(run("list", "extra"), "list", "unexpected argument 'extra'");
        assert_usage(run("list", "--all"), "list", "invalid option '--all'");
        assert_usage(run("monitor", "x"), "monitor", "unexpected argument 'x'");
}

static void test_local_failures(void) {
        g_autofree char *dir = g_dir_make_tmp("nbdlink-test-XXXXXX", NULL);
        g_autofree char *missing = g_build_filename(dir, "missing.pem", NULL);
        g_autofree char *sock = g_build_filename(dir, "no.sock", NULL);
        g_autofree char *uri = g_strdup_printf("nbd+unix:///x?socket=%s", sock);
        g_autofree char *msg = NULL;

        msg = g_strdup_printf("nbdlink: open CA certificate '%s': No such file or directory (ENOENT)\n", missing);
        assert_failed(run("attach", "--ca", missing, "nbd://h/x"), msg);
        g_free(msg);

        msg = g_strdup_printf("nbdlink: open PSK file '%s': Is a directory (EISDIR)\n", dir);
        assert_failed(run("info", "--psk", dir, "h"), msg);
        g_free(msg);

        msg = g_strdup_printf("nbdlink: connect to unix:%s: No such file or directory (ENOENT)\n", sock);
        assert_failed(run("exports", uri), msg);

        /* Everything parsed: the next step is the bus, which is not there. */
        assert_failed(run("list"), "nbdlink: connect to the system bus: ");
        assert_failed(run("--json", "detach", "--all"), "nbdlink: connect to the system bus: ");
        assert_failed(run("attach", "--no-ask-password", "-r", "nbd://[::1]:10810/x"),
                      "nbdlink: connect to the system bus: ");

        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

/* What the command line said comes back escaped (escape.h): a pasted
 * argument cannot clear or retitle the terminal it is reported on. */
static void test_hostile_arguments(void) {
        g_autofree char *dir = g_dir_make_tmp("nbdlink-test-XXXXXX", NULL);
        g_autofree char *ca = g_build_filename(dir, "ca\x1b]0;pwned\x07\n.pem", NULL);
        g_autofree char *msg = NULL;

        assert_usage(run("\x1b[2Jfrob"), NULL, "unknown command '\\x1b[2Jfrob'");
        assert_usage(run("detach", "nbd\xc2\x9b" "1"), "detach",
                     "'nbd\\u009B1' is not an NBD device (/dev/nbdN or nbdN)");
        assert_usage(run("attach", "--tls=\xe2\x80\xaeon", "h"), "attach",
                     "--tls wants off, on or require, not '\\u202Eon'");

        msg = g_strdup_printf("nbdlink: open CA certificate '%s/ca\\x1b]0;pwned\\x07\\x0a.pem': "
                              "No such file or directory (ENOENT)\n", dir);
        assert_failed(run("attach", "--ca", ca, "nbd://h/x"), msg);

        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/nbdlink-test", TRUE);
        g_test_add_func("/cli/args/version", test_version);
        g_test_add_func("/cli/args/help", test_help);
        g_test_add_func("/cli/args/usage-errors", test_usage_errors);
        g_test_add_func("/cli/args/local-failures", test_local_failures);
        g_test_add_func("/cli/args/hostile-arguments", test_hostile_arguments);
        return g_test_run();
}
