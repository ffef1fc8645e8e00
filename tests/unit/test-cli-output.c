/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The client's output helpers and what they show: JSON escaping and
 * layout, bus property names as JSON keys, IEC sizes, table alignment, NBD
 * flag names and the questions of info --can/--is, device arguments, the
 * sysfs view of other tools' devices, a device's URI and its owner's name.
 * Hostile text in both forms is test-cli-escape's. */
/* Project headers first: glib.h redefines MIN and MAX after them. */
#include "common.h"
#include "device-show.h"
#include "format.h"
#include "json.h"
#include "nbd-flags.h"
#include "nbd-sysfs.h"
#include "props.h"

#include <errno.h>
#include <glib.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>


/* Runs f on a memory stream and returns what it wrote. */
static char *capture(void (*f)(FILE *out, const void *data), const void *data) {
        char *buf = NULL;
        size_t size = 0;
        FILE *out = open_memstream(&buf, &size);

        g_assert_nonnull(out);
        f(out, data);
        g_assert_cmpint(fclose(out), ==, 0);
        return buf;
}

typedef struct EscapeCase {
        const char *input;
        size_t len;
        const char *expected;
} EscapeCase;

static void write_escaped(FILE *out, const void *data) {
        const EscapeCase *c = data;
        json_write_escaped(out, c->input, c->len);
}

