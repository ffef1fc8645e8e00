/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The hostile suite: users who are not root attack the real nbdlinkd on a
 * bus configured like the system bus, with the real polkitd deciding, in
 * the polkit suite's world (polkit-env.h). In each case an attacker and a
 * victim of different uids call at the same time; the attacker must get
 * the error the contract names, the victim's calls must still succeed
 * within a few seconds, and the daemon must still be the same process,
 * own its name and stay under the bounds below for descriptors, threads
 * and memory. What each case measured is printed as a TAP comment. */

#include <errno.h>
#include <gio/gio.h>
#include <gio/gunixinputstream.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-run.h"
#include "contract.h"
#include "evil-spawn.h"
#include "polkit-env.h"
#include "proc-count.h"
#include "servers.h"

/* The suite's users (polkit-env.c), as nbdlink-test.rules treats them. */
#define ATTACKER  "nbdlink-outsider"   /* no rule: the policy's defaults let anyone list and probe */
#define VICTIM    "nbdlink-member"     /* nbdlink-users: may attach, detach its own, list */
#define BYSTANDER "nbdlink-member2"    /* nbdlink-users too, another uid */
#define ASKER     "nbdlink-asker"      /* nbdlink-ask: every check needs an administrator's password */

#define ERR_LIMIT         "org.nbdlink.NBD1.Error.LimitExceeded"
#define ERR_INVALID       "org.nbdlink.NBD1.Error.InvalidArgument"
#define ERR_PROTOCOL      "org.nbdlink.NBD1.Error.ProtocolError"
#define NOT_ATTACHED      "org.nbdlink.NBD1.Error.NotAttached"

/* "Within a few seconds": a victim's ListExports or Probe against nbdkit on
 * loopback takes milliseconds when nobody attacks, so three seconds is
 * only ever exceeded when the attack holds it up. Calls are given 10 s
 * before they time out, so that a slow answer is measured, not lost. */
#define VICTIM_MAX_MS        3000
/* An answer "at once" (a refusal over a limit, a bad argument): no network,
 * no polkit, one turn of the daemon's loop. */
#define AT_ONCE_MAX_MS       1000
/* How long an attacker's answers may keep coming before the case looks at
 * what is still pending. */
#define SETTLE_MS            "1000"
/* Everything a case starts must be over by then. */
#define CASE_DEADLINE_MS     30000
/* How long the daemon may take, after an attacker has left, to let go of
 * what it held on its behalf (its workers see the cancellation at once). */
#define RELEASE_MS           10000

/* Descriptors per flood message: four credentials and twelve that no
 * option names. 16 is all a stock dbus-daemon lets one message carry
 * (max_message_unix_fds); it hangs up on a sender that tries more. The
 * variant with "tls-ca" twice therefore carries one unnamed less. */
#define FD_FLOOD_CREDENTIALS 4
#define FD_FLOOD_EXTRA_FDS   12
#define FD_FLOOD_FDS_PER_MSG (FD_FLOOD_CREDENTIALS + FD_FLOOD_EXTRA_FDS)
#define FD_FLOOD_CALLS       72
#define FD_FLOOD_CONNECTIONS 8

/* What one ListExports or Probe costs the daemon while it runs: its TCP
 * socket and its worker's two eventfds (cancel, ended); and a thread. */
#define FDS_PER_QUERY 3

/* What the daemon may hold above its count at the start of a case. */
typedef struct Bounds {
        unsigned fds;           /* at the peak of the case */
        unsigned threads;       /* at the peak */
        unsigned rss_mib;       /* peak resident memory (VmHWM) above the RSS at the start */
} Bounds;

/* The fd flood. A call waiting for polkit keeps its message, and with it
 * every descriptor it carried (LIMIT_POLKIT_PER_UID of them, plus the one
 * being handled); a started query holds what any query holds and, until
 * its worker has read them, one copy of each credential; the victim's two
 * queries; 4 to spare. */
static const Bounds fd_flood_bounds = {
        .fds = (LIMIT_POLKIT_PER_UID + 1) * FD_FLOOD_FDS_PER_MSG +
               LIMIT_QUERIES_PER_UID * (FDS_PER_QUERY + FD_FLOOD_CREDENTIALS) + 2 * FDS_PER_QUERY + 4,
        /* a worker per started query, the victim's two, one spare */
        .threads = LIMIT_QUERIES_PER_UID + 2 + 1,
        /* 72 messages of a few hundred bytes and four idle workers */
        .rss_mib = 8,
};
/* Once the flood has settled, the started queries are stuck on a server
 * that never answers: then the daemon holds, per query, what any query
 * holds and at most the credentials its worker has not read yet — never
 * the call message or the twelve descriptors nobody asked for. */
#define FD_FLOOD_HELD_FDS (LIMIT_QUERIES_PER_UID * (FDS_PER_QUERY + FD_FLOOD_CREDENTIALS) + 4)

/* The polkit stall: checks pending at polkit hold a call message each (no
 * descriptors) and nothing else; the victim's two queries, 4 to spare. */
static const Bounds polkit_stall_bounds = { .fds = 2 * FDS_PER_QUERY + 4, .threads = 2 + 1, .rss_mib = 4 };

/* The memory flood: LIMIT_QUERIES_PER_UID lists, each cut off at
 * NBD_MAX_LIST_BYTES_UNPRIVILEGED (1 MiB) of names and descriptions, held
 * perhaps four times over while read (buffer, parsed entries, growth of
 * both, allocator slack: 16 MiB), plus 8 MiB for the workers' stacks and
 * the victim. A daemon that took 16 MiB from each would need 64. */
#define MEMORY_FLOOD_CALLS 12
/* A cut-off list is answered within milliseconds of its first megabyte;
 * one that is read on waits for the server's ACK, which never comes. */
#define MEMORY_FLOOD_QUIET_MS "3000"
static const Bounds memory_flood_bounds = {
        .fds = (LIMIT_QUERIES_PER_UID + 2) * FDS_PER_QUERY + 4,
        .threads = LIMIT_QUERIES_PER_UID + 1 + 1,
        .rss_mib = LIMIT_QUERIES_PER_UID * (NBD_MAX_LIST_BYTES_UNPRIVILEGED >> 20) * 4 + 8,
};

/* One call at a time, the attacker's or the victim's (a finished query may
 * not have let go before the next starts: two), 4 to spare. */
static const Bounds single_call_bounds = { .fds = 2 * FDS_PER_QUERY + 4, .threads = 2 + 1, .rss_mib = 4 };

/* A real NBD server for the victims, shared by all cases. */
static TestServer *nbdkit;
static char *nbdkit_host;

/* A failure of the case, said as a TAP comment: a case may fail in several
 * ways at once, and the report wants each. */
static void fail(const char *format, ...) G_GNUC_PRINTF(1, 2);
static void fail(const char *format, ...) {
        g_autofree char *message = NULL;
        va_list ap;

        va_start(ap, format);
        message = g_strdup_vprintf(format, ap);
        va_end(ap);
        g_test_message("FAIL: %s", message);
        g_test_fail();
}

