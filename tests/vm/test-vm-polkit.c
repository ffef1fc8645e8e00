/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's polkit cases: the polkit suite's world (namespaces, users,
 * rules, the real polkitd and nbdlinkd on a system-like bus) on a kernel that
 * has nbd devices, so that "allowed" means a working /dev/nbdN, "refused" a
 * device left alone, and a caller that leaves during authorization a device
 * never configured. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest-util.h"
#include "loopback.h"
#include "polkit-env.h"
#include "proc-count.h"

#define DEVICES_PATH  MANAGER_PATH "/devices/"
#define EXPORT        "disk"
#define BLOCK         4096

#define NOT_ALLOWED_DETACH_OTHER \
        "must authenticate to detach a network block device that another user attached " \
        "(polkit action org.nbdlink.NBD1.detach-other)"

static GSubprocess *nbdkit;
static char *host;              /* 127.0.0.1:PORT of nbdkit */
static char *nbdkit_log;        /* what nbdkit's log filter writes */

/* ---- the guest's devices ---------------------------------------------- */

static void assert_never_configured(const char *name) {
        g_assert_false(device_running(name));
        g_assert_cmpuint(device_size(name), ==, 0);
}

/* Writes a block of fresh bytes at a block-aligned offset past the start,
 * bypassing the page cache, and reads it back. */
