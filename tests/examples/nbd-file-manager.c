/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What a file manager does with nbdlinkd, written with GDBus only: list the
 * exports of a server, attach one, follow the device through the
 * ObjectManager (InterfacesAdded, PropertiesChanged, Disconnected,
 * InterfacesRemoved), and detach it. The tests run it so that it keeps
 * working; it is also meant to be read.
 *
 *   nbd-file-manager HOST[:PORT]                    list the exports
 *   nbd-file-manager HOST[:PORT] EXPORT             ... attach EXPORT, detach it
 *   nbd-file-manager --wait-disconnect HOST[:PORT] EXPORT
 *                                                   ... attach, then wait for the
 *                                                   server to go away
 *   nbd-file-manager --open URI                     attach an NBD URI, detach it
 * --no-interaction, with any of them: polkit may not ask for a password.
 *
 * Every line it prints is one event, so that a test can follow along:
 *   export NAME: DESCRIPTION
 *   added nbdN State=connecting
 *   changed nbdN State=attached Size=...
 *   attached /dev/nbdN size=BYTES read-only=no
 *   attached /dev/nbdN after MS ms                 (--open; MS since AttachURI)
 *   disconnected nbdN: ERROR-NAME: MESSAGE
 *   removed nbdN
 *   detached /dev/nbdN
 * Errors go to stderr as "nbd-file-manager: WHAT: MESSAGE (ERROR-NAME)";
 * the exit status is 0 when everything went as asked, 1 otherwise.
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
 *    skips those. */

#include <gio/gio.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>

#define BUS_NAME      "org.nbdlink.NBD1"
#define MANAGER_PATH  "/org/nbdlink/NBD1"
#define MANAGER_IFACE "org.nbdlink.NBD1.Manager"
#define DEVICE_IFACE  "org.nbdlink.NBD1.Device"

/* Attaching waits for the server and, for an unprivileged user, maybe for
 * a polkit dialog: give it time. */
#define CALL_TIMEOUT_MS (5 * 60 * 1000)
/* The whole run, so that a test never hangs on a lost signal. */
#define RUN_TIMEOUT_S 120

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

/* --open: attach, and whatever happens after the attach, detach again. */
static void open_uri(App *app) {
        if (!open_attach(app))
                return;
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

        g_option_context_add_main_entries(context, entries, NULL);
        args_ok = g_option_context_parse(context, &argc, &argv, &error);
        if (args_ok && uri)
                args_ok = argc == 1 && !wait_disconnect;
        else if (args_ok)
                args_ok = argc >= 2 && argc <= 3 && (!wait_disconnect || argc == 3);
        if (!args_ok) {
                fprintf(stderr, "nbd-file-manager: %s\n%s", error ? error->message : "wrong arguments",
                        g_option_context_get_help(context, TRUE, NULL));
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
        g_main_loop_unref(app.loop);
        g_object_unref(app.bus);
        g_free(app.object_path);
        g_free(app.device);
        return app.status;
}
