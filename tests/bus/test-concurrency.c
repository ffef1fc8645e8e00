/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Many callers at once: 20 client processes, each with its own bus
 * connection, make 10 ListExports/Probe calls without waiting for the
 * answers (200 in flight) against nbdkit through the real nbdlinkd. Every
 * call must be answered, correctly, and afterwards the daemon must be back
 * to the descriptors and threads it had before. */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/macro.h"
#include "servers.h"
#include "util/time-util.h"

#include "bus-harness.h"

#define N_CLIENTS 20
#define CALLS_PER_CLIENT 10
#define EXPORT_SIZE (1024 * 1024)
/* Each client's deadline for all its answers: well under the suite's
 * timeout, well over what 200 handshakes with nbdkit take. */
#define CLIENT_DEADLINE_USEC (15 * USEC_PER_SEC)

static TestServer *nbdkit;

/* ---- in the client processes --------------------------------------------- */

typedef struct Call {
        bool probe;
        bool answered;
        char failure[256];      /* empty: answered correctly */
} Call;

static void call_failed(Call *c, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void call_failed(Call *c, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(c->failure, sizeof(c->failure), fmt, ap);
        va_end(ap);
}

static void check_list_reply(Call *c, sd_bus_message *reply) {
        const char *name, *description;
        bool alpha = false, beta = false;
        int r;

        if (sd_bus_message_enter_container(reply, 'a', "(ss)") < 0)
                return call_failed(c, "ListExports: reply is not a(ss)");
        while ((r = sd_bus_message_read(reply, "(ss)", &name, &description)) > 0) {
                alpha = alpha || strcmp(name, "alpha") == 0;
                beta = beta || strcmp(name, "beta") == 0;
        }
        if (r < 0 || !alpha || !beta)
                call_failed(c, "ListExports: alpha and beta not both listed");
}

static void check_probe_reply(Call *c, sd_bus_message *reply) {
        const char *key;
        bool size_ok = false;
        int r;

        if (sd_bus_message_enter_container(reply, 'a', "{sv}") < 0)
                return call_failed(c, "Probe: reply is not a{sv}");
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                if (sd_bus_message_read(reply, "s", &key) < 0)
                        return call_failed(c, "Probe: bad entry");
                if (strcmp(key, "size") == 0) {
                        uint64_t size = 0;

                        if (sd_bus_message_read(reply, "v", "t", &size) < 0)
                                return call_failed(c, "Probe: size is not a 't'");
                        size_ok = size == EXPORT_SIZE;
                } else if (sd_bus_message_skip(reply, "v") < 0)
                        return call_failed(c, "Probe: cannot skip '%s'", key);
                if (sd_bus_message_exit_container(reply) < 0)
                        return call_failed(c, "Probe: bad entry");
        }
        if (r < 0 || !size_ok)
                call_failed(c, "Probe: no size of %u bytes", EXPORT_SIZE);
}

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error) {
        Call *c = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(reply);

        c->answered = true;
        if (e)
                call_failed(c, "%s: %s: %s", c->probe ? "Probe" : "ListExports", e->name, e->message);
        else if (c->probe)
                check_probe_reply(c, reply);
        else
                check_list_reply(c, reply);
        return 0;
}

static int start_call(sd_bus *bus, Call *c, const char *host) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                           "org.nbdlink.NBD1.Manager", c->probe ? "Probe" : "ListExports");
        if (r < 0)
                return r;
        r = c->probe ? sd_bus_message_append(m, "ss", host, "alpha") : sd_bus_message_append(m, "s", host);
        if (r < 0)
                return r;
        r = sd_bus_message_append(m, "a{sv}", 0);
        if (r < 0)
                return r;
        /* The slot is floating: it lives as long as the connection. */
        return sd_bus_call_async(bus, NULL, m, on_reply, c, CLIENT_DEADLINE_USEC);
}

/* One client: connects, waits for the start signal (so that all 200 calls
 * leave at about the same time), sends all its calls, then waits for the
 * answers. Returns the exit status; says why on stderr. */
static int run_client(int id, int start_fd, const char *host) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        Call calls[CALLS_PER_CLIENT] = {};
        usec_t deadline;
        char c;
        int r;

        r = sd_bus_open_system(&bus);
        if (r < 0) {
                fprintf(stderr, "client %d: cannot connect: %s\n", id, strerror(-r));
                return 1;
        }
        /* Connected before the start: the calls, not the connects, race. */
        r = sd_bus_get_unique_name(bus, &(const char *) { NULL });
        if (r < 0) {
                fprintf(stderr, "client %d: no unique name: %s\n", id, strerror(-r));
                return 1;
        }
        if (read(start_fd, &c, 1) < 0) {
                fprintf(stderr, "client %d: start signal: %m\n", id);
                return 1;
        }

        for (int i = 0; i < CALLS_PER_CLIENT; i++) {
                calls[i].probe = (id + i) % 2 == 1;
                r = start_call(bus, &calls[i], host);
                if (r < 0) {
                        fprintf(stderr, "client %d: call %d: %s\n", id, i, strerror(-r));
                        return 1;
                }
        }

        deadline = deadline_after(CLIENT_DEADLINE_USEC);
        for (;;) {
                int left = 0;

                for (int i = 0; i < CALLS_PER_CLIENT; i++)
                        left += !calls[i].answered;
                if (left == 0)
                        break;
                if (now_usec(CLOCK_MONOTONIC) >= deadline) {
                        fprintf(stderr, "client %d: %d calls unanswered\n", id, left);
                        return 1;
                }
                r = sd_bus_process(bus, NULL);
                if (r < 0) {
                        fprintf(stderr, "client %d: %s\n", id, strerror(-r));
                        return 1;
                }
                if (r == 0)
                        (void) sd_bus_wait(bus, 100 * USEC_PER_MSEC);
        }

        r = 0;
        for (int i = 0; i < CALLS_PER_CLIENT; i++)
                if (calls[i].failure[0]) {
                        fprintf(stderr, "client %d: call %d: %s\n", id, i, calls[i].failure);
                        r = 1;
                }
        return r;
}

