/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlink monitor against spoofed signals. Another connection sends the
 * signals monitor follows (device events, and NameOwnerChanged claiming
 * the daemon stopped or changed hands) straight to monitor's unique name,
 * where no match rule's sender='org.nbdlink.NBD1' stops them; monitor must
 * print none of them, and must still print what the bus and the owner of
 * org.nbdlink.NBD1 say, escaped. The real nbdlinkd owns the name first;
 * after it stops, this test takes the name as a stand-in that emits device
 * events, which this machine's kernel could not make the real one do. */

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "contract.h"

/* After nbdlink headers: they bring GLib, which redefines MIN/MAX itself. */
#include "bus-harness.h"
#include "cli-run.h"

#define DEVICE_PATH(n) NBDLINK_MANAGER_PATH "/devices/" n

typedef struct Monitor {
        GSubprocess *proc;
        GDataInputStream *out;
        char *unique_name;      /* its connection on the bus */
} Monitor;

static Monitor text_monitor, json_monitor;
static GDBusConnection *spoofer;        /* never owns anything */
static GDBusConnection *stand_in;       /* owns org.nbdlink.NBD1 once nbdlinkd is gone */

/* The unique name of the connection that process pid holds on the bus. */
static char *unique_name_of(GDBusConnection *c, GPid pid) {
        g_autoptr(GVariant) names = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree const char **list = NULL;

        names = bus_driver_call(c, "ListNames", NULL, "(as)", &error);
        g_assert_no_error(error);
        g_variant_get(names, "(^a&s)", &list);
        for (size_t i = 0; list[i]; i++) {
                g_autoptr(GVariant) v = NULL;
                guint32 p = 0;

                if (list[i][0] != ':')
                        continue;
                v = bus_driver_call(c, "GetConnectionUnixProcessID", g_variant_new("(s)", list[i]), "(u)", NULL);
                if (!v)
                        continue;       /* gone meanwhile */
                g_variant_get(v, "(u)", &p);
                if ((GPid) p == pid)
                        return g_strdup(list[i]);
        }
        return NULL;
}

static void monitor_start(Monitor *m, gboolean json) {
        const char *argv[] = { cli_nbdlink_path(), json ? "--json" : "monitor", json ? "monitor" : NULL, NULL };
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                                                           G_SUBPROCESS_FLAGS_STDERR_PIPE);
        g_autoptr(GDataInputStream) err = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *banner = NULL;

        g_subprocess_launcher_set_child_setup(launcher, cli_child_setup, NULL, NULL);
        m->proc = g_subprocess_launcher_spawnv(launcher, argv, &error);
        g_assert_no_error(error);
        m->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(m->proc));
        err = g_data_input_stream_new(g_subprocess_get_stderr_pipe(m->proc));

        /* The banner comes once the subscriptions are in place. */
        banner = g_data_input_stream_read_line(err, NULL, NULL, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(banner, ==, "Monitoring nbdlink devices; press Ctrl-C to stop.");

        m->unique_name = unique_name_of(spoofer, (GPid) atoi(g_subprocess_get_identifier(m->proc)));
        g_assert_nonnull(m->unique_name);
}

/* The next line monitor printed, without its newline; raw bytes, so that
 * unescaped output would show as it is rather than fail to decode. */
static char *monitor_line(Monitor *m) {
        g_autoptr(GError) error = NULL;
        char *line = g_data_input_stream_read_line(m->out, NULL, NULL, &error);

        g_assert_no_error(error);
        g_assert_nonnull(line);
        return line;
}

static void assert_line(Monitor *m, const char *expected) {
        g_autofree char *line = monitor_line(m);
        g_autofree char *untimed = cli_monitor_untimed(line);

        g_assert_cmpstr(untimed, ==, expected);
}

static void emit(GDBusConnection *c, const char *destination, const char *path, const char *interface,
                 const char *member, GVariant *params) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_dbus_connection_emit_signal(c, destination, path, interface, member, params, &error));
        g_assert_no_error(error);
}

/* Returns once the bus has handled everything c sent before: each
 * connection's messages are routed in order, so what c sent is queued for
 * its recipients before anything another connection sends after this. */
static void barrier(GDBusConnection *c) {
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GError) error = NULL;

        v = bus_driver_call(c, "GetId", NULL, "(s)", &error);
        g_assert_no_error(error);
}

/* {'org.nbdlink.NBD1.Device': {'State': state, 'Host': host}} */
static GVariant *device_interfaces(const char *state, const char *host) {
        GVariantBuilder props, ifaces;

        g_variant_builder_init(&props, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&props, "{sv}", "State", g_variant_new_string(state));
        g_variant_builder_add(&props, "{sv}", "Host", g_variant_new_string(host));
        g_variant_builder_init(&ifaces, G_VARIANT_TYPE("a{sa{sv}}"));
        g_variant_builder_add(&ifaces, "{s@a{sv}}", NBDLINK_DEVICE_INTERFACE, g_variant_builder_end(&props));
        return g_variant_builder_end(&ifaces);
}

