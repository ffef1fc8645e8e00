/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a file manager does with nbdlinkd, written with GDBus only: list the
 * exports of a server, attach one, follow the device through the
 * ObjectManager (InterfacesAdded, PropertiesChanged, Disconnected,
 * InterfacesRemoved), and detach it; or open an nbd:// location the whole
 * way, with udisks mounting its file systems. The tests run it so that it
 * keeps working; it is also meant to be read.
 *
 *   nbd-file-manager HOST[:PORT]                    list the exports
 *   nbd-file-manager HOST[:PORT] EXPORT             ... attach EXPORT, detach it
 *   nbd-file-manager --wait-disconnect HOST[:PORT] EXPORT
 *                                                   ... attach, then wait for the
 *                                                   server to go away
 *   nbd-file-manager --open URI                     AttachURI; wait for udisks to
 *                                                   show the device; mount each
 *                                                   file system on it through
 *                                                   udisks, list its top; then
 *                                                   unmount, detach
 * --no-interaction, with any of them: polkit may not ask for a password
 * (nor udisks' own polkit checks: auth.no_user_interaction).
 *
 * Every line it prints is one event, so that a test can follow along:
 *   export NAME: DESCRIPTION
 *   added nbdN State=connecting
 *   changed nbdN State=attached Size=...
 *   attached /dev/nbdN size=BYTES read-only=no
 *   disconnected nbdN: ERROR-NAME: MESSAGE
 *   removed nbdN
 *   detached /dev/nbdN
 * and with --open, MS being milliseconds since just before AttachURI:
 *   attached /dev/nbdN after MS ms
 *   filesystem /dev/nbdNpM type=TYPE label=LABEL    one a file system
 *   mounted /dev/nbdNpM at PATH after MS ms         for each in turn, and
 *   file NAME                                       the names at its top, sorted
 *   listed COUNT files after MS ms                  COUNT for all of them
 *   unmounted /dev/nbdNpM                           each, the last mounted first
 *   detached /dev/nbdN
 * (a file system on the whole disk is /dev/nbdN itself; LABEL may be "").
 * Errors go to stderr as "nbd-file-manager: WHAT: MESSAGE (ERROR-NAME)";
 * ERROR-NAME is the D-Bus error's name ("local error" when there is none).
 * Once --open has attached, a failure still unmounts what was mounted and
 * detaches. The exit status is 0 when everything went as asked, 1
 * otherwise, 2 for wrong arguments.
 *
 * Whom to believe. Any local user can send a signal straight to our
 * connection, with any path and interface, and the bus delivers it
 * whatever sender the match rules name. Only the owner of
 * org.nbdlink.NBD1 speaks for the daemon:
 *  - GDBusObjectManagerClient subscribes to the objects' signals
 *    (PropertiesChanged, Disconnected) with the owner's unique name, which
 *    GDBus compares with each signal's sender in every version;
 *  - InterfacesAdded and InterfacesRemoved reach it through a GDBusProxy
 *    for the well-known name, which drops signals from anyone but the
 *    owner while there is one. While there is none, GLib 2.80.1, 2.78.5
 *    and distributions' backports of that fix (CVE-2024-34397; Debian 12
 *    since 2.74.6-2+deb12u1) drop them too; older GLib passes them on, and
 *    the objects they make have no owner's name: from_daemon() below
 *    skips those.
 * The same holds for udisks: only what the owner of org.freedesktop.UDisks2
 * announced picks the file systems to mount. Method replies need no such
 * care: the bus routes a reply only from the peer that was called. */

#include <gio/gio.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define BUS_NAME      "org.nbdlink.NBD1"
#define MANAGER_PATH  "/org/nbdlink/NBD1"
#define MANAGER_IFACE "org.nbdlink.NBD1.Manager"
#define DEVICE_IFACE  "org.nbdlink.NBD1.Device"

#define UDISKS_NAME             "org.freedesktop.UDisks2"
#define UDISKS_PATH             "/org/freedesktop/UDisks2"
#define UDISKS_BLOCK            "org.freedesktop.UDisks2.Block"
#define UDISKS_PARTITION        "org.freedesktop.UDisks2.Partition"
#define UDISKS_PARTITION_TABLE  "org.freedesktop.UDisks2.PartitionTable"
#define UDISKS_FILESYSTEM       "org.freedesktop.UDisks2.Filesystem"

/* Attaching waits for the server and, for an unprivileged user, maybe for
 * a polkit dialog: give it time. */
#define CALL_TIMEOUT_MS (5 * 60 * 1000)
/* The whole run, so that a test never hangs on a lost signal. */
#define RUN_TIMEOUT_S 120
/* Attach returns once udev has seen the device and its partitions; udisks
 * follows udev and may lag a little, never this long. */
