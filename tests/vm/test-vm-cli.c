/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's guest program for the command-line client: the real
 * nbdlink against the real nbdlinkd on the guest's private bus, with
 * nbdkit on loopback: attach, list (table and JSON), info, exports, data
 * through the device, monitor, detach, detach --all, read-only, TLS, unix
 * sockets, a non-root caller, and then the GDBus example program. Every
 * program started under the emulated CPU costs a second or so: the cases
 * share devices and commands where that loses nothing. */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>

#include "cli-run.h"
#include "guest-util.h"
#include "servers.h"
#include "tls-certs.h"

#define EXPORT "disk"
#define DISK_BYTES (64u * MiB)
#define ERROR_NAME(n) "(org.nbdlink.NBD1.Error." n ")\n"

static const char *nbdlink_path, *example_path, *daemon_path;
static GSubprocess *daemon_proc;
static TestServer *plain;       /* nbdkit memory 64M, export "disk" only */
/* Made in-process: every program started in the guest costs about a
 * second of emulated CPU. */
typedef struct Pki {
        char *server_dir;       /* ca-cert.pem, server-cert.pem, server-key.pem */
        char *ca_cert;
        char *other_ca_cert;    /* signed nothing we serve */
} Pki;
static Pki pki;

#define cli(...) cli_run(nbdlink_path, FALSE, (const char *const[]) { __VA_ARGS__, NULL })
#define cli_as_nobody(...) cli_run(nbdlink_path, TRUE, (const char *const[]) { __VA_ARGS__, NULL })

static void assert_ok(const CliResult *r) {
        if (r->status != 0 || *r->err)
                g_error("expected success, got status %d and stderr '%s'", r->status, r->err);
}

static char *uri(const TestServer *s, const char *scheme, const char *export_name) {
        return g_strdup_printf("%s://127.0.0.1:%u/%s", scheme, s->port, export_name);
}

/* nbdlink attach ...: one line, the device node; the device runs. */
static char *attach_ok(const char *first, ...) G_GNUC_NULL_TERMINATED;
static char *attach_ok(const char *first, ...) {
        g_autoptr(GPtrArray) args = g_ptr_array_new();
        va_list ap;
        CliResult r;
        char *dev;

        g_ptr_array_add(args, (char *) "attach");
        va_start(ap, first);
        for (const char *a = first; a; a = va_arg(ap, const char *))
                g_ptr_array_add(args, (char *) a);
        va_end(ap);
        g_ptr_array_add(args, NULL);

        r = cli_run(nbdlink_path, FALSE, (const char *const *) args->pdata);
        assert_ok(&r);
        g_assert_true(g_regex_match_simple("^/dev/nbd[0-9]+\n$", r.out, 0, 0));
        dev = g_strndup(r.out, strlen(r.out) - 1);
        cli_result_clear(&r);
        g_assert_true(device_running(dev));
        return dev;
}

static void detach_ok(const char *dev) {
        CliResult r = cli("detach", dev);

        assert_ok(&r);
        g_assert_cmpstr(r.out, ==, "");
        cli_result_clear(&r);
        wait_device_stopped(dev);
}

/* ---- JSON and tables ------------------------------------------------- */

static void append_node(GString *s, JsonNode *n) {
        if (JSON_NODE_HOLDS_NULL(n)) {
                g_string_append(s, "null");
                return;
        }
        g_assert_true(JSON_NODE_HOLDS_VALUE(n));
        switch (json_node_get_value_type(n)) {
        case G_TYPE_BOOLEAN:
                g_string_append(s, json_node_get_boolean(n) ? "true" : "false");
                break;
        case G_TYPE_INT64:
                g_string_append_printf(s, "%" G_GINT64_FORMAT, json_node_get_int(n));
                break;
        case G_TYPE_STRING:
                g_string_append(s, json_node_get_string(n));
                break;
        default:
                g_error("unexpected JSON value type %s", g_type_name(json_node_get_value_type(n)));
        }
}

/* Parses one JSON document and prints the given keys of each object of
 * the array (or of the object), comma separated, one object per line. */
