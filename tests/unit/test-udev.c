/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What nbdlinkd tells udev (udev-properties.c) and how it reads udev's
 * broadcast (udev-settle.c): the per-device properties file as udev will
 * read it, and uevents from the kernel and from udevd, well-formed or
 * not. The wait itself is exercised against a real udevd in the system
 * suite. */

#include <arpa/inet.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <stdint.h>
#include <string.h>

#include "udev-properties.h"
#include "udev-settle.h"

static void test_properties_format(void) {
        g_autofree char *text = udev_properties_format(&(UdevDeviceInfo) {
                .index = 3, .owner_uid = 1000, .host = "server.example", .port = 10809, .export_name = "disk",
        });

        g_assert_cmpstr(text, ==,
                        "NBDLINK_OWNER_UID=\"1000\"\n"
                        "NBDLINK_SERVER=\"server.example:10809\"\n"
                        "NBDLINK_EXPORT=\"disk\"\n"
                        "NBDLINK_NAME=\"disk on server.example\"\n");
}

static void test_properties_default_export_and_ipv6(void) {
        g_autofree char *text = udev_properties_format(&(UdevDeviceInfo) {
                .index = 0, .owner_uid = 0, .host = "::1", .port = 10809, .export_name = "",
        });

        g_assert_nonnull(strstr(text, "NBDLINK_SERVER=\"[::1]:10809\"\n"));
        g_assert_nonnull(strstr(text, "NBDLINK_EXPORT=\"\"\n"));
        g_assert_nonnull(strstr(text, "NBDLINK_NAME=\"NBD disk on ::1\"\n"));

        g_free(text);
        text = udev_properties_format(&(UdevDeviceInfo) {
                .index = 0, .owner_uid = 0, .host = "/run/nbd.sock", .port = 0, .export_name = "x",
        });
        g_assert_nonnull(strstr(text, "NBDLINK_SERVER=\"/run/nbd.sock\"\n"));
}

/* A server's export name is anything: a newline in it must not start a
 * line of its own, which udev would read as a property we never set. */
static void test_properties_hostile_export(void) {
        g_autofree char *text = udev_properties_format(&(UdevDeviceInfo) {
                .index = 0, .owner_uid = 1000, .host = "h",
                .export_name = "a\nUDISKS_SYSTEM=\"1\"\r\"\x1b[2J\xe2\x80\xae",
        });
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);

        g_assert_cmpuint(g_strv_length(lines), ==, 5);         /* four lines and the end */
        for (size_t i = 0; i < 4; i++)
                g_assert_true(g_str_has_prefix(lines[i], "NBDLINK_"));
        g_assert_cmpstr(lines[2], ==, "NBDLINK_EXPORT=\"a\\x0aUDISKS_SYSTEM=\"1\"\\x0d\"\\x1b[2J\\u202E\"");
}

static void test_properties_write_remove(void) {
        g_autofree char *dir = g_dir_make_tmp("nbdlink-udev-XXXXXX", NULL);
        g_autofree char *path = g_build_filename(dir, "udev", "nbd7", NULL);
        g_autofree char *contents = NULL;
        const UdevDeviceInfo info = { .index = 7, .owner_uid = 42, .host = "h", .export_name = "e" };
        GStatBuf st;

        g_assert_cmpint(udev_properties_write(dir, &info), ==, 0);
        g_assert_true(g_file_get_contents(path, &contents, NULL, NULL));
        g_assert_nonnull(strstr(contents, "NBDLINK_OWNER_UID=\"42\"\n"));
        g_assert_cmpint(g_stat(path, &st), ==, 0);
        g_assert_cmpint(st.st_mode & 0777, ==, 0644);
        /* Written again: replaced, and no temporary file left. */
        g_assert_cmpint(udev_properties_write(dir, &info), ==, 0);
        g_autofree char *udev_dir = g_build_filename(dir, "udev", NULL);
        GDir *d = g_dir_open(udev_dir, 0, NULL);
        g_assert_cmpstr(g_dir_read_name(d), ==, "nbd7");
        g_assert_null(g_dir_read_name(d));
        g_dir_close(d);

        g_assert_cmpint(udev_properties_remove(dir, 7), ==, 0);
        g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
        g_assert_cmpint(udev_properties_remove(dir, 7), ==, 0);
        g_assert_cmpint(g_rmdir(udev_dir), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);
}

#define KERNEL_EVENT(action, devpath, seqnum) \
        action "@" devpath "\0ACTION=" action "\0DEVPATH=" devpath "\0SUBSYSTEM=block\0SEQNUM=" seqnum

