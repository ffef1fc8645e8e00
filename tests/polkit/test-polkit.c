/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The polkit suite: the real polkitd on a private dbus-daemon, inside private
 * mount and pid namespaces where polkit's actions directory holds nbdlink's
 * policy and its rules directories hold the suite's rules. The service under
 * test is called as root and as unprivileged users. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <netinet/in.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLKITD           "/usr/lib/polkit-1/polkitd"
#define POLKIT_DTD        "/usr/share/polkit-1/policyconfig-1.dtd"
#define POLKIT_ACTIONS    "/usr/share/polkit-1/actions"
#define POLKIT_RULES_ETC  "/etc/polkit-1/rules.d"
#define POLKIT_RULES_USR  "/usr/share/polkit-1/rules.d"
#define POLKIT_NAME       "org.freedesktop.PolicyKit1"
#define SERVICE_NAME      "org.nbdlink.PolkitTest1"
#define NBDLINKD_NAME     "org.nbdlink.NBD1"

#define ERR_NOT_AUTHORIZED "ERROR org.nbdlink.NBD1.Error.NotAuthorized: "
#define ERR_INTERACTIVE    "ERROR org.freedesktop.DBus.Error.InteractiveAuthorizationRequired: "
#define ERR_NO_SUCH_DEVICE "ERROR org.nbdlink.NBD1.Error.NoSuchDevice: "
#define ERR_NOT_ATTACHED   "ERROR org.nbdlink.NBD1.Error.NotAttached: "

/* What the whole suite shares: one bus, one polkitd at a time, one service. */
static struct {
        const char *tmpdir;
        char *policy;
        char *bus_address;
        GSubprocess *bus_daemon;
        GSubprocess *polkitd;
        GSubprocess *service;
        GSubprocess *nbdlinkd;
        GDBusConnection *conn;
} suite;

typedef struct Stats {
        guint32 performed, refused, cancelled, pending;
} Stats;

static int status_to_exit_code(int status) {
        if (WIFEXITED(status))
                return WEXITSTATUS(status);
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return 1;
}

/* Puts the rest of the program into new mount and pid namespaces. The
 * calling process stays outside and only waits; the first child becomes the
 * namespace's init (it mounts a /proc that matches the namespace, so that
 * polkitd and the bus see the same pids, and reaps orphans); the second child
 * returns from here and runs the tests. Whatever way the test process ends,
 * init follows, and the kernel then kills everything the suite started
 * (dbus-daemon, polkitd, services): nothing outlives the suite, not even a
 * polkitd that has changed uid and so lost any parent-death signal. The
 * suite's files live on a tmpfs of the namespace, so they go with it too. */
static void enter_namespaces(char *tmpdir) {
        pid_t init, test;
        int status, alive[2];

        if (!mkdtemp(tmpdir)) {
                fprintf(stderr, "Bail out! mkdtemp: %m\n");
                exit(1);
        }
        if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) {
                fprintf(stderr, "Bail out! failed to create mount and pid namespaces: %m\n");
                exit(1);
        }
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
                fprintf(stderr, "Bail out! failed to make / private: %m\n");
                exit(1);
        }
        /* polkitd (its own user) and the unprivileged callers must reach the
         * bus socket and the policy in here. */
        if (mount("tmpfs", tmpdir, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
                fprintf(stderr, "Bail out! failed to mount a tmpfs on %s: %m\n", tmpdir);
                exit(1);
        }

        /* The outer process holds the write end: a hang-up on the read end
         * tells init that it has gone (getppid() is 0 across namespaces). */
        if (pipe2(alive, O_CLOEXEC) < 0) {
                fprintf(stderr, "Bail out! pipe: %m\n");
                exit(1);
        }

        init = fork();
        if (init < 0) {
                fprintf(stderr, "Bail out! fork: %m\n");
                exit(1);
        }
        if (init > 0) {
                while (waitpid(init, &status, 0) < 0)
                        if (errno != EINTR)
                                _exit(1);
                (void) umount2(tmpdir, MNT_DETACH);
                (void) rmdir(tmpdir);
                _exit(status_to_exit_code(status));
        }

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        (void) close(alive[1]);
        {
                struct pollfd pfd = { .fd = alive[0], .events = POLLIN };

                if (poll(&pfd, 1, 0) != 0)
                        _exit(1);
        }
        (void) close(alive[0]);
        if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                fprintf(stderr, "Bail out! failed to mount /proc: %m\n");
                _exit(1);
        }

        test = fork();
        if (test < 0)
                _exit(1);
        if (test == 0)
                return;

        for (;;) {
                pid_t p = waitpid(-1, &status, 0);

                if (p == test)
                        _exit(status_to_exit_code(status));
                if (p < 0 && errno != EINTR)
                        _exit(1);
        }
}

static void write_file(const char *path, const char *contents) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_set_contents(path, contents, -1, &error));
        g_assert_no_error(error);
        /* polkitd reads as its own user. */
        g_assert_cmpint(chmod(path, 0644), ==, 0);
}

static void copy_file(const char *from, const char *to) {
        g_autofree char *contents = NULL;
        g_autoptr(GError) error = NULL;

        if (!g_file_get_contents(from, &contents, NULL, &error))
                g_error("cannot read %s: %s", from, error->message);
        write_file(to, contents);
}