#define UDISKS_WAIT_S 30

/* A file system on the device, as udisks shows it. */
typedef struct Volume {
        char *object_path;      /* udisks' object */
        char *device;           /* "/dev/nbdNpM", or the disk itself */
        char *mount_path;       /* what Mount answered, until unmounted */
} Volume;

typedef struct App {
        GMainLoop *loop;
        GDBusConnection *bus;
        GDBusObjectManager *manager;
        const char *host;
        const char *export_name;
        gboolean wait_disconnect;
        const char *uri;                /* --open */
        /* ALLOW_INTERACTIVE_AUTHORIZATION, unless --no-interaction */
        GDBusCallFlags call_flags;
        gint64 start_us;                /* --open: just before AttachURI */
        GDBusObjectManager *udisks;     /* --open: udisks' objects */
        char **partitions;              /* --open: the kernel's, "nbdNpM" */
        GPtrArray *volumes;             /* --open: Volume, disk first */

        char *object_path;      /* ours, once Attach answered */
        char *device;           /* "/dev/nbdN" */
        gboolean removed;       /* InterfacesRemoved for object_path */
        gboolean detached;      /* Detach answered */
        int status;
} App;

/* Whether iface came from the daemon: the manager gives each proxy the
 * owner's unique name, and none to an object announced while nobody owned
 * org.nbdlink.NBD1, which only a spoofed signal can do. */
static gboolean from_daemon(GDBusProxy *iface) {
        const char *owner = g_dbus_proxy_get_name(iface);

        return owner && g_dbus_is_unique_name(owner);
}

static const char *short_name(const char *object_path) {
        const char *slash = strrchr(object_path, '/');
        return slash ? slash + 1 : object_path;
}

/* One error line on stderr; the run will exit 1. */
static void report(App *app, const char *what, const GError *error) {
        g_autofree char *remote = g_dbus_error_get_remote_error(error);
        g_autoptr(GError) copy = g_error_copy(error);

        /* "GDBus.Error:org.nbdlink.NBD1.Error.X: text" → "text" */
        g_dbus_error_strip_remote_error(copy);
        fprintf(stderr, "nbd-file-manager: %s: %s (%s)\n", what, copy->message, remote ? remote : "local error");
        app->status = 1;
}

/* The same, and the main loop ends. */
static void fail(App *app, const char *what, const GError *error) {
        report(app, what, error);
        g_main_loop_quit(app->loop);
}

/* Done when our device is gone and, if we asked, Detach has answered. */
static void maybe_done(App *app) {
        if (app->removed && (app->wait_disconnect || app->detached))
                g_main_loop_quit(app->loop);
}

static char *format_properties(GVariant *changed) {
        GString *s = g_string_new(NULL);
        GVariantIter iter;
        const char *key;
        GVariant *value;

        g_variant_iter_init(&iter, changed);
        while (g_variant_iter_next(&iter, "{&sv}", &key, &value)) {
                g_autofree char *text = g_variant_is_of_type(value, G_VARIANT_TYPE_STRING)
                        ? g_strdup(g_variant_get_string(value, NULL))
                        : g_variant_print(value, FALSE);

                g_string_append_printf(s, " %s=%s", key, text);
                g_variant_unref(value);
        }
        return g_string_free(s, FALSE);
}

/* ---- the ObjectManager's view --------------------------------------- */

/* InterfacesAdded: a device object appeared (anyone's; a file manager
 * shows them all). The proxy already holds its properties. */
static void on_object_added(GDBusObjectManager *manager, GDBusObject *object, gpointer data) {
        g_autoptr(GDBusInterface) iface = g_dbus_object_get_interface(object, DEVICE_IFACE);
        g_autoptr(GVariant) state = NULL;

        if (!iface || !from_daemon(G_DBUS_PROXY(iface)))
                return;
        state = g_dbus_proxy_get_cached_property(G_DBUS_PROXY(iface), "State");
        printf("added %s State=%s\n", short_name(g_dbus_object_get_object_path(object)),
               state ? g_variant_get_string(state, NULL) : "?");
        fflush(stdout);
}

/* InterfacesRemoved: detached, or lost with the server. */
static void on_object_removed(GDBusObjectManager *manager, GDBusObject *object, gpointer data) {
        App *app = data;
        const char *path = g_dbus_object_get_object_path(object);
        g_autoptr(GDBusInterface) iface = g_dbus_object_get_interface(object, DEVICE_IFACE);

        if (!iface || !from_daemon(G_DBUS_PROXY(iface)))
                return;
        printf("removed %s\n", short_name(path));
        fflush(stdout);
        if (app->object_path && g_str_equal(path, app->object_path)) {
                app->removed = TRUE;
                maybe_done(app);
        }
}

