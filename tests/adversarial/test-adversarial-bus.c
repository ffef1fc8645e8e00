/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The real nbdlinkd on a private bus against evil-server: every case of
 * the adversarial table that Probe or ListExports can reach, called over
 * D-Bus with a 2 s timeout, must come back in time with the bus error name
 * docs/errors.md's table gives and the engine's message, and leave the daemon
 * with the descriptors and threads it had before. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly. */
#include "bus-error.h"
#include "adv-check.h"
#include "evil-spawn.h"
#include "scenarios.h"
#include "util/time-util.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bus-harness.h"

#define TIMEOUT_SEC 2u
#define DEADLINE_USEC (TIMEOUT_SEC * USEC_PER_SEC)
/* Scheduling, the bus round trip and the NBD_OPT_ABORT goodbye on top. */
#define MARGIN_USEC (1500 * USEC_PER_MSEC)

static sd_bus *bus;
static int psk_fd = -1;
static int base_fds, base_threads;

/* Workers report before they are joined, and the reply can overtake the
 * close of the connection: give the daemon a moment to settle. */
static void wait_for_baseline(int *ret_fds, int *ret_threads) {
        (void) daemon_wait_counts(base_fds, base_threads, 2000, ret_fds, ret_threads);
}

static const char *tls_mode_string(TlsMode m) {
        switch (m) {
        case TLS_MODE_ON:      return "on";
        case TLS_MODE_REQUIRE: return "require";
        case TLS_MODE_OFF:
        default:               return "off";
        }
}

static sd_bus_message *call(const AdvCase *c, AdvGoal goal, uint16_t port, sd_bus_error *error) {
        sd_bus_message *m = NULL, *reply = NULL;
        uint32_t timeout = TIMEOUT_SEC;

        g_assert_cmpint(sd_bus_message_new_method_call(bus, &m, "org.nbdlink.NBD1", "/org/nbdlink/NBD1",
                                                       "org.nbdlink.NBD1.Manager",
                                                       goal == ADV_LIST ? "ListExports" : "Probe"), >=, 0);
        if (goal == ADV_LIST)
                g_assert_cmpint(sd_bus_message_append(m, "s", "127.0.0.1"), >=, 0);
        else
                g_assert_cmpint(sd_bus_message_append(m, "ss", "127.0.0.1", "disk"), >=, 0);
        if (c->tls == TLS_MODE_OFF)
                g_assert_cmpint(sd_bus_message_append(m, "a{sv}", 2, "port", "q", port, "timeout", "u", timeout), >=, 0);
        else
                g_assert_cmpint(sd_bus_message_append(m, "a{sv}", 4, "port", "q", port, "timeout", "u", timeout,
                                                      "tls", "s", tls_mode_string(c->tls), "tls-psk", "h", psk_fd), >=, 0);
        (void) sd_bus_call(bus, m, 30 * USEC_PER_SEC, error, &reply);
        sd_bus_message_unref(m);
        return reply;
}

typedef struct Result {
        uint64_t size;
        bool has_size;
        int flags;
        char *description;
        int n_exports;
} Result;

static void read_probe(sd_bus_message *reply, Result *res) {
        g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "{sv}"), >=, 0);
        while (sd_bus_message_enter_container(reply, 'e', "sv") > 0) {
                const char *key, *s;
                uint16_t q;

                g_assert_cmpint(sd_bus_message_read(reply, "s", &key), >=, 0);
                if (g_str_equal(key, "size")) {
                        g_assert_cmpint(sd_bus_message_read(reply, "v", "t", &res->size), >=, 0);
                        res->has_size = true;
                } else if (g_str_equal(key, "flags")) {
                        g_assert_cmpint(sd_bus_message_read(reply, "v", "q", &q), >=, 0);
                        res->flags = q;
                } else if (g_str_equal(key, "description")) {
                        g_assert_cmpint(sd_bus_message_read(reply, "v", "s", &s), >=, 0);
                        res->description = g_strdup(s);
                } else
                        g_assert_cmpint(sd_bus_message_skip(reply, "v"), >=, 0);
                g_assert_cmpint(sd_bus_message_exit_container(reply), >=, 0);
        }
}

static void read_list(sd_bus_message *reply, Result *res) {
        const char *name, *description;

        res->n_exports = 0;
        g_assert_cmpint(sd_bus_message_enter_container(reply, 'a', "(ss)"), >=, 0);
        while (sd_bus_message_read(reply, "(ss)", &name, &description) > 0) {
                if (res->n_exports == 0)
                        res->description = g_strdup(description);
                res->n_exports++;
        }
}

typedef struct CaseGoal {
        const AdvCase *c;
        AdvGoal goal;
} CaseGoal;