static char *json_fields(const char *json, const char *keys) {
        g_autoptr(JsonParser) parser = json_parser_new();
        g_autoptr(GError) error = NULL;
        g_auto(GStrv) k = g_strsplit(keys, " ", -1);
        GString *s = g_string_new(NULL);
        JsonNode *root;
        g_autoptr(GList) objects = NULL;

        if (!json_parser_load_from_data(parser, json, -1, &error))
                g_error("not valid JSON (%s): %s", error->message, json);
        root = json_parser_get_root(parser);
        if (JSON_NODE_HOLDS_ARRAY(root))
                objects = json_array_get_elements(json_node_get_array(root));
        else
                objects = g_list_append(NULL, root);

        for (GList *l = objects; l; l = l->next) {
                JsonObject *o = json_node_get_object(l->data);

                g_assert_nonnull(o);
                for (char **key = k; *key; key++) {
                        JsonNode *n = json_object_get_member(o, *key);

                        if (!n)
                                g_error("no key '%s' in %s", *key, json);
                        if (key != k)
                                g_string_append_c(s, ',');
                        append_node(s, n);
                }
                g_string_append_c(s, '\n');
        }
        return g_string_free(s, FALSE);
}

/* Splits a table (columns separated by two or more spaces) into rows of
 * cells, checking that every cell starts where its header starts. */
static GPtrArray *table_rows(const char *table) {
        g_auto(GStrv) lines = g_strsplit(table, "\n", -1);
        g_autoptr(GRegex) sep = g_regex_new("  +", 0, 0, NULL);
        GPtrArray *rows = g_ptr_array_new_with_free_func((GDestroyNotify) g_strfreev);
        g_autoptr(GArray) starts = g_array_new(FALSE, FALSE, sizeof(size_t));

        g_assert_true(g_str_has_suffix(table, "\n"));
        for (size_t i = 0; lines[0][i]; i++)
                if (lines[0][i] != ' ' && (i == 0 || lines[0][i - 1] == ' '))
                        g_array_append_val(starts, i);

        for (char **l = lines; *l && **l; l++) {
                char **cells = g_regex_split(sep, *l, 0);

                g_assert_cmpuint(g_strv_length(cells), ==, starts->len);
                for (guint c = 1; c < starts->len; c++) {
                        size_t at = g_array_index(starts, size_t, c);

                        if (strlen(*l) <= at || (*l)[at] == ' ' || (*l)[at - 1] != ' ')
                                g_error("column %u is not aligned in '%s' of\n%s", c, *l, table);
                }
                g_ptr_array_add(rows, cells);
        }
        return rows;
}

static void print_for_the_record(const char *title, const char *text) {
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        g_print("# %s\n", title);
        for (char **l = lines; *l && **l; l++)
                g_print("#   %s\n", *l);
}

/* ---- data through the device ----------------------------------------- */

/* Writes n bytes of a pattern at offset with O_DIRECT, reads them back. */
static void data_roundtrip_n(const char *dev, off_t offset, uint8_t seed, size_t n) {
        g_autofree uint8_t *out = alloc_aligned(n), *in = alloc_aligned(n);
        int fd;

        for (size_t i = 0; i < n; i++)
                out[i] = (uint8_t) (i * 31 + seed + (i >> 12));
        fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                g_error("open %s: %s", dev, g_strerror(errno));
        g_assert_cmpint(pwrite(fd, out, n, offset), ==, (ssize_t) n);
        g_assert_cmpint(fsync(fd), ==, 0);
        memset(in, 0, n);
        g_assert_cmpint(pread(fd, in, n, offset), ==, (ssize_t) n);
        close(fd);
        g_assert_true(memcmp(in, out, n) == 0);
}

static void data_roundtrip(const char *dev, off_t offset, uint8_t seed) {
        data_roundtrip_n(dev, offset, seed, MiB);
}

/* ---- monitor --------------------------------------------------------- */

typedef struct Monitor {
        GSubprocess *proc;
        GDataInputStream *out, *err;
        GString *seen;
} Monitor;

typedef struct LineRead {
        gboolean done;
        char *line;
} LineRead;

static void on_line(GObject *source, GAsyncResult *result, gpointer data) {
        LineRead *lr = data;

        lr->line = g_data_input_stream_read_line_finish_utf8(G_DATA_INPUT_STREAM(source), result, NULL, NULL);
        lr->done = TRUE;
}

