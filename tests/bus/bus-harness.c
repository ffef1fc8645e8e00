/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus suite's fixture: a private dbus-daemon configured as a system
 * bus with data/org.nbdlink.NBD1.conf, and the real nbdlinkd on it. Every
 * program of the suite (test-bus, test-cli) starts and stops it here. */

#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-config.h"
#include "bus-harness.h"
#include "proc-count.h"

#include <glib/gstdio.h>

Fixture fx;

void child_setup(gpointer data) {
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
}

const char *srcdir(void) {
        const char *s = g_getenv("NBDLINK_SOURCE_ROOT");
        g_assert_nonnull(s);
        return s;
}

const char *builddir(void) {
        const char *s = g_getenv("NBDLINK_BUILD_ROOT");
        g_assert_nonnull(s);
        return s;
}

static void write_bus_config(void) {
        g_autofree char *policy_src = g_build_filename(srcdir(), "data", "org.nbdlink.NBD1.conf", NULL);
        g_autofree char *policy_dir = g_build_filename(fx.dir, "system.d", NULL);
        g_autofree char *policy_dst = g_build_filename(policy_dir, "org.nbdlink.NBD1.conf", NULL);
        g_autofree char *policy = NULL;
        g_autofree char *conf_path = g_build_filename(fx.dir, "system.conf", NULL);
        g_autofree char *socket_path = g_build_filename(fx.dir, "bus", NULL);
        g_autofree char *includedir = g_strdup_printf("  <includedir>%s</includedir>\n", policy_dir);
        GError *error = NULL;

        g_assert_true(g_file_get_contents(policy_src, &policy, NULL, &error));
        g_assert_no_error(error);
        g_assert_cmpint(g_mkdir(policy_dir, 0755), ==, 0);
        g_assert_true(g_file_set_contents(policy_dst, policy, -1, &error));

        /* The project's policy, from system.d, decides what may be called. */
        bus_config_write(conf_path, socket_path,
                         "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Properties\"/>\n",
                         includedir);
}

GVariant *bus_driver_call(GDBusConnection *c, const char *method, GVariant *params, const char *reply_type,
                          GError **error) {
        return g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                           method, params, G_VARIANT_TYPE(reply_type), G_DBUS_CALL_FLAGS_NONE, 2000,
                                           NULL, error);
}

bool name_has_owner(GDBusConnection *c, const char *name) {
        g_autoptr(GVariant) v = NULL;
        gboolean has = FALSE;

        v = bus_driver_call(c, "NameHasOwner", g_variant_new("(s)", name), "(b)", NULL);
        if (v)
                g_variant_get(v, "(b)", &has);
        return has;
}

GDBusConnection *gdbus_connect(void) {
        GError *error = NULL;
        GDBusConnection *c;

        c = g_dbus_connection_new_for_address_sync(fx.address,
                                                   G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
                                                   G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                                                   NULL, NULL, &error);
        g_assert_no_error(error);
        return c;
}

void start_all(void) {
        start_all_with_args(NULL);
}

/* dbus-daemon on fx.dir's configuration, listening once this returns. */
static void start_bus(void) {
        g_autofree char *conf_arg = g_strdup_printf("--config-file=%s/system.conf", fx.dir);
        g_autofree char *sock = g_build_filename(fx.dir, "bus", NULL);
        const char *bus_argv[] = { "dbus-daemon", conf_arg, "--nofork", "--nopidfile", "--nosyslog", NULL };
        GError *error = NULL;

        (void) unlink(sock);
        g_assert_true(g_spawn_async(NULL, (char **) bus_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
                                    child_setup, NULL, &fx.bus_pid, &error));
        g_assert_no_error(error);

        for (int i = 0; i < 500 && !g_file_test(sock, G_FILE_TEST_EXISTS); i++)
                g_usleep(10000);
        g_assert_true(g_file_test(sock, G_FILE_TEST_EXISTS));
        g_free(fx.address);
        fx.address = g_strdup_printf("unix:path=%s", sock);
}

void restart_bus(void) {
        g_assert_cmpint(kill(fx.bus_pid, SIGTERM), ==, 0);
        (void) wait_exit(fx.bus_pid, 5000);
        fx.bus_pid = 0;
        start_bus();
}