static void test_parse_kernel(void) {
        static const char add[] = KERNEL_EVENT("add", "/devices/virtual/block/nbd0/nbd0p1", "4711");
        static const char no_seqnum[] = "change@/x\0ACTION=change\0DEVPATH=/x";
        static const char no_at[] = "change /x\0DEVPATH=/x\0SEQNUM=1";
        static const char bad_seqnum[] = "change@/x\0DEVPATH=/x\0SEQNUM=1x";
        Uevent e;

        /* sizeof includes the string's own final NUL, as the kernel sends it. */
        g_assert_cmpint(uevent_parse(add, sizeof(add), false, &e), ==, 0);
        g_assert_cmpstr(e.devpath, ==, "/devices/virtual/block/nbd0/nbd0p1");
        g_assert_cmpuint(e.seqnum, ==, 4711);
        /* Cut before the last NUL: not a whole message. */
        g_assert_cmpint(uevent_parse(add, sizeof(add) - 1, false, &e), ==, -EBADMSG);
        g_assert_cmpint(uevent_parse(no_seqnum, sizeof(no_seqnum), false, &e), ==, -EBADMSG);
        g_assert_cmpint(uevent_parse(no_at, sizeof(no_at), false, &e), ==, -EBADMSG);
        g_assert_cmpint(uevent_parse(bad_seqnum, sizeof(bad_seqnum), false, &e), ==, -EBADMSG);
        g_assert_cmpint(uevent_parse("", 0, false, &e), ==, -EBADMSG);
        /* udevd's messages are not the kernel's, nor the other way round. */
        g_assert_cmpint(uevent_parse(add, sizeof(add), true, &e), ==, -EBADMSG);
}

/* libudev's header: "libudev\0", magic (big endian), header size,
 * properties offset and length (host order), then filter hashes. */
static size_t udev_message(uint8_t *buf, size_t size, const char *props, size_t props_len, uint32_t magic) {
        uint32_t header_size = 40, be_magic = htonl(magic);

        g_assert_cmpuint(size, >=, header_size + props_len);
        memset(buf, 0, header_size);
        memcpy(buf, "libudev", 8);
        memcpy(buf + 8, &be_magic, 4);
        memcpy(buf + 12, &header_size, 4);
        memcpy(buf + 16, &header_size, 4);
        memcpy(buf + 20, &(uint32_t) { (uint32_t) props_len }, 4);
        memcpy(buf + header_size, props, props_len);
        return header_size + props_len;
}

static void test_parse_udev(void) {
        static const char props[] = "ACTION=change\0DEVPATH=/devices/virtual/block/nbd12\0SEQNUM=99\0DEVNAME=/dev/nbd12";
        uint8_t buf[512];
        size_t n;
        Uevent e;

        n = udev_message(buf, sizeof(buf), props, sizeof(props), 0xfeedcafe);
        g_assert_cmpint(uevent_parse(buf, n, true, &e), ==, 0);
        g_assert_cmpstr(e.devpath, ==, "/devices/virtual/block/nbd12");
        g_assert_cmpuint(e.seqnum, ==, 99);
        g_assert_cmpint(uevent_parse(buf, n, false, &e), ==, -EBADMSG);

        n = udev_message(buf, sizeof(buf), props, sizeof(props), 0xfeedcafd);
        g_assert_cmpint(uevent_parse(buf, n, true, &e), ==, -EBADMSG);

        /* Properties said to reach past the message. */
        n = udev_message(buf, sizeof(buf), props, sizeof(props), 0xfeedcafe);
        memcpy(buf + 20, &(uint32_t) { (uint32_t) sizeof(props) + 1 }, 4);
        g_assert_cmpint(uevent_parse(buf, n, true, &e), ==, -EBADMSG);
        memcpy(buf + 16, &(uint32_t) { UINT32_MAX - 2 }, 4);
        g_assert_cmpint(uevent_parse(buf, n, true, &e), ==, -EBADMSG);
        g_assert_cmpint(uevent_parse(buf, 20, true, &e), ==, -EBADMSG);
}

static void test_devpath(void) {
        g_assert_true(uevent_devpath_is_device("/devices/virtual/block/nbd1", 1));
        g_assert_true(uevent_devpath_is_device("/devices/virtual/block/nbd1/nbd1p2", 1));
        g_assert_false(uevent_devpath_is_device("/devices/virtual/block/nbd10", 1));
        g_assert_false(uevent_devpath_is_device("/devices/virtual/block/nbd10/nbd10p1", 1));
        g_assert_false(uevent_devpath_is_device("/devices/virtual/block/loop1", 1));
        g_assert_false(uevent_devpath_is_device("/devices/virtual/block/nbd1", 0));
        g_assert_true(uevent_devpath_is_device("/devices/virtual/block/nbd10", 10));
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/udev/properties/format", test_properties_format);
        g_test_add_func("/udev/properties/default-export-ipv6", test_properties_default_export_and_ipv6);
        g_test_add_func("/udev/properties/hostile-export", test_properties_hostile_export);
        g_test_add_func("/udev/properties/write-remove", test_properties_write_remove);
        g_test_add_func("/udev/uevent/kernel", test_parse_kernel);
        g_test_add_func("/udev/uevent/udev", test_parse_udev);
        g_test_add_func("/udev/uevent/devpath", test_devpath);
        return g_test_run();
}