/* The next line, or NULL at end of file or after timeout_ms. */
static char *read_line(GDataInputStream *in, int timeout_ms) {
        g_autoptr(GCancellable) cancel = g_cancellable_new();
        double deadline = now_ms() + timeout_ms;
        LineRead lr = {};

        g_data_input_stream_read_line_async(in, G_PRIORITY_DEFAULT, cancel, on_line, &lr);
        while (!lr.done) {
                if (now_ms() > deadline)
                        g_cancellable_cancel(cancel);
                if (!g_main_context_iteration(NULL, FALSE))
                        g_usleep(2000);
        }
        return lr.line;
}

/* Reads lines until one starts with prefix; fails the test after 30 s. */
static char *monitor_expect(Monitor *m, const char *prefix) {
        for (;;) {
                char *line = read_line(m->out, 30000);

                if (!line)
                        g_error("monitor never printed '%s...'; it printed:\n%s", prefix, m->seen->str);
                g_autofree char *untimed = cli_monitor_untimed(line);

                g_string_append_printf(m->seen, "%s\n", line);
                g_free(line);
                if (g_str_has_prefix(untimed, prefix))
                        return g_steal_pointer(&untimed);
        }
}

static void monitor_start(Monitor *m, gboolean json) {
        const char *argv[] = { nbdlink_path, json ? "--json" : "monitor", json ? "monitor" : NULL, NULL };
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
                G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE | G_SUBPROCESS_FLAGS_STDIN_PIPE);
        g_autoptr(GError) error = NULL;
        g_autofree char *banner = NULL;

        g_subprocess_launcher_set_child_setup(l, cli_child_setup, GINT_TO_POINTER(FALSE), NULL);
        m->proc = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);
        m->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(m->proc));
        m->err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(m->proc));
        m->seen = g_string_new(NULL);
        /* The banner says the match rules are in place. */
        banner = read_line(m->err, 30000);
        g_assert_nonnull(banner);
        g_assert_true(g_str_has_prefix(banner, "Monitoring"));
}

static void monitor_stop(Monitor *m) {
        g_autoptr(GError) error = NULL;

        g_subprocess_send_signal(m->proc, SIGINT);
        g_assert_true(g_subprocess_wait(m->proc, NULL, &error));
        g_assert_true(g_subprocess_get_if_exited(m->proc));
        g_assert_cmpint(g_subprocess_get_exit_status(m->proc), ==, 0);
        g_clear_object(&m->out);
        g_clear_object(&m->err);
        g_clear_object(&m->proc);
        g_string_free(m->seen, TRUE);
}

/* ---- the daemon and the credentials ---------------------------------- */

static void daemon_start(void) {
        g_autoptr(GDBusConnection) bus = NULL;

        bus = guest_system_bus();
        daemon_proc = daemon_start_on_bus(bus, daemon_path);
}

static char *write_pem(const char *dir, const char *name, char *pem) {
        char *path = g_build_filename(dir, name, NULL);
        g_autoptr(GError) error = NULL;

        g_file_set_contents(path, pem, -1, &error);
        g_assert_no_error(error);
        g_free(pem);
        return path;
}

/* A CA, a server certificate for 127.0.0.1 in nbdkit's directory layout,
 * and an unrelated CA. */
static void pki_make(void) {
        TestCert ca, server, other;
        size_t n;

        test_cert_make_ca(&ca, "nbdlink vm CA");
        test_cert_make_leaf(&server, &ca, "localhost", "127.0.0.1", false, false);
        test_cert_make_ca(&other, "some other CA");

        pki.server_dir = test_scratch_subdir("pki");
        g_free(write_pem(pki.server_dir, "server-cert.pem", test_cert_pem(&server, &n)));
        g_free(write_pem(pki.server_dir, "server-key.pem", test_cert_key_pem(&server, &n)));
        pki.ca_cert = write_pem(pki.server_dir, "ca-cert.pem", test_cert_pem(&ca, &n));
        pki.other_ca_cert = write_pem(pki.server_dir, "other-ca-cert.pem", test_cert_pem(&other, &n));
        test_cert_done(&ca);
        test_cert_done(&server);
        test_cert_done(&other);
}

/* ---- tests ----------------------------------------------------------- */