static void assert_block_works(const char *name) {
        g_autofree char *dev = g_strdup_printf("/dev/%s", name);
        g_autofree guint8 *out = alloc_aligned(BLOCK), *in = alloc_aligned(BLOCK);
        int fd;

        for (size_t i = 0; i < BLOCK; i += 4)
                *(guint32 *) (out + i) = g_random_int();
        memset(in, 0, BLOCK);

        fd = open(dev, O_RDWR | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                g_error("open %s: %s", dev, g_strerror(errno));
        g_assert_cmpint(pwrite(fd, out, BLOCK, 8 * BLOCK), ==, BLOCK);
        g_assert_cmpint(fsync(fd), ==, 0);
        g_assert_cmpint(pread(fd, in, BLOCK, 8 * BLOCK), ==, BLOCK);
        close(fd);
        g_assert_cmpmem(in, BLOCK, out, BLOCK);
}

/* How many connections nbdkit has seen: one " Preconnect " line each. */
static guint nbdkit_connections(void) {
        g_autofree char *text = NULL;
        guint n = 0;

        if (!g_file_get_contents(nbdkit_log, &text, NULL, NULL))
                return 0;
        for (const char *p = text; (p = strstr(p, " Preconnect ")); p++)
                n++;
        return n;
}

/* ---- nbdlinkd's view -------------------------------------------------- */

static char *object_of(const char *name) {
        return g_strconcat(DEVICES_PATH, name, NULL);
}

static gboolean object_exists(const char *name) {
        g_autoptr(GVariant) reply = NULL, objects = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *object = object_of(name);

        reply = g_dbus_connection_call_sync(polkit_env_bus(), POLKIT_ENV_NBDLINKD_NAME, MANAGER_PATH,
                                            "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", NULL,
                                            G_VARIANT_TYPE("(a{oa{sa{sv}}})"), G_DBUS_CALL_FLAGS_NONE, -1,
                                            NULL, &error);
        g_assert_no_error(error);
        g_autoptr(GVariant) found = NULL;

        objects = g_variant_get_child_value(reply, 0);
        found = g_variant_lookup_value(objects, object, NULL);
        return found != NULL;
}

static guint32 owner_uid(const char *name) {
        g_autoptr(GVariant) reply = NULL, value = NULL;
        g_autoptr(GError) error = NULL;
        g_autofree char *object = object_of(name);

        reply = g_dbus_connection_call_sync(polkit_env_bus(), POLKIT_ENV_NBDLINKD_NAME, object,
                                            "org.freedesktop.DBus.Properties", "Get",
                                            g_variant_new("(ss)", DEVICE_IFACE, "OwnerUID"),
                                            G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(v)", &value);
        return g_variant_get_uint32(value);
}

static guint32 uid_of(const char *user) {
        struct passwd *pw = getpwnam(user);

        g_assert_nonnull(pw);
        return pw->pw_uid;
}

/* What the daemon holds: open fds and threads. A request that was never
 * carried out must leave both where they were. */
typedef struct Usage {
        guint fds, threads;
} Usage;

static Usage daemon_usage(void) {
        const char *id = g_subprocess_get_identifier(polkit_env_nbdlinkd());
        pid_t pid;

        g_assert_nonnull(id);
        pid = (pid_t) g_ascii_strtoll(id, NULL, 10);
        return (Usage) { .fds = proc_count_fds(pid), .threads = proc_count_threads(pid) };
}

/* Back to the baseline within a few seconds (the daemon may still be
 * closing what polkit's late answer touched). */
static void assert_usage_back(Usage before) {
        gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
        Usage now;

        for (;;) {
                now = daemon_usage();
                if ((now.fds == before.fds && now.threads == before.threads) ||
                    g_get_monotonic_time() > deadline)
                        break;
                g_usleep(50 * 1000);
        }
        g_test_message("nbdlinkd: %u fds, %u threads (before: %u, %u)", now.fds, now.threads,
                       before.fds, before.threads);
        g_assert_cmpuint(now.fds, ==, before.fds);
        g_assert_cmpuint(now.threads, ==, before.threads);
}

/* ---- calls as the suite's users ---------------------------------------- */

/* What polkit-test-client printed starts with `prefix`; says what it was if
 * not. */
static void assert_answer(const char *out, const char *prefix) {
        if (!g_str_has_prefix(out, prefix))
                g_error("expected \"%s...\", got \"%s\"", prefix, out);
}

static char *call_attach(const char *user, const char *name) {
        g_autofree char *dev = g_strdup_printf("/dev/%s", name);
        const char *call[] = { "attach", dev, host, EXPORT, NULL };

        return polkit_env_run_client(user, FALSE, -1, call);
}

static char *call_detach(const char *user, gboolean interactive, const char *name) {
        g_autofree char *dev = g_strdup_printf("/dev/%s", name);
        const char *call[] = { "detach", dev, NULL };

        return polkit_env_run_client(user, interactive, -1, call);
}

static char *call_device_detach(const char *user, gboolean interactive, const char *name) {
        g_autofree char *object = object_of(name);
        const char *call[] = { "device-detach", object, NULL };

        return polkit_env_run_client(user, interactive, -1, call);
}

static void attach_ok(const char *user, const char *name) {
        g_autofree char *out = NULL;

        g_assert_false(device_running(name));
        out = call_attach(user, name);
        g_assert_cmpstr(out, ==, "OK");
        g_assert_true(device_running(name));
        g_assert_true(object_exists(name));
}

static void assert_detached(const char *out, const char *name) {
        g_assert_cmpstr(out, ==, "OK");
        wait_device_stopped(name);
        g_assert_false(object_exists(name));
}

static void assert_still_attached(const char *name, guint32 owner) {
        g_assert_true(device_running(name));
        g_assert_true(object_exists(name));
        g_assert_cmpuint(owner_uid(name), ==, owner);
        assert_block_works(name);
}

/* ---- the cases --------------------------------------------------------- */

/* A member of nbdlink-users attaches: the device is recorded as its own and
 * carries data. It stays for the next case. */
static void test_member_attach(void) {
        attach_ok("nbdlink-member", "nbd1");
        g_assert_cmpuint(owner_uid("nbd1"), ==, uid_of("nbdlink-member"));
        g_assert_cmpuint(device_size("nbd1"), >, 0);
        assert_block_works("nbd1");
}

/* Its own device: Device.Detach (of the one the previous case left) and
 * Manager.Detach are the detach action, which the rule grants. */
static void test_member_detach_own(void) {
        g_autofree char *by_device = NULL, *by_manager = NULL;

        g_assert_true(device_running("nbd1"));
        by_device = call_device_detach("nbdlink-member", FALSE, "nbd1");
        assert_detached(by_device, "nbd1");

        attach_ok("nbdlink-member", "nbd1");
        by_manager = call_detach("nbdlink-member", FALSE, "nbd1");
        assert_detached(by_manager, "nbd1");
}

/* Another member may detach its own devices, not this one: detach-other,
 * which the rule leaves to the policy's default (an administrator). The
 * device stays attached and working. It stays for the next case. */
static void test_other_member_refused(void) {
        g_autofree char *manager = NULL, *device = NULL, *interactive = NULL, *expected = NULL;
        guint32 member = uid_of("nbdlink-member");

        attach_ok("nbdlink-member", "nbd1");
        expected = g_strdup_printf("uid %u " NOT_ALLOWED_DETACH_OTHER, uid_of("nbdlink-member2"));

        manager = call_detach("nbdlink-member2", FALSE, "nbd1");
        assert_answer(manager, ERR_INTERACTIVE);
        g_assert_nonnull(strstr(manager, expected));

        device = call_device_detach("nbdlink-member2", FALSE, "nbd1");
        assert_answer(device, ERR_INTERACTIVE);
        g_assert_nonnull(strstr(device, expected));

        /* Allowed to ask, but there is no agent to ask: a plain no. */
        interactive = call_detach("nbdlink-member2", TRUE, "nbd1");
        assert_answer(interactive, ERR_NOT_AUTHORIZED);
        g_assert_nonnull(strstr(interactive, "is not allowed to detach a network block device that another "
                                             "user attached (polkit action org.nbdlink.NBD1.detach-other)"));

        assert_still_attached("nbd1", member);
}

/* nbdlink-admin may detach other users' devices: the one the previous case
 * left. */
static void test_admin_detach_other(void) {
        g_autofree char *out = NULL;

        g_assert_true(device_running("nbd1"));
        g_assert_cmpuint(owner_uid("nbd1"), ==, uid_of("nbdlink-member"));
        out = call_device_detach("nbdlink-admin", FALSE, "nbd1");
        assert_detached(out, "nbd1");
}

/* Root attaches without polkit; to a member, that device is another user's. */
static void test_root_device(void) {
        g_autofree char *device = NULL, *manager = NULL, *expected = NULL, *root = NULL;

        attach_ok(NULL, "nbd2");
        g_assert_cmpuint(owner_uid("nbd2"), ==, 0);

        expected = g_strdup_printf("uid %u " NOT_ALLOWED_DETACH_OTHER, uid_of("nbdlink-member"));
        device = call_device_detach("nbdlink-member", FALSE, "nbd2");
        assert_answer(device, ERR_INTERACTIVE);
        g_assert_nonnull(strstr(device, expected));
        manager = call_detach("nbdlink-member", FALSE, "nbd2");
        assert_answer(manager, ERR_INTERACTIVE);
        g_assert_nonnull(strstr(manager, expected));
        assert_still_attached("nbd2", 0);

        root = call_detach(NULL, FALSE, "nbd2");
        assert_detached(root, "nbd2");
}

/* An interactive attach waits for a password that never comes (nbdlink-ask
 * is always asked; the caller's own agent never answers); the caller leaves
 * with the question open. polkit withdraws the question, and nbdlinkd never
 * touches the device nor keeps anything for the departed caller. */
static void test_asker_leaves(void) {
        const char *call[] = { "attach", "/dev/nbd3", host, EXPORT, NULL };
        g_autofree char *asked = NULL, *expected = NULL, *withdrawn = NULL;
        AgentClient c = {};
        Usage before = daemon_usage();
        guint connections = nbdkit_connections();

        assert_never_configured("nbd3");
        agent_client_start(&c, "nbdlink-asker", call);
        asked = agent_client_read_line(&c);
        expected = g_strdup_printf("ASKED org.nbdlink.NBD1.attach: Authentication is required to connect "
                                   "the network disk “" EXPORT "” on %s as /dev/nbd3.", host);
        g_assert_cmpstr(asked, ==, expected);

        /* The question is open: nothing has happened yet. */
        assert_never_configured("nbd3");
        g_assert_false(object_exists("nbd3"));

        agent_client_leave(&c);
        withdrawn = agent_client_read_line(&c);
        g_assert_cmpstr(withdrawn, ==, "WITHDRAWN");
        agent_client_finish(&c);

        /* WITHDRAWN means nbdlinkd saw the caller leave (that is what made
         * it cancel the check). A call through nbdlinkd's main loop after
         * that finds whatever the departure left to do done. Root's call
         * does not wait on polkitd, which now and then took longer than the
         * 25 s call timeout to answer the next check right after withdrawing
         * an interactive one. */
        {
                g_autofree char *probe = call_detach(NULL, FALSE, "nbd3");

                assert_answer(probe, ERR_NOT_ATTACHED);
        }
        assert_never_configured("nbd3");
        g_assert_false(object_exists("nbd3"));
        g_assert_cmpuint(nbdkit_connections(), ==, connections);
        assert_usage_back(before);
}

/* nbdlink-slow is allowed after polkit has thought for 1.5 s; the caller
 * leaves after 0.3 s. When the yes arrives there is nobody to attach for. */
static void test_slow_caller_leaves(void) {
        const char *call[] = { "attach", "/dev/nbd4", host, EXPORT, NULL };
        g_autofree char *out = NULL, *later = NULL;
        gint64 start = g_get_monotonic_time();
        Usage before = daemon_usage();
        guint connections = nbdkit_connections();

        assert_never_configured("nbd4");
        out = polkit_env_run_client("nbdlink-slow", FALSE, 300, call);
        g_assert_cmpstr(out, ==, "LEFT");

        /* Past polkit's answer, plus time for an attach to have started. */
        while (g_get_monotonic_time() - start < 2500 * 1000) {
                g_assert_false(device_running("nbd4"));
                g_usleep(50 * 1000);
        }
        {
                g_autofree char *probe = call_detach("nbdlink-member", FALSE, "nbd4");

                assert_answer(probe, ERR_NOT_ATTACHED);
        }
        assert_never_configured("nbd4");
        g_assert_false(object_exists("nbd4"));
        g_assert_cmpuint(nbdkit_connections(), ==, connections);
        assert_usage_back(before);

        /* Nothing was left half-done on the device: it attaches as usual,
         * and nbdkit's log shows it. */
        attach_ok("nbdlink-member", "nbd4");
        g_assert_cmpuint(nbdkit_connections(), >, connections);
        later = call_detach("nbdlink-member", FALSE, "nbd4");
        assert_detached(later, "nbd4");
}

/* ---- the server -------------------------------------------------------- */

/* nbdkit on loopback, one memory disk under the export name "disk", with
 * its log filter outermost: every connection that reaches it shows. */
static void nbdkit_start(void) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) error = NULL;
        g_autofree char *port_arg = NULL;
        guint16 port = loopback_free_port();

        port_arg = g_strdup_printf("%u", port);
        nbdkit_log = g_build_filename(polkit_env_dir(), "nbdkit.log", NULL);
        g_autofree char *log_arg = g_strdup_printf("logfile=%s", nbdkit_log);
        const char *argv[] = {
                "nbdkit", "--foreground", "--exit-with-parent",
                "--ipaddr", "127.0.0.1", "--port", port_arg,
                "--filter=log", "--filter=exportname", "memory", "64M", log_arg,
                "exportname=" EXPORT, "exportname-strict=true", NULL
        };
        /* Its log goes to the test log, not into the TAP stream. */
        g_subprocess_launcher_take_stdout_fd(l, dup(STDERR_FILENO));
        g_subprocess_launcher_set_child_setup(l, child_setup_die_with_parent, NULL, NULL);
        nbdkit = g_subprocess_launcher_spawnv(l, argv, &error);
        g_assert_no_error(error);

        wait_port_open("127.0.0.1", port, 20000, "nbdkit");
        host = g_strdup_printf("127.0.0.1:%u", port);
}

