/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The nbdlink command against the real nbdlinkd on the private bus, with
 * nbdkit on loopback as the server: every command, its table and its JSON,
 * TLS credentials and unix sockets passed as descriptors, a server's text
 * that would take over a terminal, the error format and exit statuses of
 * daemon and server errors, and monitor. */

#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "device-name.h"
#include "device-node.h"
#include "options.h"

/* After nbdlink headers: they bring GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "cli-run.h"
#include "loopback.h"
#include "pki.h"
#include "servers.h"

#include <glib/gstdio.h>

#define ERROR_NAME(n) "(org.nbdlink.NBD1.Error." n ")\n"

static TestPki *pki;
static TestServer *nbdkit_plain, *nbdkit_psk, *nbdkit_x509, *nbdkit_hostile;

/* The environment carries DBUS_SYSTEM_BUS_ADDRESS of the private bus. */
#define run(...) cli_run(cli_nbdlink_path(), FALSE, (const char *const[]) { __VA_ARGS__, NULL })
#define run_as_nobody(...) cli_run(cli_nbdlink_path(), TRUE, (const char *const[]) { __VA_ARGS__, NULL })

static void assert_ok(CliResult *r, const char *expected_out) {
        g_assert_cmpint(r->status, ==, 0);
        g_assert_cmpstr(r->err, ==, "");
        if (expected_out)
                g_assert_cmpstr(r->out, ==, expected_out);
}

/* Whether s parses as one JSON document (python3 comes with meson). */
static void assert_valid_json(const char *s) {
        const char *argv[] = { "python3", "-c", "import json, sys; json.load(sys.stdin)", NULL };
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;

        p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, s, NULL, NULL, NULL, &error));
        g_assert_no_error(error);
        if (!g_subprocess_get_successful(p))
                g_error("not valid JSON: %s", s);
}

static char *url(const TestServer *s, const char *scheme, const char *export_name) {
        return g_strdup_printf("%s://127.0.0.1:%u/%s", scheme, s->port, export_name);
}

static TestServer *get_plain(void) {
        if (!nbdkit_plain)
                nbdkit_plain = test_nbdkit_start("--filter=exportname", "memory", "size=1M",
                                                 "exportname=alpha", "exportname=beta \"quoted\"",
                                                 "exportname-list=explicit", "exportname-strict=true",
                                                 "exportdesc=fixed:test disk", NULL);
        return nbdkit_plain;
}

/* ---- tests ---------------------------------------------------------------- */

static void test_list_empty(void) {
        CliResult r = run("list");

        assert_ok(&r, "DEVICE  HOST  EXPORT  SIZE  RO  TLS  STATE  OWNER\n");
        cli_result_clear(&r);

        r = run("--json", "list");
        assert_ok(&r, "[]\n");
        cli_result_clear(&r);

        r = run("list", "--json");
        assert_ok(&r, "[]\n");
        cli_result_clear(&r);

        /* Nothing of ours is attached: nothing to do, and no error. */
        r = run("detach", "--all");
        assert_ok(&r, "");
        cli_result_clear(&r);
}

static void test_exports(void) {
        TestServer *s = get_plain();
        g_autofree char *hostport = g_strdup_printf("127.0.0.1:%u", s->port);
        g_autofree char *u = url(s, "nbd", "");
        CliResult r = run("exports", hostport);

        assert_ok(&r,
                  "EXPORT         DESCRIPTION\n"
                  "alpha          test disk\n"
                  "beta \"quoted\"  test disk\n");
        cli_result_clear(&r);

        r = run("--json", "exports", u);
        assert_ok(&r,
                  "[\n"
                  "  {\n"
                  "    \"name\": \"alpha\",\n"
                  "    \"description\": \"test disk\"\n"
                  "  },\n"
                  "  {\n"
                  "    \"name\": \"beta \\\"quoted\\\"\",\n"
                  "    \"description\": \"test disk\"\n"
                  "  }\n"
                  "]\n");
        assert_valid_json(r.out);
        cli_result_clear(&r);
}

