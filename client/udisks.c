/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* udisks2's view of an nbd device (udisks.h). */

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
#include "udisks.h"

#define UDISKS_MANAGER_PATH "/org/freedesktop/UDisks2"
#define UDISKS_BLOCK_INTERFACE "org.freedesktop.UDisks2.Block"
#define UDISKS_FILESYSTEM_INTERFACE "org.freedesktop.UDisks2.Filesystem"
/* Mounting may wait for a password. */
#define UDISKS_MOUNT_TIMEOUT_USEC (5 * 60 * USEC_PER_SEC)
#define UDISKS_POLL_USEC (50 * USEC_PER_MSEC)
#define MAX_PARTITIONS 256

void udisks_filesystems_free(UdisksFilesystem *f, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(f[i].object);
                free(f[i].device);
                free(f[i].type);
                free(f[i].label);
                free(f[i].mount_point);
        }
        free(f);
}

/* One udisks2 block object, as much of it as we look at. */
typedef struct Block {
        char *device;
        char *usage;
        char *type;
        char *label;
        char *mount_point;
        bool filesystem;
} Block;

static void block_done(Block *b) {
        free(b->device);
        free(b->usage);
        free(b->type);
        free(b->label);
        free(b->mount_point);
        *b = (Block) {};
}

/* A bytestring property ("ay", NUL-terminated by udisks2) as a string. */
static int read_bytestring(sd_bus_message *m, char **ret) {
        const void *p;
        size_t n;
        int r;

        r = sd_bus_message_read_array(m, 'y', &p, &n);
        if (r < 0)
                return r;
        while (n > 0 && ((const char *) p)[n - 1] == '\0')
                n--;
        if (memchr(p, '\0', n))
                return -EBADMSG;
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

static int block_property(sd_bus_message *m, const char *key, void *userdata) {
        Block *b = userdata;
        int r;

        if (strcmp(key, "Device") == 0) {
                r = sd_bus_message_enter_container(m, 'v', "ay");
                if (r >= 0)
                        r = read_bytestring(m, &b->device);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                return r;
        }
        if (strcmp(key, "IdUsage") == 0)
                return bus_read_string_variant(m, &b->usage);
        if (strcmp(key, "IdType") == 0)
                return bus_read_string_variant(m, &b->type);
        if (strcmp(key, "IdLabel") == 0)
                return bus_read_string_variant(m, &b->label);
        return sd_bus_message_skip(m, "v");
}

static int filesystem_property(sd_bus_message *m, const char *key, void *userdata) {
        Block *b = userdata;
        int r;

        if (strcmp(key, "MountPoints") != 0)
                return sd_bus_message_skip(m, "v");
        r = sd_bus_message_enter_container(m, 'v', "aay");
        if (r >= 0)
                r = sd_bus_message_enter_container(m, 'a', "ay");
        /* The first mount point; a file system mounted twice has more. */
        while (r >= 0 && (r = sd_bus_message_at_end(m, false)) == 0)
                r = b->mount_point ? sd_bus_message_skip(m, "ay") : read_bytestring(m, &b->mount_point);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        if (r >= 0)
                r = sd_bus_message_exit_container(m);
        return r;
}

static int read_interface(sd_bus_message *m, const char *interface, Block *b) {
        if (strcmp(interface, UDISKS_BLOCK_INTERFACE) == 0)
                return bus_read_dict(m, block_property, b);
        if (strcmp(interface, UDISKS_FILESYSTEM_INTERFACE) == 0) {
                b->filesystem = true;
                return bus_read_dict(m, filesystem_property, b);
        }
        return sd_bus_message_skip(m, "a{sv}");
}

/* Whether device is node itself or one of its partitions (nodepM). */
static bool is_ours(const char *device, const char *node) {
        size_t l = strlen(node);
        const char *p;

        if (!device || strncmp(device, node, l) != 0)
                return false;
        if (device[l] == '\0')
                return true;
        if (device[l] != 'p' || !device[l + 1])
                return false;
        for (p = device + l + 1; *p; p++)
                if (*p < '0' || *p > '9')
                        return false;
        return true;
}

/* How many partitions the kernel shows for node, from sysfs. */
static int count_partitions(const char *node) {
        const char *name = device_short_name(node);
        char path[64];
        struct dirent *de;
        size_t l = strlen(name);
        DIR *d;
        int n = 0;

        (void) snprintf(path, sizeof(path), "/sys/block/%s", name);
        d = opendir(path);
        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (strncmp(de->d_name, name, l) == 0 && de->d_name[l] == 'p')
                        n++;
        closedir(d);
        return n;
}

static int cmp_filesystem(const void *a, const void *b) {
        const UdisksFilesystem *x = a, *y = b;
        size_t lx = strlen(x->device), ly = strlen(y->device);
        /* nbd0p2 before nbd0p10. */
        return lx != ly ? (lx > ly) - (lx < ly) : strcmp(x->device, y->device);
}

/* One look at udisks2's objects: 1 with the file systems when it knows
 * the whole device, 0 when not yet. */
static int look(sd_bus *bus, const char *node, int partitions, UdisksFilesystem **ret, size_t *ret_n,
                sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        UdisksFilesystem *fs = NULL;
        size_t n_fs = 0;
        int seen = 0, r;
        bool pending = false;

        r = sd_bus_call_method(bus, UDISKS_BUS_NAME, UDISKS_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager",
                               "GetManagedObjects", error, &reply, NULL);
        if (r < 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                _cleanup_(block_done) Block b = {};
                const char *object;

                r = sd_bus_message_read(reply, "o", &object);
                if (r >= 0)
                        r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}");
                while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *interface;

                        r = sd_bus_message_read(reply, "s", &interface);
                        if (r >= 0)
                                r = read_interface(reply, interface, &b);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                }
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        goto fail;

                if (!is_ours(b.device, node))
                        continue;
                seen++;
                if (!b.usage || strcmp(b.usage, "filesystem") != 0)
                        continue;
                /* Probed as a file system, but the interface to mount it
                 * comes a moment later. */
                if (!b.filesystem) {
                        pending = true;
                        continue;
                }
                UdisksFilesystem *l = reallocarray(fs, n_fs + 1, sizeof(*fs));
                if (!l) {
                        r = -ENOMEM;
                        goto fail;
                }
                fs = l;
                fs[n_fs] = (UdisksFilesystem) {
                        .object = strdup(object),
                        .device = TAKE_PTR(b.device),
                        .type = TAKE_PTR(b.type),
                        .label = TAKE_PTR(b.label),
                        .mount_point = TAKE_PTR(b.mount_point),
                };
                n_fs++;
                if (!fs[n_fs - 1].object) {
                        r = -ENOMEM;
                        goto fail;
                }
        }
        if (r < 0)
                goto fail;

        if (pending || seen < 1 + partitions) {
                udisks_filesystems_free(fs, n_fs);
                return 0;
        }
        qsort(fs, n_fs, sizeof(*fs), cmp_filesystem);
        *ret = fs;
        *ret_n = n_fs;
        return 1;