/* attach prints the device; list and list --json show it; info and
 * exports; data in and out; detach DEV. */
static void test_attach_list_detach(void) {
        g_autofree char *u = uri(plain, "nbd", EXPORT);
        g_autofree char *hostport = g_strdup_printf("127.0.0.1:%u", plain->port);
        g_autofree char *dev = attach_ok(u, NULL);
        g_autofree char *fields = NULL, *expected = NULL;
        g_autoptr(GPtrArray) rows = NULL;
        char **row;
        CliResult r;

        r = cli("list");
        assert_ok(&r);
        print_for_the_record("nbdlink list", r.out);
        rows = table_rows(r.out);
        g_assert_cmpuint(rows->len, ==, 2);
        {
                g_autofree char *header = g_strjoinv("|", rows->pdata[0]);
                g_assert_cmpstr(header, ==, "DEVICE|HOST|EXPORT|SIZE|RO|TLS|STATE|OWNER");
        }
        row = rows->pdata[1];
        g_assert_cmpstr(row[0], ==, dev);
        g_assert_cmpstr(row[1], ==, hostport);
        g_assert_cmpstr(row[2], ==, EXPORT);
        g_assert_cmpstr(row[3], ==, "64 MiB");
        g_assert_cmpstr(row[4], ==, "no");
        g_assert_cmpstr(row[5], ==, "none");
        g_assert_cmpstr(row[6], ==, "attached");
        g_assert_cmpstr(row[7], ==, "root");
        cli_result_clear(&r);

        r = cli("list", "--json");
        assert_ok(&r);
        print_for_the_record("nbdlink list --json", r.out);
        fields = json_fields(r.out, "device object host port export size block_size read_only tls tls_mode "
                                    "state owner_uid owner connections persistent");
        expected = g_strdup_printf("%s,/org/nbdlink/NBD1/devices/%s,127.0.0.1,%u,disk,%u,512,false,false,none,"
                                   "attached,0,root,1,false\n", dev, dev + 5, plain->port, DISK_BYTES);
        g_assert_cmpstr(fields, ==, expected);
        cli_result_clear(&r);
        g_clear_pointer(&fields, g_free);

        /* info and exports, with the device attached. */
        r = cli("--json", "info", u);
        assert_ok(&r);
        fields = json_fields(r.out, "export size read_only tls description");
        g_assert_cmpstr(fields, ==, "disk,67108864,false,false,a disk\n");
        cli_result_clear(&r);
        g_clear_pointer(&fields, g_free);

        r = cli("info", hostport, EXPORT);
        assert_ok(&r);
        g_assert_true(g_str_has_prefix(r.out, "PROPERTY"));
        g_assert_true(g_regex_match_simple("^size +64 MiB \\(67108864 bytes\\)$", r.out, G_REGEX_MULTILINE, 0));
        cli_result_clear(&r);

        r = cli("exports", hostport);
        assert_ok(&r);
        g_assert_cmpstr(r.out, ==, "EXPORT  DESCRIPTION\ndisk    a disk\n");
        cli_result_clear(&r);

        data_roundtrip(dev, 0, 1);
        data_roundtrip(dev, DISK_BYTES - MiB, 2);

        detach_ok(dev);

        r = cli("detach", dev);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: detach %s: ", dev);
                cli_assert_failed(&r, prefix, ERROR_NAME("NotAttached"));
        }
        cli_result_clear(&r);
}

/* --device and the other attach options; what was written is still there
 * after a read-only attach of the same export. */