static void test_info(void) {
        TestServer *s = get_plain();
        g_autofree char *u = url(s, "nbd", "alpha");
        g_autofree char *hostport = g_strdup_printf("127.0.0.1:%u", s->port);
        CliResult r = run("--json", "info", u);

        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.err, ==, "");
        assert_valid_json(r.out);
        g_assert_true(g_str_has_prefix(r.out, "{\n  \"export\": \"alpha\",\n"));
        g_assert_nonnull(strstr(r.out, "\n  \"size\": 1048576,\n"));
        g_assert_nonnull(strstr(r.out, "\n  \"description\": \"test disk\""));
        g_assert_nonnull(strstr(r.out, "\n  \"tls\": false"));
        cli_result_clear(&r);

        /* HOST:PORT with the export as its own argument; percent-encoding. */
        r = run("info", hostport, "beta \"quoted\"");
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "PROPERTY"));
        g_assert_nonnull(strstr(r.out, "\nexport                beta \"quoted\"\n"));
        g_assert_nonnull(strstr(r.out, "\nsize                  1 MiB (1048576 bytes)\n"));
        cli_result_clear(&r);

        g_free(u);
        u = url(s, "nbd", "beta%20%22quoted%22");
        r = run("--json", "info", u);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "{\n  \"export\": \"beta \\\"quoted\\\"\",\n"));
        cli_result_clear(&r);
}

/* nbdinfo's --size, --can and --is: the answer alone, in the exit status
 * for the questions (0 yes, 2 no, 1 error), usage errors among the errors. */
static void test_info_questions(void) {
        TestServer *s = get_plain();
        g_autofree char *u = url(s, "nbd", "alpha");
        g_autofree char *missing = url(s, "nbd", "gamma");
        g_autofree char *expected_uri = NULL;
        CliResult r = run("info", "--size", u);

        assert_ok(&r, "1048576\n");
        cli_result_clear(&r);

        /* nbdkit's memory plugin writes, flushes and trims; it is neither
         * read-only nor rotational, and this server has no TLS. */
        static const char *const yes[][2] = {
                { "--can", "connect" }, { "--can", "read" }, { "--can", "write" }, { "--can", "flush" },
                { "--can", "fua" }, { "--can", "trim" }, { "--can", "zero" }, { "--can", "multi-conn" },
        };
        static const char *const no[][2] = {
                { "--is", "read-only" }, { "--is", "rotational" }, { "--is", "tls" },
        };
        for (size_t i = 0; i < G_N_ELEMENTS(yes); i++) {
                r = run("info", yes[i][0], yes[i][1], u);
                assert_ok(&r, "");
                cli_result_clear(&r);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(no); i++) {
                r = run("info", no[i][0], no[i][1], u);
                g_assert_cmpint(r.status, ==, 2);
                g_assert_cmpstr(r.out, ==, "");
                g_assert_cmpstr(r.err, ==, "");
                cli_result_clear(&r);
        }

        /* Errors are 1, never the 2 of "no": the server's, and usage. */
        r = run("info", "--can", "write", missing);
        cli_assert_failed(&r, "nbdlink: probe 127.0.0.1:", ERROR_NAME("ExportNotFound"));
        cli_result_clear(&r);
        r = run("info", "--can", "bogus", u);
        cli_assert_failed(&r, "nbdlink: --can wants one of cache, connect, ", "for more information.\n");
        cli_result_clear(&r);
        r = run("info", "--can", "df", u);
        cli_assert_failed(&r, "nbdlink: --can df: ", "for more information.\n");
        cli_result_clear(&r);
        r = run("info", "--is=tls");
        cli_assert_failed(&r, "nbdlink: missing TARGET\n", "for more information.\n");
        cli_result_clear(&r);

        /* Without a question a usage error is 2, as everywhere. */
        r = run("--json", "info", "--size", u);
        g_assert_cmpint(r.status, ==, 2);
        cli_result_clear(&r);

        /* --json names the flags and the export's URI. */
        r = run("--json", "info", u);
        g_assert_cmpint(r.status, ==, 0);
        assert_valid_json(r.out);
        g_assert_nonnull(strstr(r.out, "\n  \"flag_names\": [\n    \"has-flags\",\n    \"send-flush\",\n"));
        expected_uri = g_strdup_printf("\n  \"uri\": \"nbd://127.0.0.1:%u/alpha\"\n}\n", s->port);
        g_assert_true(g_str_has_suffix(r.out, expected_uri));
        cli_result_clear(&r);

        r = run("info", u);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.out, "\nflags                 0x"));
        g_assert_nonnull(strstr(r.out, " (has-flags, send-flush, "));
        cli_result_clear(&r);
}