fail:
        udisks_filesystems_free(fs, n_fs);
        return r;
}

int udisks_wait_filesystems(sd_bus *bus, const char *node, usec_t timeout,
                            UdisksFilesystem **ret, size_t *ret_n, sd_bus_error *error) {
        usec_t deadline = deadline_after(timeout);
        int r;

        for (;;) {
                /* Read again each time: the kernel may still be adding. */
                int partitions = count_partitions(node);
                if (partitions < 0)
                        return partitions;
                r = look(bus, node, MIN(partitions, MAX_PARTITIONS), ret, ret_n, error);
                if (r != 0)
                        return r < 0 ? r : 0;
                if (now_usec(CLOCK_MONOTONIC) >= deadline)
                        return -ETIMEDOUT;
                (void) nanosleep(&(struct timespec) { .tv_nsec = UDISKS_POLL_USEC * 1000 }, NULL);
        }
}

int udisks_mount(sd_bus *bus, const UdisksFilesystem *fs, char **ret_path, sd_bus_error *error) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *path;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, UDISKS_BUS_NAME, fs->object, UDISKS_FILESYSTEM_INTERFACE, "Mount");
        if (r < 0)
                return r;
        /* udisks2 reads its own option rather than the message's flag. */
        if (may_ask_password())
                r = sd_bus_message_append(m, "a{sv}", 0);
        else
                r = sd_bus_message_append(m, "a{sv}", 1, "auth.no_user_interaction", "b", 1);
        if (r < 0)
                return r;
        r = sd_bus_call(bus, m, UDISKS_MOUNT_TIMEOUT_USEC, error, &reply);
        if (r < 0)
                return r;
        r = sd_bus_message_read(reply, "s", &path);
        if (r < 0)
                return r;
        *ret_path = strdup(path);
        return *ret_path ? 0 : -ENOMEM;
}