/* PropertiesChanged: State moves on; on "attached" Size and the rest are
 * filled in. */
static void on_properties_changed(GDBusObjectManagerClient *manager, GDBusObjectProxy *object,
                                  GDBusProxy *proxy, GVariant *changed, const char *const *invalidated,
                                  gpointer data) {
        g_autofree char *text = NULL;

        if (!g_str_equal(g_dbus_proxy_get_interface_name(proxy), DEVICE_IFACE) || !from_daemon(proxy))
                return;
        text = format_properties(changed);
        printf("changed %s%s\n", short_name(g_dbus_proxy_get_object_path(proxy)), text);
        fflush(stdout);
}

/* Disconnected(s error, s message): the server went away on its own. */
static void on_proxy_signal(GDBusObjectManagerClient *manager, GDBusObjectProxy *object, GDBusProxy *proxy,
                            const char *sender, const char *signal, GVariant *params, gpointer data) {
        const char *name, *message;

        /* GDBus checked the sender already; the same test costs nothing
         * and says what is relied on. */
        if (!from_daemon(proxy) || g_strcmp0(sender, g_dbus_proxy_get_name(proxy)) != 0)
                return;
        if (!g_str_equal(signal, "Disconnected") || !g_variant_is_of_type(params, G_VARIANT_TYPE("(ss)")))
                return;
        g_variant_get(params, "(&s&s)", &name, &message);
        printf("disconnected %s: %s: %s\n", short_name(g_dbus_proxy_get_object_path(proxy)), name, message);
        fflush(stdout);
}

/* ---- detach ---------------------------------------------------------- */

static void on_detached(GObject *source, GAsyncResult *result, gpointer data) {
        App *app = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_proxy_call_finish(G_DBUS_PROXY(source), result, &error);

        if (!reply) {
                g_autofree char *what = g_strdup_printf("detach %s", app->device);
                fail(app, what, error);
                return;
        }
        printf("detached %s\n", app->device);
        fflush(stdout);
        app->detached = TRUE;
        maybe_done(app);
}

/* Through the device object's own Detach(), as a file manager's "eject"
 * would; Manager.Detach(device) does the same. */
static void detach(App *app) {
        g_autoptr(GDBusInterface) iface = g_dbus_object_manager_get_interface(app->manager, app->object_path,
                                                                               DEVICE_IFACE);

        if (!iface) {
                GError error = { G_IO_ERROR, G_IO_ERROR_NOT_FOUND, (char *) "the device object is gone" };
                g_autofree char *what = g_strdup_printf("detach %s", app->device);

                fail(app, what, &error);
                return;
        }
        g_dbus_proxy_call(G_DBUS_PROXY(iface), "Detach", NULL, app->call_flags, CALL_TIMEOUT_MS, NULL, on_detached,
                          app);
}

/* ---- attach ---------------------------------------------------------- */

static void on_attached(GObject *source, GAsyncResult *result, gpointer data) {
        App *app = data;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = g_dbus_connection_call_finish(G_DBUS_CONNECTION(source), result, &error);
        g_autoptr(GDBusInterface) iface = NULL;
        g_autoptr(GVariant) size = NULL, read_only = NULL;
        const char *object, *device;

        if (!reply) {
                g_autofree char *what = g_strdup_printf("attach %s export '%s'", app->host, app->export_name);
                fail(app, what, error);
                return;
        }
        g_variant_get(reply, "(&o&s)", &object, &device);
        app->object_path = g_strdup(object);
        /* The contract allows "nbdN" as well as "/dev/nbdN". */
        app->device = g_str_has_prefix(device, "/dev/") ? g_strdup(device) : g_strconcat("/dev/", device, NULL);

        /* The reply comes after the PropertiesChanged that filled in the
         * size, so the proxy's cache has it. */
        iface = g_dbus_object_manager_get_interface(app->manager, object, DEVICE_IFACE);
        if (iface) {
                size = g_dbus_proxy_get_cached_property(G_DBUS_PROXY(iface), "Size");
                read_only = g_dbus_proxy_get_cached_property(G_DBUS_PROXY(iface), "ReadOnly");
        }
        printf("attached %s size=%" G_GUINT64_FORMAT " read-only=%s\n", app->device,
               size ? g_variant_get_uint64(size) : 0, read_only && g_variant_get_boolean(read_only) ? "yes" : "no");
        fflush(stdout);

        if (!app->wait_disconnect)
                detach(app);
}