static void test_escape(void) {
        static const EscapeCase cases[] = {
                { "plain", 5, "\"plain\"" },
                { "", 0, "\"\"" },
                { "q\"uote", 6, "\"q\\\"uote\"" },
                { "back\\slash", 10, "\"back\\\\slash\"" },
                { "a\nb\rc\td\be\ff", 11, "\"a\\nb\\rc\\td\\be\\ff\"" },
                { "\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"" },
                { "nul\0x", 5, "\"nul\\u0000x\"" },
                { "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe", 14, "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x92\xbe\"" },
                { "bad\xff", 4, "\"bad\\ufffd\"" },
                { "trunc\xe2\x82", 7, "\"trunc\\ufffd\\ufffd\"" },
                { "overlong\xc0\xaf", 10, "\"overlong\\ufffd\\ufffd\"" },
                { "surrogate\xed\xa0\x80", 12, "\"surrogate\\ufffd\\ufffd\\ufffd\"" },
                { "ls\xe2\x80\xa8ps\xe2\x80\xa9", 10, "\"ls\\u2028ps\\u2029\"" },
                { "</script>", 9, "\"</script>\"" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *s = capture(write_escaped, &cases[i]);
                g_assert_cmpstr(s, ==, cases[i].expected);
        }
}

static void write_document(FILE *out, const void *data) {
        JsonWriter w;

        json_init(&w, out, *(const bool *) data);
        json_begin_object(&w);
        json_key(&w, "device");
        json_string(&w, "/dev/nbd0");
        json_key(&w, "size");
        json_uint(&w, UINT64_MAX);
        json_key(&w, "offset");
        json_int(&w, -5);
        json_key(&w, "ro");
        json_bool(&w, true);
        json_key(&w, "none");
        json_null(&w);
        json_key(&w, "ratio");
        json_double(&w, 0.5);
        json_key(&w, "nan");
        json_double(&w, 0.0 / 0.0);
        json_key(&w, "empty");
        json_begin_array(&w);
        json_end_array(&w);
        json_key(&w, "list");
        json_begin_array(&w);
        json_string(&w, "a");
        json_begin_object(&w);
        json_end_object(&w);
        json_end_array(&w);
        json_key(&w, "key \"quoted\"");
        json_string(&w, NULL);
        json_end_object(&w);
        json_finish(&w);
}

static void test_document(void) {
        bool pretty = false;
        g_autofree char *compact = capture(write_document, &pretty);
        g_autofree char *indented = NULL;

        g_assert_cmpstr(compact, ==,
                        "{\"device\":\"/dev/nbd0\",\"size\":18446744073709551615,\"offset\":-5,"
                        "\"ro\":true,\"none\":null,\"ratio\":0.5,\"nan\":null,\"empty\":[],"
                        "\"list\":[\"a\",{}],\"key \\\"quoted\\\"\":null}\n");

        pretty = true;
        indented = capture(write_document, &pretty);
        g_assert_cmpstr(indented, ==,
                        "{\n"
                        "  \"device\": \"/dev/nbd0\",\n"
                        "  \"size\": 18446744073709551615,\n"
                        "  \"offset\": -5,\n"
                        "  \"ro\": true,\n"
                        "  \"none\": null,\n"
                        "  \"ratio\": 0.5,\n"
                        "  \"nan\": null,\n"
                        "  \"empty\": [],\n"
                        "  \"list\": [\n"
                        "    \"a\",\n"
                        "    {}\n"
                        "  ],\n"
                        "  \"key \\\"quoted\\\"\": null\n"
                        "}\n");
}

static void test_json_keys(void) {
        static const char *const cases[][2] = {
                { "ReadOnly", "read_only" },
                { "TLSMode", "tls_mode" },
                { "TLS", "tls" },
                { "OwnerUID", "owner_uid" },
                { "AttachedSince", "attached_since" },
                { "Device", "device" },
                { "block-size-min", "block_size_min" },
                { "read-only", "read_only" },
                { "size", "size" },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_autofree char *k = json_key_from_bus_name(cases[i][0]);
                g_assert_cmpstr(k, ==, cases[i][1]);
        }
}

static void test_sizes(void) {
        static const struct {
                uint64_t bytes;
                const char *text;
        } cases[] = {
                { 0, "0 B" },
                { 1, "1 B" },
                { 1023, "1023 B" },
                { 1024, "1 KiB" },
                { 1536, "1.5 KiB" },
                { 1024 * 1024 - 1, "1 MiB" },
                { 10 * 1024 * 1024 + 512 * 1024, "10.5 MiB" },
                { UINT64_C(1) << 30, "1 GiB" },
                { (UINT64_C(1) << 30) * 3 / 2 + 1, "1.5 GiB" },
                { UINT64_C(1) << 40, "1 TiB" },
                { UINT64_C(1) << 50, "1 PiB" },
                { UINT64_C(1) << 60, "1 EiB" },
                { UINT64_MAX, "16 EiB" },
        };
        char buf[FORMAT_SIZE_MAX];

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++)
                g_assert_cmpstr(format_size(buf, cases[i].bytes), ==, cases[i].text);
}

static void write_table(FILE *out, const void *data) {
        _cleanup_(table_freep) Table *t = NULL;

        g_assert_cmpint(table_new(&t, 3, (const char *const[]) { "DEVICE", "EXPORT", "SIZE" }), ==, 0);
        g_assert_cmpint(table_add(t, "/dev/nbd0"), ==, 0);
        g_assert_cmpint(table_add(t, "caf\xc3\xa9"), ==, 0);
        g_assert_cmpint(table_add(t, "1 GiB"), ==, 0);
        g_assert_cmpint(table_add(t, "/dev/nbd10"), ==, 0);
        g_assert_cmpint(table_add(t, NULL), ==, 0);
        g_assert_cmpint(table_add(t, "\x1b[31m"), ==, 0);
        g_assert_cmpint(table_add(t, "/dev/nbd2"), ==, 0);
        g_assert_cmpint(table_add(t, "a\nb"), ==, 0);
        g_assert_cmpint(table_add(t, "512 B"), ==, 0);
        g_assert_cmpuint(table_rows(t), ==, 3);
        table_print(t, out);
}

static void test_table(void) {
        g_autofree char *s = capture(write_table, NULL);

        /* The multibyte "é" counts as one column; control characters are
         * escaped before widths are measured. */
        g_assert_cmpstr(s, ==,
                        "DEVICE      EXPORT  SIZE\n"
                        "/dev/nbd0   caf\xc3\xa9    1 GiB\n"
                        "/dev/nbd10  -       \\x1b[31m\n"
                        "/dev/nbd2   a\\x0ab  512 B\n");
}

static void write_wide_table(FILE *out, const void *data) {
        _cleanup_(table_freep) Table *t = NULL;

        g_assert_cmpint(table_new(&t, 3, (const char *const[]) { "EXPORT", "DESCRIPTION", "SIZE" }), ==, 0);
        g_assert_cmpint(table_add(t, "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e"), ==, 0);   /* 日本語 */
        g_assert_cmpint(table_add(t, "\xf0\x9f\x99\x82 ok"), ==, 0);                      /* 🙂 ok */
        g_assert_cmpint(table_add(t, "1 GiB"), ==, 0);
        g_assert_cmpint(table_add(t, "a"), ==, 0);
        g_assert_cmpint(table_add(t, "e\xcc\x81\xe2\x80\xae"), ==, 0);                  /* e, U+0301, U+202E */
        g_assert_cmpint(table_add(t, "2 MiB"), ==, 0);
        g_assert_cmpint(table_print(t, out), ==, 0);
}

static void test_wide_table(void) {
        g_autofree char *s = NULL;

        /* Whatever the locale: the cells are UTF-8 either way. */
        g_assert_nonnull(setlocale(LC_ALL, "C"));
        s = capture(write_wide_table, NULL);

        /* CJK and emoji take two cells each, a combining accent none; the
         * bidirectional override is escaped (eight cells) before widths
         * are measured. */
        g_assert_cmpstr(s, ==,
                        "EXPORT  DESCRIPTION  SIZE\n"
                        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e  \xf0\x9f\x99\x82 ok        1 GiB\n"
                        "a       e\xcc\x81\\u202E      2 MiB\n");
}

static void write_empty_table(FILE *out, const void *data) {
        _cleanup_(table_freep) Table *t = NULL;

        g_assert_cmpint(table_new(&t, 2, (const char *const[]) { "DEVICE", "\x1b]0;x" }), ==, 0);
        g_assert_cmpuint(table_rows(t), ==, 0);
        g_assert_cmpint(table_print(t, out), ==, 0);
}

static void test_empty_table(void) {
        g_autofree char *s = capture(write_empty_table, NULL);

        /* The headers alone, escaped too. */
        g_assert_cmpstr(s, ==, "DEVICE  \\x1b]0;x\n");
}

static void test_flag_names(void) {
        static const char *const names[16] = {
                "has-flags", "read-only", "send-flush", "send-fua", "rotational", "send-trim",
                "send-write-zeroes", "send-df", "can-multi-conn", "send-resize", "send-cache",
                "send-fast-zero", "block-stat-payload", "bit-13", "bit-14", "bit-15",
        };
        char buf[NBD_FLAG_NAME_MAX];

        for (unsigned bit = 0; bit < 16; bit++)
                g_assert_cmpstr(nbd_flag_name(bit, buf), ==, names[bit]);
}

static void write_flags(FILE *out, const void *data) {
        JsonWriter w;

        json_init(&w, out, false);
        nbd_flags_json(&w, (uint16_t) GPOINTER_TO_UINT(data));
        json_finish(&w);
}

static void test_flags_json(void) {
        g_autofree char *none = capture(write_flags, GUINT_TO_POINTER(0));
        g_autofree char *some = capture(write_flags, GUINT_TO_POINTER(0x8000 | 0x0100 | 0x0004 | 0x0001));

        g_assert_cmpstr(none, ==, "[]\n");
        g_assert_cmpstr(some, ==, "[\"has-flags\",\"send-flush\",\"can-multi-conn\",\"bit-15\"]\n");
}

typedef struct QuestionCase {
        bool is;
        const char *name;
        uint16_t flags;
        bool tls;
        bool answer;
} QuestionCase;

static void test_questions(void) {
        static const QuestionCase cases[] = {
                { false, "connect",    0x0001, false, true },
                { false, "read",       0x0003, false, true },
                { false, "write",      0x0001, false, true },
                { false, "write",      0x0003, false, false },
                { false, "flush",      0x0005, false, true },
                { false, "flush",      0x0001, false, false },
                { false, "fua",        0x0009, false, true },
                { false, "trim",       0x0021, false, true },
                { false, "trim",       0xffdf, false, false },
                { false, "zero",       0x0041, false, true },
                { false, "fast-zero",  0x0801, false, true },
                { false, "fast-zero",  0x0041, false, false },
                { false, "multi-conn", 0x0101, false, true },
                { false, "cache",      0x0401, false, true },
                { false, "cache",      0x0001, false, false },
                { true,  "read-only",  0x0003, false, true },
                { true,  "read-only",  0x0001, false, false },
                { true,  "rotational", 0x0011, false, true },
                { true,  "rotational", 0xffef, false, false },
                { true,  "tls",        0x0001, true,  true },
                { true,  "tls",        0xffff, false, false },
        };
        const NbdCapability *c = NULL;
        g_autofree char *can = nbd_capability_names(false), *is = nbd_capability_names(true);

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_assert_cmpint(nbd_capability_lookup(cases[i].is, cases[i].name, &c), ==, 0);
                if (nbd_capability_test(c, cases[i].flags, cases[i].tls) != cases[i].answer)
                        g_error("--%s %s with flags 0x%04x: not %d", cases[i].is ? "is" : "can", cases[i].name,
                                cases[i].flags, cases[i].answer);
        }

        /* nbdinfo's names a probe cannot answer, and names nobody knows;
         * --can and --is do not share theirs. */
        g_assert_cmpint(nbd_capability_lookup(false, "df", &c), ==, -EOPNOTSUPP);
        g_assert_cmpint(nbd_capability_lookup(false, "structured-reply", &c), ==, -EOPNOTSUPP);
        g_assert_cmpint(nbd_capability_lookup(false, "block-status", &c), ==, -EOPNOTSUPP);
        g_assert_cmpint(nbd_capability_lookup(false, "bogus", &c), ==, -ENOENT);
        g_assert_cmpint(nbd_capability_lookup(false, "", &c), ==, -ENOENT);
        g_assert_cmpint(nbd_capability_lookup(false, "tls", &c), ==, -ENOENT);
        g_assert_cmpint(nbd_capability_lookup(true, "write", &c), ==, -ENOENT);
        g_assert_cmpint(nbd_capability_lookup(false, "WRITE", &c), ==, -ENOENT);

        g_assert_cmpstr(can, ==, "cache, connect, fast-zero, flush, fua, multi-conn, read, trim, write, zero");
        g_assert_cmpstr(is, ==, "read-only, rotational, tls");
}