static char *make_dir(const char *name) {
        char *path = g_build_filename(suite.tmpdir, name, NULL);

        g_assert_cmpint(g_mkdir(path, 0755), ==, 0);
        g_assert_cmpint(chmod(path, 0755), ==, 0);
        return path;
}

static void bind_mount(const char *from, const char *to) {
        if (mount(from, to, NULL, MS_BIND, NULL) < 0)
                g_error("cannot bind %s over %s: %s", from, to, g_strerror(errno));
}

/* The suite's users, one per outcome of nbdlink-test.rules. They exist only
 * inside the suite's mount namespace (copies of /etc/passwd and /etc/group
 * with these lines added are bound over the originals), so the host's user
 * database is never touched and nothing is left behind. */
static const struct {
        const char *name;
        unsigned uid;
        const char *groups;     /* supplementary, comma-separated */
} test_users[] = {
        { "nbdlink-member",   64201, "nbdlink-users" },
        { "nbdlink-outsider", 64202, NULL },
        { "nbdlink-admin",    64203, "nbdlink-users,nbdlink-admin" },
        { "nbdlink-denied",   64204, "nbdlink-denied" },
        { "nbdlink-slow",     64205, "nbdlink-slow" },
        { "nbdlink-asker",    64206, "nbdlink-ask" },
};

static const struct {
        const char *name;
        unsigned gid;
} test_groups[] = {
        { "nbdlink-users",  64300 },
        { "nbdlink-admin",  64301 },
        { "nbdlink-denied", 64302 },
        { "nbdlink-slow",   64303 },
        { "nbdlink-ask",    64304 },
};

static void add_test_users(void) {
        g_autofree char *passwd = NULL, *group = NULL, *passwd_path = NULL, *group_path = NULL;
        g_autoptr(GString) p = NULL, g = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_true(g_file_get_contents("/etc/passwd", &passwd, NULL, &error));
        g_assert_true(g_file_get_contents("/etc/group", &group, NULL, &error));
        p = g_string_new(passwd);
        g = g_string_new(group);
        if (p->len > 0 && p->str[p->len - 1] != '\n')
                g_string_append_c(p, '\n');
        if (g->len > 0 && g->str[g->len - 1] != '\n')
                g_string_append_c(g, '\n');

        for (size_t i = 0; i < G_N_ELEMENTS(test_users); i++) {
                g_assert_null(getpwnam(test_users[i].name));
                g_string_append_printf(p, "%s:x:%u:%u:nbdlink polkit suite:/nonexistent:/usr/sbin/nologin\n",
                                       test_users[i].name, test_users[i].uid, test_users[i].uid);
                g_string_append_printf(g, "%s:x:%u:\n", test_users[i].name, test_users[i].uid);
        }
        for (size_t j = 0; j < G_N_ELEMENTS(test_groups); j++) {
                g_autoptr(GPtrArray) members = g_ptr_array_new();

                for (size_t i = 0; i < G_N_ELEMENTS(test_users); i++) {
                        g_auto(GStrv) groups = g_strsplit(test_users[i].groups ?: "", ",", -1);

                        if (g_strv_contains((const char *const *) groups, test_groups[j].name))
                                g_ptr_array_add(members, (gpointer) test_users[i].name);
                }
                g_ptr_array_add(members, NULL);
                g_string_append_printf(g, "%s:x:%u:", test_groups[j].name, test_groups[j].gid);
                {
                        g_autofree char *list = g_strjoinv(",", (char **) members->pdata);

                        g_string_append_printf(g, "%s\n", list);
                }
        }

        passwd_path = g_build_filename(suite.tmpdir, "passwd", NULL);
        group_path = g_build_filename(suite.tmpdir, "group", NULL);
        write_file(passwd_path, p->str);
        write_file(group_path, g->str);
        bind_mount(passwd_path, "/etc/passwd");
        bind_mount(group_path, "/etc/group");
}

/* Starts a program whose standard output goes to the test log, not into the
 * TAP stream. */
static GSubprocess *spawn_quiet(const char *const *argv) {
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) error = NULL;
        GSubprocess *p;

        g_subprocess_launcher_take_stdout_fd(launcher, dup(STDERR_FILENO));
        p = g_subprocess_launcher_spawnv(launcher, argv, &error);
        if (!p)
                g_error("cannot start %s: %s", argv[0], error->message);
        return p;
}

/* Starts a program and reads the first line it prints. */
static GSubprocess *spawn_and_read_line(const char *const *argv, char **ret_line) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GDataInputStream) in = NULL;
        GSubprocess *p;

        p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
        if (!p)
                g_error("cannot start %s: %s", argv[0], error->message);
        in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
        *ret_line = g_data_input_stream_read_line(in, NULL, NULL, &error);
        if (!*ret_line)
                g_error("%s printed nothing: %s", argv[0], error ? error->message : "end of file");
        return p;
}

static gboolean name_has_owner(const char *name) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        gboolean has;

        reply = g_dbus_connection_call_sync(suite.conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner",
                                            g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(b)", &has);
        return has;
}

static void wait_for_name(const char *name, gboolean owned) {
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        while (name_has_owner(name) != owned) {
                if (g_get_monotonic_time() > deadline)
                        g_error("%s did not %s the bus in time", name, owned ? "appear on" : "leave");
                g_usleep(20 * 1000);
        }
}