static void test_device_and_read_only(void) {
        g_autofree char *u = uri(plain, "nbd", EXPORT);
        g_autofree char *dev = attach_ok("--device", "nbd9", "--connections", "1", "--timeout", "20", u, NULL);
        g_autofree char *dev2 = NULL, *fields = NULL, *expected = NULL;
        int fd, ro = 0;
        CliResult r;

        g_assert_cmpstr(dev, ==, "/dev/nbd9");
        data_roundtrip(dev, 8 * MiB, 3);
        detach_ok(dev);

        dev2 = attach_ok("--read-only", u, NULL);
        fd = open(dev2, O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(ioctl(fd, BLKROGET, &ro), ==, 0);
        close(fd);
        g_assert_cmpint(ro, ==, 1);
        /* Opening for writing may succeed; writing must not. */
        fd = open(dev2, O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (fd >= 0) {
                g_autofree uint8_t *buf = alloc_aligned(4096);
                ssize_t n;

                memset(buf, 0xa5, 4096);
                n = pwrite(fd, buf, 4096, 0);
                g_assert_cmpint(n, <, 0);
                close(fd);
        }
        g_assert_true(errno == EROFS || errno == EACCES || errno == EPERM);

        r = cli("--json", "list");
        assert_ok(&r);
        fields = json_fields(r.out, "device read_only");
        expected = g_strdup_printf("%s,true\n", dev2);
        g_assert_cmpstr(fields, ==, expected);
        cli_result_clear(&r);
        detach_ok(dev2);
}

/* Without polkit on this bus the daemon refuses every uid but 0 for
 * attach and detach; reading the list needs no authorization; detach
 * --all takes only the caller's own devices. */
static void test_not_authorized_and_detach_all(void) {
        g_autofree char *u = uri(plain, "nbd", EXPORT);
        g_autofree char *d1 = attach_ok(u, NULL);
        g_autofree char *d2 = attach_ok("--read-only", u, NULL);
        g_autofree char *fields = NULL, *expected = NULL;
        CliResult r;

        g_assert_cmpstr(d1, !=, d2);

        r = cli_as_nobody("--no-ask-password", "attach", u);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: attach 127.0.0.1:%u export 'disk': ",
                                                          plain->port);
                cli_assert_failed(&r, prefix, ERROR_NAME("NotAuthorized"));
        }
        cli_result_clear(&r);

        r = cli_as_nobody("detach", d1);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: detach %s: ", d1);
                cli_assert_failed(&r, prefix, ERROR_NAME("NotAuthorized"));
        }
        cli_result_clear(&r);

        r = cli_as_nobody("--json", "list");
        assert_ok(&r);
        fields = json_fields(r.out, "device owner_uid owner");
        /* Sorted by device number. */
        expected = strlen(d1) < strlen(d2) || (strlen(d1) == strlen(d2) && strcmp(d1, d2) < 0)
                ? g_strdup_printf("%s,0,root\n%s,0,root\n", d1, d2)
                : g_strdup_printf("%s,0,root\n%s,0,root\n", d2, d1);
        g_assert_cmpstr(fields, ==, expected);
        cli_result_clear(&r);

        /* nobody owns none of them: nothing to do, and nothing touched. */
        r = cli_as_nobody("--no-ask-password", "detach", "--all");
        assert_ok(&r);
        g_assert_cmpstr(r.out, ==, "");
        cli_result_clear(&r);
        g_assert_true(device_running(d1));
        g_assert_true(device_running(d2));

        r = cli("detach", "--all");
        assert_ok(&r);
        g_assert_cmpstr(r.out, ==, "");
        cli_result_clear(&r);
        wait_device_stopped(d1);
        wait_device_stopped(d2);

        r = cli("--json", "list");
        assert_ok(&r);
        g_assert_cmpstr(r.out, ==, "[]\n");
        cli_result_clear(&r);
}