static void test_device_args(void) {
        static const struct {
                const char *arg;
                int index, partition;
        } good[] = {
                { "/dev/nbd0", 0, 0 }, { "nbd0", 0, 0 }, { "nbd15", 15, 0 }, { "/dev/nbd9999", 9999, 0 },
                { "/dev/nbd0p1", 0, 1 }, { "nbd12p34", 12, 34 }, { "nbd1p9999", 1, 9999 },
        };
        static const char *const bad[] = {
                "", "nbd", "/dev/nbd", "nbd01", "nbd10000", "sda", "/dev/sda1", "nbd0p", "nbd0p0", "nbd0p01",
                "nbd0p1p2", "nbd0p10000", "nbdp1", "/dev/nbd0 ", "/dev//nbd0", "dev/nbd0", "nbd-1", "nbd0p-1",
        };
        int index, part;

        for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
                index = part = -2;
                g_assert_cmpint(device_arg_parse(good[i].arg, &index, &part), ==, 0);
                g_assert_cmpint(index, ==, good[i].index);
                g_assert_cmpint(part, ==, good[i].partition);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(bad); i++)
                if (device_arg_parse(bad[i], &index, &part) != -EINVAL)
                        g_error("'%s' is taken for a device", bad[i]);
}

static void write_file(const char *root, const char *rel, const char *text) {
        g_autofree char *path = g_build_filename(root, rel, NULL);
        g_autofree char *parent = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, text, -1, NULL));
}