/* Everything monitor follows, sent by the spoofer to one monitor alone:
 * device events with text that would take over a terminal, and the bus's
 * own NameOwnerChanged saying that the spoofer owns the name now, then
 * that nobody does. Every line monitor prints is checked in order, up to
 * the end of its output, so any of these printed fails a test. */
static void spoof(const char *to, const char *daemon_owner) {
        const char *me = g_dbus_connection_get_unique_name(spoofer);
        const char *trap = "\x1b]0;pwned\x07\x1b[8m\r\n\xc2\x9b" "2J\xe2\x80\xae";

        emit(spoofer, to, DEVICE_PATH("nbd0"), NBDLINK_DEVICE_INTERFACE, "Disconnected",
             g_variant_new("(ss)", "org.nbdlink.NBD1.Error.Spoofed", trap));
        emit(spoofer, to, NBDLINK_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
             g_variant_new("(o@a{sa{sv}})", DEVICE_PATH("nbd0"), device_interfaces("attached", trap)));
        emit(spoofer, to, DEVICE_PATH("nbd0"), "org.freedesktop.DBus.Properties", "PropertiesChanged",
             g_variant_new_parsed("(%s, {'State': <%s>}, @as [])", NBDLINK_DEVICE_INTERFACE, trap));
        emit(spoofer, to, NBDLINK_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
             g_variant_new_parsed("(%o, [%s])", DEVICE_PATH("nbd0"), NBDLINK_DEVICE_INTERFACE));
        /* A monitor that believed this would say "started", which no test
         * expects right after the spoofing. */
        emit(spoofer, to, "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
             g_variant_new("(sss)", NBDLINK_BUS_NAME, daemon_owner, me));
        /* Believed only if the NameOwnerChanged above had been. */
        emit(spoofer, to, DEVICE_PATH("nbd1"), NBDLINK_DEVICE_INTERFACE, "Disconnected",
             g_variant_new("(ss)", "org.nbdlink.NBD1.Error.Spoofed", "after a fake owner change"));
        emit(spoofer, to, "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
             g_variant_new("(sss)", NBDLINK_BUS_NAME, me, ""));
}

static void spoof_both(const char *daemon_owner) {
        spoof(text_monitor.unique_name, daemon_owner);
        spoof(json_monitor.unique_name, daemon_owner);
        barrier(spoofer);
}

static char *owner_of(const char *name) {
        g_autoptr(GVariant) v = NULL;
        char *owner = NULL;

        v = bus_driver_call(spoofer, "GetNameOwner", g_variant_new("(s)", name), "(s)", NULL);
        if (v)
                g_variant_get(v, "(s)", &owner);
        return owner;
}

/* ---- tests ---------------------------------------------------------------- */

/* While nbdlinkd runs: nothing of the spoofer's is printed; the first line
 * is the bus's own word that nbdlinkd stopped. */
static void test_spoofed_while_daemon_runs(void) {
        g_autofree char *daemon_owner = owner_of(NBDLINK_BUS_NAME);
        int status;

        g_assert_nonnull(daemon_owner);
        monitor_start(&text_monitor, FALSE);
        monitor_start(&json_monitor, TRUE);

        spoof_both(daemon_owner);

        g_assert_cmpint(kill(fx.daemon_pid, SIGTERM), ==, 0);
        status = wait_exit(fx.daemon_pid, 10000);
        fx.daemon_pid = 0;
        g_assert_true(WIFEXITED(status));

        assert_line(&text_monitor, "nbdlinkd stopped");
        assert_line(&json_monitor, "{\"event\":\"daemon-stopped\"}");
}

/* With nobody owning the name, nothing is anybody's to believe; the first
 * line is the bus saying the name has an owner again. */
static void test_spoofed_without_owner(void) {
        g_autoptr(GVariant) v = NULL;
        g_autoptr(GError) error = NULL;
        guint32 reply = 0;

        if (getuid() != 0) {
                g_test_skip("needs root: only root may own " NBDLINK_BUS_NAME " (data/org.nbdlink.NBD1.conf)");
                return;
        }
        spoof_both("");

        stand_in = gdbus_connect();
        v = bus_driver_call(stand_in, "RequestName", g_variant_new("(su)", NBDLINK_BUS_NAME, 0), "(u)", &error);
        g_assert_no_error(error);
        g_variant_get(v, "(u)", &reply);
        g_assert_cmpuint(reply, ==, 1);        /* DBUS_REQUEST_NAME_REPLY_PRIMARY_OWNER */

        assert_line(&text_monitor, "nbdlinkd started");
        assert_line(&json_monitor, "{\"event\":\"daemon-started\"}");
}

/* The owner's events are printed, its text escaped; the spoofer's, sent
 * in between, are not. */