int main(int argc, char **argv) {
        char tmpdir[] = "/tmp/nbdlink-vm-polkit-XXXXXX";
        const char *daemon_path;
        int r;

        /* g_test_init() normally comes after polkit_env_enter(); these
         * errors go to the TAP output before it. */
        daemon_path = g_getenv("NBDLINKD");
        if (geteuid() != 0 || !daemon_path || !*daemon_path) {
                g_test_init(&argc, &argv, NULL);
                guest_require_root();
                daemon_path = guest_daemon_path();
        }

        polkit_env_enter(tmpdir);
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/vm/polkit/member/attach", test_member_attach);
        g_test_add_func("/vm/polkit/member/detach-own", test_member_detach_own);
        g_test_add_func("/vm/polkit/other-member/detach-refused", test_other_member_refused);
        g_test_add_func("/vm/polkit/admin/detach-other", test_admin_detach_other);
        g_test_add_func("/vm/polkit/root/attach", test_root_device);
        g_test_add_func("/vm/polkit/asker/caller-leaves", test_asker_leaves);
        g_test_add_func("/vm/polkit/slow/caller-leaves", test_slow_caller_leaves);

        polkit_env_setup(&(PolkitEnvOptions) { .nbdlinkd = daemon_path });
        polkit_env_set_polkitd(TRUE);
        nbdkit_start();

        r = g_test_run();

        child_kill(&nbdkit);
        g_free(host);
        g_free(nbdkit_log);
        if (!polkit_env_teardown() && r == 0)
                r = 1;
        return r;
}
