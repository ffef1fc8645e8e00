/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The polkit suite: the real polkitd on a private dbus-daemon, inside private
 * mount and pid namespaces where polkit's actions directory holds nbdlink's
 * policy and its rules directories hold the suite's rules. The service under
 * test is called as root and as unprivileged users. */
#include <gio/gio.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "loopback.h"
#include "polkit-env.h"

#define POLKIT_DTD        "/usr/share/polkit-1/policyconfig-1.dtd"
#define SERVICE_NAME      POLKIT_ENV_SERVICE_NAME

typedef struct Stats {
        guint32 performed, refused, cancelled, pending;
} Stats;

static Stats get_stats(void) {
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        Stats s;

        reply = g_dbus_connection_call_sync(polkit_env_bus(), SERVICE_NAME, "/org/nbdlink/PolkitTest1",
                                            "org.nbdlink.PolkitTest1", "Stats", NULL,
                                            G_VARIANT_TYPE("(uuuu)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        g_assert_no_error(error);
        g_variant_get(reply, "(uuuu)", &s.performed, &s.refused, &s.cancelled, &s.pending);
        return s;
}

/* `mode` is "authorize" (polkit_authorize_async() with a callback) or
 * "authorize-registry" (polkit_registry_check(), the handler run again). */
static char *authorize(const char *mode, const char *user, gboolean interactive, const char *action,
                       const char *export) {
        const char *call[] = { mode, action, "/dev/nbd0", "nbd.example:10809", export, NULL };

        return polkit_env_run_client(user, interactive, -1, call);
}

static void assert_stats_delta(Stats before, guint32 performed, guint32 refused, guint32 cancelled) {
        Stats after = get_stats();

        g_assert_cmpuint(after.performed - before.performed, ==, performed);
        g_assert_cmpuint(after.refused - before.refused, ==, refused);
        g_assert_cmpuint(after.cancelled - before.cancelled, ==, cancelled);
        g_assert_cmpuint(after.pending, ==, 0);
}

static void test_policy_valid(void) {
        const char *argv[] = { "xmllint", "--noout", "--dtdvalid", POLKIT_DTD, polkit_env_policy(), NULL };
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        int status;

        g_assert_true(g_spawn_sync(NULL, (char **) argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
                                   NULL, &err, &status, &error));
        g_assert_no_error(error);
        if (!g_spawn_check_wait_status(status, NULL))
                g_error("%s does not follow polkit's DTD:\n%s", polkit_env_policy(), err);
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

        polkit_env_set_polkitd(TRUE);

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

/* One call of an authorization case and what it must answer: "OK", or an
 * error starting with `answer` whose message mentions `mentions`. */
typedef struct AuthorizeCall {
        const char *user;               /* NULL: root */
        gboolean interactive;
        const char *action;
        const char *export;
        const char *answer;
        const char *mentions;
} AuthorizeCall;

typedef struct AuthorizeCase {
        const char *name;
        gboolean polkitd;
        AuthorizeCall calls[2];         /* the second is used when it has an action */
        guint32 performed, refused;     /* what the service counts */
} AuthorizeCase;

static const AuthorizeCase authorize_cases[] = {
        /* Root never waits for polkit, so it works even without polkitd. */
        { "root/without-polkitd", FALSE,
          { { NULL, FALSE, "org.nbdlink.NBD1.attach", "disk0", "OK" } }, 1, 0 },
        /* No polkitd: the bus cannot start one, and that is a refusal. */
        { "polkitd-not-running", FALSE,
          { { "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "disk0", ERR_NOT_AUTHORIZED,
              "uid 64201 is not allowed to attach network block devices "
              "(polkit action org.nbdlink.NBD1.attach): polkit is not running" } }, 0, 1 },
        { "rule/allows", TRUE,
          { { "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "disk0", "OK" } }, 1, 0 },
        /* The rule refuses one export by name: the details reach polkit. */
        { "rule/sees-details", TRUE,
          { { "nbdlink-member", FALSE, "org.nbdlink.NBD1.attach", "denied-export", ERR_NOT_AUTHORIZED } }, 0, 1 },
        /* A plain no stays a no when interaction is allowed. */
        { "rule/denies", TRUE,
          { { "nbdlink-denied", FALSE, "org.nbdlink.NBD1.attach", "disk0", ERR_NOT_AUTHORIZED,
              "uid 64204 is not allowed to attach network block devices "
              "(polkit action org.nbdlink.NBD1.attach): polkit said no" },
            { "nbdlink-denied", TRUE, "org.nbdlink.NBD1.attach", "disk0", ERR_NOT_AUTHORIZED } }, 0, 2 },
        /* No rule for nbdlink-outsider and no session: the policy's
         * allow_any applies. */
        { "default/list-allowed", TRUE,
          { { "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.list", "", "OK" } }, 1, 0 },
        /* auth_admin without the interaction flag: the caller is told that
         * it could succeed by allowing interaction, as systemd's services
         * do. */
        { "default/interactive-required", TRUE,
          { { "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.attach", "disk0", ERR_INTERACTIVE,
              "uid 64202 must authenticate to attach network block devices "
              "(polkit action org.nbdlink.NBD1.attach)" },
            { "nbdlink-outsider", FALSE, "org.nbdlink.NBD1.detach-other", "disk0", ERR_INTERACTIVE } }, 0, 2 },
        /* Interaction allowed, but no authentication agent to ask: refused,
         * not "interactive authorization required" again. */
        { "default/interactive-without-agent", TRUE,
          { { "nbdlink-outsider", TRUE, "org.nbdlink.NBD1.attach", "disk0", ERR_NOT_AUTHORIZED } }, 0, 1 },
        /* polkit answers with an error (the action is not registered):
         * refused. */
        { "polkit-error", TRUE,
          { { "nbdlink-member", FALSE, "org.nbdlink.NBD1.no-such-action", "disk0", ERR_NOT_AUTHORIZED,
              "polkit failed: Action org.nbdlink.NBD1.no-such-action is not registered" } }, 0, 1 },
};

/* "OK" exactly, or the expected error with the expected words. */
static void assert_answer(const char *out, const char *answer, const char *mentions) {
        if (g_str_equal(answer, "OK"))
                g_assert_cmpstr(out, ==, "OK");
        else if (!g_str_has_prefix(out, answer))
                g_error("answer '%s' does not start with '%s'", out, answer);
        if (mentions && !strstr(out, mentions))
                g_error("answer '%s' does not mention '%s'", out, mentions);
}

typedef struct AuthorizeRun {
        const char *mode;
        const AuthorizeCase *c;
} AuthorizeRun;

static void test_authorize_case(gconstpointer data) {
        const AuthorizeRun *run = data;
        const AuthorizeCase *c = run->c;
        Stats before;

        polkit_env_set_polkitd(c->polkitd);
        before = get_stats();
        for (size_t i = 0; i < G_N_ELEMENTS(c->calls) && c->calls[i].action; i++) {
                const AuthorizeCall *call = &c->calls[i];
                g_autofree char *out = authorize(run->mode, call->user, call->interactive, call->action,
                                                 call->export);

                assert_answer(out, call->answer, call->mentions);
        }
        assert_stats_delta(before, c->performed, c->refused, 0);
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

        polkit_env_set_polkitd(TRUE);
        before = get_stats();
        out = polkit_env_run_client("nbdlink-slow", interactive, 300, call);
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

        return polkit_env_run_client(user, interactive, -1, call);
}

/* Attach as `user`; this host has no nbd module, so NoSuchDevice means
 * authorized. */
typedef struct NbdlinkdCase {
        const char *name;
        gboolean polkitd;
        const char *user;               /* NULL: root */
        gboolean interactive;
        const char *export;
        const char *answer;
        const char *mentions;
} NbdlinkdCase;

static const NbdlinkdCase nbdlinkd_cases[] = {
        { "root-without-polkitd", FALSE, NULL, FALSE, "disk0", ERR_NO_SUCH_DEVICE },
        { "polkitd-not-running", FALSE, "nbdlink-member", FALSE, "disk0", ERR_NOT_AUTHORIZED,
          "uid 64201 is not allowed to attach network block devices "
          "(polkit action org.nbdlink.NBD1.attach): polkit is not running" },
        { "rule-allows", TRUE, "nbdlink-member", FALSE, "disk0", ERR_NO_SUCH_DEVICE, "/dev/nbd0" },
        /* The rule refuses one export by name: nbdlinkd passes the details. */
        { "rule-sees-details", TRUE, "nbdlink-member", FALSE, "denied-export", ERR_NOT_AUTHORIZED },
        { "rule-denies", TRUE, "nbdlink-denied", TRUE, "disk0", ERR_NOT_AUTHORIZED,
          "uid 64204 is not allowed to attach network block devices "
          "(polkit action org.nbdlink.NBD1.attach): polkit said no" },
        { "interactive-required", TRUE, "nbdlink-outsider", FALSE, "disk0", ERR_INTERACTIVE,
          "uid 64202 must authenticate to attach network block devices" },
};

static void test_nbdlinkd_case(gconstpointer data) {
        const NbdlinkdCase *c = data;
        g_autofree char *out = NULL;

        polkit_env_set_polkitd(c->polkitd);
        out = nbdlinkd_attach(c->user, c->interactive, c->export);
        assert_answer(out, c->answer, c->mentions);
}

/* TRUE if someone connected to the listener within timeout_ms: nbdlinkd's
 * ListExports connects to a loopback listener only if it acts. */
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

        polkit_env_set_polkitd(TRUE);
        listener = loopback_listen(SOCK_NONBLOCK, 8, &port);
        host = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *call[] = { "list", host, NULL };

                out = polkit_env_run_client("nbdlink-slow", FALSE, 300, call);
                g_assert_cmpstr(out, ==, "LEFT");
                g_assert_false(connected_within(listener, 2000));

                control = polkit_env_run_client("nbdlink-member", FALSE, 500, call);
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

        polkit_env_set_polkitd(TRUE);
        member = polkit_env_run_client("nbdlink-member", FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(member, ERR_NOT_ATTACHED));
        g_assert_nonnull(strstr(member, "/dev/nbd0"));

        root = polkit_env_run_client(NULL, FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(root, ERR_NOT_ATTACHED));

        /* The policy's default for detach: an administrator, outside an
         * active session. */
        outsider = polkit_env_run_client("nbdlink-outsider", FALSE, -1, nbd0);
        g_assert_true(g_str_has_prefix(outsider, ERR_INTERACTIVE));
        g_assert_nonnull(strstr(outsider, "uid 64202 must authenticate to detach this network block device "
                                          "(polkit action org.nbdlink.NBD1.detach)"));

        denied = polkit_env_run_client("nbdlink-denied", TRUE, -1, nbd0);
        g_assert_true(g_str_has_prefix(denied, ERR_NOT_AUTHORIZED));
        g_assert_nonnull(strstr(denied, "uid 64204 is not allowed to detach this network block device "
                                        "(polkit action org.nbdlink.NBD1.detach): polkit said no"));

        /* The rule refuses /dev/nbd13 by name: the device detail arrives. */
        device = polkit_env_run_client("nbdlink-member", FALSE, -1, nbd13);
        g_assert_true(g_str_has_prefix(device, ERR_NOT_AUTHORIZED));
}

/* Detaching another uid's device is its own action: members of
 * nbdlink-users may detach their own, only nbdlink-admin others'. (Which of
 * the two a Detach needs, from OwnerUID, is the unit suite's auth test; with
 * a real device, the vm suite's.) */
static void test_detach_other(gconstpointer mode) {
        Stats before;
        g_autofree char *own = NULL, *other = NULL, *other_interactive = NULL, *admin = NULL;

        polkit_env_set_polkitd(TRUE);
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

        polkit_env_set_polkitd(TRUE);
        listener = loopback_listen(SOCK_NONBLOCK, 8, &port);
        host = g_strdup_printf("127.0.0.1:%u", port);
        {
                const char *list[] = { "list", host, NULL };
                const char *probe[] = { "probe", host, "disk0", NULL };
                const char *list_denied_host[] = { "list", "denied.example", NULL };
                const char *probe_denied_export[] = { "probe", host, "denied-export", NULL };
                g_autofree char *member = NULL, *outsider = NULL, *prober = NULL;
                g_autofree char *denied = NULL, *denied_probe = NULL, *by_host = NULL, *by_export = NULL;

                member = polkit_env_run_client("nbdlink-member", FALSE, 300, list);
                g_assert_cmpstr(member, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                outsider = polkit_env_run_client("nbdlink-outsider", FALSE, 300, list);
                g_assert_cmpstr(outsider, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                prober = polkit_env_run_client("nbdlink-outsider", FALSE, 300, probe);
                g_assert_cmpstr(prober, ==, "LEFT");
                g_assert_true(connected_within(listener, 2000));

                denied = polkit_env_run_client("nbdlink-denied", TRUE, -1, list);
                g_assert_true(g_str_has_prefix(denied, ERR_NOT_AUTHORIZED));
                g_assert_nonnull(strstr(denied, "uid 64204 is not allowed to list or probe NBD exports "
                                                "(polkit action org.nbdlink.NBD1.list): polkit said no"));
                denied_probe = polkit_env_run_client("nbdlink-denied", TRUE, -1, probe);
                g_assert_true(g_str_has_prefix(denied_probe, ERR_NOT_AUTHORIZED));

                /* The rule refuses a host and an export by name. */
                by_host = polkit_env_run_client("nbdlink-member", FALSE, -1, list_denied_host);
                g_assert_true(g_str_has_prefix(by_host, ERR_NOT_AUTHORIZED));
                by_export = polkit_env_run_client("nbdlink-member", FALSE, -1, probe_denied_export);
                g_assert_true(g_str_has_prefix(by_export, ERR_NOT_AUTHORIZED));

                g_assert_false(connected_within(listener, 300));
        }
        close(listener);
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

        polkit_env_set_polkitd(TRUE);
        listener = loopback_listen(SOCK_NONBLOCK, 8, &port);
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
        detach = polkit_env_run_client("nbdlink-member", FALSE, -1, detach_call);
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

        polkit_env_set_polkitd(TRUE);
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

        polkit_env_set_polkitd(TRUE);
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
        g_autofree char *nbdlinkd = NULL;
        int r;

        if (geteuid() != 0) {
                g_test_init(&argc, &argv, NULL);
                g_test_add_func("/polkit/needs-root", test_needs_root);
                return g_test_run();
        }

        polkit_env_enter(tmpdir);

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/polkit/policy/valid", test_policy_valid);
        g_test_add_func("/polkit/policy/loaded", test_policy_loaded);
        for (size_t i = 0; i < G_N_ELEMENTS(nbdlinkd_cases); i++) {
                g_autofree char *path = g_strdup_printf("/polkit/nbdlinkd/%s", nbdlinkd_cases[i].name);

                g_test_add_data_func(path, nbdlinkd_cases + i, test_nbdlinkd_case);
        }
        g_test_add_func("/polkit/nbdlinkd/caller-leaves", test_nbdlinkd_caller_leaves);
        g_test_add_func("/polkit/nbdlinkd/detach-own", test_nbdlinkd_detach_own);
        g_test_add_func("/polkit/nbdlinkd/list-and-probe", test_nbdlinkd_list);
        g_test_add_func("/polkit/nbdlinkd/interactive-flag", test_nbdlinkd_asker_without_flag);
        g_test_add_func("/polkit/nbdlinkd/agent-sees-details", test_nbdlinkd_agent_sees_details);
        g_test_add_func("/polkit/nbdlinkd/pending-check-serves-others", test_nbdlinkd_pending_check_serves_others);
        for (size_t i = 0; i < G_N_ELEMENTS(modes); i++) {
                static AuthorizeRun runs[G_N_ELEMENTS(modes)][G_N_ELEMENTS(authorize_cases)];
                static const struct {
                        const char *name;
                        GTestDataFunc func;
                } cases[] = {
                        { "caller-leaves",                     test_caller_leaves },
                        { "caller-leaves-interactive",         test_caller_leaves_interactive },
                        { "detach-other",                      test_detach_other },
                };

                for (size_t j = 0; j < G_N_ELEMENTS(authorize_cases); j++) {
                        g_autofree char *path = g_strdup_printf("/polkit/%s/%s", modes[i],
                                                                authorize_cases[j].name);

                        runs[i][j] = (AuthorizeRun) { modes[i], authorize_cases + j };
                        g_test_add_data_func(path, &runs[i][j], test_authorize_case);
                }
                for (size_t j = 0; j < G_N_ELEMENTS(cases); j++) {
                        g_autofree char *path = g_strdup_printf("/polkit/%s/%s", modes[i], cases[j].name);

                        g_test_add_data_func(path, modes[i], cases[j].func);
                }
        }

        nbdlinkd = g_build_filename(g_getenv("NBDLINK_BUILD_ROOT"), "daemon", "nbdlinkd", NULL);
        polkit_env_setup(&(PolkitEnvOptions) { .nbdlinkd = nbdlinkd, .test_service = TRUE });
        r = g_test_run();
        if (!polkit_env_teardown() && r == 0)
                r = 1;
        return r;
}