static void attach(App *app) {
        GVariantBuilder options;

        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&options, "{sv}", "timeout", g_variant_new_uint32(30));
        g_dbus_connection_call(app->bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "AttachWithOptions",
                               g_variant_new("(sss@a{sv})", "", app->host, app->export_name,
                                             g_variant_builder_end(&options)),
                               G_VARIANT_TYPE("(os)"), app->call_flags, CALL_TIMEOUT_MS, NULL, on_attached, app);
}

/* ---- list exports ---------------------------------------------------- */

static gboolean list_exports(App *app) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL, list = NULL;
        GVariantIter iter;
        const char *name, *description;

        reply = g_dbus_connection_call_sync(app->bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "ListExports",
                                            g_variant_new("(s@a{sv})", app->host,
                                                          g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
                                            G_VARIANT_TYPE("(a(ss))"), G_DBUS_CALL_FLAGS_NONE, CALL_TIMEOUT_MS,
                                            NULL, &error);
        if (!reply) {
                g_autofree char *what = g_strdup_printf("list exports of %s", app->host);
                fail(app, what, error);
                return FALSE;
        }
        list = g_variant_get_child_value(reply, 0);
        g_variant_iter_init(&iter, list);
        while (g_variant_iter_next(&iter, "(&s&s)", &name, &description))
                printf("export %s: %s\n", name, description);
        fflush(stdout);
        return TRUE;
}

/* ---- open: an nbd:// location, the way a file manager opens it -------- */

/* Each step of --open waits for the one before, so it is written as plain
 * synchronous calls; a file manager would make them asynchronously to keep
 * its windows alive, in the same order. */

static gint64 elapsed_ms(const App *app) {
        return (g_get_monotonic_time() - app->start_us) / 1000;
}

static gboolean open_attach(App *app) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        const char *object, *device;

        /* The clock starts here: what a user waits for is AttachURI (a
         * password dialog included) up to the files on screen. */
        app->start_us = g_get_monotonic_time();
        reply = g_dbus_connection_call_sync(app->bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "AttachURI",
                                            g_variant_new("(s@a{sv})", app->uri,
                                                          g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0)),
                                            G_VARIANT_TYPE("(os)"), app->call_flags, CALL_TIMEOUT_MS, NULL, &error);
        if (!reply) {
                g_autofree char *what = g_strdup_printf("attach %s", app->uri);
                report(app, what, error);
                return FALSE;
        }
        g_variant_get(reply, "(&o&s)", &object, &device);
        app->object_path = g_strdup(object);
        app->device = g_str_has_prefix(device, "/dev/") ? g_strdup(device) : g_strconcat("/dev/", device, NULL);
        printf("attached %s after %" G_GINT64_FORMAT " ms\n", app->device, elapsed_ms(app));
        fflush(stdout);
        return TRUE;
}

/* Through the device object, as for the other modes; the reply comes once
 * the device is free. */
static gboolean open_detach(App *app) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_sync(app->bus, BUS_NAME, app->object_path, DEVICE_IFACE, "Detach", NULL,
                                            G_VARIANT_TYPE_UNIT, app->call_flags, CALL_TIMEOUT_MS, NULL, &error);
        if (!reply) {
                g_autofree char *what = g_strdup_printf("detach %s", app->device);
                report(app, what, error);
                return FALSE;
        }
        printf("detached %s\n", app->device);
        fflush(stdout);
        return TRUE;
}

/* ---- open: udisks shows the device --------------------------------- */

static void volume_free(Volume *v) {
        g_free(v->object_path);
        g_free(v->device);
        g_free(v->mount_path);
        g_free(v);
}

/* A property of an interface of a udisks object, as udisks last announced
 * it: NULL when the object or interface did not come from the owner of
 * org.freedesktop.UDisks2 (from_daemon(), the same rule as for nbdlinkd),
 * or the value is not of the type that udisks documents. */
static GVariant *udisks_property(GDBusObject *object, const char *iface_name, const char *name, const char *type) {
        g_autoptr(GDBusInterface) iface = g_dbus_object_get_interface(object, iface_name);
        GVariant *value;

        if (!iface || !from_daemon(G_DBUS_PROXY(iface)))
                return NULL;
        value = g_dbus_proxy_get_cached_property(G_DBUS_PROXY(iface), name);
        if (value && !g_variant_is_of_type(value, G_VARIANT_TYPE(type)))
                g_clear_pointer(&value, g_variant_unref);
        return value;
}