static void test_monitor(void) {
        g_autofree char *u = uri(plain, "nbd", EXPORT);
        g_autofree char *dev = NULL, *dev2 = NULL, *added = NULL, *added_json = NULL;
        g_autofree char *prefix = NULL, *line = NULL, *fields = NULL;
        g_autoptr(TestServer) doomed = NULL;
        g_autofree char *doomed_uri = NULL;
        Monitor text = {}, json = {};
        const char *name;

        monitor_start(&text, FALSE);
        monitor_start(&json, TRUE);

        dev = attach_ok(u, NULL);
        name = dev + 5;
        prefix = g_strdup_printf("%s added ", name);
        added = monitor_expect(&text, prefix);
        g_assert_nonnull(strstr(added, " State=connecting"));
        g_free(prefix);
        prefix = g_strdup_printf("%s changed State=attached Size=67108864 ", name);
        g_free(monitor_expect(&text, prefix));
        g_free(prefix);
        prefix = g_strdup_printf("{\"event\":\"added\",\"object\":\"/org/nbdlink/NBD1/devices/%s\","
                                 "\"device\":\"%s\",\"properties\":{", name, dev);
        added_json = monitor_expect(&json, prefix);
        fields = json_fields(added_json, "event device");
        {
                g_autofree char *expected = g_strdup_printf("added,%s\n", dev);
                g_assert_cmpstr(fields, ==, expected);
        }

        detach_ok(dev);
        g_free(prefix);
        prefix = g_strdup_printf("%s changed State=detaching", name);
        g_free(monitor_expect(&text, prefix));
        g_free(prefix);
        prefix = g_strdup_printf("%s removed", name);
        g_free(monitor_expect(&text, prefix));
        g_free(prefix);
        prefix = g_strdup_printf("{\"event\":\"removed\",\"object\":\"/org/nbdlink/NBD1/devices/%s\","
                                 "\"device\":\"%s\"}", name, dev);
        g_free(monitor_expect(&json, prefix));

        /* The server goes away on its own. */
        doomed = test_nbdkit_start("memory", "size=16M", NULL);
        doomed_uri = uri(doomed, "nbd", "");
        dev2 = attach_ok(doomed_uri, NULL);
        name = dev2 + 5;
        g_assert_cmpint(kill(doomed->pid, SIGKILL), ==, 0);
        g_free(prefix);
        prefix = g_strdup_printf("%s disconnected: ", name);
        line = monitor_expect(&text, prefix);
        g_assert_true(g_regex_match_simple("\\(org\\.nbdlink\\.NBD1\\.Error\\.[A-Za-z]+\\)$", line, 0, 0));
        g_free(prefix);
        prefix = g_strdup_printf("%s removed", name);
        g_free(monitor_expect(&text, prefix));
        g_free(prefix);
        prefix = g_strdup_printf("{\"event\":\"disconnected\",\"object\":\"/org/nbdlink/NBD1/devices/%s\","
                                 "\"device\":\"%s\",\"error\":\"org.nbdlink.NBD1.Error.", name, dev2);
        g_free(monitor_expect(&json, prefix));
        wait_device_stopped(dev2);

        monitor_stop(&text);
        monitor_stop(&json);
}