static void test_owner_believed_and_escaped(void) {
        const char *host = "evil\x1b[2J";
        const char *message = "bye\x1b]0;pwned\x07\r\n\xc2\x9b" "2J\xe2\x80\xae";

        if (!stand_in) {
                g_test_skip("no stand-in owns " NBDLINK_BUS_NAME);
                return;
        }
        emit(stand_in, NULL, NBDLINK_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
             g_variant_new("(o@a{sa{sv}})", DEVICE_PATH("nbd3"), device_interfaces("connecting", host)));
        emit(stand_in, NULL, DEVICE_PATH("nbd3"), "org.freedesktop.DBus.Properties", "PropertiesChanged",
             g_variant_new_parsed("(%s, {'State': <'attached'>}, @as [])", NBDLINK_DEVICE_INTERFACE));
        barrier(stand_in);

        spoof_both(g_dbus_connection_get_unique_name(stand_in));

        emit(stand_in, NULL, DEVICE_PATH("nbd3"), NBDLINK_DEVICE_INTERFACE, "Disconnected",
             g_variant_new("(ss)", "org.nbdlink.NBD1.Error.ServerGone\x1b[8m", message));
        emit(stand_in, NULL, NBDLINK_MANAGER_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
             g_variant_new_parsed("(%o, [%s])", DEVICE_PATH("nbd3"), NBDLINK_DEVICE_INTERFACE));
        barrier(stand_in);

        assert_line(&text_monitor, "nbd3 added State=connecting Host=evil\\x1b[2J");
        assert_line(&text_monitor, "nbd3 changed State=attached");
        assert_line(&text_monitor, "nbd3 disconnected: bye\\x1b]0;pwned\\x07\\x0d\\x0a\\u009B2J\\u202E "
                                   "(org.nbdlink.NBD1.Error.ServerGone\\x1b[8m)");
        assert_line(&text_monitor, "nbd3 removed");

        assert_line(&json_monitor, "{\"event\":\"added\",\"object\":\"" DEVICE_PATH("nbd3") "\","
                                   "\"device\":\"/dev/nbd3\",\"properties\":{\"state\":\"connecting\","
                                   "\"host\":\"evil\\u001b[2J\"}}");
        assert_line(&json_monitor, "{\"event\":\"changed\",\"object\":\"" DEVICE_PATH("nbd3") "\","
                                   "\"device\":\"/dev/nbd3\",\"properties\":{\"state\":\"attached\"}}");
        assert_line(&json_monitor, "{\"event\":\"disconnected\",\"object\":\"" DEVICE_PATH("nbd3") "\","
                                   "\"device\":\"/dev/nbd3\",\"error\":\"org.nbdlink.NBD1.Error.ServerGone\\u001b[8m\","
                                   "\"message\":\"bye\\u001b]0;pwned\\u0007\\r\\n\\u009b2J\\u202e\"}");
        assert_line(&json_monitor, "{\"event\":\"removed\",\"object\":\"" DEVICE_PATH("nbd3") "\","
                                   "\"device\":\"/dev/nbd3\"}");

        /* The stand-in leaves: that, too, comes from the bus. */
        g_clear_object(&stand_in);
        assert_line(&text_monitor, "nbdlinkd stopped");
        assert_line(&json_monitor, "{\"event\":\"daemon-stopped\"}");
}

/* SIGINT ends monitor with status 0, having printed nothing more. */
static void test_sigint(void) {
        Monitor *monitors[] = { &text_monitor, &json_monitor };

        for (size_t i = 0; i < G_N_ELEMENTS(monitors); i++) {
                Monitor *m = monitors[i];
                g_autoptr(GError) error = NULL;
                g_autofree char *rest = NULL;

                g_subprocess_send_signal(m->proc, SIGINT);
                g_assert_true(g_subprocess_wait(m->proc, NULL, &error));
                g_assert_no_error(error);
                g_assert_true(g_subprocess_get_if_exited(m->proc));
                g_assert_cmpint(g_subprocess_get_exit_status(m->proc), ==, 0);
                /* End of output, with no line left unread. */
                rest = g_data_input_stream_read_line(m->out, NULL, NULL, &error);
                g_assert_no_error(error);
                g_assert_null(rest);
        }
}

static void monitor_clear(Monitor *m) {
        /* Still running when a test failed half way. */
        if (m->proc && g_subprocess_get_identifier(m->proc))
                g_subprocess_force_exit(m->proc);
        g_clear_object(&m->out);
        g_clear_object(&m->proc);
        g_clear_pointer(&m->unique_name, g_free);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/monitor/spoofed-while-daemon-runs", test_spoofed_while_daemon_runs);
        g_test_add_func("/monitor/spoofed-without-owner", test_spoofed_without_owner);
        g_test_add_func("/monitor/owner-believed-and-escaped", test_owner_believed_and_escaped);
        g_test_add_func("/monitor/sigint", test_sigint);

        start_all();
        spoofer = gdbus_connect();
        r = g_test_run();
        monitor_clear(&text_monitor);
        monitor_clear(&json_monitor);
        g_clear_object(&stand_in);
        g_clear_object(&spoofer);
        stop_all();
        return r;
}