static gboolean udisks_has(GDBusObject *object, const char *iface_name) {
        g_autoptr(GDBusInterface) iface = g_dbus_object_get_interface(object, iface_name);

        return iface && from_daemon(G_DBUS_PROXY(iface));
}

static char *udisks_string(GDBusObject *object, const char *iface_name, const char *name) {
        g_autoptr(GVariant) value = udisks_property(object, iface_name, name, "s");

        return g_strdup(value ? g_variant_get_string(value, NULL) : "");
}

/* The block object whose Device is device ("/dev/nbd0"), or NULL. */
static GDBusObject *udisks_find_block(App *app, const char *device) {
        GList *objects = g_dbus_object_manager_get_objects(app->udisks);
        GDBusObject *found = NULL;

        for (GList *l = objects; l && !found; l = l->next) {
                g_autoptr(GVariant) node = udisks_property(l->data, UDISKS_BLOCK, "Device", "ay");

                /* A byte string that ends in NUL; without the NUL,
                 * g_variant_get_bytestring() gives "" and nothing matches. */
                if (node && g_str_equal(g_variant_get_bytestring(node), device))
                        found = g_object_ref(l->data);
        }
        g_list_free_full(objects, g_object_unref);
        return found;
}

/* Whether udisks has caught up with udev on this block device. Every nbd
 * node exists, empty, before anything is attached, and udisks shows it:
 * size 0 is the node before the attach. A file system that blkid found
 * gets its Filesystem interface in the same update, but InterfacesAdded
 * and PropertiesChanged are separate messages: wait for both. udisks
 * never calls a disk that the kernel has partitioned a file system. */
static gboolean udisks_block_settled(GDBusObject *object, gboolean partitioned_disk) {
        g_autoptr(GVariant) size = udisks_property(object, UDISKS_BLOCK, "Size", "t");
        g_autofree char *usage = udisks_string(object, UDISKS_BLOCK, "IdUsage");

        if (!size || g_variant_get_uint64(size) == 0)
                return FALSE;
        if (!partitioned_disk && g_str_equal(usage, "filesystem"))
                return udisks_has(object, UDISKS_FILESYSTEM);
        return TRUE;
}

/* Whether udisks shows the device as the kernel has it: the disk, and
 * each partition of the kernel's as a Partition whose Table is the disk,
 * listed in the disk's PartitionTable.Partitions. */
static gboolean udisks_caught_up(App *app) {
        g_autoptr(GDBusObject) disk = udisks_find_block(app, app->device);
        g_autoptr(GVariant) listed = NULL;
        g_autofree const char **listed_paths = NULL;
        gboolean partitioned = app->partitions[0] != NULL;
        const char *disk_path;

        if (!disk || !udisks_block_settled(disk, partitioned))
                return FALSE;
        disk_path = g_dbus_object_get_object_path(disk);
        if (partitioned) {
                listed = udisks_property(disk, UDISKS_PARTITION_TABLE, "Partitions", "ao");
                if (!listed)
                        return FALSE;
                listed_paths = g_variant_get_objv(listed, NULL);
        }
        for (char **p = app->partitions; *p; p++) {
                g_autofree char *node = g_strconcat("/dev/", *p, NULL);
                g_autoptr(GDBusObject) part = udisks_find_block(app, node);
                g_autoptr(GVariant) table = part ? udisks_property(part, UDISKS_PARTITION, "Table", "o") : NULL;

                if (!table || !g_str_equal(g_variant_get_string(table, NULL), disk_path) ||
                    !g_strv_contains(listed_paths, g_dbus_object_get_object_path(part)) ||
                    !udisks_block_settled(part, FALSE))
                        return FALSE;
        }
        return TRUE;
}

/* Partition names sort by number: same prefix, so the shorter is less. */
static int compare_partitions(gconstpointer a, gconstpointer b) {
        const char *x = *(const char *const *) a, *y = *(const char *const *) b;
        size_t lx = strlen(x), ly = strlen(y);

        return lx != ly ? (lx < ly ? -1 : 1) : strcmp(x, y);
}

/* The partitions the kernel found on device, "nbd0p1"..., by number. The
 * daemon's Attach returns once they are scanned, so this is the whole
 * list; udisks' PartitionTable.Partitions lists only those udisks has seen
 * so far, and cannot tell whether one is still to come. */