/* ---- in the test process ------------------------------------------------- */

/* Waits (a worker thread exits a moment after its answer) until the
 * daemon's descriptors and threads are back to the baseline. */
static void assert_back_to(int fds, int threads) {
        int now_fds, now_threads;

        if (!daemon_wait_counts(fds, threads, 5000, &now_fds, &now_threads))
                g_error("daemon has %d descriptors and %d threads, had %d and %d before", now_fds, now_threads,
                        fds, threads);
}

static pid_t spawn_client(int id, int start_fd, int start_wfd, const char *host) {
        pid_t pid = fork();

        g_assert_cmpint(pid, >=, 0);
        if (pid == 0) {
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(start_wfd);
                _exit(run_client(id, start_fd, host));
        }
        return pid;
}

static void test_concurrent_queries(void) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", nbdkit->port);
        int fds, threads, max_threads;
        pid_t pids[N_CLIENTS];
        int start[2], warmup_fd, failed = 0;
        usec_t t0;

        /* Ten calls first: whatever the daemon sets up once (GnuTLS, sd-bus
         * state for a new peer) is then part of the baseline. */
        threads = daemon_threads();
        warmup_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        g_assert_cmpint(warmup_fd, >=, 0);
        g_assert_cmpint(run_client(-1, warmup_fd, host), ==, 0);
        close(warmup_fd);
        for (int i = 0; i < 500 && daemon_threads() != threads; i++)
                g_usleep(10000);
        g_assert_cmpint(daemon_threads(), ==, threads);
        /* The warm-up's last descriptor may still be on its way out: the
         * baseline is a count that holds for a while. */
        fds = daemon_fds();
        for (int i = 0, same = 0; i < 200 && same < 5; i++) {
                int now;

                g_usleep(10000);
                now = daemon_fds();
                same = now == fds ? same + 1 : 0;
                fds = now;
        }
        g_test_message("baseline: %d descriptors, %d threads", fds, threads);

        g_assert_cmpint(pipe2(start, O_CLOEXEC), ==, 0);
        for (int i = 0; i < N_CLIENTS; i++)
                pids[i] = spawn_client(i, start[0], start[1], host);
        close(start[0]);
        /* Every client is blocked in read(); closing the pipe starts them
         * all at once. */
        t0 = now_usec(CLOCK_MONOTONIC);
        close(start[1]);

        max_threads = threads;
        /* Only our clients are reaped here: nbdkit, dbus-daemon and the
         * daemon are children of this process too. */
        for (int left = N_CLIENTS; left > 0;) {
                for (int i = 0; i < N_CLIENTS; i++) {
                        int status;

                        if (pids[i] <= 0 || waitpid(pids[i], &status, WNOHANG) != pids[i])
                                continue;
                        pids[i] = 0;
                        left--;
                        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                                failed++;
                }
                max_threads = MAX(max_threads, daemon_threads());
                g_usleep(5000);
        }
        g_test_message("%d clients x %d calls answered in %.1f s; the daemon ran up to %d threads",
                       N_CLIENTS, CALLS_PER_CLIENT,
                       (double) (now_usec(CLOCK_MONOTONIC) - t0) / USEC_PER_SEC, max_threads);
        g_assert_cmpint(failed, ==, 0);
        /* The calls did overlap in the daemon (a query is a thread). */
        g_assert_cmpint(max_threads, >, threads + 1);

        assert_back_to(fds, threads);
}

int main(int argc, char *argv[]) {
        int r;

        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/concurrency/200-queries", test_concurrent_queries);
        /* Last: the daemon exits cleanly, which under ASan means that none of
         * the 210 queries leaked memory. */
        g_test_add_func("/concurrency/sigterm", test_daemon_sigterm_exits_0);

        start_all();
        /* delay-open holds each Probe in the server for a moment, so that
         * the calls are in the daemon together, not one after the other. */
        nbdkit = test_nbdkit_start("--filter=exportname", "--filter=delay", "memory", "size=1M",
                                   "exportname=alpha", "exportname=beta", "exportname-list=explicit",
                                   "delay-open=200ms", NULL);
        r = g_test_run();
        test_server_stop(nbdkit);
        test_servers_cleanup();
        stop_all();
        return r;
}
