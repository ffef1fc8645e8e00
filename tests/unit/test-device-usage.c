/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Who uses an nbd device, read from a root of the test's making: a mount
 * of the disk or of a partition (found by device number, whatever the
 * mount table calls the source), a holder of a partition, nothing. The
 * exclusive-open check needs real block devices: the vm suite has it. */

#include <errno.h>
#include <string.h>

#include "device-usage.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>
#include <glib/gstdio.h>

typedef struct Root {
        char *dir;
} Root;

static void put(Root *r, const char *rel, const char *contents) {
        g_autofree char *path = g_build_filename(r->dir, rel, NULL);
        g_autofree char *parent = g_path_get_dirname(path);

        g_assert_cmpint(g_mkdir_with_parents(parent, 0755), ==, 0);
        g_assert_true(g_file_set_contents(path, contents, -1, NULL));
}

static void mkdir_in(Root *r, const char *rel) {
        g_autofree char *path = g_build_filename(r->dir, rel, NULL);
        g_assert_cmpint(g_mkdir_with_parents(path, 0755), ==, 0);
}

/* nbd2 with partitions p1 (43:65) and p2 (43:66), nodes in dev/. */
static void root_init(Root *r, const char *mountinfo) {
        r->dir = g_dir_make_tmp("nbdlink-usage-XXXXXX", NULL);
        g_assert_nonnull(r->dir);
        put(r, "sys/block/nbd2/dev", "43:64\n");
        put(r, "sys/block/nbd2/nbd2p1/dev", "43:65\n");
        put(r, "sys/block/nbd2/nbd2p2/dev", "43:66\n");
        mkdir_in(r, "sys/block/nbd2/holders");
        mkdir_in(r, "sys/block/nbd2/nbd2p1/holders");
        mkdir_in(r, "sys/block/nbd2/nbd2p2/holders");
        put(r, "sys/block/nbd20/dev", "43:640\n");          /* a name sharing the prefix */
        put(r, "dev/nbd2", "");
        put(r, "dev/nbd2p1", "");
        put(r, "dev/nbd2p2", "");
        put(r, "proc/self/mountinfo", mountinfo);
}

static void root_done(Root *r) {
        g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", r->dir);
        g_assert_cmpint(system(cmd), ==, 0);
        g_free(r->dir);
}

#define ROOTFS "22 1 254:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"

static void test_free(void) {
        Root r;
        Error e = {};

        root_init(&r, ROOTFS "40 22 43:640 / /mnt/other rw - ext4 /dev/nbd20 rw\n");
        g_assert_cmpint(nbd_device_usage(r.dir, 2, &e), ==, 0);
        root_done(&r);
}

static void test_partition_mounted(void) {
        Root r;
        Error e = {};

        /* The source column says anything (a by-uuid link here): the device
         * number decides. The mount point is left as mountinfo escapes it. */
        root_init(&r, ROOTFS "41 22 43:66 / /media/my\\040disk rw,nosuid - ext4 /dev/disk/by-uuid/x rw\n");
        g_assert_cmpint(nbd_device_usage(r.dir, 2, &e), ==, -EBUSY);
        g_assert_cmpstr(e.message, ==, "/dev/nbd2p2 is mounted on /media/my\\040disk");
        root_done(&r);
}

static void test_whole_disk_mounted(void) {
        Root r;
        Error e = {};

        root_init(&r, ROOTFS "41 22 43:64 / /srv rw - xfs /dev/nbd2 rw\n");
        g_assert_cmpint(nbd_device_usage(r.dir, 2, &e), ==, -EBUSY);
        g_assert_cmpstr(e.message, ==, "/dev/nbd2 is mounted on /srv");
        root_done(&r);
}

static void test_held(void) {
        Root r;
        Error e = {};

        root_init(&r, ROOTFS);
        mkdir_in(&r, "sys/block/nbd2/nbd2p1/holders/dm-0");
        g_assert_cmpint(nbd_device_usage(r.dir, 2, &e), ==, -EBUSY);
        g_assert_cmpstr(e.message, ==, "/dev/nbd2p1 is held by dm-0");
        root_done(&r);
}

static void test_no_such_device(void) {
        Root r;
        Error e = {};

        root_init(&r, ROOTFS);
        g_assert_cmpint(nbd_device_usage(r.dir, 7, &e), ==, -ENOENT);
        root_done(&r);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/device-usage/free", test_free);
        g_test_add_func("/device-usage/partition-mounted", test_partition_mounted);
        g_test_add_func("/device-usage/whole-disk-mounted", test_whole_disk_mounted);
        g_test_add_func("/device-usage/held", test_held);
        g_test_add_func("/device-usage/no-such-device", test_no_such_device);
        return g_test_run();
}