static void polkitd_set_running(gboolean running) {
        g_autoptr(GError) error = NULL;

        if (running && !suite.polkitd) {
                const char *argv[] = { POLKITD, "--no-debug", NULL };

                suite.polkitd = spawn_quiet(argv);
                wait_for_name(POLKIT_NAME, TRUE);
        } else if (!running && suite.polkitd) {
                g_subprocess_send_signal(suite.polkitd, SIGTERM);
                g_assert_true(g_subprocess_wait(suite.polkitd, NULL, &error));
                g_clear_object(&suite.polkitd);
                wait_for_name(POLKIT_NAME, FALSE);
        }
}

static void suite_setup(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *actions = NULL, *rules = NULL, *empty = NULL, *conf = NULL, *conf_text = NULL;
        g_autofree char *line = NULL, *rules_file = NULL, *service = NULL;
        const char *source_root = g_getenv("NBDLINK_SOURCE_ROOT");

        g_assert_nonnull(source_root);
        suite.policy = g_build_filename(source_root, "polkit", "org.nbdlink.NBD1.policy", NULL);

        actions = make_dir("actions");
        rules = make_dir("rules.d");
        empty = make_dir("empty");
        {
                g_autofree char *to = g_build_filename(actions, "org.nbdlink.NBD1.policy", NULL);

                copy_file(suite.policy, to);
        }
        rules_file = g_test_build_filename(G_TEST_DIST, "polkit", "nbdlink-test.rules", NULL);
        {
                g_autofree char *to = g_build_filename(rules, "50-nbdlink-test.rules", NULL);

                copy_file(rules_file, to);
        }

        add_test_users();

        /* Only nbdlink's actions, and only the suite's rules: the host's
         * own rules (the sudo group as administrators, ...) stay out. */
        bind_mount(actions, POLKIT_ACTIONS);
        bind_mount(rules, POLKIT_RULES_ETC);
        bind_mount(empty, POLKIT_RULES_USR);

        /* A bus configured like the system bus: method calls are denied
         * unless a policy punches a hole, and polkit's own bus policy is the
         * one installed with polkitd. */
        conf = g_build_filename(suite.tmpdir, "bus.conf", NULL);
        conf_text = g_strdup_printf(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>system</type>\n"
                "  <listen>unix:path=%s/bus</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n"
                "    <allow user=\"*\"/>\n"
                "    <deny own=\"*\"/>\n"
                "    <deny send_type=\"method_call\"/>\n"
                "    <allow send_type=\"signal\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                "    <allow receive_type=\"method_call\"/>\n"
                "    <allow receive_type=\"method_return\"/>\n"
                "    <allow receive_type=\"error\"/>\n"
                "    <allow receive_type=\"signal\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                "    <allow send_destination=\"" SERVICE_NAME "\"/>\n"
                "  </policy>\n"
                "  <policy user=\"root\">\n"
                "    <allow own=\"" SERVICE_NAME "\"/>\n"
                "  </policy>\n"
                "  <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>\n"
                "  <include>%s/data/org.nbdlink.NBD1.conf</include>\n"
                "</busconfig>\n",
                suite.tmpdir, source_root);
        write_file(conf, conf_text);

        {
                g_autofree char *config_arg = g_strdup_printf("--config-file=%s", conf);
                const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address=1", NULL };

                suite.bus_daemon = spawn_and_read_line(argv, &suite.bus_address);
        }

        suite.conn = g_dbus_connection_new_for_address_sync(
                        suite.bus_address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        g_assert_no_error(error);

        service = g_test_build_filename(G_TEST_BUILT, "polkit", "polkit-test-service", NULL);
        {
                const char *argv[] = { service, NULL };

                suite.service = spawn_and_read_line(argv, &line);
                g_assert_cmpstr(line, ==, "ready");
        }

        {
                g_autofree char *nbdlinkd = g_build_filename(g_getenv("NBDLINK_BUILD_ROOT"), "daemon", "nbdlinkd", NULL);
                const char *argv[] = { nbdlinkd, NULL };

                suite.nbdlinkd = spawn_quiet(argv);
                wait_for_name(NBDLINKD_NAME, TRUE);
        }
}

/* Stops everything; FALSE when the service did not exit cleanly (under the
 * sanitizers that is how a leak or a bad access in daemon/polkit.c shows). */
static gboolean suite_teardown(void) {
        gboolean ok = TRUE;

        polkitd_set_running(FALSE);
        if (suite.nbdlinkd) {
                g_subprocess_send_signal(suite.nbdlinkd, SIGTERM);
                (void) g_subprocess_wait(suite.nbdlinkd, NULL, NULL);
                if (!g_subprocess_get_if_exited(suite.nbdlinkd) || g_subprocess_get_exit_status(suite.nbdlinkd) != 0) {
                        printf("# nbdlinkd did not exit cleanly\n");
                        ok = FALSE;
                }
                g_clear_object(&suite.nbdlinkd);
        }
        if (suite.service) {
                g_subprocess_send_signal(suite.service, SIGTERM);
                (void) g_subprocess_wait(suite.service, NULL, NULL);
                if (!g_subprocess_get_if_exited(suite.service) || g_subprocess_get_exit_status(suite.service) != 0) {
                        printf("# polkit-test-service did not exit cleanly\n");
                        ok = FALSE;
                }
                g_clear_object(&suite.service);
        }
        g_clear_object(&suite.conn);
        if (suite.bus_daemon) {
                g_subprocess_send_signal(suite.bus_daemon, SIGTERM);
                (void) g_subprocess_wait(suite.bus_daemon, NULL, NULL);
                g_clear_object(&suite.bus_daemon);
        }
        (void) umount2(POLKIT_ACTIONS, MNT_DETACH);
        (void) umount2(POLKIT_RULES_ETC, MNT_DETACH);
        (void) umount2(POLKIT_RULES_USR, MNT_DETACH);
        (void) umount2("/etc/passwd", MNT_DETACH);
        (void) umount2("/etc/group", MNT_DETACH);
        g_clear_pointer(&suite.bus_address, g_free);
        g_clear_pointer(&suite.policy, g_free);
        return ok;
}

static Stats get_stats(void) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        Stats s;

        reply = g_dbus_connection_call_sync(suite.conn, SERVICE_NAME, "/org/nbdlink/PolkitTest1",
                                            "org.nbdlink.PolkitTest1", "Stats", NULL,
                                            G_VARIANT_TYPE("(uuuu)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(uuuu)", &s.performed, &s.refused, &s.cancelled, &s.pending);
        return s;
}

/* Runs the client helper as `user` (NULL: root) and returns what it printed,
 * without the final newline. */
static char *run_client(const char *user, gboolean interactive, int leave_after_ms, const char *const *call) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GSubprocess) p = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *out = NULL;

        g_ptr_array_add(argv, g_test_build_filename(G_TEST_BUILT, "polkit", "polkit-test-client", NULL));
        if (user)
                g_ptr_array_add(argv, g_strdup_printf("--user=%s", user));
        if (interactive)
                g_ptr_array_add(argv, g_strdup("--interactive"));
        if (leave_after_ms >= 0)
                g_ptr_array_add(argv, g_strdup_printf("--leave-after-ms=%d", leave_after_ms));
        for (const char *const *a = call; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        p = g_subprocess_newv((const char *const *) argv->pdata, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
        g_assert_no_error(error);
        g_assert_true(g_subprocess_communicate_utf8(p, NULL, NULL, &out, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(p));
        g_assert_cmpint(g_subprocess_get_exit_status(p), ==, 0);
        return g_strchomp(g_steal_pointer(&out));
}

/* `mode` is "authorize" (polkit_authorize_async() with a callback) or
 * "authorize-registry" (polkit_registry_check(), the handler run again). */
static char *authorize(const char *mode, const char *user, gboolean interactive, const char *action,
                       const char *export) {
        const char *call[] = { mode, action, "/dev/nbd0", "nbd.example:10809", export, NULL };

        return run_client(user, interactive, -1, call);
}

static void assert_stats_delta(Stats before, guint32 performed, guint32 refused, guint32 cancelled) {
        Stats after = get_stats();

        g_assert_cmpuint(after.performed - before.performed, ==, performed);
        g_assert_cmpuint(after.refused - before.refused, ==, refused);
        g_assert_cmpuint(after.cancelled - before.cancelled, ==, cancelled);
        g_assert_cmpuint(after.pending, ==, 0);
}

static void test_policy_valid(void) {
        const char *argv[] = { "xmllint", "--noout", "--dtdvalid", POLKIT_DTD, suite.policy, NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, &err, &status, &error));
        g_assert_no_error(error);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("%s does not follow polkit's DTD:\n%s", suite.policy, err);
}

static char *pkaction(const char *action) {
        const char *argv[] = { "pkaction", "--verbose", "--action-id", action, NULL };
        g_autoptr(GError) error = NULL;
        char *out = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   &out, NULL, &status, &error));
        g_assert_no_error(error);
        g_assert_true(g_spawn_check_wait_status(status, NULL));
        return out;
}

