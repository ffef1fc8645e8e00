/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hostile suite's bus client: becomes one of the suite's users and
 * calls nbdlinkd the way an attacker would — many calls at once over many
 * connections, descriptors in the options that no option refers to, a
 * polkit agent of its own that never answers — or the way its victim
 * would, one call timed; or forges signals straight to another connection;
 * or runs a program as that user. GDBus rather than sd-bus: only GDBus
 * sends a message carrying more descriptors than its body names.
 *
 *   hostile-caller --user NAME [OPTIONS] list HOST
 *   hostile-caller --user NAME [OPTIONS] probe HOST EXPORT
 *   hostile-caller --user NAME [OPTIONS] attach DEVICE HOST EXPORT
 *   hostile-caller --user NAME [OPTIONS] detach DEVICE
 *   hostile-caller --user NAME spoof DESTINATION...
 *   hostile-caller --user NAME exec PROGRAM [ARGUMENT...]
 *
 * It prints one line per event (the test reads them):
 *   SENT N                        all N calls are on their way
 *   REPLY I MS OK BODY            call I answered after MS ms; BODY in
 *                                 GVariant text format
 *   REPLY I MS ERROR NAME TEXT    TEXT: the error message as a GVariant
 *                                 string, so that g_variant_parse() gives
 *                                 back its exact bytes
 *   ASKED PARAMETERS              polkit asked the agent
 *                                 (BeginAuthentication's parameters)
 *   WITHDRAWN                     polkit withdrew a question
 *   SETTLED answered=A pending=P  --settle-ms passed without an answer, or
 *                                 every call is answered
 *   LEFT pending=P                a line (or end of file) on stdin: every
 *                                 connection closed, calls still pending
 *   SIGNAL DEST MEMBER DELIVERED  (spoof) the bus passed the signal on
 *   SIGNAL DEST MEMBER REFUSED NAME TEXT   (spoof) the bus refused it
 * Calls end the program when all are answered, unless it is an agent: then
 * it waits for stdin like any caller with calls pending. */

#include <errno.h>
#include <getopt.h>
#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib-unix.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "caller-identity.h"

#define PROGRAM "hostile-caller"

#define NBD1_NAME      "org.nbdlink.NBD1"
#define NBD1_PATH      "/org/nbdlink/NBD1"
#define NBD1_MANAGER   "org.nbdlink.NBD1.Manager"
#define NBD1_DEVICE    "org.nbdlink.NBD1.Device"
#define DEVICE_PATH    NBD1_PATH "/devices/nbd0"

#define AGENT_PATH      "/org/nbdlink/HostileAgent"
#define AGENT_INTERFACE "org.freedesktop.PolicyKit1.AuthenticationAgent"

static struct {
        const char *user;
        unsigned count;
        unsigned connections;
        gboolean interactive;
        gboolean agent;
        unsigned timeout_sec;           /* the option "timeout"; 0: not sent */
        gboolean credentials;
        gboolean duplicate_key;
        unsigned extra_fds;
        int call_timeout_ms;
        unsigned settle_ms;
} arg = {
        .count = 1,
        .connections = 1,
        .call_timeout_ms = 10000,
        .settle_ms = 1000,
};

typedef struct Run {
        GMainLoop *loop;
        GDBusConnection **conns;
        GDBusConnection *agent_conn;
        GPtrArray *questions;           /* BeginAuthentication calls, never answered */
        gint64 *sent_at;                /* per call, monotonic µs */
        unsigned answered;
        guint settle_source;
        gboolean settled;
} Run;

static void print_line(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void print_line(const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        vprintf(format, ap);
        va_end(ap);
        putchar('\n');
        fflush(stdout);
}

static GDBusConnection *connect_system_bus(void) {
        g_autoptr(GError) error = NULL;
        g_autofree char *address = g_dbus_address_get_for_bus_sync(G_BUS_TYPE_SYSTEM, NULL, &error);
        GDBusConnection *c;

        if (!address)
                g_error("no system bus address: %s", error->message);
        /* A connection of its own each time, never the shared singleton:
         * an attacker opens as many as it likes. */
        c = g_dbus_connection_new_for_address_sync(
                        address,
                        G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT | G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
                        NULL, NULL, &error);
        if (!c)
                g_error("cannot connect to %s: %s", address, error->message);
        g_dbus_connection_set_exit_on_close(c, FALSE);
        return c;
}

/* ---- the calls ----------------------------------------------------------- */

/* A memfd with a few bytes in it: what the daemon takes as a credential. */
static int make_memfd(const char *name) {
        static const char contents[] = "not a real credential\n";
        int fd = memfd_create(name, MFD_CLOEXEC);

        if (fd < 0 || write(fd, contents, sizeof(contents) - 1) != (ssize_t) (sizeof(contents) - 1))
                g_error("memfd: %s", g_strerror(errno));
        return fd;
}

/* The options of one call and the descriptors its message carries: the
 * four credentials (and tls-ca again with --duplicate-key) referenced by
 * index, then --extra-fds more that nothing refers to. The descriptors are
 * made once and duplicated into each message's list. */
static GVariant *build_options(GUnixFDList **ret_fds) {
        static const char *const keys[] = { "tls-ca", "tls-cert", "tls-key", "tls-psk" };
        static int creds[G_N_ELEMENTS(keys) + 1] = { -1, -1, -1, -1, -1 };
        static int *extras = NULL;
        g_autoptr(GUnixFDList) fds = g_unix_fd_list_new();
        g_autoptr(GError) error = NULL;
        GVariantBuilder b;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        if (arg.timeout_sec > 0)
                g_variant_builder_add(&b, "{sv}", "timeout", g_variant_new_uint32(arg.timeout_sec));
        if (arg.credentials)
                for (size_t i = 0; i < G_N_ELEMENTS(keys); i++) {
                        if (creds[i] < 0)
                                creds[i] = make_memfd(keys[i]);
                        g_variant_builder_add(&b, "{sv}", keys[i],
                                              g_variant_new_handle(g_unix_fd_list_append(fds, creds[i], &error)));
                }
        if (arg.duplicate_key) {
                if (creds[G_N_ELEMENTS(keys)] < 0)
                        creds[G_N_ELEMENTS(keys)] = make_memfd("tls-ca-again");
                g_variant_builder_add(&b, "{sv}", "tls-ca",
                                      g_variant_new_handle(g_unix_fd_list_append(fds, creds[G_N_ELEMENTS(keys)], &error)));
        }
        if (arg.extra_fds > 0 && !extras) {
                extras = g_new(int, arg.extra_fds);
                for (unsigned i = 0; i < arg.extra_fds; i++)
                        extras[i] = make_memfd("unreferenced");
        }
        for (unsigned i = 0; i < arg.extra_fds; i++)
                (void) g_unix_fd_list_append(fds, extras[i], &error);
        if (error)
                g_error("cannot add a descriptor: %s", error->message);

        *ret_fds = g_unix_fd_list_get_length(fds) > 0 ? g_steal_pointer(&fds) : NULL;
        return g_variant_builder_end(&b);
}

static GDBusMessage *build_call(char **words, unsigned n_words) {
        g_autoptr(GDBusMessage) m = NULL;
        g_autoptr(GUnixFDList) fds = NULL;
        const char *method;
        GVariant *body;

        if (n_words == 2 && g_str_equal(words[0], "list")) {
                method = "ListExports";
                body = g_variant_new("(s@a{sv})", words[1], build_options(&fds));
        } else if (n_words == 3 && g_str_equal(words[0], "probe")) {
                method = "Probe";
                body = g_variant_new("(ss@a{sv})", words[1], words[2], build_options(&fds));
        } else if (n_words == 4 && g_str_equal(words[0], "attach")) {
                method = "Attach";
                body = g_variant_new("(sssb)", words[1], words[2], words[3], FALSE);
        } else if (n_words == 2 && g_str_equal(words[0], "detach")) {
                method = "Detach";
                body = g_variant_new("(s)", words[1]);
        } else
                return NULL;

        m = g_dbus_message_new_method_call(NBD1_NAME, NBD1_PATH, NBD1_MANAGER, method);
        g_dbus_message_set_body(m, body);
        if (fds)
                g_dbus_message_set_unix_fd_list(m, fds);
        if (arg.interactive)
                g_dbus_message_set_flags(m, G_DBUS_MESSAGE_FLAGS_ALLOW_INTERACTIVE_AUTHORIZATION);
        return g_steal_pointer(&m);
}

static void print_settled(Run *run) {
        if (run->settled)
                return;
        run->settled = TRUE;
        print_line("SETTLED answered=%u pending=%u", run->answered, arg.count - run->answered);
}

static gboolean on_settle(gpointer userdata) {
        Run *run = userdata;

        run->settle_source = 0;
        print_settled(run);
        return G_SOURCE_REMOVE;
}

static void restart_settle_timer(Run *run) {
        if (run->settled)
                return;
        if (run->settle_source)
                g_source_remove(run->settle_source);
        run->settle_source = g_timeout_add(arg.settle_ms, on_settle, run);
}

typedef struct CallDone {
        Run *run;
        unsigned index;
} CallDone;

static void on_reply(GObject *source, GAsyncResult *result, gpointer userdata) {
        CallDone *done = userdata;
        Run *run = done->run;
        g_autoptr(GError) error = NULL;
        g_autoptr(GDBusMessage) reply = NULL;
        gint64 ms;

        reply = g_dbus_connection_send_message_with_reply_finish(G_DBUS_CONNECTION(source), result, &error);
        ms = (g_get_monotonic_time() - run->sent_at[done->index]) / 1000;
        if (!reply) {
                /* No answer from the other side: the call timed out here,
                 * or the connection is gone. */
                g_autofree char *text = g_variant_print(g_variant_new_string(error->message), FALSE);
                const char *name = g_error_matches(error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT)
                                   ? "org.freedesktop.DBus.Error.NoReply" : "org.gtk.GDBus.Error.Local";

                print_line("REPLY %u %" G_GINT64_FORMAT " ERROR %s %s", done->index, ms, name, text);
        } else if (g_dbus_message_get_message_type(reply) == G_DBUS_MESSAGE_TYPE_ERROR) {
                GVariant *body = g_dbus_message_get_body(reply);
                g_autoptr(GVariant) first = body && g_variant_n_children(body) > 0
                                            ? g_variant_get_child_value(body, 0) : NULL;
                g_autofree char *text = NULL;

                text = g_variant_print(g_variant_new_string(first && g_variant_is_of_type(first, G_VARIANT_TYPE_STRING)
                                                            ? g_variant_get_string(first, NULL) : ""),
                                       FALSE);
                print_line("REPLY %u %" G_GINT64_FORMAT " ERROR %s %s", done->index, ms,
                           g_dbus_message_get_error_name(reply), text);
        } else {
                GVariant *body = g_dbus_message_get_body(reply);
                g_autofree char *text = body ? g_variant_print(body, TRUE) : g_strdup("()");

                print_line("REPLY %u %" G_GINT64_FORMAT " OK %s", done->index, ms, text);
        }
        g_free(done);

        run->answered++;
        if (run->answered == arg.count) {
                print_settled(run);
                if (!arg.agent)
                        g_main_loop_quit(run->loop);
        } else
                restart_settle_timer(run);
}

/* A line or end of file on stdin: leave with whatever is pending. */
static gboolean on_stdin(gint fd, GIOCondition condition, gpointer userdata) {
        Run *run = userdata;

        print_line("LEFT pending=%u", arg.count - run->answered);
        g_main_loop_quit(run->loop);
        return G_SOURCE_REMOVE;
}

/* ---- the agent ----------------------------------------------------------- */

static const char agent_xml[] =
        "<node><interface name='" AGENT_INTERFACE "'>"
        "<method name='BeginAuthentication'>"
        "<arg type='s' direction='in'/><arg type='s' direction='in'/><arg type='s' direction='in'/>"
        "<arg type='a{ss}' direction='in'/><arg type='s' direction='in'/><arg type='a(sa{sv})' direction='in'/>"
        "</method>"
        "<method name='CancelAuthentication'><arg type='s' direction='in'/></method>"
        "</interface></node>";

static void on_agent_call(GDBusConnection *c, const char *sender, const char *path, const char *interface,
                          const char *method, GVariant *parameters, GDBusMethodInvocation *invocation,
                          gpointer userdata) {
        Run *run = userdata;

        if (g_str_equal(method, "BeginAuthentication")) {
                g_autofree char *text = g_variant_print(parameters, TRUE);

                /* Kept and never answered: a person who never types the
                 * password. */
                g_ptr_array_add(run->questions, invocation);
                print_line("ASKED %s", text);
        } else {
                print_line("WITHDRAWN");
                g_dbus_method_invocation_return_value(invocation, NULL);
        }
}

/* This process's own authentication agent, on a connection of its own, for
 * polkit's unix-process subject of this process: the calls of every
 * connection below come from it. */
static void register_agent(Run *run) {
        static const GDBusInterfaceVTable vtable = { .method_call = on_agent_call };
        g_autoptr(GDBusNodeInfo) node = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autoptr(GError) error = NULL;
        GVariantBuilder subject;
        uint64_t start_time;
        int r;

        r = caller_process_start_time(&start_time);
        if (r < 0)
                g_error("cannot read this process's start time: %s", g_strerror(-r));
        node = g_dbus_node_info_new_for_xml(agent_xml, &error);
        g_assert_no_error(error);
        run->agent_conn = connect_system_bus();
        if (!g_dbus_connection_register_object(run->agent_conn, AGENT_PATH, node->interfaces[0], &vtable,
                                               run, NULL, &error))
                g_error("cannot export the agent: %s", error->message);

        g_variant_builder_init(&subject, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&subject, "{sv}", "pid", g_variant_new_uint32((guint32) getpid()));
        g_variant_builder_add(&subject, "{sv}", "start-time", g_variant_new_uint64(start_time));
        g_variant_builder_add(&subject, "{sv}", "uid", g_variant_new_int32((gint32) getuid()));
        reply = g_dbus_connection_call_sync(run->agent_conn, "org.freedesktop.PolicyKit1",
                                            "/org/freedesktop/PolicyKit1/Authority",
                                            "org.freedesktop.PolicyKit1.Authority", "RegisterAuthenticationAgent",
                                            g_variant_new("((sa{sv})ss)", "unix-process", &subject, "C", AGENT_PATH),
                                            NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        if (!reply)
                g_error("cannot register the agent: %s", error->message);
}

static int run_calls(char **words, unsigned n_words) {
        Run run = {
                .loop = g_main_loop_new(NULL, FALSE),
                .questions = g_ptr_array_new_with_free_func(g_object_unref),
                .sent_at = g_new0(gint64, arg.count),
        };
        g_autoptr(GDBusMessage) check = build_call(words, n_words);

        if (!check) {
                fprintf(stderr, PROGRAM ": bad arguments\n");
                return 2;
        }
        if (arg.agent)
                register_agent(&run);

        run.conns = g_new0(GDBusConnection *, arg.connections);
        for (unsigned i = 0; i < arg.connections; i++)
                run.conns[i] = connect_system_bus();

        for (unsigned i = 0; i < arg.count; i++) {
                g_autoptr(GDBusMessage) m = build_call(words, n_words);
                g_autoptr(GError) error = NULL;
                CallDone *done = g_new(CallDone, 1);

                *done = (CallDone) { &run, i };
                run.sent_at[i] = g_get_monotonic_time();
                /* Not waited for: all of them are in flight at once. */
                g_dbus_connection_send_message_with_reply(run.conns[i % arg.connections], m,
                                                          G_DBUS_SEND_MESSAGE_FLAGS_NONE, arg.call_timeout_ms,
                                                          NULL, NULL, on_reply, done);
        }
        for (unsigned i = 0; i < arg.connections; i++)
                (void) g_dbus_connection_flush_sync(run.conns[i], NULL, NULL);
        print_line("SENT %u", arg.count);
        restart_settle_timer(&run);

        g_unix_fd_add(STDIN_FILENO, G_IO_IN | G_IO_HUP | G_IO_ERR, on_stdin, &run);
        g_main_loop_run(run.loop);

        for (unsigned i = 0; i < arg.connections; i++) {
                (void) g_dbus_connection_close_sync(run.conns[i], NULL, NULL);
                g_object_unref(run.conns[i]);
        }
        g_free(run.conns);
        g_ptr_array_unref(run.questions);
        if (run.agent_conn) {
                (void) g_dbus_connection_close_sync(run.agent_conn, NULL, NULL);
                g_object_unref(run.agent_conn);
        }
        g_free(run.sent_at);
        g_main_loop_unref(run.loop);
        return 0;
}

/* ---- forged signals ------------------------------------------------------ */

/* What nbdlink monitor listens to, forged by a caller who is not the
 * daemon: a device appearing, changing, losing its server and going away,
 * and the daemon "stopping". Every text in them says "spoofed" and carries
 * escape sequences (clear the screen, hide the text). */
typedef struct Forgery {
        const char *path, *interface, *member;
        const char *body;               /* GVariant text */
} Forgery;

static const Forgery forgeries[] = {
        { NBD1_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesAdded",
          "(objectpath '" DEVICE_PATH "', {'" NBD1_DEVICE "': {'Export': <'\\u001b[2J\\u001b[8mspoofed'>, "
          "'Host': <'spoofed.example'>, 'State': <'attached'>}})" },
        { DEVICE_PATH, "org.freedesktop.DBus.Properties", "PropertiesChanged",
          "('" NBD1_DEVICE "', {'State': <'\\u001b[2Jspoofed'>}, @as [])" },
        { DEVICE_PATH, NBD1_DEVICE, "Disconnected",
          "('org.nbdlink.NBD1.Error.Spoofed', 'spoofed \\u001b[8mhidden')" },
        { NBD1_PATH, "org.freedesktop.DBus.ObjectManager", "InterfacesRemoved",
          "(objectpath '" DEVICE_PATH "', ['" NBD1_DEVICE "'])" },
        { "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameOwnerChanged",
          "('" NBD1_NAME "', ':1.0', '')" },
};

typedef struct Refusals {
        GMutex lock;
        GHashTable *by_serial;          /* serial → "NAME TEXT" */
} Refusals;

/* In GDBus's worker thread: an error from the bus answering a signal. */
static GDBusMessage *on_incoming(GDBusConnection *c, GDBusMessage *m, gboolean incoming, gpointer userdata) {
        Refusals *refusals = userdata;

        if (incoming && g_dbus_message_get_message_type(m) == G_DBUS_MESSAGE_TYPE_ERROR) {
                GVariant *body = g_dbus_message_get_body(m);
                const char *message = "";
                g_autofree char *text = NULL;

                if (body && g_variant_is_of_type(body, G_VARIANT_TYPE("(s)")))
                        g_variant_get(body, "(&s)", &message);
                text = g_variant_print(g_variant_new_string(message), FALSE);
                g_mutex_lock(&refusals->lock);
                g_hash_table_insert(refusals->by_serial, GUINT_TO_POINTER(g_dbus_message_get_reply_serial(m)),
                                    g_strdup_printf("%s %s", g_dbus_message_get_error_name(m), text));
                g_mutex_unlock(&refusals->lock);
        }
        return m;
}

static int run_spoof(char **destinations, unsigned n) {
        g_autoptr(GDBusConnection) c = connect_system_bus();
        g_autoptr(GVariant) id = NULL;
        g_autoptr(GError) error = NULL;
        guint32 *serials = g_new0(guint32, n * G_N_ELEMENTS(forgeries));
        Refusals refusals = { .by_serial = g_hash_table_new_full(NULL, NULL, NULL, g_free) };
        guint filter;

        g_mutex_init(&refusals.lock);
        filter = g_dbus_connection_add_filter(c, on_incoming, &refusals, NULL);
        for (unsigned d = 0; d < n; d++)
                for (size_t f = 0; f < G_N_ELEMENTS(forgeries); f++) {
                        g_autoptr(GDBusMessage) m = g_dbus_message_new_signal(forgeries[f].path,
                                                                              forgeries[f].interface,
                                                                              forgeries[f].member);
                        g_autoptr(GError) parse_error = NULL;
                        GVariant *body = g_variant_parse(NULL, forgeries[f].body, NULL, NULL, &parse_error);

                        g_assert_no_error(parse_error);
                        g_dbus_message_set_destination(m, destinations[d]);
                        g_dbus_message_set_body(m, body);
                        if (!g_dbus_connection_send_message(c, m, G_DBUS_SEND_MESSAGE_FLAGS_NONE,
                                                            &serials[d * G_N_ELEMENTS(forgeries) + f], &error))
                                g_error("cannot send %s: %s", forgeries[f].member, error->message);
                }

        /* The bus handles one sender's messages in order: by the time it
         * answers this, it has answered any signal it refused. */
        id = g_dbus_connection_call_sync(c, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                         "GetId", NULL, G_VARIANT_TYPE("(s)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, &error);
        if (!id)
                g_error("GetId: %s", error->message);
        g_dbus_connection_remove_filter(c, filter);

        for (unsigned d = 0; d < n; d++)
                for (size_t f = 0; f < G_N_ELEMENTS(forgeries); f++) {
                        const char *refused = g_hash_table_lookup(
                                        refusals.by_serial, GUINT_TO_POINTER(serials[d * G_N_ELEMENTS(forgeries) + f]));

                        if (refused)
                                print_line("SIGNAL %s %s REFUSED %s", destinations[d], forgeries[f].member, refused);
                        else
                                print_line("SIGNAL %s %s DELIVERED", destinations[d], forgeries[f].member);
                }
        g_hash_table_unref(refusals.by_serial);
        g_mutex_clear(&refusals.lock);
        g_free(serials);
        return 0;
}

/* ---- main ---------------------------------------------------------------- */

/* 72 messages of 16 descriptors each are more than the usual soft limit of
 * 1024 while GDBus still holds them. */
static void raise_fd_limit(void) {
        struct rlimit rl;

        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                (void) setrlimit(RLIMIT_NOFILE, &rl);
        }
}

static unsigned parse_unsigned(const char *option, const char *s) {
        char *end;
        unsigned long v;

        errno = 0;
        v = strtoul(s, &end, 10);
        if (errno != 0 || *end || end == s || v > G_MAXINT) {
                fprintf(stderr, PROGRAM ": bad value '%s' for %s\n", s, option);
                exit(2);
        }
        return (unsigned) v;
}

int main(int argc, char **argv) {
        enum {
                OPT_USER = 0x100, OPT_COUNT, OPT_CONNECTIONS, OPT_INTERACTIVE, OPT_AGENT, OPT_TIMEOUT_SEC,
                OPT_CREDENTIALS, OPT_DUPLICATE_KEY, OPT_EXTRA_FDS, OPT_CALL_TIMEOUT_MS, OPT_SETTLE_MS,
        };
        static const struct option options[] = {
                { "user",            required_argument, NULL, OPT_USER },
                { "count",           required_argument, NULL, OPT_COUNT },
                { "connections",     required_argument, NULL, OPT_CONNECTIONS },
                { "interactive",     no_argument,       NULL, OPT_INTERACTIVE },
                { "agent",           no_argument,       NULL, OPT_AGENT },
                { "timeout-sec",     required_argument, NULL, OPT_TIMEOUT_SEC },
                { "credentials",     no_argument,       NULL, OPT_CREDENTIALS },
                { "duplicate-key",   no_argument,       NULL, OPT_DUPLICATE_KEY },
                { "extra-fds",       required_argument, NULL, OPT_EXTRA_FDS },
                { "call-timeout-ms", required_argument, NULL, OPT_CALL_TIMEOUT_MS },
                { "settle-ms",       required_argument, NULL, OPT_SETTLE_MS },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "+", options, NULL)) >= 0)
                switch (c) {
                case OPT_USER:
                        arg.user = optarg;
                        break;
                case OPT_COUNT:
                        arg.count = parse_unsigned("--count", optarg);
                        break;
                case OPT_CONNECTIONS:
                        arg.connections = parse_unsigned("--connections", optarg);
                        break;
                case OPT_INTERACTIVE:
                        arg.interactive = TRUE;
                        break;
                case OPT_AGENT:
                        arg.agent = TRUE;
                        break;
                case OPT_TIMEOUT_SEC:
                        arg.timeout_sec = parse_unsigned("--timeout-sec", optarg);
                        break;
                case OPT_CREDENTIALS:
                        arg.credentials = TRUE;
                        break;
                case OPT_DUPLICATE_KEY:
                        arg.duplicate_key = TRUE;
                        break;
                case OPT_EXTRA_FDS:
                        arg.extra_fds = parse_unsigned("--extra-fds", optarg);
                        break;
                case OPT_CALL_TIMEOUT_MS:
                        arg.call_timeout_ms = (int) parse_unsigned("--call-timeout-ms", optarg);
                        break;
                case OPT_SETTLE_MS:
                        arg.settle_ms = parse_unsigned("--settle-ms", optarg);
                        break;
                default:
                        return 2;
                }
        if (optind >= argc || arg.count == 0 || arg.connections == 0) {
                fprintf(stderr, PROGRAM ": bad arguments\n");
                return 2;
        }

        raise_fd_limit();
        if (arg.user && caller_become_user(PROGRAM, arg.user) < 0)
                return 2;

        if (g_str_equal(argv[optind], "exec")) {
                if (optind + 1 >= argc)
                        return 2;
                execv(argv[optind + 1], argv + optind + 1);
                fprintf(stderr, PROGRAM ": cannot run %s: %s\n", argv[optind + 1], g_strerror(errno));
                return 127;
        }
        if (g_str_equal(argv[optind], "spoof"))
                return run_spoof(argv + optind + 1, (unsigned) (argc - optind - 1));
        return run_calls(argv + optind, (unsigned) (argc - optind));
}