static void test_sysfs(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *root = g_dir_make_tmp("nbdlink-sysfs-XXXXXX", &error);
        g_autofree char *cmd = NULL;
        _cleanup_free_ NbdSysfsDevice *list = NULL;
        DeviceInfo *devs = NULL;
        NbdSysfsDevice d;
        size_t n = 0;

        g_assert_no_error(error);
        /* No block directory at all: nothing attached, no error. */
        g_assert_cmpint(nbd_sysfs_list_connected(root, &list, &n), ==, 0);
        g_assert_cmpuint(n, ==, 0);

        write_file(root, "block/nbd2/pid", "77\n");
        write_file(root, "block/nbd2/size", "8\n");
        write_file(root, "block/nbd2/ro", "0\n");
        write_file(root, "block/nbd10/size", "2\n");          /* no pid file: size alone counts */
        write_file(root, "block/nbd10/ro", "1\n");
        write_file(root, "block/nbd1/size", "0\n");           /* there, not connected */
        write_file(root, "block/nbd01/pid", "1\n");           /* not a name the bus API takes */
        write_file(root, "block/loop0/pid", "1\n");
        write_file(root, "block/nbd5/size", "junk\n");

        g_assert_cmpint(nbd_sysfs_read(root, 2, &d), ==, 0);
        g_assert_true(d.exists);
        g_assert_true(d.connected);
        g_assert_cmpint(d.pid, ==, 77);
        g_assert_cmpuint(d.size, ==, 4096);
        g_assert_false(d.read_only);
        g_assert_cmpint(nbd_sysfs_read(root, 1, &d), ==, 0);
        g_assert_true(d.exists);
        g_assert_false(d.connected);
        g_assert_cmpint(nbd_sysfs_read(root, 7, &d), ==, 0);
        g_assert_false(d.exists);
        g_assert_false(d.connected);
        g_assert_cmpint(nbd_sysfs_read(root, 5, &d), ==, -EBADMSG);

        /* The list stops at the file it cannot read. */
        g_assert_cmpint(nbd_sysfs_list_connected(root, &list, &n), ==, -EBADMSG);
        write_file(root, "block/nbd5/size", "0\n");
        g_assert_cmpint(nbd_sysfs_list_connected(root, &list, &n), ==, 0);
        g_assert_cmpuint(n, ==, 2);
        g_assert_cmpint(list[0].index, ==, 2);
        g_assert_cmpint(list[1].index, ==, 10);
        g_assert_true(list[1].read_only);
        g_assert_cmpuint(list[1].size, ==, 1024);

        /* The daemon's nbd2 stays its own; nbd10 joins as another tool's,
         * in order after nbd3. */
        devs = g_new0(DeviceInfo, 2);
        devs[0] = (DeviceInfo) { .device = g_strdup("/dev/nbd3"), .managed = true };
        devs[1] = (DeviceInfo) { .device = g_strdup("nbd2"), .managed = true };
        n = 2;
        g_assert_cmpint(devices_add_others(&devs, &n, root), ==, 0);
        g_assert_cmpuint(n, ==, 3);
        g_assert_cmpstr(devs[0].device, ==, "nbd2");
        g_assert_cmpstr(devs[1].device, ==, "/dev/nbd3");
        g_assert_cmpstr(devs[2].device, ==, "/dev/nbd10");
        g_assert_false(devs[2].managed);
        g_assert_cmpstr(devs[2].state, ==, "other");
        g_assert_cmpuint(devs[2].size, ==, 1024);
        devices_free(devs, n);

        cmd = g_strdup_printf("rm -rf '%s'", root);
        g_assert_cmpint(system(cmd), ==, 0);
}