/* polkitd has read the policy, with the defaults it was written with. */
static void test_policy_loaded(void) {
        g_autofree char *attach = NULL, *detach = NULL, *other = NULL, *list = NULL;

        polkitd_set_running(TRUE);

        attach = pkaction("org.nbdlink.NBD1.attach");
        g_assert_nonnull(strstr(attach, "implicit any:      auth_admin\n"));
        g_assert_nonnull(strstr(attach, "implicit inactive: auth_admin\n"));
        g_assert_nonnull(strstr(attach, "implicit active:   auth_admin_keep\n"));
        g_assert_nonnull(strstr(attach, "$(export)"));

        detach = pkaction("org.nbdlink.NBD1.detach");
        g_assert_nonnull(strstr(detach, "implicit any:      auth_admin\n"));
        g_assert_nonnull(strstr(detach, "implicit active:   yes\n"));

        other = pkaction("org.nbdlink.NBD1.detach-other");
        g_assert_nonnull(strstr(other, "implicit any:      auth_admin\n"));
        g_assert_nonnull(strstr(other, "implicit active:   auth_admin\n"));

        list = pkaction("org.nbdlink.NBD1.list");
        g_assert_nonnull(strstr(list, "implicit any:      yes\n"));
        g_assert_nonnull(strstr(list, "implicit active:   yes\n"));
}

/* Root never waits for polkit, so it works even without polkitd. */
static void test_root_without_polkitd(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(FALSE);
        before = get_stats();
        out = authorize(mode, NULL, FALSE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_cmpstr(out, ==, "OK");
        assert_stats_delta(before, 1, 0, 0);
}

/* No polkitd: the bus cannot start one, and that is a refusal. */
static void test_polkitd_not_running(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(FALSE);
        before = get_stats();
        out = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(out, "uid 64201 is not allowed to attach network block devices "
                                     "(polkit action org.nbdlink.NBD1.attach): polkit is not running"));
        assert_stats_delta(before, 0, 1, 0);
}