static char **kernel_partitions(const char *device) {
        const char *name = device + strlen("/dev/");
        g_autofree char *sys = g_build_filename("/sys/class/block", name, NULL);
        g_autoptr(GDir) dir = g_dir_open(sys, 0, NULL);
        GPtrArray *found = g_ptr_array_new();
        const char *entry;

        while (dir && (entry = g_dir_read_name(dir))) {
                g_autofree char *attr = g_build_filename(sys, entry, "partition", NULL);

                if (g_str_has_prefix(entry, name) && g_file_test(attr, G_FILE_TEST_EXISTS))
                        g_ptr_array_add(found, g_strdup(entry));
        }
        g_ptr_array_sort(found, compare_partitions);
        g_ptr_array_add(found, NULL);
        return (char **) g_ptr_array_free(found, FALSE);
}

static void on_udisks_changed(App *app) {
        if (udisks_caught_up(app))
                g_main_loop_quit(app->loop);
}

static gboolean on_udisks_timeout(gpointer data) {
        App *app = data;

        g_main_loop_quit(app->loop);
        return G_SOURCE_REMOVE;
}

/* Waits, on udisks' signals rather than by asking again and again, until
 * udisks shows the device and its partitions; it may show them already. */
static gboolean open_wait_for_udisks(App *app) {
        g_autoptr(GError) error = NULL;
        g_autofree char *what = g_strdup_printf("find %s in udisks", app->device);
        g_autoptr(GSource) timeout = NULL;
        g_autofree char *owner = NULL;
        gulong handlers[3];
        gboolean found;

        app->partitions = kernel_partitions(app->device);
        app->udisks = g_dbus_object_manager_client_new_sync(app->bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                            UDISKS_NAME, UDISKS_PATH, NULL, NULL, NULL, NULL,
                                                            &error);
        if (!app->udisks) {
                report(app, what, error);
                return FALSE;
        }
        /* Without DO_NOT_AUTO_START the bus was asked to start udisks, where
         * it is installed: no owner now means none is coming. */
        owner = g_dbus_object_manager_client_get_name_owner(G_DBUS_OBJECT_MANAGER_CLIENT(app->udisks));
        if (!owner) {
                GError none = { G_IO_ERROR, G_IO_ERROR_NOT_FOUND, (char *) "udisks is not running" };

                report(app, what, &none);
                return FALSE;
        }
        if (udisks_caught_up(app))
                return TRUE;

        /* New objects (partitions), new interfaces on an object udisks had
         * (PartitionTable, Filesystem on the disk), new values (Size). */
        handlers[0] = g_signal_connect_swapped(app->udisks, "object-added", G_CALLBACK(on_udisks_changed), app);
        handlers[1] = g_signal_connect_swapped(app->udisks, "interface-added", G_CALLBACK(on_udisks_changed), app);
        handlers[2] = g_signal_connect_swapped(app->udisks, "interface-proxy-properties-changed",
                                               G_CALLBACK(on_udisks_changed), app);
        timeout = g_timeout_source_new_seconds(UDISKS_WAIT_S);
        g_source_set_callback(timeout, on_udisks_timeout, app, NULL);
        g_source_attach(timeout, NULL);
        g_main_loop_run(app->loop);
        g_source_destroy(timeout);
        for (size_t i = 0; i < G_N_ELEMENTS(handlers); i++)
                g_signal_handler_disconnect(app->udisks, handlers[i]);

        found = udisks_caught_up(app);
        if (!found) {
                GError late = { G_IO_ERROR, G_IO_ERROR_TIMED_OUT,
                                (char *) "udisks did not show the device and its partitions in time" };

                report(app, what, &late);
        }
        return found;
}

static void add_volume(App *app, GDBusObject *object) {
        Volume *v = g_new0(Volume, 1);
        g_autoptr(GVariant) node = udisks_property(object, UDISKS_BLOCK, "Device", "ay");
        g_autofree char *type = udisks_string(object, UDISKS_BLOCK, "IdType");
        g_autofree char *label = udisks_string(object, UDISKS_BLOCK, "IdLabel");

        v->object_path = g_strdup(g_dbus_object_get_object_path(object));
        v->device = g_strdup(g_variant_get_bytestring(node));
        g_ptr_array_add(app->volumes, v);
        printf("filesystem %s type=%s label=%s\n", v->device, type, label);
        fflush(stdout);
}

/* The file systems among the disk and its partitions, in the kernel's
 * order. */
static gboolean open_find_filesystems(App *app) {
        g_autoptr(GDBusObject) disk = udisks_find_block(app, app->device);

        if (disk && udisks_has(disk, UDISKS_FILESYSTEM))
                add_volume(app, disk);
        for (char **p = app->partitions; *p; p++) {
                g_autofree char *node = g_strconcat("/dev/", *p, NULL);
                g_autoptr(GDBusObject) part = udisks_find_block(app, node);

                if (part && udisks_has(part, UDISKS_FILESYSTEM))
                        add_volume(app, part);
        }
        if (app->volumes->len == 0) {
                g_autofree char *what = g_strdup_printf("open %s", app->device);
                GError none = { G_IO_ERROR, G_IO_ERROR_NOT_FOUND, (char *) "no file system that udisks can mount" };

                report(app, what, &none);
                return FALSE;
        }
        return TRUE;
}