/* A server whose export name and description would take over a terminal:
 * the daemon escapes the description's controls, but passes the name on as
 * it is (it is what a caller attaches by), so nbdlink must escape it, in
 * tables and in JSON. */
static void test_hostile_server_text(void) {
        g_autofree char *hostport = NULL, *u = NULL;
        CliResult r;

        if (!nbdkit_hostile)
                nbdkit_hostile = test_nbdkit_start("--filter=exportname", "memory", "size=1M",
                                                   "exportname=evil\xe2\x80\xaegpj.exe", "exportname-list=explicit",
                                                   "exportdesc=fixed:\xc2\x9b" "2Jwiped\x1b[8m", NULL);
        hostport = g_strdup_printf("127.0.0.1:%u", nbdkit_hostile->port);
        u = url(nbdkit_hostile, "nbd", "evil%E2%80%AEgpj.exe");

        r = run("exports", hostport);
        assert_ok(&r,
                  "EXPORT             DESCRIPTION\n"
                  "evil\\u202Egpj.exe  \\u009B2Jwiped\\x1b[8m\n");
        cli_result_clear(&r);

        r = run("--json", "exports", hostport);
        assert_ok(&r,
                  "[\n"
                  "  {\n"
                  "    \"name\": \"evil\\u202egpj.exe\",\n"
                  "    \"description\": \"\\\\u009B2Jwiped\\\\x1b[8m\"\n"
                  "  }\n"
                  "]\n");
        assert_valid_json(r.out);
        cli_result_clear(&r);

        r = run("info", u);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_cmpstr(r.err, ==, "");
        g_assert_nonnull(strstr(r.out, "\nexport                evil\\u202Egpj.exe\n"));
        g_assert_nonnull(strstr(r.out, "\ndescription           \\u009B2Jwiped\\x1b[8m\n"));
        cli_result_clear(&r);
}

static void test_unix_socket(void) {
        g_autofree char *dir = test_scratch_subdir("unix");
        g_autofree char *sock = g_build_filename(dir, "nbd.sock", NULL);
        g_autofree char *uri = g_strdup_printf("nbd+unix:///?socket=%s", sock);
        g_autofree char *short_form = g_strdup_printf("unix:%s", sock);
        const char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", sock, "memory", "size=3M", NULL };
        g_autoptr(GError) error = NULL;
        GPid pid;
        CliResult r;

        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                    child_setup, NULL, &pid, &error));
        g_assert_no_error(error);
        for (int i = 0; i < 500 && !g_file_test(sock, G_FILE_TEST_EXISTS); i++)
                g_usleep(10000);
        g_assert_true(g_file_test(sock, G_FILE_TEST_EXISTS));

        /* nbdlink connects the socket itself and hands it over. */
        r = run("--json", "info", uri);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.out, "\n  \"size\": 3145728,\n"));
        cli_result_clear(&r);

        r = run("exports", short_form);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "EXPORT  DESCRIPTION\n"));
        cli_result_clear(&r);

        kill(pid, SIGTERM);
        (void) wait_exit(pid, 5000);
        g_spawn_close_pid(pid);

        r = run("info", uri);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: connect to unix:%s: ", sock);
                cli_assert_failed(&r, prefix, "(ECONNREFUSED)\n");
        }
        cli_result_clear(&r);
}

static void test_tls_psk(void) {
        g_autofree char *psk_opt = NULL;
        g_autofree char *u = NULL, *plain = NULL, *with_user = NULL;
        CliResult r;

        if (!nbdkit_psk) {
                psk_opt = g_strconcat("--tls-psk=", pki->psk_file, NULL);
                nbdkit_psk = test_nbdkit_start("--tls=require", psk_opt, "memory", "size=2M", NULL);
        }
        u = url(nbdkit_psk, "nbds", "");
        plain = url(nbdkit_psk, "nbd", "");
        with_user = g_strdup_printf("nbds://%s@127.0.0.1:%u/?tls-psk-file=%s", pki->psk_username,
                                    nbdkit_psk->port, pki->psk_file);

        /* The PSK file is opened by nbdlink and passed as a descriptor. */
        r = run("--json", "info", "--psk", pki->psk_file, "--psk-user", pki->psk_username, u);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.out, "\n  \"size\": 2097152,\n"));
        g_assert_nonnull(strstr(r.out, "\n  \"tls\": true"));
        cli_result_clear(&r);

        /* The same from the URI alone: user name and tls-psk-file=. */
        r = run("--json", "info", with_user);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.out, "\n  \"tls\": true"));
        cli_result_clear(&r);

        r = run("info", "--psk", pki->wrong_psk_file, "--psk-user", pki->psk_username, u);
        cli_assert_failed(&r, "nbdlink: probe 127.0.0.1:", ERROR_NAME("TLSFailed"));
        cli_result_clear(&r);

        r = run("info", plain);
        cli_assert_failed(&r, "nbdlink: probe 127.0.0.1:", ERROR_NAME("TLSRequired"));
        cli_result_clear(&r);
}