static void test_case(gconstpointer data) {
        const CaseGoal *cg = data;
        const AdvCase *c = cg->c;
        const AdvExpect *e = &c->expect[cg->goal];
        g_autofree char *verdict = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply;
        Result res = { .flags = -1, .n_exports = -1 };
        EvilServer srv;
        usec_t start, elapsed;
        int fds, threads;

        g_assert_cmpint(evil_server_start(&srv, c->server, c->tls == TLS_MODE_OFF ? NULL : ADV_PSK_HEX), ==, 0);
        start = now_usec(CLOCK_MONOTONIC);
        reply = call(c, cg->goal, srv.port, &error);
        elapsed = now_usec(CLOCK_MONOTONIC) - start;
        verdict = evil_server_verdict(&srv, 10000);
        evil_server_stop(&srv);
        wait_for_baseline(&fds, &threads);

        g_test_message("%s/%s: %s in %" PRIu64 " ms, client left with \"%s\": %s",
                       c->name, cg->goal == ADV_LIST ? "ListExports" : "Probe",
                       reply ? "ok" : error.name, elapsed / USEC_PER_MSEC, verdict ?: "?",
                       reply ? "" : error.message);

        if (e->error < 0) {
                g_assert_null(reply);
                g_assert_cmpstr(error.name, ==, adv_bus_error_name(e->error));
                g_assert_cmpint(sd_bus_error_get_errno(&error), ==, -e->error);
                adv_check_message(e, error.message);
        } else {
                if (!reply)
                        g_test_fail_printf("expected success, got %s: %s", error.name, error.message);
                else {
                        if (cg->goal == ADV_LIST)
                                read_list(reply, &res);
                        else
                                read_probe(reply, &res);
                        if (e->check_size) {
                                g_assert_true(res.has_size);
                                g_assert_cmpuint(res.size, ==, e->size);
                        }
                        if (e->flags >= 0)
                                g_assert_cmpint(res.flags, ==, e->flags);
                        if (e->n_exports >= 0)
                                g_assert_cmpint(res.n_exports, ==, e->n_exports);
                        if (e->description)
                                g_assert_cmpstr(res.description, ==, e->description);
                        if (res.description)
                                g_assert_true(adv_is_clean_text(res.description));
                }
        }

        /* In time: the caller's timeout is the deadline. */
        adv_check_elapsed(c, elapsed, DEADLINE_USEC, MARGIN_USEC);
        adv_check_verdict(e, verdict);

        /* The daemon is back where it was. */
        g_assert_cmpint(fds, ==, base_fds);
        g_assert_cmpint(threads, ==, base_threads);

        g_free(res.description);
        sd_bus_message_unref(reply);
        sd_bus_error_free(&error);
}

static int write_psk_file(void) {
        static const char psk[] = ADV_PSK_USER ":" ADV_PSK_HEX "\n";
        char path[] = "/tmp/nbdlink-psk-XXXXXX";
        int fd = mkstemp(path);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(unlink(path), ==, 0);
        g_assert_cmpint(write(fd, psk, sizeof(psk) - 1), ==, (ssize_t) sizeof(psk) - 1);
        return fd;
}

/* The first TLS session and the first worker set up things the daemon
 * keeps (GnuTLS's state, libc's arenas): do that before the baseline. */
static void warm_up(void) {
        for (size_t i = 0; i < adv_n_cases; i++) {
                const AdvCase *c = &adv_cases[i];

                if (!g_str_equal(c->name, "good-tls"))
                        continue;
                for (AdvGoal g = ADV_INFO; g <= ADV_LIST; g++) {
                        sd_bus_error error = SD_BUS_ERROR_NULL;
                        EvilServer srv;
                        sd_bus_message *reply;

                        g_assert_cmpint(evil_server_start(&srv, c->server, ADV_PSK_HEX), ==, 0);
                        reply = call(c, g, srv.port, &error);
                        if (!reply)
                                g_error("warm-up failed: %s: %s", error.name, error.message);
                        sd_bus_message_unref(reply);
                        g_free(evil_server_verdict(&srv, 10000));
                        evil_server_stop(&srv);
                }
        }
        /* Settled: no worker left. */
        g_usleep(100 * 1000);
        base_fds = daemon_fds();
        base_threads = daemon_threads();
        g_test_message("daemon baseline: %d fds, %d threads", base_fds, base_threads);
}

int main(int argc, char *argv[]) {
        g_autofree CaseGoal *cgs = NULL;
        size_t n = 0;
        int r;

        g_test_init(&argc, &argv, NULL);
        /* One misbehaviour handled wrongly must not hide the others. */
        g_test_set_nonfatal_assertions();

        cgs = g_new0(CaseGoal, adv_n_cases * _ADV_GOAL_MAX);
        for (size_t i = 0; i < adv_n_cases; i++)
                for (AdvGoal g = ADV_INFO; g <= ADV_LIST; g++) {
                        g_autofree char *path = NULL;

                        if (!adv_cases[i].expect[g].on)
                                continue;
                        cgs[n] = (CaseGoal) { &adv_cases[i], g };
                        path = g_strdup_printf("/adversarial-bus/%s/%s", adv_cases[i].name,
                                               g == ADV_LIST ? "list-exports" : "probe");
                        g_test_add_data_func(path, &cgs[n], test_case);
                        n++;
                }

        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);
        /* A suite of its own, created last, so that it runs last: the
         * daemon that took all that exits cleanly on SIGTERM (under ASan,
         * its leak check is part of that exit status). */
        g_test_add_func("/daemon-exit/sigterm", test_daemon_sigterm_exits_0);

        psk_fd = write_psk_file();
        start_all();
        bus = sd_connect();
        warm_up();
        r = g_test_run();
        sd_bus_flush_close_unref(bus);
        stop_all();
        close(psk_fd);
        return r;
}