/* ---- open: mount, list, unmount -------------------------------------- */

/* udisks asks polkit itself, on behalf of the caller, and lets polkit ask
 * for a password unless told not to in the options. */
static GVariant *udisks_options(const App *app) {
        GVariantBuilder options;

        g_variant_builder_init(&options, G_VARIANT_TYPE("a{sv}"));
        if (!(app->call_flags & G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION))
                g_variant_builder_add(&options, "{sv}", "auth.no_user_interaction", g_variant_new_boolean(TRUE));
        return g_variant_builder_end(&options);
}

/* Mounted where udisks chooses (/run/media/USER/LABEL, or /media/USER/...);
 * its answer is the path. An nbd device has no removable drive, so udisks
 * counts it a system device unless a udev rule sets UDISKS_SYSTEM=0, and
 * asks polkit for org.freedesktop.udisks2.filesystem-mount-system. */
static gboolean mount_volume(App *app, Volume *v) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;

        reply = g_dbus_connection_call_sync(app->bus, UDISKS_NAME, v->object_path, UDISKS_FILESYSTEM, "Mount",
                                            g_variant_new("(@a{sv})", udisks_options(app)), G_VARIANT_TYPE("(s)"),
                                            app->call_flags, CALL_TIMEOUT_MS, NULL, &error);
        if (!reply) {
                g_autofree char *what = g_strdup_printf("mount %s", v->device);
                report(app, what, error);
                return FALSE;
        }
        g_variant_get(reply, "(s)", &v->mount_path);
        printf("mounted %s at %s after %" G_GINT64_FORMAT " ms\n", v->device, v->mount_path, elapsed_ms(app));
        fflush(stdout);
        return TRUE;
}

static int compare_names(gconstpointer a, gconstpointer b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/* What a file manager's window shows first: the names at the top. */
static gboolean list_volume(App *app, const Volume *v, guint *count) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDir) dir = g_dir_open(v->mount_path, 0, &error);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *name;

        if (!dir) {
                g_autofree char *what = g_strdup_printf("list %s", v->mount_path);
                report(app, what, error);
                return FALSE;
        }
        while ((name = g_dir_read_name(dir)))
                g_ptr_array_add(names, g_strdup(name));
        g_ptr_array_sort(names, compare_names);
        for (guint i = 0; i < names->len; i++)
                printf("file %s\n", (const char *) names->pdata[i]);
        fflush(stdout);
        *count += names->len;
        return TRUE;
}

static gboolean open_mount_and_list(App *app) {
        guint count = 0;

        for (guint i = 0; i < app->volumes->len; i++)
                if (!mount_volume(app, app->volumes->pdata[i]) || !list_volume(app, app->volumes->pdata[i], &count))
                        return FALSE;
        printf("listed %u files after %" G_GINT64_FORMAT " ms\n", count, elapsed_ms(app));
        fflush(stdout);
        return TRUE;
}

/* Whatever was mounted, last first; the device cannot be detached while a
 * file system on it is mounted (DeviceBusy). */
static gboolean open_unmount_all(App *app) {
        gboolean ok = TRUE;

        for (guint i = app->volumes ? app->volumes->len : 0; i > 0; i--) {
                Volume *v = app->volumes->pdata[i - 1];
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) reply = NULL;

                if (!v->mount_path)
                        continue;
                reply = g_dbus_connection_call_sync(app->bus, UDISKS_NAME, v->object_path, UDISKS_FILESYSTEM,
                                                    "Unmount", g_variant_new("(@a{sv})", udisks_options(app)),
                                                    G_VARIANT_TYPE_UNIT, app->call_flags, CALL_TIMEOUT_MS, NULL,
                                                    &error);
                if (!reply) {
                        g_autofree char *what = g_strdup_printf("unmount %s", v->device);
                        report(app, what, error);
                        ok = FALSE;
                        continue;
                }
                printf("unmounted %s\n", v->device);
                fflush(stdout);
                g_clear_pointer(&v->mount_path, g_free);
        }
        return ok;
}

/* --open: attach; find the file systems in udisks, mount them, list them;
 * and whatever failed after the attach, unmount what was mounted and
 * detach, so that nothing is left behind. */