static void test_tls_x509(void) {
        g_autofree char *opt = NULL, *u = NULL, *with_dir = NULL;
        CliResult r;

        if (!nbdkit_x509) {
                opt = g_strconcat("--tls-certificates=", pki->server_dir, NULL);
                nbdkit_x509 = test_nbdkit_start("--tls=require", opt, "memory", "size=1M", NULL);
        }
        u = url(nbdkit_x509, "nbds", "");

        r = run("--json", "exports", "--ca", pki->ca_cert, u);
        g_assert_cmpint(r.status, ==, 0);
        assert_valid_json(r.out);
        cli_result_clear(&r);

        /* tls-certificates= names a directory holding ca-cert.pem. */
        with_dir = g_strdup_printf("%s?tls-certificates=%s", u, pki->server_dir);
        r = run("--json", "info", with_dir);
        g_assert_cmpint(r.status, ==, 0);
        g_assert_nonnull(strstr(r.out, "\n  \"tls\": true"));
        cli_result_clear(&r);

        r = run("info", "--ca", pki->other_ca_cert, u);
        cli_assert_failed(&r, "nbdlink: probe 127.0.0.1:", ERROR_NAME("TLSFailed"));
        cli_result_clear(&r);
}

static void test_server_errors(void) {
        TestServer *s = get_plain();
        g_autofree char *missing = url(s, "nbd", "gamma");
        g_autofree char *closed = NULL;
        CliResult r;

        r = run("info", missing);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: probe 127.0.0.1:%u export 'gamma': ", s->port);
                cli_assert_failed(&r, prefix, ERROR_NAME("ExportNotFound"));
        }
        cli_result_clear(&r);

        /* A port nobody listens on. */
        closed = g_strdup_printf("127.0.0.1:%u", loopback_free_port());
        r = run("exports", "--timeout", "5", closed);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: list exports of %s: ", closed);
                cli_assert_failed(&r, prefix, ERROR_NAME("ConnectionRefused"));
        }
        cli_result_clear(&r);
}

static void test_daemon_errors(void) {
        TestServer *s = get_plain();
        g_autofree char *u = url(s, "nbd", "alpha");
        CliResult r;

        /* Without the nbd module there is no device to attach to. */
        if (!nbd_module_loaded()) {
                g_autofree char *prefix = g_strdup_printf("nbdlink: attach 127.0.0.1:%u export 'alpha': ", s->port);

                r = run("attach", "--read-only", u);
                cli_assert_failed(&r, prefix, ERROR_NAME("NoSuchDevice"));
                cli_result_clear(&r);
        }

        r = run("detach", "nbd7", "/dev/nbd8");
        g_assert_cmpint(r.status, ==, 1);
        g_assert_cmpstr(r.out, ==, "");
        /* Both are tried, each with its own line. */
        g_assert_true(g_str_has_prefix(r.err, "nbdlink: detach nbd7: "));
        g_assert_nonnull(strstr(r.err, "\nnbdlink: detach /dev/nbd8: "));
        g_assert_nonnull(strstr(r.err, "(org.nbdlink.NBD1.Error."));
        cli_result_clear(&r);

        /* --force goes through DetachWithOptions, to the same answer for a
         * device nbdlinkd does not have. */
        r = run("detach", "--force", "nbd7");
        cli_assert_failed(&r, "nbdlink: detach nbd7: device /dev/nbd7 is not attached by nbdlinkd",
                          ERROR_NAME("NotAttached"));
        cli_result_clear(&r);

        /* Options the daemon checks: more connections than it allows are
         * a usage error before the call. */
        r = run("attach", "-c", "17", u);
        g_assert_cmpint(r.status, ==, 2);
        cli_result_clear(&r);
}