/* Adds a measurement to a case's report line: "name: a; b; c". */
static void note(GString *report, const char *format, ...) G_GNUC_PRINTF(2, 3);
static void note(GString *report, const char *format, ...) {
        va_list ap;

        g_string_append(report, g_str_has_suffix(report->str, ":") ? " " : "; ");
        va_start(ap, format);
        g_string_append_vprintf(report, format, ap);
        va_end(ap);
}

/* ---- text a person must not be fooled by ---------------------------------- */

/* NULL when s (n bytes) holds no raw control character, C1 control, bidi
 * control or invalid UTF-8; else a description of the first one. */
static char *find_raw_control(const char *s, size_t n) {
        const char *p = s, *end = s + n;

        while (p < end) {
                gunichar c = g_utf8_get_char_validated(p, end - p);

                if (c == (gunichar) -1 || c == (gunichar) -2)
                        return g_strdup_printf("invalid UTF-8 byte 0x%02x at %zd", (unsigned char) *p, p - s);
                if (c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e || c == 0x200f ||
                    (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069))
                        return g_strdup_printf("U+%04X at %zd", c, p - s);
                p = g_utf8_next_char(p);
        }
        return NULL;
}

static void assert_no_raw_control(const char *what, const char *s) {
        g_autofree char *found = find_raw_control(s, strlen(s));

        if (found) {
                g_autofree char *shown = g_strescape(s, NULL);

                g_test_message("%s: \"%s\"", what, shown);
                fail("%s holds %s, not its escaped form", what, found);
        }
}

static void assert_contains(const char *what, const char *s, const char *needle) {
        if (!strstr(s, needle)) {
                g_autofree char *shown = g_strescape(s, NULL);

                fail("%s \"%s\" does not contain \"%s\"", what, shown, needle);
        }
}

static void assert_lacks(const char *what, const char *s, const char *needle) {
        if (strstr(s, needle)) {
                g_autofree char *shown = g_strescape(s, NULL);
                g_autofree char *unwanted = g_strescape(needle, NULL);

                fail("%s \"%s\" contains \"%s\"", what, shown, unwanted);
        }
}

/* ---- hostile-caller as a child ------------------------------------------- */

typedef struct Reply {
        unsigned index;
        unsigned ms;
        char *error;            /* NULL: answered without error */
        char *message;          /* the error's exact text */
} Reply;

static void reply_free(Reply *r) {
        g_free(r->error);
        g_free(r->message);
        g_free(r);
}

/* Lines of a child's output, read with a deadline so that a daemon that
 * never answers fails the case instead of hanging it. */
typedef struct LineReader {
        int fd;
        GString *buf;
        gboolean eof;
} LineReader;

static char *line_reader_next(LineReader *r, gint64 deadline) {
        for (;;) {
                char *nl = strchr(r->buf->str, '\n');
                char chunk[65536];
                struct pollfd p = { .fd = r->fd, .events = POLLIN };
                gint64 left;
                ssize_t k;

                if (nl) {
                        char *line = g_strndup(r->buf->str, nl - r->buf->str);

                        g_string_erase(r->buf, 0, nl - r->buf->str + 1);
                        return line;
                }
                if (r->eof)
                        return NULL;
                left = (deadline - g_get_monotonic_time()) / 1000;
                if (left <= 0 || poll(&p, 1, (int) left) <= 0)
                        return NULL;
                k = read(r->fd, chunk, sizeof(chunk));
                if (k <= 0)
                        r->eof = TRUE;
                else
                        g_string_append_len(r->buf, chunk, k);
        }
}

typedef struct Caller {
        const char *user;
        GSubprocess *process;
        LineReader out, err;
        GPtrArray *replies;     /* Reply, in the order they came */
        GPtrArray *asked;       /* BeginAuthentication's parameters, GVariant */
        GPtrArray *lines;       /* every line */
        unsigned sent;
        int pending;            /* at SETTLED or LEFT; -1 before */
} Caller;

static int stream_fd(GInputStream *s) {
        return s ? g_unix_input_stream_get_fd(G_UNIX_INPUT_STREAM(s)) : -1;
}

/* Starts hostile-caller as user with args (NULL-terminated). */
static void caller_start(Caller *c, const char *user, const char *const *args, GSubprocessFlags extra_flags) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GError) error = NULL;

        *c = (Caller) {
                .user = user,
                .replies = g_ptr_array_new_with_free_func((GDestroyNotify) reply_free),
                .asked = g_ptr_array_new_with_free_func((GDestroyNotify) g_variant_unref),
                .lines = g_ptr_array_new_with_free_func(g_free),
                .pending = -1,
        };
        g_ptr_array_add(argv, g_test_build_filename(G_TEST_BUILT, "hostile", "hostile-caller", NULL));
        g_ptr_array_add(argv, g_strdup_printf("--user=%s", user));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, g_strdup(*a));
        g_ptr_array_add(argv, NULL);

        c->process = g_subprocess_newv((const char *const *) argv->pdata,
                                       G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE | extra_flags,
                                       &error);
        if (!c->process)
                g_error("cannot start hostile-caller: %s", error->message);
        c->out = (LineReader) { stream_fd(g_subprocess_get_stdout_pipe(c->process)), g_string_new(NULL) };
        c->err = (LineReader) { stream_fd(g_subprocess_get_stderr_pipe(c->process)), g_string_new(NULL) };
}

/* "REPLY I MS OK BODY" or "REPLY I MS ERROR NAME TEXT". */
static void caller_take_reply(Caller *c, const char *line) {
        g_auto(GStrv) f = g_strsplit(line, " ", 6);
        Reply *r;

        if (g_strv_length(f) < 4) {
                fail("%s: bad line '%s'", c->user, line);
                return;
        }
        r = g_new0(Reply, 1);
        r->index = (unsigned) g_ascii_strtoull(f[1], NULL, 10);
        r->ms = (unsigned) g_ascii_strtoull(f[2], NULL, 10);
        if (g_str_equal(f[3], "ERROR")) {
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) text = f[4] && f[5] ? g_variant_parse(G_VARIANT_TYPE_STRING, f[5], NULL, NULL, &error)
                                                        : NULL;

                r->error = g_strdup(f[4] ?: "?");
                r->message = g_strdup(text ? g_variant_get_string(text, NULL) : "?");
        }
        g_ptr_array_add(c->replies, r);
}

static void caller_take_line(Caller *c, char *line) {
        if (g_str_has_prefix(line, "REPLY "))
                caller_take_reply(c, line);
        else if (g_str_has_prefix(line, "ASKED ")) {
                g_autoptr(GError) error = NULL;
                GVariant *v = g_variant_parse(G_VARIANT_TYPE("(sssa{ss}sa(sa{sv}))"), line + 6, NULL, NULL, &error);

                if (v)
                        g_ptr_array_add(c->asked, g_variant_ref_sink(v));
                else
                        fail("%s: cannot read '%s': %s", c->user, line, error->message);
        } else if (g_str_has_prefix(line, "SENT "))
                c->sent = (unsigned) g_ascii_strtoull(line + 5, NULL, 10);
        else if (g_str_has_prefix(line, "SETTLED ")) {
                const char *p = strstr(line, "pending=");

                c->pending = p ? atoi(p + 8) : -1;
        } else if (g_str_has_prefix(line, "LEFT ")) {
                const char *p = strstr(line, "pending=");

                c->pending = p ? atoi(p + 8) : -1;
        }
        g_ptr_array_add(c->lines, line);
}