static void test_device_uri(void) {
        DeviceInfo d = { .managed = true, .host = (char *) "192.0.2.1", .port = 10809,
                         .export_name = (char *) "disk one", .tls = true };
        g_autofree char *a = device_info_uri(&d), *b = NULL, *c = NULL, *e = NULL;

        g_assert_cmpstr(a, ==, "nbds://192.0.2.1:10809/disk%20one");
        d = (DeviceInfo) { .managed = true, .host = (char *) "unix:/run/n.sock", .export_name = (char *) "" };
        b = device_info_uri(&d);
        g_assert_cmpstr(b, ==, "nbd+unix:///?socket=/run/n.sock");
        /* A socket its caller handed over has no path to name. */
        d = (DeviceInfo) { .managed = true, .host = (char *) "", .export_name = (char *) "x" };
        c = device_info_uri(&d);
        g_assert_null(c);
        d = (DeviceInfo) { .managed = false, .host = (char *) "h" };
        e = device_info_uri(&d);
        g_assert_null(e);
}

static void test_uid_names(void) {
        g_autofree char *root = uid_to_name(0), *none = uid_to_name(4000000123u);

        g_assert_cmpstr(root, ==, "root");
        /* A uid without a name is its number. */
        g_assert_cmpstr(none, ==, "4000000123");
}

static void test_timestamps(void) {
        static const struct {
                const char *tz;
                uint64_t usec;
                const char *text;
        } cases[] = {
                { "UTC0", 1234567, "1970-01-01T00:00:01.234+00:00" },
                { "UTC0", UINT64_C(1714566896789999), "2024-05-01T12:34:56.789+00:00" },
                { "<+0530>-5:30", UINT64_C(1714566896000000), "2024-05-01T18:04:56.000+05:30" },
                { "EST5", UINT64_C(1714566896001000), "2024-05-01T07:34:56.001-05:00" },
        };
        g_autofree char *saved = g_strdup(g_getenv("TZ"));
        char buf[FORMAT_TIMESTAMP_MAX];

        for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
                g_assert_true(g_setenv("TZ", cases[i].tz, TRUE));
                tzset();
                g_assert_cmpstr(format_timestamp(buf, cases[i].usec), ==, cases[i].text);
        }
        if (saved)
                g_setenv("TZ", saved, TRUE);
        else
                g_unsetenv("TZ");
        tzset();
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/cli/json/escape", test_escape);
        g_test_add_func("/cli/json/document", test_document);
        g_test_add_func("/cli/json/keys", test_json_keys);
        g_test_add_func("/cli/format/sizes", test_sizes);
        g_test_add_func("/cli/format/table", test_table);
        g_test_add_func("/cli/format/timestamps", test_timestamps);
        g_test_add_func("/cli/format/table-wide", test_wide_table);
        g_test_add_func("/cli/format/table-empty", test_empty_table);
        g_test_add_func("/cli/flags/names", test_flag_names);
        g_test_add_func("/cli/flags/json", test_flags_json);
        g_test_add_func("/cli/flags/questions", test_questions);
        g_test_add_func("/cli/devices/arguments", test_device_args);
        g_test_add_func("/cli/devices/sysfs", test_sysfs);
        g_test_add_func("/cli/devices/uri", test_device_uri);
        g_test_add_func("/cli/devices/owner-names", test_uid_names);
        return g_test_run();
}