static void test_rule_allows(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_cmpstr(out, ==, "OK");
        assert_stats_delta(before, 1, 0, 0);
}

/* The rule refuses one export by name: the details reach polkit. */
static void test_rule_sees_details(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "denied-export");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        assert_stats_delta(before, 0, 1, 0);
}

static void test_rule_denies(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL, *out_interactive = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-denied", FALSE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(out, "uid 64204 is not allowed to attach network block devices "
                                     "(polkit action org.nbdlink.NBD1.attach): polkit said no"));
        /* A plain no stays a no when interaction is allowed. */
        out_interactive = authorize(mode, "nbdlink-denied", TRUE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_true(g_str_has_prefix(out_interactive, ERR_NOT_AUTHORIZED));
        assert_stats_delta(before, 0, 2, 0);
}

/* No rule for nbdlink-outsider and no session: the policy's allow_any applies. */
static void test_default_list_allowed(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.list", "");
        g_assert_cmpstr(out, ==, "OK");
        assert_stats_delta(before, 1, 0, 0);
}

/* auth_admin without the interaction flag: the caller is told that it could
 * succeed by allowing interaction, as systemd's services do. */
static void test_default_interactive_required(gconstpointer mode) {
        Stats before;
        g_autofree char *attach = NULL, *other = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        attach = authorize(mode, "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_true(g_str_has_prefix(attach, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(attach, "uid 64202 must authenticate to attach network block devices "
                                        "(polkit action org.nbdlink.NBD1.attach)"));
        other = authorize(mode, "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.detach-other", "disk0");
        g_assert_true(g_str_has_prefix(other, ERR_INTERACTIVE));
        assert_stats_delta(before, 0, 2, 0);
}

/* Interaction allowed, but no authentication agent to ask: refused, not
 * "interactive authorization required" again. */
static void test_default_interactive_without_agent(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-outsider", TRUE, "org.nbdlink.NBD1.attach", "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        assert_stats_delta(before, 0, 1, 0);
}

/* polkit answers with an error (the action is not registered): refused. */
static void test_polkit_error(gconstpointer mode) {
        Stats before;
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        out = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.no-such-action", "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(out, "polkit failed: Action org.nbdlink.NBD1.no-such-action is not registered"));
        assert_stats_delta(before, 0, 1, 0);
}

/* The caller leaves while polkit thinks (the rule for nbdlink-slow sleeps 1.5 s,
 * then says yes): the query ends as cancelled right away, and the yes that
 * comes later performs nothing. */
static void caller_leaves(const char *mode, gboolean interactive) {
        const char *call[] = { mode, "org.nbdlink.NBD1.attach", "/dev/nbd0", "nbd.example", "disk0", NULL };
        gboolean registry = g_str_equal(mode, "authorize-registry");
        gint64 start = g_get_monotonic_time();
        g_autofree char *out = NULL;
        Stats before, now = {};

        polkitd_set_running(TRUE);
        before = get_stats();
        out = run_client("nbdlink-slow", interactive, 300, call);
        g_assert_cmpstr(out, ==, "LEFT");

        /* Well before polkit answers. (The registry drops the call without
         * the handler seeing it: only the end result shows there.) */
        for (; !registry;) {
                now = get_stats();
                if (now.cancelled != before.cancelled)
                        break;
                g_assert_cmpint(g_get_monotonic_time() - start, <, 1200 * 1000);
                g_usleep(20 * 1000);
        }
        if (!registry)
                g_assert_cmpuint(now.cancelled - before.cancelled, ==, 1);

        /* And still nothing after it has. */
        while (g_get_monotonic_time() - start < 2000 * 1000)
                g_usleep(50 * 1000);
        {
                /* A round trip through polkitd: its answer to the abandoned
                 * check has been sent by the time this one is answered. */
                g_free(pkaction("org.nbdlink.NBD1.list"));
        }
        assert_stats_delta(before, 0, 0, registry ? 0 : 1);
}

static void test_caller_leaves(gconstpointer mode) {
        caller_leaves(mode, FALSE);
}

static void test_caller_leaves_interactive(gconstpointer mode) {
        caller_leaves(mode, TRUE);
}

/* ---- the real nbdlinkd --------------------------------------------------
 * This host has no nbd module: an Attach that gets past authorization ends
 * in NoSuchDevice, which is how these cases tell "authorized" apart. */

static char *nbdlinkd_attach(const char *user, gboolean interactive, const char *export) {
        const char *call[] = { "attach", "/dev/nbd0", "nbd.example", export, NULL };

        return run_client(user, interactive, -1, call);
}

static void test_nbdlinkd_root_without_polkitd(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(FALSE);
        out = nbdlinkd_attach(NULL, FALSE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NO_SUCH_DEVICE));
}

static void test_nbdlinkd_polkitd_not_running(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(FALSE);
        out = nbdlinkd_attach("nbdlink-member", FALSE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(out, "uid 64201 is not allowed to attach network block devices "
                                     "(polkit action org.nbdlink.NBD1.attach): polkit is not running"));
}

static void test_nbdlinkd_rule_allows(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        out = nbdlinkd_attach("nbdlink-member", FALSE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NO_SUCH_DEVICE));
        g_assert_nonnull(strstr(out, "/dev/nbd0"));
}

/* The rule refuses one export by name: nbdlinkd passes the details. */
static void test_nbdlinkd_rule_sees_details(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        out = nbdlinkd_attach("nbdlink-member", FALSE, "denied-export");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
}