static void test_not_authorized(void) {
        TestServer *s = get_plain();
        g_autofree char *u = url(s, "nbd", "alpha");
        CliResult r;

        if (getuid() != 0) {
                g_test_skip("needs root to run nbdlink as another uid");
                return;
        }
        /* This bus has no polkit: a non-root caller is refused. */
        r = run_as_nobody("--no-ask-password", "attach", u);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: attach 127.0.0.1:%u export 'alpha': ", s->port);
                cli_assert_failed(&r, prefix, ERROR_NAME("NotAuthorized"));
        }
        cli_result_clear(&r);

        r = run_as_nobody("detach", "nbd0");
        cli_assert_failed(&r, "nbdlink: detach nbd0: ", ERROR_NAME("NotAuthorized"));
        cli_result_clear(&r);

        /* Reading the device list needs no authorization. */
        r = run_as_nobody("--json", "list");
        assert_ok(&r, "[]\n");
        cli_result_clear(&r);
}

/* A sysfs of this shape for the test hook NBDLINK_TEST_SYSFS_ROOT: nbd3
 * and nbd15 attached by another tool (a pid file; a size alone), nbd4
 * there but not connected, and a disk that is no nbd device. This host has
 * no nbd module, so the daemon has none of them. */
static char *fake_sysfs(void) {
        g_autofree char *dir = test_scratch_subdir("sysfs");
        static const char *const files[][2] = {
                { "block/nbd3/pid", "4242\n" }, { "block/nbd3/size", "2048\n" }, { "block/nbd3/ro", "1\n" },
                { "block/nbd15/size", "8\n" }, { "block/nbd15/ro", "0\n" },
                { "block/nbd4/size", "0\n" }, { "block/nbd4/ro", "0\n" },
                { "block/sda/size", "2048\n" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
                g_autofree char *path = g_build_filename(dir, files[i][0], NULL);
                g_autofree char *parent = g_path_get_dirname(path);

                g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
                g_assert_true(g_file_set_contents(path, files[i][1], -1, NULL));
        }
        return g_steal_pointer(&dir);
}

/* Devices of other tools: in list as "other", in status as connected but
 * not nbdlinkd's; --owner answers for nbdlinkd's devices only. */
static void test_other_tools_devices(void) {
        g_autofree char *root = fake_sysfs();
        CliResult r;

        g_assert_true(g_setenv("NBDLINK_TEST_SYSFS_ROOT", root, TRUE));

        r = run("list");
        assert_ok(&r,
                  "DEVICE      HOST  EXPORT  SIZE   RO   TLS  STATE  OWNER\n"
                  "/dev/nbd3   -     -       1 MiB  yes  -    other  -\n"
                  "/dev/nbd15  -     -       4 KiB  no   -    other  -\n");
        cli_result_clear(&r);

        r = run("--json", "list");
        g_assert_cmpint(r.status, ==, 0);
        assert_valid_json(r.out);
        g_assert_true(g_str_has_prefix(r.out, "[\n  {\n    \"device\": \"/dev/nbd3\",\n    \"object\": null,\n"));
        g_assert_nonnull(strstr(r.out, "\n    \"size\": 1048576,\n"));
        g_assert_nonnull(strstr(r.out, "\n    \"state\": \"other\",\n    \"owner_uid\": null,\n"
                                       "    \"owner\": null,\n    \"attached_since\": null,\n"
                                       "    \"managed\": false,\n    \"uri\": null\n  },\n"));
        cli_result_clear(&r);

        r = run("status", "nbd3");
        assert_ok(&r,
                  "Device:     /dev/nbd3\n"
                  "Connected:  yes\n"
                  "Managed:    no, attached by another tool, not nbdlinkd\n"
                  "PID:        4242\n"
                  "Size:       1 MiB (1048576 bytes)\n"
                  "Read-only:  yes\n");
        cli_result_clear(&r);

        /* A partition is answered for its device, which says so. */
        r = run("status", "/dev/nbd15p2");
        g_assert_cmpint(r.status, ==, 0);
        g_assert_true(g_str_has_prefix(r.out, "/dev/nbd15: the device of partition /dev/nbd15p2\n"
                                              "Device:     /dev/nbd15\nConnected:  yes\n"));
        cli_result_clear(&r);

        r = run("status", "--json", "nbd3p1");
        g_assert_cmpint(r.status, ==, 0);
        assert_valid_json(r.out);
        g_assert_true(g_str_has_prefix(r.out, "{\n  \"device\": \"/dev/nbd3\",\n"));
        g_assert_true(g_str_has_suffix(r.out, "\"owner_uid\": null,\n  \"owner\": null,\n"
                                              "  \"attached_since\": null,\n  \"managed\": false,\n"
                                              "  \"uri\": null,\n  \"connected\": true,\n  \"exists\": true,\n"
                                              "  \"partition\": \"nbd3p1\",\n  \"pid\": 4242\n}\n"));
        g_assert_nonnull(strstr(r.out, "\n  \"export\": null,\n"));
        g_assert_nonnull(strstr(r.out, "\n  \"size\": 1048576,\n"));
        cli_result_clear(&r);

        /* Not connected: 3, there or not. */
        r = run("status", "nbd4");
        g_assert_cmpint(r.status, ==, 3);
        g_assert_cmpstr(r.out, ==, "Device:     /dev/nbd4\nConnected:  no\n");
        g_assert_cmpstr(r.err, ==, "");
        cli_result_clear(&r);
        r = run("status", "--json", "/dev/nbd9");
        g_assert_cmpint(r.status, ==, 3);
        assert_valid_json(r.out);
        g_assert_nonnull(strstr(r.out, "\"state\": null,"));
        g_assert_nonnull(strstr(r.out, "\"connected\": false,\n  \"exists\": false,"));
        cli_result_clear(&r);

        /* --owner: another tool's device has no owner nbdlinkd knows;
         * nothing on stdout, whoever asks (polkitd is not root). */
        r = run("status", "--owner", "/dev/nbd3");
        g_assert_cmpint(r.status, ==, 3);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_cmpstr(r.err, ==, "nbdlink: /dev/nbd3 is not attached by nbdlinkd\n");
        cli_result_clear(&r);
        r = run("status", "--owner", "nbd0p1");
        g_assert_cmpint(r.status, ==, 3);
        g_assert_cmpstr(r.out, ==, "");
        g_assert_cmpstr(r.err, ==, "nbdlink: /dev/nbd0 is not attached by nbdlinkd\n");
        cli_result_clear(&r);
        if (getuid() == 0) {
                r = run_as_nobody("status", "--owner", "nbd3");
                g_assert_cmpint(r.status, ==, 3);
                g_assert_cmpstr(r.out, ==, "");
                cli_result_clear(&r);
        }

        /* What is no nbd device is a usage error. */
        static const char *const bad[] = { "sda", "/dev/sda1", "nbd0p0", "nbd0p", "/dev/nbd01", "nbdp1", "" };
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
                r = run("status", "--owner", bad[i]);
                g_assert_cmpint(r.status, ==, 2);
                g_assert_cmpstr(r.out, ==, "");
                cli_result_clear(&r);
        }
        r = run("status", "--owner", "--json", "nbd3");
        g_assert_cmpint(r.status, ==, 2);
        cli_result_clear(&r);

        g_unsetenv("NBDLINK_TEST_SYSFS_ROOT");
}

