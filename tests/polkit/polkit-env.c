/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The polkit suite's world, also the vm suite's: private mount and pid
 * namespaces in which polkit's directories hold nbdlink's policy and the
 * suite's rules, the suite's users exist, and a bus configured like the
 * system bus carries the real polkitd and nbdlinkd. */
#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-config.h"
#include "polkit-env.h"

#define POLKITD           "/usr/lib/polkit-1/polkitd"
#define POLKIT_ACTIONS    "/usr/share/polkit-1/actions"
#define POLKIT_RULES_ETC  "/etc/polkit-1/rules.d"
#define POLKIT_RULES_USR  "/usr/share/polkit-1/rules.d"
#define POLKIT_NAME       "org.freedesktop.PolicyKit1"

static struct {
        const char *tmpdir;
        char *policy;
        char *bus_address;
        GSubprocess *bus_daemon;
        GSubprocess *polkitd;
        GSubprocess *service;
        GSubprocess *nbdlinkd;
        char *nbdlinkd_path;
        char *nbdlinkd_log;             /* NULL: its output goes to the test log */
        GDBusConnection *conn;
} env;

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
void polkit_env_enter(char *tmpdir) {
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
        if (test == 0) {
                g_autofree char *address = g_strdup_printf("unix:path=%s/bus", tmpdir);

                env.tmpdir = tmpdir;
                /* Before any thread exists: every child finds the bus here. */
                (void) setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
                return;
        }

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
        char *path = g_build_filename(env.tmpdir, name, NULL);

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
        /* A second plain member: the devices of one member are another
         * user's devices to the other. */
        { "nbdlink-member2",  64207, "nbdlink-users" },
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

        passwd_path = g_build_filename(env.tmpdir, "passwd", NULL);
        group_path = g_build_filename(env.tmpdir, "group", NULL);
        write_file(passwd_path, p->str);
        write_file(group_path, g->str);
        bind_mount(passwd_path, "/etc/passwd");
        bind_mount(group_path, "/etc/group");
}

/* Starts a program whose standard output goes to the test log, not into the
 * TAP stream; or, with log_path, whose standard output and error are
 * appended to that file. */
static GSubprocess *spawn_quiet(const char *const *argv, const char *log_path) {
        g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) error = NULL;
        GSubprocess *p;

        if (log_path) {
                int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

                if (fd < 0)
                        g_error("cannot open %s: %s", log_path, g_strerror(errno));
                g_subprocess_launcher_take_stderr_fd(launcher, dup(fd));
                g_subprocess_launcher_take_stdout_fd(launcher, fd);
        } else
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

gboolean polkit_env_name_has_owner(const char *name) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        gboolean has;

        reply = g_dbus_connection_call_sync(env.conn, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "NameHasOwner",
                                            g_variant_new("(s)", name), G_VARIANT_TYPE("(b)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(b)", &has);
        return has;
}

void polkit_env_wait_for_name(const char *name, gboolean owned) {
        gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

        while (polkit_env_name_has_owner(name) != owned) {
                if (g_get_monotonic_time() > deadline)
                        g_error("%s did not %s the bus in time", name, owned ? "appear on" : "leave");
                g_usleep(20 * 1000);
        }
}

void polkit_env_set_polkitd(gboolean running) {
        g_autoptr(GError) error = NULL;

        if (running && !env.polkitd) {
                const char *argv[] = { POLKITD, "--no-debug", NULL };

                env.polkitd = spawn_quiet(argv, NULL);
                polkit_env_wait_for_name(POLKIT_NAME, TRUE);
        } else if (!running && env.polkitd) {
                g_subprocess_send_signal(env.polkitd, SIGTERM);
                g_assert_true(g_subprocess_wait(env.polkitd, NULL, &error));
                g_clear_object(&env.polkitd);
                polkit_env_wait_for_name(POLKIT_NAME, FALSE);
        }
}

static void start_nbdlinkd(void) {
        const char *argv[] = { env.nbdlinkd_path, NULL };

        env.nbdlinkd = spawn_quiet(argv, env.nbdlinkd_log);
        polkit_env_wait_for_name(POLKIT_ENV_NBDLINKD_NAME, TRUE);
}

/* SIGTERM, and FALSE when it did not exit with status 0. */
static gboolean stop_nbdlinkd(void) {
        gboolean ok;

        g_subprocess_send_signal(env.nbdlinkd, SIGTERM);
        (void) g_subprocess_wait(env.nbdlinkd, NULL, NULL);
        ok = g_subprocess_get_if_exited(env.nbdlinkd) && g_subprocess_get_exit_status(env.nbdlinkd) == 0;
        if (!ok)
                printf("# nbdlinkd did not exit cleanly\n");
        g_clear_object(&env.nbdlinkd);
        return ok;
}

gboolean polkit_env_restart_nbdlinkd(void) {
        gboolean ok = stop_nbdlinkd();

        polkit_env_wait_for_name(POLKIT_ENV_NBDLINKD_NAME, FALSE);
        start_nbdlinkd();
        return ok;
}