/* nbd+unix:// with socket=: nbdlink connects and passes the socket. */
static void test_unix_socket(void) {
        g_autofree char *dir = test_scratch_subdir("unix");
        g_autofree char *sock = g_build_filename(dir, "nbd.sock", NULL);
        g_autofree char *u = g_strdup_printf("nbd+unix:///" EXPORT "?socket=%s", sock);
        const char *argv[] = { "nbdkit", "-f", "--exit-with-parent", "-U", sock, "--filter=exportname",
                               "memory", "size=8M", "exportname=" EXPORT, "exportname-strict=true", NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *dev = NULL, *size_path = NULL, *size = NULL;
        GPid pid;

        g_assert_true(g_spawn_async(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                    cli_child_setup, GINT_TO_POINTER(FALSE), &pid, &error));
        g_assert_no_error(error);
        for (int i = 0; i < 3000 && !g_file_test(sock, G_FILE_TEST_EXISTS); i++)
                g_usleep(10000);
        g_assert_true(g_file_test(sock, G_FILE_TEST_EXISTS));

        dev = attach_ok(u, NULL);
        /* 8 MiB in 512-byte sectors. */
        size_path = g_strdup_printf("/sys/block/%s/size", dev + 5);
        g_assert_true(g_file_get_contents(size_path, &size, NULL, NULL));
        g_assert_cmpstr(size, ==, "16384\n");
        data_roundtrip(dev, MiB, 4);
        detach_ok(dev);

        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        g_spawn_close_pid(pid);
}

/* nbds:// with --ca against nbdkit --tls=require, with kTLS allowed and
 * with --no-ktls; a CA that signed nothing fails. */
static void test_tls(void) {
        g_autofree char *certs = g_strconcat("--tls-certificates=", pki.server_dir, NULL);
        g_autoptr(TestServer) s = test_nbdkit_start("--tls=require", certs, "memory", "size=16M", NULL);
        g_autofree char *u = uri(s, "nbds", "");
        g_autofree char *dev = NULL, *dev2 = NULL, *fields = NULL, *expected = NULL;
        g_auto(GStrv) lines = NULL;
        CliResult r;

        dev = attach_ok("--ca", pki.ca_cert, u, NULL);
        dev2 = attach_ok("--no-ktls", "--ca", pki.ca_cert, u, NULL);
        /* Every byte is encrypted by the emulated CPU: a little will do. */
        data_roundtrip_n(dev, 0, 5, 128 * 1024);
        data_roundtrip_n(dev2, 2 * MiB, 6, 128 * 1024);

        r = cli("--json", "list");
        assert_ok(&r);
        fields = json_fields(r.out, "device tls tls_mode");
        g_test_message("TLS devices: %s", fields);
        lines = g_strsplit(fields, "\n", -1);
        g_assert_cmpuint(g_strv_length(lines), ==, 3);
        for (int i = 0; i < 2; i++) {
                if (g_str_has_prefix(lines[i], dev2)) {
                        expected = g_strdup_printf("%s,true,relay", dev2);
                        g_assert_cmpstr(lines[i], ==, expected);
                } else {
                        g_autofree char *ktls = g_strdup_printf("%s,true,ktls", dev);
                        g_autofree char *relay = g_strdup_printf("%s,true,relay", dev);

                        g_assert_true(g_str_equal(lines[i], ktls) || g_str_equal(lines[i], relay));
                }
        }
        cli_result_clear(&r);

        /* Several devices at once. */
        r = cli("detach", dev, dev2);
        assert_ok(&r);
        cli_result_clear(&r);
        wait_device_stopped(dev);
        wait_device_stopped(dev2);

        r = cli("attach", "--ca", pki.other_ca_cert, u);
        {
                g_autofree char *prefix = g_strdup_printf("nbdlink: attach 127.0.0.1:%u export '': ", s->port);
                cli_assert_failed(&r, prefix, ERROR_NAME("TLSFailed"));
        }
        cli_result_clear(&r);
}

/* The GDBus example: list, attach, watch, detach; then a server that
 * goes away under it. */
static void test_example(void) {
        g_autofree char *hostport = g_strdup_printf("127.0.0.1:%u", plain->port);
        g_autoptr(TestServer) doomed = NULL;
        g_autofree char *doomed_host = NULL, *dev = NULL, *name = NULL, *expect = NULL;
        g_autoptr(GRegex) attached = g_regex_new("^attached (/dev/(nbd[0-9]+)) size=67108864 read-only=no$",
                                                 G_REGEX_MULTILINE, 0, NULL);
        g_autoptr(GMatchInfo) mi = NULL;
        CliResult r;

        r = cli_run(example_path, FALSE, (const char *const[]) { hostport, EXPORT, NULL });
        assert_ok(&r);
        g_assert_true(g_str_has_prefix(r.out, "export disk: a disk\n"));
        if (!g_regex_match(attached, r.out, 0, &mi))
                g_error("no 'attached' line in:\n%s", r.out);
        dev = g_match_info_fetch(mi, 1);
        name = g_match_info_fetch(mi, 2);
        expect = g_strdup_printf("\nadded %s State=connecting\n", name);
        g_assert_nonnull(strstr(r.out, expect));
        g_free(expect);
        expect = g_strdup_printf("\nchanged %s State=attached Size=67108864 ", name);
        g_assert_nonnull(strstr(r.out, expect));
        g_free(expect);
        expect = g_strdup_printf("\nchanged %s State=detaching\n", name);
        g_assert_nonnull(strstr(r.out, expect));
        g_free(expect);
        expect = g_strdup_printf("\nremoved %s\n", name);
        g_assert_nonnull(strstr(r.out, expect));
        g_free(expect);
        expect = g_strdup_printf("\ndetached %s\n", dev);
        g_assert_nonnull(strstr(r.out, expect));
        g_assert_false(device_running(dev));
        cli_result_clear(&r);

        /* --wait-disconnect: attached, then the server is killed. */
        {
                const char *argv[] = { example_path, "--wait-disconnect", NULL, "", NULL };
                g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE);
                g_autoptr(GSubprocess) p = NULL;
                g_autoptr(GDataInputStream) out = NULL;
                g_autoptr(GError) error = NULL;
                g_autoptr(GString) seen = g_string_new(NULL);
                char *line;

                doomed = test_nbdkit_start("memory", "size=16M", NULL);
                doomed_host = g_strdup_printf("127.0.0.1:%u", doomed->port);
                argv[2] = doomed_host;
                g_subprocess_launcher_set_child_setup(l, cli_child_setup, GINT_TO_POINTER(FALSE), NULL);
                p = g_subprocess_launcher_spawnv(l, argv, &error);
                g_assert_no_error(error);
                out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
                while ((line = read_line(out, 60000))) {
                        gboolean done = g_str_has_prefix(line, "attached ");

                        g_string_append_printf(seen, "%s\n", line);
                        g_free(line);
                        if (done)
                                break;
                }
                g_assert_nonnull(strstr(seen->str, "\nattached /dev/nbd"));
                g_assert_cmpint(kill(doomed->pid, SIGKILL), ==, 0);
                while ((line = read_line(out, 60000))) {
                        g_string_append_printf(seen, "%s\n", line);
                        g_free(line);
                }
                g_assert_true(g_subprocess_wait(p, NULL, &error));
                g_test_message("nbd-file-manager --wait-disconnect printed:\n%s", seen->str);
                g_assert_true(g_subprocess_get_if_exited(p));
                g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
                g_assert_true(g_regex_match_simple("^disconnected nbd[0-9]+: org\\.nbdlink\\.NBD1\\.Error\\.",
                                                   seen->str, G_REGEX_MULTILINE, 0));
                g_assert_true(g_regex_match_simple("^removed nbd[0-9]+$", seen->str, G_REGEX_MULTILINE, 0));
        }
}