/* Reads lines from a pipe until one contains needle or the deadline passes. */
static bool wait_for_line(GDataInputStream *in, const char *needle, GString *seen) {
        for (;;) {
                g_autoptr(GError) error = NULL;
                g_autofree char *line = g_data_input_stream_read_line_utf8(in, NULL, NULL, &error);

                if (!line)
                        return false;
                g_string_append_printf(seen, "%s\n", line);
                if (strstr(line, needle))
                        return true;
        }
}

/* Last: it stops the daemon, which monitor reports. */
static void test_monitor(void) {
        const char *json_argv[] = { cli_nbdlink_path(), "--json", "monitor", NULL };
        const char *text_argv[] = { cli_nbdlink_path(), "monitor", NULL };
        g_autoptr(GSubprocess) mj = NULL, mt = NULL;
        g_autoptr(GDataInputStream) mj_out = NULL, mj_err = NULL, mt_out = NULL, mt_err = NULL;
        g_autoptr(GString) seen = g_string_new(NULL);
        g_autoptr(GError) error = NULL;
        int status;

        mj = g_subprocess_newv(json_argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
                               G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
        g_assert_no_error(error);
        mt = g_subprocess_newv(text_argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE |
                               G_SUBPROCESS_FLAGS_STDIN_PIPE, &error);
        g_assert_no_error(error);
        mj_out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(mj));
        mj_err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(mj));
        mt_out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(mt));
        mt_err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(mt));

        /* The banner on stderr says the subscription is in place. */
        g_assert_true(wait_for_line(mj_err, "Monitoring", seen));
        g_assert_true(wait_for_line(mt_err, "Monitoring", seen));

        g_assert_cmpint(kill(fx.daemon_pid, SIGTERM), ==, 0);
        status = wait_exit(fx.daemon_pid, 10000);
        fx.daemon_pid = 0;
        g_assert_true(WIFEXITED(status));

        /* Each line has the time it arrived: microseconds since the epoch
         * in JSON, local ISO 8601 time to the millisecond first on a
         * text line. */
        g_string_truncate(seen, 0);
        g_assert_true(wait_for_line(mj_out, "daemon-stopped", seen));
        {
                g_autoptr(GMatchInfo) mi = NULL;
                g_autofree char *usec = NULL;
                gint64 t, now = g_get_real_time();

                g_assert_true(g_regex_match_simple("^\\{\"event\":\"daemon-stopped\",\"timestamp\":[0-9]+\\}\n$",
                                                   seen->str, 0, 0));
                usec = g_strndup(seen->str + strlen("{\"event\":\"daemon-stopped\",\"timestamp\":"), 16);
                t = g_ascii_strtoll(usec, NULL, 10);
                g_assert_cmpint(t, <=, now);
                g_assert_cmpint(t, >, now - 60 * G_USEC_PER_SEC);
        }
        g_string_truncate(seen, 0);
        g_assert_true(wait_for_line(mt_out, "stopped", seen));
        if (!g_regex_match_simple("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} "
                                  "nbdlinkd stopped\n$", seen->str, 0, 0))
                g_error("not a timestamped line: %s", seen->str);

        /* SIGINT ends it with status 0. */
        g_subprocess_send_signal(mj, SIGINT);
        g_subprocess_send_signal(mt, SIGINT);
        g_assert_true(g_subprocess_wait(mj, NULL, &error));
        g_assert_true(g_subprocess_wait(mt, NULL, &error));
        g_assert_true(g_subprocess_get_if_exited(mj));
        g_assert_cmpint(g_subprocess_get_exit_status(mj), ==, 0);
        g_assert_cmpint(g_subprocess_get_exit_status(mt), ==, 0);

        /* With the daemon gone (and no activation on this bus), commands fail. */
        CliResult r = run("list");
        cli_assert_failed(&r, "nbdlink: list devices: ", "(org.freedesktop.DBus.Error.ServiceUnknown)\n"
                      "nbdlink: is nbdlinkd installed? (systemctl status nbdlinkd)\n");
        cli_result_clear(&r);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/list-empty", test_list_empty);
        g_test_add_func("/cli/exports", test_exports);
        g_test_add_func("/cli/info", test_info);
        g_test_add_func("/cli/info-questions", test_info_questions);
        g_test_add_func("/cli/hostile-server-text", test_hostile_server_text);
        g_test_add_func("/cli/unix-socket", test_unix_socket);
        g_test_add_func("/cli/tls-psk", test_tls_psk);
        g_test_add_func("/cli/tls-x509", test_tls_x509);
        g_test_add_func("/cli/server-errors", test_server_errors);
        g_test_add_func("/cli/daemon-errors", test_daemon_errors);
        g_test_add_func("/cli/not-authorized", test_not_authorized);
        g_test_add_func("/cli/other-tools-devices", test_other_tools_devices);
        g_test_add_func("/cli/monitor", test_monitor);

        start_all();
        pki = test_pki_new();
        r = g_test_run();
        test_server_stop(nbdkit_plain);
        test_server_stop(nbdkit_psk);
        test_server_stop(nbdkit_x509);
        test_server_stop(nbdkit_hostile);
        test_pki_free(pki);
        test_servers_cleanup();
        stop_all();
        return r;
}