/* Reads and takes lines until one starts with prefix (TRUE) or the
 * deadline passes or the output ends (FALSE). prefix NULL: to the end. */
static gboolean caller_wait_for(Caller *c, const char *prefix, int timeout_ms) {
        gint64 deadline = g_get_monotonic_time() + (gint64) timeout_ms * 1000;

        for (;;) {
                char *line = line_reader_next(&c->out, deadline);
                gboolean found;

                if (!line)
                        return FALSE;
                found = prefix && g_str_has_prefix(line, prefix);
                caller_take_line(c, line);
                if (found)
                        return TRUE;
        }
}

static gboolean caller_settle(Caller *c) {
        gboolean ok = caller_wait_for(c, "SETTLED ", CASE_DEADLINE_MS);

        if (!ok)
                fail("%s: its calls did not settle within %d ms", c->user, CASE_DEADLINE_MS);
        return ok;
}

/* Reads the rest of its output and waits for it to exit with status 0. */
static void caller_wait(Caller *c) {
        g_autoptr(GError) error = NULL;

        (void) caller_wait_for(c, NULL, CASE_DEADLINE_MS);
        if (!c->out.eof) {
                fail("%s: hostile-caller did not finish", c->user);
                g_subprocess_force_exit(c->process);
        }
        (void) g_subprocess_wait(c->process, NULL, &error);
        if (!g_subprocess_get_if_exited(c->process) || g_subprocess_get_exit_status(c->process) != 0)
                fail("%s: hostile-caller failed", c->user);
}

/* Tells it to leave the bus with its calls still pending. */
static void caller_leave(Caller *c) {
        GOutputStream *in = g_subprocess_get_stdin_pipe(c->process);

        /* It may have ended already. */
        (void) g_output_stream_write_all(in, "leave\n", 6, NULL, NULL, NULL);
        (void) g_output_stream_close(in, NULL, NULL);
        caller_wait(c);
}

static void caller_free(Caller *c) {
        g_clear_object(&c->process);
        g_string_free(c->out.buf, TRUE);
        g_string_free(c->err.buf, TRUE);
        g_ptr_array_unref(c->replies);
        g_ptr_array_unref(c->asked);
        g_ptr_array_unref(c->lines);
}

/* Answers with error name (NULL: without an error). */
static unsigned count_replies(const Caller *c, const char *error) {
        unsigned n = 0;

        for (guint i = 0; i < c->replies->len; i++) {
                const Reply *r = c->replies->pdata[i];

                n += error ? g_strcmp0(r->error, error) == 0 : r->error == NULL;
        }
        return n;
}

static unsigned slowest_reply(const Caller *c, const char *error) {
        unsigned ms = 0;

        for (guint i = 0; i < c->replies->len; i++) {
                const Reply *r = c->replies->pdata[i];

                if (g_strcmp0(r->error, error) == 0)
                        ms = MAX(ms, r->ms);
        }
        return ms;
}

/* Every answer is one of the expected errors, or else the case fails with
 * the first other one. */
static void assert_only_errors(const Caller *c, const char *what, const char *const *errors) {
        for (guint i = 0; i < c->replies->len; i++) {
                const Reply *r = c->replies->pdata[i];

                if (!r->error || !g_strv_contains(errors, r->error)) {
                        fail("%s: call %u answered %s %s", what, r->index, r->error ?: "OK", r->message ?: "");
                        return;
                }
        }
}

/* One call as user, waited for: its answer (freed by the caller), or
 * NULL after a failure of the case. */
static Reply *call_once(const char *user, const char *const *args) {
        Caller c;
        Reply *r = NULL;

        caller_start(&c, user, args, G_SUBPROCESS_FLAGS_NONE);
        caller_wait(&c);
        if (c.replies->len == 1)
                r = g_ptr_array_steal_index(c.replies, 0);
        else
                fail("%s: %u answers to one call", user, c.replies->len);
        caller_free(&c);
        return r;
}

/* ---- the daemon under watch ------------------------------------------------ */

/* 0 once it has exited and been reaped. */
static pid_t daemon_pid(void) {
        const char *id = g_subprocess_get_identifier(polkit_env_nbdlinkd());

        return id ? (pid_t) atoi(id) : 0;
}