void start_all_with_args(const char *const *daemon_args) {
        g_autoptr(GPtrArray) daemon_argv = g_ptr_array_new();
        g_autofree char *daemon_path = g_build_filename(builddir(), "daemon", "nbdlinkd", NULL);
        g_autoptr(GDBusConnection) c = NULL;
        g_auto(GStrv) env = NULL;
        GError *error = NULL;

        fx.dir = g_dir_make_tmp("nbdlink-bus-XXXXXX", &error);
        g_assert_no_error(error);
        /* Non-root callers must reach the socket. */
        g_assert_cmpint(chmod(fx.dir, 0755), ==, 0);
        write_bus_config();
        start_bus();

        env = g_get_environ();
        env = g_environ_setenv(env, "DBUS_SYSTEM_BUS_ADDRESS", fx.address, TRUE);
        g_ptr_array_add(daemon_argv, daemon_path);
        g_ptr_array_add(daemon_argv, (char *) "--timeout-default=5");
        for (const char *const *a = daemon_args; a && *a; a++)
                g_ptr_array_add(daemon_argv, (char *) *a);
        g_ptr_array_add(daemon_argv, NULL);
        g_assert_true(g_spawn_async(NULL, (char **) daemon_argv->pdata, env, G_SPAWN_DO_NOT_REAP_CHILD,
                                    child_setup, NULL, &fx.daemon_pid, &error));
        g_assert_no_error(error);

        /* sd-bus in this process finds the bus the same way. */
        g_setenv("DBUS_SYSTEM_BUS_ADDRESS", fx.address, TRUE);

        c = gdbus_connect();
        for (int i = 0; i < 500 && !name_has_owner(c, "org.nbdlink.NBD1"); i++)
                g_usleep(10000);
        g_assert_true(name_has_owner(c, "org.nbdlink.NBD1"));
}

int wait_exit(GPid pid, int timeout_ms) {
        int status;

        for (int i = 0; i < timeout_ms / 10; i++) {
                if (waitpid(pid, &status, WNOHANG) == pid)
                        return status;
                g_usleep(10000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
}

int daemon_fds(void) {
        return (int) proc_count_fds(fx.daemon_pid);
}

int daemon_threads(void) {
        return (int) proc_count_threads(fx.daemon_pid);
}

bool daemon_wait_counts(int fds, int threads, int within_ms, int *ret_fds, int *ret_threads) {
        int now_fds = 0, now_threads = 0;

        for (int i = 0; i <= within_ms / 10; i++) {
                if (i > 0)
                        g_usleep(10 * 1000);
                now_fds = daemon_fds();
                now_threads = daemon_threads();
                if (now_fds == fds && now_threads == threads)
                        break;
        }
        if (ret_fds)
                *ret_fds = now_fds;
        if (ret_threads)
                *ret_threads = now_threads;
        return now_fds == fds && now_threads == threads;
}

void test_daemon_sigterm_exits_0(void) {
        int status;

        g_assert_cmpint(kill(fx.daemon_pid, SIGTERM), ==, 0);
        status = wait_exit(fx.daemon_pid, 10000);
        fx.daemon_pid = 0;
        g_assert_true(WIFEXITED(status));
        g_assert_cmpint(WEXITSTATUS(status), ==, 0);
}

void stop_all(void) {
        if (fx.daemon_pid > 0) {
                kill(fx.daemon_pid, SIGKILL);
                (void) wait_exit(fx.daemon_pid, 5000);
                fx.daemon_pid = 0;
        }
        if (fx.bus_pid > 0) {
                kill(fx.bus_pid, SIGTERM);
                (void) wait_exit(fx.bus_pid, 5000);
                fx.bus_pid = 0;
        }
        if (fx.dir) {
                g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fx.dir);
                (void) !system(cmd);
        }
        g_clear_pointer(&fx.dir, g_free);
        g_clear_pointer(&fx.address, g_free);
}

sd_bus *sd_connect(void) {
        sd_bus *bus = NULL;

        g_assert_cmpint(sd_bus_open_system(&bus), >=, 0);
        return bus;
}