typedef struct TimedTest {
        const char *path;
        void (*func)(void);
} TimedTest;

/* The guest is slow (TCG): say where the time goes. */
static void timed(gconstpointer data) {
        const TimedTest *t = data;
        double t0 = now_ms();

        t->func();
        g_test_message("%s took %.1f s", t->path, (now_ms() - t0) / 1000.0);
}

int main(int argc, char **argv) {
        static const TimedTest tests[] = {
                { "/vm-cli/attach-list-detach", test_attach_list_detach },
                { "/vm-cli/device-and-read-only", test_device_and_read_only },
                { "/vm-cli/not-authorized-and-detach-all", test_not_authorized_and_detach_all },
                { "/vm-cli/monitor", test_monitor },
                { "/vm-cli/unix-socket", test_unix_socket },
                { "/vm-cli/tls", test_tls },
                { "/vm-cli/example", test_example },
        };
        double t0;
        int r;

        g_test_init(&argc, &argv, NULL);

        guest_require_root();
        daemon_path = g_getenv("NBDLINKD");
        nbdlink_path = g_getenv("NBDLINK");
        example_path = g_getenv("NBD_FILE_MANAGER");
        if (!daemon_path || !nbdlink_path || !example_path)
                g_error("NBDLINKD, NBDLINK and NBD_FILE_MANAGER must name the programs to test");

        t0 = now_ms();
        /* kTLS, where the kernel and the cipher allow it. */
        {
                const char *modprobe[] = { "modprobe", "tls", NULL };
                int status = 0;

                if (!g_spawn_sync(NULL, (char **) modprobe, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL, NULL, NULL,
                                  &status, NULL) || !g_spawn_check_wait_status(status, NULL))
                        g_test_message("modprobe tls failed: TLS goes through the relay");
        }
        daemon_start();
        plain = test_nbdkit_start("--filter=exportname", "memory", "size=64M", "exportname=" EXPORT,
                                  "exportname-strict=true", "exportname-list=explicit", "exportdesc=fixed:a disk",
                                  NULL);
        pki_make();
        g_print("# set-up (daemon, nbdkit, certificates) took %.1f s\n", (now_ms() - t0) / 1000.0);

        for (size_t i = 0; i < G_N_ELEMENTS(tests); i++)
                g_test_add_data_func(tests[i].path, tests + i, timed);
        r = g_test_run();

        test_server_stop(plain);
        test_servers_cleanup();
        g_free(pki.server_dir);
        g_free(pki.ca_cert);
        g_free(pki.other_ca_cert);
        if (daemon_proc) {
                g_subprocess_send_signal(daemon_proc, SIGTERM);
                (void) g_subprocess_wait(daemon_proc, NULL, NULL);
                g_clear_object(&daemon_proc);
        }
        return r;
}