/* The pid of the process that owns org.nbdlink.NBD1 on the bus, 0 if none. */
static pid_t name_owner_pid(void) {
        g_autoptr(GVariant) reply = NULL;
        guint32 pid;

        reply = g_dbus_connection_call_sync(polkit_env_bus(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "GetConnectionUnixProcessID",
                                            g_variant_new("(s)", POLKIT_ENV_NBDLINKD_NAME), G_VARIANT_TYPE("(u)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        if (!reply)
                return 0;
        g_variant_get(reply, "(u)", &pid);
        return (pid_t) pid;
}

typedef struct Watch {
        pid_t pid;
        int base_fds;
        long base_threads, base_rss_kib;
        gint64 log_offset;
        GThread *sampler;
        gint stop;
        gint peak_fds, peak_threads;    /* written by the sampler */
} Watch;

/* Samples descriptors and threads every 2 ms: a peak between two looks of
 * the case would pass unseen otherwise. */
static gpointer sample(gpointer userdata) {
        Watch *w = userdata;

        while (!g_atomic_int_get(&w->stop)) {
                int fds = proc_try_count_fds(w->pid);
                long threads = proc_status_value(w->pid, "Threads");

                if (fds > g_atomic_int_get(&w->peak_fds))
                        g_atomic_int_set(&w->peak_fds, fds);
                if (threads > g_atomic_int_get(&w->peak_threads))
                        g_atomic_int_set(&w->peak_threads, (gint) threads);
                g_usleep(2000);
        }
        return NULL;
}

static gint64 file_size(const char *path) {
        struct stat st;

        return path && stat(path, &st) == 0 ? st.st_size : 0;
}

/* nbdlinkd.service gives the daemon 16384 descriptors. Started here it
 * inherits the test's limit, perhaps far higher; it gets systemd's default
 * soft limit of 1024 instead (DefaultLimitNOFILE=1024:524288), what it
 * would have under a unit without LimitNOFILE=: a flood that needs more
 * than that shows here, long before it would reach the unit's limit. */
#define DAEMON_NOFILE 1024

/* The daemon at rest before the attack: its counts, its peak memory reset
 * to what it holds now, and where its log stands. One that an earlier
 * case killed is started again, so that the other cases still say
 * something. */
static void watch_begin(Watch *w) {
        struct rlimit nofile;

        if (name_owner_pid() != daemon_pid()) {
                g_test_message("nbdlinkd is gone, starting it again");
                (void) polkit_env_restart_nbdlinkd();
        }
        *w = (Watch) { .pid = daemon_pid() };
        g_assert_cmpint(name_owner_pid(), ==, w->pid);
        g_assert_cmpint(prlimit(w->pid, RLIMIT_NOFILE, NULL, &nofile), ==, 0);
        nofile.rlim_cur = MIN(nofile.rlim_max, DAEMON_NOFILE);
        g_assert_cmpint(prlimit(w->pid, RLIMIT_NOFILE, &nofile, NULL), ==, 0);
        w->base_fds = proc_try_count_fds(w->pid);
        w->base_threads = proc_status_value(w->pid, "Threads");
        g_assert_cmpint(proc_reset_peak_rss(w->pid), ==, 0);
        w->base_rss_kib = proc_status_value(w->pid, "VmRSS");
        w->peak_fds = w->base_fds;
        w->peak_threads = (gint) w->base_threads;
        w->log_offset = file_size(polkit_env_nbdlinkd_log());
        w->sampler = g_thread_new("sampler", sample, w);
}

static int current_fds(const Watch *w) {
        return proc_try_count_fds(w->pid);
}

/* What the daemon's descriptors are, by kind: "/memfd:unreferenced x12,
 * socket x9, ..." (the memfds carry the names hostile-caller gave them). */
static char *fd_summary(pid_t pid) {
        g_autofree char *dir = g_strdup_printf("/proc/%d/fd", (int) pid);
        g_autoptr(GHashTable) kinds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        GString *out = g_string_new(NULL);
        GHashTableIter it;
        gpointer key, n;
        const char *name;

        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *path = g_build_filename(dir, name, NULL);
                g_autofree char *target = g_file_read_link(path, NULL);
                char *kind = g_strdup(target ?: "?");

                /* "socket:[1234]" → "socket", "/memfd:x (deleted)" → "/memfd:x" */
                kind[strcspn(kind, "[ ")] = 0;
                if (kind[0] && kind[strlen(kind) - 1] == ':')
                        kind[strlen(kind) - 1] = 0;
                n = g_hash_table_lookup(kinds, kind);
                g_hash_table_replace(kinds, kind, GUINT_TO_POINTER(GPOINTER_TO_UINT(n) + 1));
        }
        g_hash_table_iter_init(&it, kinds);
        while (g_hash_table_iter_next(&it, &key, &n))
                g_string_append_printf(out, "%s%s x%u", out->len ? ", " : "", (const char *) key, GPOINTER_TO_UINT(n));
        return g_string_free(out, FALSE);
}

/* Waits until the daemon holds no more than it did before the case: what
 * it held for a caller who has left must go. */
static void watch_wait_released(Watch *w, GString *report) {
        gint64 start = g_get_monotonic_time(), deadline = start + RELEASE_MS * 1000;
        int fds;
        long threads;

        for (;;) {
                fds = current_fds(w);
                threads = proc_status_value(w->pid, "Threads");
                if ((fds <= w->base_fds && threads <= w->base_threads) || g_get_monotonic_time() > deadline)
                        break;
                g_usleep(20 * 1000);
        }
        if (fds > w->base_fds || threads > w->base_threads) {
                g_autofree char *held = fd_summary(w->pid);

                fail("the daemon still holds %d descriptors and %ld threads %d ms after the attacker left (%d and "
                     "%ld before): %s", fds, threads, RELEASE_MS, w->base_fds, w->base_threads, held);
        } else
                note(report, "released in %" G_GINT64_FORMAT " ms", (g_get_monotonic_time() - start) / 1000);
}

/* How a daemon that lost its name ended (its exit status, or that it
 * still runs), and the last lines of its log. */
static char *daemon_end(pid_t pid) {
        GSubprocess *p = polkit_env_nbdlinkd();
        g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", (int) pid), *stat = NULL, *log = NULL;
        g_autoptr(GString) out = g_string_new(NULL);
        const char *state;

        /* Not reaped yet, it is a zombie ("Z" after the command name). */
        if (g_file_get_contents(stat_path, &stat, NULL, NULL) && (state = strrchr(stat, ')')) &&
            state[1] == ' ' && state[2] != 'Z')
                g_string_append(out, "it still runs, off the bus");
        else if (g_subprocess_wait(p, NULL, NULL) && g_subprocess_get_if_exited(p))
                g_string_append_printf(out, "it exited with status %d", g_subprocess_get_exit_status(p));
        else if (g_subprocess_get_if_signaled(p))
                g_string_append_printf(out, "it was killed by signal %d", g_subprocess_get_term_sig(p));
        if (g_file_get_contents(polkit_env_nbdlinkd_log(), &log, NULL, NULL)) {
                g_auto(GStrv) lines = g_strsplit(g_strchomp(log), "\n", -1);
                guint n = g_strv_length(lines);

                g_string_append(out, "; its log ends:");
                for (guint i = n > 5 ? n - 5 : 0; i < n; i++)
                        g_string_append_printf(out, " \"%s\"", lines[i]);
        }
        return g_string_free(g_steal_pointer(&out), FALSE);
}

/* The daemon after the attack: the same process, still owning its name,
 * within bounds. Adds the measurements to the report. */
static void watch_end(Watch *w, const Bounds *b, GString *report) {
        long rss, hwm;

        g_atomic_int_set(&w->stop, 1);
        g_thread_join(w->sampler);
        rss = proc_status_value(w->pid, "VmRSS");
        hwm = proc_status_value(w->pid, "VmHWM");

        note(report, "daemon fds %d at the start, peak %d; threads %ld, peak %d; RSS %.1f MB at the start, "
             "%.1f MB at the end, peak %.1f MB", w->base_fds, w->peak_fds, w->base_threads, w->peak_threads,
             w->base_rss_kib / 1024.0, rss / 1024.0, hwm / 1024.0);

        if (name_owner_pid() != w->pid) {
                g_autofree char *end = daemon_end(w->pid);

                fail("org.nbdlink.NBD1 is no longer owned by nbdlinkd (pid %d): %s", (int) w->pid, end);
        }
        if (w->peak_fds > w->base_fds + (int) b->fds)
                fail("the daemon's descriptors peaked at %d, over %d + %u", w->peak_fds, w->base_fds, b->fds);
        if (w->peak_threads > w->base_threads + (long) b->threads)
                fail("the daemon's threads peaked at %d, over %ld + %u", w->peak_threads, w->base_threads,
                     b->threads);
        if (hwm > w->base_rss_kib + (long) b->rss_mib * 1024)
                fail("the daemon's memory peaked at %.1f MB, over %.1f + %u MB", hwm / 1024.0,
                     w->base_rss_kib / 1024.0, b->rss_mib);
}

/* The daemon's log since the case began: no line with a raw control
 * character, and none that a caller's or server's text started. */
static void check_log(const Watch *w, GString *report) {
        g_autofree char *all = NULL;
        g_auto(GStrv) lines = NULL;
        gsize size = 0;
        unsigned n = 0;

        if (!g_file_get_contents(polkit_env_nbdlinkd_log(), &all, &size, NULL)) {
                fail("cannot read the daemon's log");
                return;
        }
        lines = g_strsplit(all + MIN((gsize) w->log_offset, size), "\n", -1);
        for (char **l = lines; *l; l++) {
                g_autofree char *found = find_raw_control(*l, strlen(*l));
                g_autofree char *shown = g_strescape(*l, NULL);

                if (!**l)
                        continue;
                n++;
                if (found)
                        fail("the daemon logged a line with %s: \"%s\"", found, shown);
                /* The line HOSTILE_EXPORT's newline or the server's would
                 * start. */
                if (g_str_has_prefix(*l, "nbdlinkd: FAKE") || g_str_has_prefix(*l, "b\x1b"))
                        fail("a caller's or server's text started a line of the daemon's log: \"%s\"", shown);
        }
        note(report, "daemon log %u new line(s), none raw", n);
}

/* The victim lists and probes nbdkit while the attack goes on. */
static void check_victim(GString *report) {
        const char *list[] = { "list", nbdkit_host, NULL };
        const char *probe[] = { "probe", nbdkit_host, "", NULL };
        const char *const *calls[] = { list, probe };

        for (size_t i = 0; i < G_N_ELEMENTS(calls); i++) {
                Reply *r = call_once(VICTIM, calls[i]);

                if (!r)
                        continue;
                note(report, "victim %s %u ms", i == 0 ? "ListExports" : "Probe", r->ms);
                if (r->error)
                        fail("the victim's call failed: %s %s", r->error, r->message);
                else if (r->ms > VICTIM_MAX_MS)
                        fail("the victim waited %u ms, over %u ms", r->ms, VICTIM_MAX_MS);
                reply_free(r);
        }
}

static void evil_start(EvilServer *s, const char *scenario, char **ret_host) {
        g_assert_cmpint(evil_server_start(s, scenario, NULL), ==, 0);
        *ret_host = g_strdup_printf("127.0.0.1:%u", s->port);
}

static void report_done(GString *report) {
        g_test_message("%s", report->str);
        g_string_free(report, TRUE);
}

/* The attacker leaves with whatever it has pending; the daemon must let go
 * of all it held for it, and is judged against the case's bounds. */
static void end_attack(Caller *attacker, Watch *w, const Bounds *b, GString *report) {
        caller_leave(attacker);
        watch_wait_released(w, report);
        watch_end(w, b, report);
}

/* ---- the cases ---------------------------------------------------------------- */

/* "N NAME (slowest M ms)" for the answers with that error. */
static void note_answers(GString *report, const Caller *c, const char *error) {
        unsigned n = count_replies(c, error);

        if (n > 0)
                note(report, "%u %s (slowest %u ms)", n, strrchr(error, '.') + 1, slowest_reply(c, error));
}

/* Every kind of answer a caller got, "N NAME (slowest M ms)" each, and
 * how many calls it left pending. */
static void note_all_answers(GString *report, const Caller *c) {
        g_autoptr(GPtrArray) seen = g_ptr_array_new();

        for (guint i = 0; i < c->replies->len; i++) {
                const Reply *r = c->replies->pdata[i];
                const char *name = r->error ?: "OK";

                if (g_ptr_array_find_with_equal_func(seen, name, g_str_equal, NULL))
                        continue;
                g_ptr_array_add(seen, (gpointer) name);
                if (r->error)
                        note_answers(report, c, r->error);
                else
                        note(report, "%u OK", count_replies(c, NULL));
        }
        if (c->pending > 0)
                note(report, "%d pending", c->pending);
}

/* The answers the contract wants: exactly `n` with `error`, each at once. */
static void expect_refused_at_once(const Caller *c, const char *who, const char *error, unsigned n) {
        unsigned got = count_replies(c, error), slowest = slowest_reply(c, error);

        if (got != n)
                fail("%s: %u calls refused with %s, expected %u", who, got, error, n);
        if (slowest > AT_ONCE_MAX_MS)
                fail("%s: a refusal with %s took %u ms, not at once (%u ms)", who, error, slowest, AT_ONCE_MAX_MS);
}

/* 72 Probes at once, each with 16 descriptors (four credentials as memfds,
 * twelve that no option names), to a server that accepts and never says a
 * word: at most LIMIT_QUERIES_PER_UID start, the rest are refused at once,
 * and the daemon keeps neither the call messages nor the unnamed
 * descriptors of the started ones. Meanwhile the same flood with "tls-ca"
 * twice is refused as a bad argument, and the victim lists and probes. */
static void test_fd_flood(void) {
        g_autofree char *deaf = NULL, *count = g_strdup_printf("%u", FD_FLOOD_CALLS);
        g_autofree char *conns = g_strdup_printf("%u", FD_FLOOD_CONNECTIONS);
        g_autofree char *extra = g_strdup_printf("%u", FD_FLOOD_EXTRA_FDS), *held_kinds = NULL;
        g_autofree char *extra_dup = g_strdup_printf("%u", FD_FLOOD_EXTRA_FDS - 1);
        GString *report = g_string_new("fd flood:");
        EvilServer server;
        Caller attacker, dup;
        unsigned started;
        int held;
        Watch w;

        evil_start(&server, "stall-before-greeting", &deaf);
        watch_begin(&w);
        {
                const char *args[] = { "--count", count, "--connections", conns, "--credentials",
                                       "--extra-fds", extra, "--timeout-sec", "20", "--call-timeout-ms", "60000",
                                       "--settle-ms", SETTLE_MS, "probe", deaf, "disk", NULL };

                caller_start(&attacker, ATTACKER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        (void) caller_settle(&attacker);
        started = attacker.pending > 0 ? (unsigned) attacker.pending : 0;
        /* The started ones are stuck on the deaf server now. */
        held = current_fds(&w) - w.base_fds;
        held_kinds = fd_summary(w.pid);
        note(report, "attacker %u of %u Probes started", started, attacker.sent);
        note_answers(report, &attacker, ERR_LIMIT);
        note(report, "daemon held %d descriptors more than at rest while they were stuck", held);

        {
                const char *args[] = { "--count", "8", "--connections", "8", "--credentials", "--duplicate-key",
                                       "--extra-fds", extra_dup, "--timeout-sec", "20", "--settle-ms", SETTLE_MS,
                                       "probe", deaf, "disk", NULL };

                caller_start(&dup, BYSTANDER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        /* Left as soon as it settles: a daemon that took these calls would
         * otherwise keep them for the 20 s of their timeout. */
        (void) caller_settle(&dup);
        caller_leave(&dup);
        note(report, "\"tls-ca\" twice, 8 Probes from another uid:");
        note_all_answers(report, &dup);
        check_victim(report);

        end_attack(&attacker, &w, &fd_flood_bounds, report);
        report_done(report);
        evil_server_stop(&server);

        if (attacker.sent != FD_FLOOD_CALLS)
                fail("the attacker sent %u calls, not %u", attacker.sent, FD_FLOOD_CALLS);
        if (started < 1 || started > LIMIT_QUERIES_PER_UID)
                fail("%u of the attacker's Probes started, expected 1 to %u", started, LIMIT_QUERIES_PER_UID);
        expect_refused_at_once(&attacker, "attacker", ERR_LIMIT, attacker.sent - started);
        assert_only_errors(&attacker, "attacker", (const char *const[]) { ERR_LIMIT, NULL });
        if (held > (int) FD_FLOOD_HELD_FDS)
                fail("with %u Probes stuck the daemon held %d descriptors more than at rest, over %u: it keeps the "
                     "call messages, and so descriptors no option named (it held %s)", started, held,
                     FD_FLOOD_HELD_FDS, held_kinds);
        expect_refused_at_once(&dup, "a duplicate \"tls-ca\"", ERR_INVALID, 8);
        caller_free(&attacker);
        caller_free(&dup);
}

/* A member of nbdlink-ask, whose every check polkit hands to an
 * authentication agent, registers one of its own that never answers and
 * makes interactive Attach calls from 9 connections: at most
 * LIMIT_POLKIT_PER_UID wait at polkit, the rest are refused at once, and
 * everyone else's checks still go through — a victim's ListExports, a
 * third user's Detach — instead of the daemon's connection running out of
 * pending replies on the bus. */
static void test_polkit_agent_stall(void) {
        GString *report = g_string_new("polkit agent stall:");
        const char *detach[] = { "detach", "nbd5", NULL };
        Caller attacker;
        Reply *bystander;
        unsigned waiting;
        Watch w;

        watch_begin(&w);
        {
                const char *args[] = { "--agent", "--interactive", "--count", "9", "--connections", "9",
                                       "--call-timeout-ms", "60000", "--settle-ms", "1500",
                                       "attach", "", "nbd.example:10809", "disk0", NULL };

                caller_start(&attacker, ASKER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        (void) caller_settle(&attacker);
        waiting = attacker.pending > 0 ? (unsigned) attacker.pending : 0;
        note(report, "attacker %u of %u interactive Attach calls waiting at polkit, its agent asked %u times",
             waiting, attacker.sent, attacker.asked->len);
        note_answers(report, &attacker, ERR_LIMIT);

        check_victim(report);
        bystander = call_once(BYSTANDER, detach);
        if (bystander)
                note(report, "bystander Detach(nbd5) %s in %u ms", bystander->error ?: "OK", bystander->ms);

        end_attack(&attacker, &w, &polkit_stall_bounds, report);
        report_done(report);

        if (waiting < 1 || waiting > LIMIT_POLKIT_PER_UID)
                fail("%u of the attacker's checks waited at polkit, expected 1 to %u", waiting, LIMIT_POLKIT_PER_UID);
        if (attacker.asked->len < 1 || attacker.asked->len > LIMIT_POLKIT_PER_UID)
                fail("the attacker's agent was asked %u times, expected 1 to %u", attacker.asked->len,
                     LIMIT_POLKIT_PER_UID);
        expect_refused_at_once(&attacker, "attacker", ERR_LIMIT, attacker.sent - waiting);
        assert_only_errors(&attacker, "attacker", (const char *const[]) { ERR_LIMIT, NULL });
        /* No devices here: Detach gets past polkit to NotAttached, unless
         * the daemon could not ask polkit at all. */
        if (bystander && (g_strcmp0(bystander->error, NOT_ATTACHED) != 0 || bystander->ms > VICTIM_MAX_MS))
                fail("the bystander's Detach got %s %s after %u ms, expected %s within %u ms",
                     bystander->error ?: "OK", bystander->message ?: "", bystander->ms, NOT_ATTACHED, VICTIM_MAX_MS);
        g_clear_pointer(&bystander, reply_free);
        caller_free(&attacker);
}

/* 12 ListExports at once to a server that streams just under 16 MiB of
 * export names and never ends the list: at most LIMIT_QUERIES_PER_UID run,
 * the rest are refused at once, and the ones that run fail with
 * ProtocolError as soon as the list passes
 * NBD_MAX_LIST_BYTES_UNPRIVILEGED — not after reading 16 MiB each and
 * waiting for the server. */
static void test_memory_flood(void) {
        g_autofree char *host = NULL, *count = g_strdup_printf("%u", MEMORY_FLOOD_CALLS);
        GString *report = g_string_new("memory flood:");
        EvilServer server;
        Caller attacker;
        unsigned limited;
        Watch w;

        evil_start(&server, "list-16mib-stall", &host);
        watch_begin(&w);
        {
                const char *args[] = { "--count", count, "--connections", count, "--timeout-sec", "30",
                                       "--call-timeout-ms", "60000", "--settle-ms", MEMORY_FLOOD_QUIET_MS,
                                       "list", host, NULL };

                caller_start(&attacker, ATTACKER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        (void) caller_settle(&attacker);
        limited = count_replies(&attacker, ERR_LIMIT);
        note(report, "attacker %u ListExports:", attacker.sent);
        note_answers(report, &attacker, ERR_LIMIT);
        note_answers(report, &attacker, ERR_PROTOCOL);
        note(report, "%d still reading after %s ms without an answer", attacker.pending, MEMORY_FLOOD_QUIET_MS);
        check_victim(report);

        end_attack(&attacker, &w, &memory_flood_bounds, report);
        report_done(report);
        evil_server_stop(&server);

        if (limited < MEMORY_FLOOD_CALLS - LIMIT_QUERIES_PER_UID)
                fail("only %u of %u ListExports were refused over the limit of %u per uid", limited,
                     MEMORY_FLOOD_CALLS, LIMIT_QUERIES_PER_UID);
        expect_refused_at_once(&attacker, "attacker", ERR_LIMIT, limited);
        if (attacker.pending != 0)
                fail("%d ListExports were still reading the list: it is not cut off at %u bytes for a caller "
                     "who is not root", attacker.pending, NBD_MAX_LIST_BYTES_UNPRIVILEGED);
        if (count_replies(&attacker, ERR_PROTOCOL) != MEMORY_FLOOD_CALLS - limited)
                fail("%u ListExports failed with %s, expected all %u that ran", count_replies(&attacker, ERR_PROTOCOL),
                     ERR_PROTOCOL, MEMORY_FLOOD_CALLS - limited);
        assert_only_errors(&attacker, "attacker", (const char *const[]) { ERR_LIMIT, ERR_PROTOCOL, NULL });
        caller_free(&attacker);
}

/* The monitor's unique name on the bus: found by its pid. */
static char *unique_name_of(pid_t pid) {
        g_autoptr(GVariant) names = NULL;
        g_autoptr(GVariantIter) it = NULL;
        const char *name;

        names = g_dbus_connection_call_sync(polkit_env_bus(), "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                            "org.freedesktop.DBus", "ListNames", NULL, G_VARIANT_TYPE("(as)"),
                                            G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        if (!names)
                return NULL;
        g_variant_get(names, "(as)", &it);
        while (g_variant_iter_next(it, "&s", &name)) {
                g_autoptr(GVariant) reply = NULL;
                guint32 p;

                if (name[0] != ':')
                        continue;
                reply = g_dbus_connection_call_sync(polkit_env_bus(), "org.freedesktop.DBus",
                                                    "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                    "GetConnectionUnixProcessID", g_variant_new("(s)", name),
                                                    G_VARIANT_TYPE("(u)"), G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
                if (!reply)
                        continue;
                g_variant_get(reply, "(u)", &p);
                if ((pid_t) p == pid)
                        return g_strdup(name);
        }
        return NULL;
}

/* Counts the forged signals that reach the test's own connection: proof
 * that the bus passes such signals on, so that the monitor's silence is
 * its own doing. Runs in GDBus's worker thread. */
static GDBusMessage *count_forged(GDBusConnection *c, GDBusMessage *m, gboolean incoming, gpointer userdata) {
        if (incoming && g_dbus_message_get_message_type(m) == G_DBUS_MESSAGE_TYPE_SIGNAL &&
            g_strcmp0(g_dbus_message_get_destination(m), g_dbus_connection_get_unique_name(c)) == 0 &&
            g_strcmp0(g_dbus_message_get_sender(m), "org.freedesktop.DBus") != 0)
                g_atomic_int_inc((gint *) userdata);
        return m;
}

static char *copy_nbdlink(void) {
        g_autofree char *from = g_build_filename(g_getenv("NBDLINK_BUILD_ROOT"), "client", "nbdlink", NULL);
        g_autofree char *contents = NULL;
        char *to = g_build_filename(polkit_env_dir(), "nbdlink", NULL);
        gsize size;
        g_autoptr(GError) error = NULL;

        /* A copy where every user may run it, wherever the build tree is. */
        if (!g_file_get_contents(from, &contents, &size, &error) ||
            !g_file_set_contents(to, contents, (gssize) size, &error))
                g_error("cannot copy %s: %s", from, error->message);
        g_assert_cmpint(chmod(to, 0755), ==, 0);
        return to;
}

/* nbdlink monitor runs as the victim; another user sends it, straight to
 * its unique name, signals that look like the daemon's: a device added,
 * changed, disconnected, removed, the daemon stopping, all with escape
 * sequences. The suite's bus, like a stock system bus (Debian's
 * system.conf: <allow send_type="signal"/>), lets any user send a signal to
 * any connection, so the bus is no defence here: the test asserts that the
 * bus delivered them (to the test's own connection as well, counted) and
 * then that the monitor printed none of them. Then the daemon is
 * restarted, a real event: the monitor must print exactly that. */
static void test_spoofed_signals(void) {
        GString *report = g_string_new("spoofed signals:");
        g_autofree char *nbdlink = copy_nbdlink(), *ready = NULL, *monitor_name = NULL, *shown = NULL;
        const char *own_name = g_dbus_connection_get_unique_name(polkit_env_bus()), *monitor_id;
        g_autoptr(GString) printed = g_string_new(NULL);
        gint forged_seen = 0;
        unsigned to_monitor = 0, to_canary = 0, refused = 0;
        Caller monitor, spoofer;
        gboolean restarted, started_seen = FALSE;
        guint filter;
        Watch w;

        watch_begin(&w);
        {
                const char *args[] = { "exec", nbdlink, "monitor", NULL };

                caller_start(&monitor, VICTIM, args, G_SUBPROCESS_FLAGS_STDERR_PIPE);
        }
        /* On stderr once its subscriptions are in place. */
        ready = line_reader_next(&monitor.err, g_get_monotonic_time() + 10 * G_USEC_PER_SEC);
        if (!ready || !g_str_has_prefix(ready, "Monitoring nbdlink devices"))
                fail("nbdlink monitor did not start: %s", ready ?: "(nothing on stderr)");
        monitor_id = g_subprocess_get_identifier(monitor.process);
        monitor_name = monitor_id ? unique_name_of((pid_t) atoi(monitor_id)) : NULL;
        if (!monitor_name)
                fail("nbdlink monitor has no connection on the bus");

        filter = g_dbus_connection_add_filter(polkit_env_bus(), count_forged, &forged_seen, NULL);
        {
                const char *args[] = { "spoof", monitor_name ?: ":0.0", own_name, NULL };

                caller_start(&spoofer, ATTACKER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        caller_wait(&spoofer);
        for (guint i = 0; i < spoofer.lines->len; i++) {
                g_auto(GStrv) f = g_strsplit(spoofer.lines->pdata[i], " ", 5);

                if (g_strv_length(f) < 4 || !g_str_equal(f[0], "SIGNAL"))
                        continue;
                if (!g_str_equal(f[3], "DELIVERED")) {
                        refused++;
                        g_test_message("the bus refused a forged signal: %s", (char *) spoofer.lines->pdata[i]);
                } else if (g_strcmp0(f[1], monitor_name) == 0)
                        to_monitor++;
                else
                        to_canary++;
        }
        for (gint64 deadline = g_get_monotonic_time() + 5 * G_USEC_PER_SEC;
             (unsigned) g_atomic_int_get(&forged_seen) < to_canary && g_get_monotonic_time() < deadline;)
                g_usleep(10 * 1000);
        g_dbus_connection_remove_filter(polkit_env_bus(), filter);
        note(report, "the bus delivered %u forged signals to the victim's nbdlink monitor (and %u to a canary "
             "connection, which saw %d), refused %u", to_monitor, to_canary, g_atomic_int_get(&forged_seen), refused);
        check_victim(report);
        watch_end(&w, &single_call_bounds, report);

        /* A real event. The bus delivers in order: the monitor has taken
         * every forged signal by the time it sees the daemon go. */
        restarted = polkit_env_restart_nbdlinkd();
        for (gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC; !started_seen;) {
                g_autofree char *line = line_reader_next(&monitor.out, deadline);

                if (!line)
                        break;
                /* Each event is stamped with the time it came. */
                g_autofree char *event = cli_monitor_untimed(line);
                g_string_append_printf(printed, "%s\n", event);
                started_seen = g_str_equal(event, "nbdlinkd started");
        }
        g_subprocess_send_signal(monitor.process, SIGTERM);
        for (char *line; (line = line_reader_next(&monitor.out, g_get_monotonic_time() + 5 * G_USEC_PER_SEC));
             g_free(line)) {
                g_autofree char *event = cli_monitor_untimed(line);
                g_string_append_printf(printed, "%s\n", event);
        }
        (void) g_subprocess_wait(monitor.process, NULL, NULL);
        shown = g_strescape(printed->str, NULL);
        note(report, "then the daemon restarted; the monitor printed \"%s\"", shown);
        report_done(report);

        /* The suite's bus lets the signals through, as a system bus does;
         * if it stopped doing so this case would prove nothing more. */
        if (refused > 0 || to_monitor == 0)
                fail("the bus refused %u forged signals and delivered %u to the monitor: this case needs a bus "
                     "that, like the system bus, passes them on", refused, to_monitor);
        if ((unsigned) g_atomic_int_get(&forged_seen) != to_canary)
                fail("the canary connection saw %d of the %u forged signals sent to it",
                     g_atomic_int_get(&forged_seen), to_canary);
        if (!restarted)
                fail("nbdlinkd did not exit cleanly when restarted");
        if (!g_str_equal(printed->str, "nbdlinkd stopped\nnbdlinkd started\n"))
                fail("nbdlink monitor printed \"%s\": it takes signals from someone other than the owner of %s, "
                     "expected only the restart's \"nbdlinkd stopped\" and \"nbdlinkd started\"",
                     shown, POLKIT_ENV_NBDLINKD_NAME);
        assert_lacks("the monitor's output", printed->str, "\x1b");
        if (!g_subprocess_get_if_exited(monitor.process) || g_subprocess_get_exit_status(monitor.process) != 0)
                fail("nbdlink monitor did not exit cleanly on SIGTERM");
        caller_free(&monitor);
        caller_free(&spoofer);
}

/* An export name that would hide text, start a line of its own and turn
 * what follows around in a password dialog or a log. */
#define HOSTILE_EXPORT "a\nb\x1b[8mhidden\x1b[0m\xe2\x80\xae" "evil"

/* The agent of a member of nbdlink-ask prints what polkit asks it: the
 * message and the details must carry the export name's controls only in
 * their escaped form. */
static void test_controls_agent(void) {
        GString *report = g_string_new("control characters, agent:");
        g_autofree char *message = NULL;
        g_autoptr(GVariant) details = NULL;
        Caller attacker;
        gboolean asked;
        Watch w;

        watch_begin(&w);
        {
                const char *args[] = { "--agent", "--interactive", "--call-timeout-ms", "60000",
                                       "attach", "", "nbd.example:10809", HOSTILE_EXPORT, NULL };

                caller_start(&attacker, ASKER, args, G_SUBPROCESS_FLAGS_NONE);
        }
        asked = caller_wait_for(&attacker, "ASKED ", 10000);
        check_victim(report);
        end_attack(&attacker, &w, &single_call_bounds, report);

        if (!asked || attacker.asked->len == 0) {
                const Reply *r = attacker.replies->len > 0 ? attacker.replies->pdata[0] : NULL;

                report_done(report);
                fail("the agent was never asked%s%s %s", r ? "; the call was answered " : "",
                     r ? r->error ?: "OK" : "", r && r->message ? r->message : "");
                caller_free(&attacker);
                return;
        }
        g_variant_get(attacker.asked->pdata[0], "(&ss&s@a{ss}&s@a(sa{sv}))", NULL, &message, NULL, &details, NULL,
                      NULL);
        {
                g_autofree char *shown = g_strescape(message, NULL);
                g_autofree char *shown_details = g_variant_print(details, FALSE);

                note(report, "the agent was asked \"%s\" with the details %s", shown, shown_details);
        }
        check_log(&w, report);
        report_done(report);

        assert_no_raw_control("the agent's message", message);
        assert_contains("the agent's message", message, "\\x1b");
        assert_contains("the agent's message", message, "\\x0a");
        assert_contains("the agent's message", message, "\\u202E");
        {
                GVariantIter it;
                const char *key, *value;

                g_variant_iter_init(&it, details);
                while (g_variant_iter_next(&it, "{&s&s}", &key, &value)) {
                        g_autofree char *what = g_strdup_printf("the agent's detail '%s'", key);

                        assert_no_raw_control(what, value);
                        if (g_str_equal(key, "export"))
                                assert_contains(what, value, "\\x1b");
                }
        }
        caller_free(&attacker);
}

/* One call to an evil-server scenario, its answer checked for raw
 * controls and for the escaped forms or words expected, the daemon's log
 * too. */
typedef struct ControlsCase {
        const char *name;
        const char *scenario;
        const char *const *expected;    /* in the error message */
        const char *const *unwanted;    /* never in it */
} ControlsCase;

static void controls_call(const ControlsCase *cc, const char *const *call, GString *report) {
        Reply *r = call_once(ATTACKER, call);

        if (!r)
                return;
        {
                g_autofree char *shown = g_strescape(r->message ?: "", NULL);

                note(report, "%s: %s \"%s\" in %u ms", call[0], r->error ?: "OK", shown, r->ms);
        }
        if (!r->error) {
                fail("%s against %s succeeded", call[0], cc->scenario);
                reply_free(r);
                return;
        }
        assert_no_raw_control("the error message", r->message);
        for (const char *const *e = cc->expected; *e; e++)
                assert_contains("the error message", r->message, *e);
        for (const char *const *u = cc->unwanted; *u; u++)
                assert_lacks("the error message", r->message, *u);
        reply_free(r);
}

static void test_controls_server(gconstpointer data) {
        const ControlsCase *cc = data;
        g_autofree char *host = NULL;
        GString *report = g_string_new(NULL);
        EvilServer server;
        Watch w;

        g_string_printf(report, "control characters, %s:", cc->name);
        evil_start(&server, cc->scenario, &host);
        watch_begin(&w);
        {
                const char *probe[] = { "probe", host, "disk", NULL };
                const char *list[] = { "list", host, NULL };

                controls_call(cc, probe, report);
                controls_call(cc, list, report);
        }
        check_victim(report);
        watch_wait_released(&w, report);
        watch_end(&w, &single_call_bounds, report);
        check_log(&w, report);
        report_done(report);
        evil_server_stop(&server);
}

static const ControlsCase controls_cases[] = {
        /* NBD_REP_ERR_POLICY with "no ESC[2J CSI 31m RLO evil LF nbdlinkd:
         * FAKE log line" */
        { "server-error", "err-text-controls",
          (const char *const[]) { "\\x1b", "\\u009B", "\\u202E", "\\x0a", NULL },
          (const char *const[]) { NULL } },
        /* "HTTP/1.1 200 OK CR LF ESC[2J ESC[8m Content-Type: ..." and a
         * hang-up: the daemon says what the peer is not, and repeats none
         * of what it sent. */
        { "not-an-nbd-server", "http-response",
          (const char *const[]) { "not an NBD server", NULL },
          (const char *const[]) { "HTTP", "200 OK", "Content-Type", "hidden", "html", NULL } },
};

/* Not root: nothing here can run (namespaces, bind mounts, other uids). */
static void test_needs_root(void) {
        g_test_skip("the hostile suite needs root: it creates mount and pid namespaces and calls as other users");
}

int main(int argc, char **argv) {
        char tmpdir[] = "/tmp/nbdlink-hostile-XXXXXX";
        g_autofree char *nbdlinkd = NULL;
        int r;

        if (geteuid() != 0) {
                g_test_init(&argc, &argv, NULL);
                g_test_add_func("/hostile/needs-root", test_needs_root);
                return g_test_run();
        }

        polkit_env_enter(tmpdir);

        g_test_init(&argc, &argv, NULL);
        /* A case that fails goes on to clean up (stop its attacker and
         * servers), and the next case still runs: the report wants all of
         * them. */
        g_test_set_nonfatal_assertions();
        g_test_add_func("/hostile/fd-flood", test_fd_flood);
        g_test_add_func("/hostile/polkit-agent-stall", test_polkit_agent_stall);
        g_test_add_func("/hostile/memory-flood", test_memory_flood);
        g_test_add_func("/hostile/control-characters/agent", test_controls_agent);
        for (size_t i = 0; i < G_N_ELEMENTS(controls_cases); i++) {
                g_autofree char *path = g_strdup_printf("/hostile/control-characters/%s", controls_cases[i].name);

                g_test_add_data_func(path, controls_cases + i, test_controls_server);
        }
        /* It restarts the daemon: the cases after it (GTest runs a suite's
         * own cases before those of its sub-suites) watch the new one. */
        g_test_add_func("/hostile/spoofed-signals", test_spoofed_signals);

        nbdlinkd = g_build_filename(g_getenv("NBDLINK_BUILD_ROOT"), "daemon", "nbdlinkd", NULL);
        polkit_env_setup(&(PolkitEnvOptions) { .nbdlinkd = nbdlinkd, .capture_log = TRUE });
        polkit_env_set_polkitd(TRUE);
        nbdkit = test_nbdkit_start("memory", "1M", NULL);
        nbdkit_host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);

        /* A caller that has already ended may be told to leave: its closed
         * pipe must be an error, not a signal. (Children get SIGPIPE back:
         * GLib resets it when it spawns.) */
        (void) signal(SIGPIPE, SIG_IGN);
        r = g_test_run();

        test_server_stop(nbdkit);
        test_servers_cleanup();
        g_free(nbdkit_host);
        if (!polkit_env_teardown() && r == 0)
                r = 1;
        return r;
}