static void open_uri(App *app) {
        if (!open_attach(app))
                return;
        app->volumes = g_ptr_array_new_with_free_func((GDestroyNotify) volume_free);
        if (open_wait_for_udisks(app) && open_find_filesystems(app))
                open_mount_and_list(app);
        open_unmount_all(app);
        open_detach(app);
}

static gboolean on_timeout(gpointer data) {
        App *app = data;
        GError error = { G_IO_ERROR, G_IO_ERROR_TIMED_OUT, (char *) "no answer in time" };

        fail(app, "wait for the device", &error);
        return G_SOURCE_REMOVE;
}

int main(int argc, char **argv) {
        gboolean wait_disconnect = FALSE, no_interaction = FALSE;
        g_autofree char *uri = NULL;
        GOptionEntry entries[] = {
                { "wait-disconnect", 0, 0, G_OPTION_ARG_NONE, &wait_disconnect,
                  "After attaching, wait for the server to go away instead of detaching", NULL },
                { "open", 0, 0, G_OPTION_ARG_STRING, &uri,
                  "Attach the NBD URI, mount its file systems through udisks, list them, undo it all", "URI" },
                { "no-interaction", 0, 0, G_OPTION_ARG_NONE, &no_interaction,
                  "Never let polkit ask for a password", NULL },
                { NULL }
        };
        g_autoptr(GOptionContext) context = g_option_context_new("HOST[:PORT] [EXPORT]");
        g_autoptr(GError) error = NULL;
        gboolean args_ok;
        App app = { .status = 0 };

        g_option_context_set_summary(context, "Or, with --open URI and no HOST: attach, mount, list, unmount, detach.");
        g_option_context_add_main_entries(context, entries, NULL);
        args_ok = g_option_context_parse(context, &argc, &argv, &error);
        if (args_ok && uri)
                args_ok = argc == 1 && !wait_disconnect;
        else if (args_ok)
                args_ok = argc >= 2 && argc <= 3 && (!wait_disconnect || argc == 3);
        if (!args_ok) {
                g_autofree char *help = g_option_context_get_help(context, TRUE, NULL);

                fprintf(stderr, "nbd-file-manager: %s\n%s", error ? error->message : "wrong arguments", help);
                return 2;
        }
        app.uri = uri;
        app.host = argc > 1 ? argv[1] : NULL;
        app.export_name = argc > 2 ? argv[2] : NULL;
        app.wait_disconnect = wait_disconnect;
        /* A caller that cannot answer a dialog (a script, a test) says so;
         * polkit then refuses what would need a password. */
        app.call_flags = no_interaction ? G_DBUS_CALL_FLAGS_NONE : G_DBUS_CALL_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION;

        /* DBUS_SYSTEM_BUS_ADDRESS, when set, names the bus (the tests' own). */
        app.bus = g_bus_get_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        if (!app.bus) {
                fprintf(stderr, "nbd-file-manager: connect to the system bus: %s\n", error->message);
                return 1;
        }
        app.loop = g_main_loop_new(NULL, FALSE);

        if (app.uri) {
                open_uri(&app);
                goto out;
        }
        if (!list_exports(&app) || !app.export_name)
                goto out;

        /* Follow the daemon's objects before attaching, so that nothing is
         * missed: the proxies track InterfacesAdded/Removed and each
         * device's PropertiesChanged and signals. */
        app.manager = g_dbus_object_manager_client_new_sync(app.bus, G_DBUS_OBJECT_MANAGER_CLIENT_FLAGS_NONE,
                                                            BUS_NAME, MANAGER_PATH, NULL, NULL, NULL, NULL,
                                                            &error);
        if (!app.manager) {
                fail(&app, "watch " BUS_NAME, error);
                goto out;
        }
        g_signal_connect(app.manager, "object-added", G_CALLBACK(on_object_added), &app);
        g_signal_connect(app.manager, "object-removed", G_CALLBACK(on_object_removed), &app);
        g_signal_connect(app.manager, "interface-proxy-properties-changed", G_CALLBACK(on_properties_changed),
                         &app);
        g_signal_connect(app.manager, "interface-proxy-signal", G_CALLBACK(on_proxy_signal), &app);

        attach(&app);
        g_timeout_add_seconds(RUN_TIMEOUT_S, on_timeout, &app);
        g_main_loop_run(app.loop);

out:
        g_clear_object(&app.manager);
        g_clear_object(&app.udisks);
        g_strfreev(app.partitions);
        g_clear_pointer(&app.volumes, g_ptr_array_unref);
        g_main_loop_unref(app.loop);
        g_object_unref(app.bus);
        g_free(app.object_path);
        g_free(app.device);
        return app.status;
}