static void test_nbdlinkd_rule_denies(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        out = nbdlinkd_attach("nbdlink-denied", TRUE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(out, "uid 64204 is not allowed to attach network block devices "
                                     "(polkit action org.nbdlink.NBD1.attach): polkit said no"));
}

static void test_nbdlinkd_interactive_required(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        out = nbdlinkd_attach("nbdlink-outsider", FALSE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(out, "uid 64202 must authenticate to attach network block devices"));
}

/* A listening socket on loopback: nbdlinkd's ListExports connects to it only
 * if it acts. */
static int listen_loopback(guint16 *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd;

        fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(listen(fd, 8), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

/* TRUE if someone connected to the listener within timeout_ms. */
static gboolean connected_within(int listener, int timeout_ms) {
        struct pollfd pfd = { .fd = listener, .events = POLLIN };
        int fd;

        if (poll(&pfd, 1, timeout_ms) <= 0)
                return FALSE;
        fd = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
                return FALSE;
        close(fd);
        return TRUE;
}

/* nbdlink-slow is allowed only after polkit thinks for 1.5 s; it leaves
 * before that, so nbdlinkd must never connect on its behalf. nbdlink-member,
 * allowed at
 * once, shows that a connection would be seen. */
static void test_nbdlinkd_caller_leaves(void) {
        g_autofree char *host = NULL, *out = NULL, *control = NULL;
        guint16 port;
        int listener;

        polkitd_set_running(TRUE);
        listener = listen_loopback(&port);
        host = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *call[] = { "list", host, NULL };

                out = run_client("nbdlink-slow", FALSE, 300, call);
                g_assert_cmpstr(out, ==, "LEFT");
                g_assert_false(connected_within(listener, 2000));

                control = run_client("nbdlink-member", FALSE, 500, call);
                g_assert_cmpstr(control, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));
        }
        close(listener);
}

/* Manager.Detach of a device nbdlinkd does not hold is checked as the
 * caller's own (detach): an allowed caller gets past polkit to NotAttached,
 * the others are stopped before. */