void polkit_env_setup(const PolkitEnvOptions *options) {
        g_autoptr(GError) error = NULL;
        g_autofree char *actions = NULL, *rules = NULL, *empty = NULL, *conf = NULL, *socket_path = NULL, *rest = NULL;
        g_autofree char *line = NULL, *rules_file = NULL, *service = NULL;
        const char *source_root = g_getenv("NBDLINK_SOURCE_ROOT");

        g_assert_nonnull(source_root);
        env.policy = g_build_filename(source_root, "polkit", "org.nbdlink.NBD1.policy", NULL);

        actions = make_dir("actions");
        rules = make_dir("rules.d");
        empty = make_dir("empty");
        {
                g_autofree char *to = g_build_filename(actions, "org.nbdlink.NBD1.policy", NULL);

                copy_file(env.policy, to);
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
        conf = g_build_filename(env.tmpdir, "bus.conf", NULL);
        socket_path = g_build_filename(env.tmpdir, "bus", NULL);
        rest = g_strdup_printf(
                "  <policy user=\"root\">\n"
                "    <allow own=\"" POLKIT_ENV_SERVICE_NAME "\"/>\n"
                "  </policy>\n"
                "  <include>/usr/share/dbus-1/system.d/org.freedesktop.PolicyKit1.conf</include>\n"
                "  <include>%s/data/org.nbdlink.NBD1.conf</include>\n",
                source_root);
        bus_config_write(conf, socket_path, "    <allow send_destination=\"" POLKIT_ENV_SERVICE_NAME "\"/>\n", rest);

        {
                g_autofree char *config_arg = g_strdup_printf("--config-file=%s", conf);
                const char *argv[] = { "dbus-daemon", config_arg, "--nofork", "--print-address=1", NULL };

                env.bus_daemon = spawn_and_read_line(argv, &env.bus_address);
        }

        env.conn = g_dbus_connection_new_for_address_sync(
                        env.bus_address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        g_assert_no_error(error);

        if (options->test_service) {
                service = g_test_build_filename(G_TEST_BUILT, "polkit", "polkit-test-service", NULL);
                const char *argv[] = { service, NULL };

                env.service = spawn_and_read_line(argv, &line);
                g_assert_cmpstr(line, ==, "ready");
        }

        env.nbdlinkd_path = g_strdup(options->nbdlinkd);
        if (options->capture_log)
                env.nbdlinkd_log = g_build_filename(env.tmpdir, "nbdlinkd.log", NULL);
        start_nbdlinkd();
}

gboolean polkit_env_teardown(void) {
        gboolean ok = TRUE;

        polkit_env_set_polkitd(FALSE);
        if (env.nbdlinkd && !stop_nbdlinkd())
                ok = FALSE;
        if (env.service) {
                g_subprocess_send_signal(env.service, SIGTERM);
                (void) g_subprocess_wait(env.service, NULL, NULL);
                if (!g_subprocess_get_if_exited(env.service) || g_subprocess_get_exit_status(env.service) != 0) {
                        printf("# polkit-test-service did not exit cleanly\n");
                        ok = FALSE;
                }
                g_clear_object(&env.service);
        }
        g_clear_object(&env.conn);
        if (env.bus_daemon) {
                g_subprocess_send_signal(env.bus_daemon, SIGTERM);
                (void) g_subprocess_wait(env.bus_daemon, NULL, NULL);
                g_clear_object(&env.bus_daemon);
        }
        (void) umount2(POLKIT_ACTIONS, MNT_DETACH);
        (void) umount2(POLKIT_RULES_ETC, MNT_DETACH);
        (void) umount2(POLKIT_RULES_USR, MNT_DETACH);
        (void) umount2("/etc/passwd", MNT_DETACH);
        (void) umount2("/etc/group", MNT_DETACH);
        g_clear_pointer(&env.bus_address, g_free);
        g_clear_pointer(&env.policy, g_free);
        g_clear_pointer(&env.nbdlinkd_path, g_free);
        g_clear_pointer(&env.nbdlinkd_log, g_free);
        return ok;
}

char *polkit_env_run_client(const char *user, gboolean interactive, int leave_after_ms, const char *const *call) {
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

void agent_client_start(AgentClient *c, const char *user, const char *const *call) {
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

char *agent_client_read_line(AgentClient *c) {
        g_autoptr(GError) error = NULL;
        char *line = g_data_input_stream_read_line_utf8(c->out, NULL, NULL, &error);

        g_assert_no_error(error);
        return line ?: g_strdup("(end of output)");
}

void agent_client_leave(AgentClient *c) {
        g_autoptr(GError) error = NULL;
        GOutputStream *in = g_subprocess_get_stdin_pipe(c->process);

        g_assert_true(g_output_stream_write_all(in, "leave\n", 6, NULL, NULL, &error));
        g_assert_no_error(error);
}

void agent_client_finish(AgentClient *c) {
        g_autoptr(GError) error = NULL;

        g_assert_true(g_subprocess_wait(c->process, NULL, &error));
        g_assert_no_error(error);
        g_assert_true(g_subprocess_get_if_exited(c->process));
        g_assert_cmpint(g_subprocess_get_exit_status(c->process), ==, 0);
        g_clear_object(&c->out);
        g_clear_object(&c->process);
}
GDBusConnection *polkit_env_bus(void) {
        return env.conn;
}

GSubprocess *polkit_env_nbdlinkd(void) {
        return env.nbdlinkd;
}

const char *polkit_env_nbdlinkd_log(void) {
        return env.nbdlinkd_log;
}

const char *polkit_env_policy(void) {
        return env.policy;
}

const char *polkit_env_dir(void) {
        return env.tmpdir;
}