static void test_nbdlinkd_detach_own(void) {
        const char *nbd0[] = { "detach", "/dev/nbd0", NULL };
        const char *nbd13[] = { "detach", "/dev/nbd13", NULL };
        g_autofree char *member = NULL, *root = NULL, *outsider = NULL, *denied = NULL, *device = NULL;

        polkitd_set_running(TRUE);
        member = run_client("nbdlink-member", FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(member, ERR_NOT_ATTACHED));
        g_assert_nonnull(strstr(member, "/dev/nbd0"));

        root = run_client(NULL, FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(root, ERR_NOT_ATTACHED));

        /* The policy's default for detach: an administrator, outside an
         * active session. */
        outsider = run_client("nbdlink-outsider", FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(outsider, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(outsider, "uid 64202 must authenticate to detach this network block device "
                                          "(polkit action org.nbdlink.NBD1.detach)"));

        denied = run_client("nbdlink-denied", TRUE, -1, nbd0);
        g_assert_true(g_str_has_prefix(denied, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(denied, "uid 64204 is not allowed to detach this network block device "
                                        "(polkit action org.nbdlink.NBD1.detach): polkit said no"));

        /* The rule refuses /dev/nbd13 by name: the device detail arrives. */
        device = run_client("nbdlink-member", FALSE, -1, nbd13);
        g_assert_true(g_str_has_prefix(device, ERR_NOT_AUTHORIZED));
}

/* Detaching another uid's device is its own action: members of
 * nbdlink-users may detach their own, only nbdlink-admin others'. (Which of
 * the two a Detach needs, from OwnerUID, is the unit suite's auth test; with
 * a real device, the vm suite's.) */
static void test_detach_other(gconstpointer mode) {
        Stats before;
        g_autofree char *own = NULL, *other = NULL, *other_interactive = NULL, *admin = NULL;

        polkitd_set_running(TRUE);
        before = get_stats();
        own = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.detach", "disk0");
        g_assert_cmpstr(own, ==, "OK");
        other = authorize(mode, "nbdlink-member", FALSE, "org.nbdlink.NBD1.detach-other", "disk0");
        g_assert_true(g_str_has_prefix(other, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(other, "uid 64201 must authenticate to detach a network block device that "
                                       "another user attached (polkit action org.nbdlink.NBD1.detach-other)"));
        other_interactive = authorize(mode, "nbdlink-member", TRUE, "org.nbdlink.NBD1.detach-other", "disk0");
        g_assert_true(g_str_has_prefix(other_interactive, ERR_NOT_AUTHORIZED));
        admin = authorize(mode, "nbdlink-admin", FALSE, "org.nbdlink.NBD1.detach-other", "disk0");
        g_assert_cmpstr(admin, ==, "OK");
        assert_stats_delta(before, 2, 2, 0);
}

/* ListExports and Probe (the list action): nbdlinkd connects to the server
 * for allowed callers (the default lets everyone), never for refused ones. */
static void test_nbdlinkd_list(void) {
        g_autofree char *host = NULL;
        guint16 port;
        int listener;

        polkitd_set_running(TRUE);
        listener = listen_loopback(&port);
        host = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *list[] = { "list", host, NULL };
                const char *probe[] = { "probe", host, "disk0", NULL };
                const char *list_denied_host[] = { "list", "denied.example", NULL };
                const char *probe_denied_export[] = { "probe", host, "denied-export", NULL };
                g_autofree char *member = NULL, *outsider = NULL, *prober = NULL;
                g_autofree char *denied = NULL, *denied_probe = NULL, *by_host = NULL, *by_export = NULL;

                member = run_client("nbdlink-member", FALSE, 300, list);
                g_assert_cmpstr(member, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                outsider = run_client("nbdlink-outsider", FALSE, 300, list);
                g_assert_cmpstr(outsider, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                prober = run_client("nbdlink-outsider", FALSE, 300, probe);
                g_assert_cmpstr(prober, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                denied = run_client("nbdlink-denied", TRUE, -1, list);
                g_assert_true(g_str_has_prefix(denied, ERR_NOT_AUTHORIZED));
                g_assert_nonnull(strstr(denied, "uid 64204 is not allowed to list or probe NBD exports "
                                                "(polkit action org.nbdlink.NBD1.list): polkit said no"));
                denied_probe = run_client("nbdlink-denied", TRUE, -1, probe);
                g_assert_true(g_str_has_prefix(denied_probe, ERR_NOT_AUTHORIZED));

                /* The rule refuses a host and an export by name. */
                by_host = run_client("nbdlink-member", FALSE, -1, list_denied_host);
                g_assert_true(g_str_has_prefix(by_host, ERR_NOT_AUTHORIZED));
                by_export = run_client("nbdlink-member", FALSE, -1, probe_denied_export);
                g_assert_true(g_str_has_prefix(by_export, ERR_NOT_AUTHORIZED));

                g_assert_false(connected_within(listener, 300));
        }
        close(listener);
}

/* A client that is its own authentication agent (polkit-test-client
 * --agent): reads what it prints, line by line, and tells it when to leave. */
typedef struct AgentClient {
        GSubprocess *process;
        GDataInputStream *out;
} AgentClient;

static void agent_client_start(AgentClient *c, const char *user, const char *const *call) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        g_ptr_array_add(argv, g_test_build_filename(G_TEST_BUILT, "polkit", "polkit-test-client", NULL));
        g_ptr_array_add(argv, g_strdup_printf("--user=%s", user));
        g_ptr_array_add(argv, g_strdup("--interactive"));
        g_ptr_array_add(argv, g_strdup("--agent"));
        for (const char *const *a = call; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        c->process = g_subprocess_newv((const char *const *) argv->pdata,
                                       G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error);
        g_assert_no_error(error);
        c->out = g_data_input_stream_new(g_subprocess_get_stdout_pipe(c->process));
}

static char *agent_client_read_line(AgentClient *c) {
        g_autoptr(GError) error = NULL;
        char *line = g_data_input_stream_read_line_utf8(c->out, NULL, NULL, &error);

        g_assert_no_error(error);
        return line ?: g_strdup("(end of output)");
}

static void agent_client_leave(AgentClient *c) {
        g_autoptr(GError) error = NULL;
        GOutputStream *in = g_subprocess_get_stdin_pipe(c->process);

        g_assert_true(g_output_stream_write_all(in, "leave\n", 6, NULL, NULL, &error));
        g_assert_no_error(error);
}

static void agent_client_finish(AgentClient *c) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_wait(c->process, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(c->process));
        g_assert_cmpint(g_subprocess_get_exit_status(c->process), ==, 0);
        g_clear_object(&c->out);
        g_clear_object(&c->process);
}

/* A password dialog stays open (nbdlink-asker's rule asks for an
 * administrator and its agent never answers): meanwhile nbdlinkd answers
 * everyone else at once, checks through polkit included. When the caller
 * then gives up and leaves the bus, the dialog is closed (polkit cancels the
 * agent's question; nbdlinkd also withdraws its check) and nbdlinkd never
 * connects to the server on the departed caller's behalf. */
static void test_nbdlinkd_pending_check_serves_others(void) {
        g_autofree char *host = NULL, *asked = NULL, *expected = NULL, *withdrawn = NULL;
        g_autofree char *detach = NULL, *attach = NULL, *root = NULL;
        const char *detach_call[] = { "detach", "/dev/nbd0", NULL };
        AgentClient c = {};
        gint64 start;
        guint16 port;
        int listener;

        polkitd_set_running(TRUE);
        listener = listen_loopback(&port);
        host = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *call[] = { "list", host, NULL };

                agent_client_start(&c, "nbdlink-asker", call);
        }

        /* The details reach the agent through the policy's message. */
        asked = agent_client_read_line(&c);
        expected = g_strdup_printf("ASKED org.nbdlink.NBD1.list: "
                                   "Authentication is required to list the network disks on %s.", host);
        g_assert_cmpstr(asked, ==, expected);

        start = g_get_monotonic_time();
        detach = run_client("nbdlink-member", FALSE, -1, detach_call);
        g_assert_true(g_str_has_prefix(detach, ERR_NOT_ATTACHED));
        attach = nbdlinkd_attach("nbdlink-member", FALSE, "disk0");
        g_assert_true(g_str_has_prefix(attach, ERR_NO_SUCH_DEVICE));
        root = nbdlinkd_attach(NULL, FALSE, "disk0");
        g_assert_true(g_str_has_prefix(root, ERR_NO_SUCH_DEVICE));
        g_assert_cmpint(g_get_monotonic_time() - start, <, 5 * G_USEC_PER_SEC);

        /* Still pending: nbdlinkd has not connected for the asker. */
        g_assert_false(connected_within(listener, 100));

        agent_client_leave(&c);
        withdrawn = agent_client_read_line(&c);
        g_assert_cmpstr(withdrawn, ==, "WITHDRAWN");
        agent_client_finish(&c);
        g_assert_false(connected_within(listener, 1000));
        close(listener);
}

/* The agent shows what is being attached: device, host and export. */
static void test_nbdlinkd_agent_sees_details(void) {
        const char *call[] = { "attach", "/dev/nbd0", "nbd.example:10809", "disk0", NULL };
        g_autofree char *asked = NULL, *withdrawn = NULL;
        AgentClient c = {};

        polkitd_set_running(TRUE);
        agent_client_start(&c, "nbdlink-asker", call);
        asked = agent_client_read_line(&c);
        g_assert_cmpstr(asked, ==, "ASKED org.nbdlink.NBD1.attach: Authentication is required to connect "
                                   "the network disk “disk0” on nbd.example:10809 as /dev/nbd0.");
        agent_client_leave(&c);
        withdrawn = agent_client_read_line(&c);
        g_assert_cmpstr(withdrawn, ==, "WITHDRAWN");
        agent_client_finish(&c);
}

/* The interaction flag decides: without it the same caller is told to allow
 * interaction, and no agent is asked. */
static void test_nbdlinkd_asker_without_flag(void) {
        g_autofree char *out = NULL;

        polkitd_set_running(TRUE);
        out = nbdlinkd_attach("nbdlink-asker", FALSE, "disk0");
        g_assert_true(g_str_has_prefix(out, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(out, "uid 64206 must authenticate to attach network block devices"));
}

/* Not root: nothing here can run (namespaces, bind mounts, other uids). */
static void test_needs_root(void) {
        g_test_skip("the polkit suite needs root: it creates mount and pid namespaces and calls as other users");
}

int main(int argc, char **argv) {
        static const char *const modes[] = { "authorize", "authorize-registry" };
        char tmpdir[] = "/tmp/nbdlink-polkit-XXXXXX";
        char bus_env[sizeof(tmpdir) + 64];
        int r;

        if (geteuid() != 0) {
                g_test_init(&argc, &argv, NULL);
                g_test_add_func("/polkit/needs-root", test_needs_root);
                return g_test_run();
        }

        enter_namespaces(tmpdir);
        suite.tmpdir = tmpdir;
        /* Before any thread exists: every child finds the bus here. */
        (void) snprintf(bus_env, sizeof(bus_env), "unix:path=%s/bus", tmpdir);
        (void) setenv("DBUS_SYSTEM_BUS_ADDRESS", bus_env, 1);

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/polkit/policy/valid", test_policy_valid);
        g_test_add_func("/polkit/policy/loaded", test_policy_loaded);
        g_test_add_func("/polkit/nbdlinkd/root-without-polkitd", test_nbdlinkd_root_without_polkitd);
        g_test_add_func("/polkit/nbdlinkd/polkitd-not-running", test_nbdlinkd_polkitd_not_running);
        g_test_add_func("/polkit/nbdlinkd/rule-allows", test_nbdlinkd_rule_allows);
        g_test_add_func("/polkit/nbdlinkd/rule-sees-details", test_nbdlinkd_rule_sees_details);
        g_test_add_func("/polkit/nbdlinkd/rule-denies", test_nbdlinkd_rule_denies);
        g_test_add_func("/polkit/nbdlinkd/interactive-required", test_nbdlinkd_interactive_required);
        g_test_add_func("/polkit/nbdlinkd/caller-leaves", test_nbdlinkd_caller_leaves);
        g_test_add_func("/polkit/nbdlinkd/detach-own", test_nbdlinkd_detach_own);
        g_test_add_func("/polkit/nbdlinkd/list-and-probe", test_nbdlinkd_list);
        g_test_add_func("/polkit/nbdlinkd/interactive-flag", test_nbdlinkd_asker_without_flag);
        g_test_add_func("/polkit/nbdlinkd/agent-sees-details", test_nbdlinkd_agent_sees_details);
        g_test_add_func("/polkit/nbdlinkd/pending-check-serves-others", test_nbdlinkd_pending_check_serves_others);
        for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
                static const struct {
                        const char *name;
                        GTestDataFunc func;
                } cases[] = {
                        { "root/without-polkitd",              test_root_without_polkitd },
                        { "polkitd-not-running",               test_polkitd_not_running },
                        { "rule/allows",                       test_rule_allows },
                        { "rule/sees-details",                 test_rule_sees_details },
                        { "rule/denies",                       test_rule_denies },
                        { "default/list-allowed",              test_default_list_allowed },
                        { "default/interactive-required",      test_default_interactive_required },
                        { "default/interactive-without-agent", test_default_interactive_without_agent },
                        { "polkit-error",                      test_polkit_error },
                        { "caller-leaves",                     test_caller_leaves },
                        { "caller-leaves-interactive",         test_caller_leaves_interactive },
                        { "detach-other",                      test_detach_other },
                };

                for (size_t j = 0; j < G_N_ELEMENTS(cases); j++) {
                        g_autofree char *path = g_strdup_printf("/polkit/%s/%s", modes[i], cases[j].name);

                        g_test_add_data_func(path, modes[i], cases[j].func);
                }
        }

        suite_setup();
        r = g_test_run();
        if (!suite_teardown() && r == 0)
                r = 1;
        return r;
}
