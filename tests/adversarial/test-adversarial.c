/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The handshake engine against evil-server over real loopback TCP: for
 * every misbehaviour and goal, the exact errno, the phase of the message,
 * the bus error docs/errors.md's table gives, the time it took against the
 * deadline, how the client left, and that descriptors and heap are back
 * where they were once the handshake is done. */

/* nbdlink headers first: GLib redefines MIN/MAX after them quietly, the
 * other way round warns. */
#include "adv-check.h"
#include "evil-spawn.h"
#include "handshake.h"
#include "loopback.h"
#include "nbd-protocol.h"
#include "proc-count.h"
#include "scenarios.h"

#include <arpa/inet.h>
#include <errno.h>
#include <glib.h>
#include <inttypes.h>
#include <malloc.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#if __has_include("bus-error.h")
#include "bus-error.h"
#define HAVE_BUS_ERROR 1
#endif

#define DEADLINE_USEC (2 * USEC_PER_SEC)
/* Scheduling and the NBD_OPT_ABORT goodbye (at most a second) on top. */
#define MARGIN_USEC (1500 * USEC_PER_MSEC)

static const char psk_file[] = ADV_PSK_USER ":" ADV_PSK_HEX "\n";

static const TlsConfig psk_config = {
        .psk_file = { .data = (void *) psk_file, .size = sizeof(psk_file) - 1 },
};

typedef struct Outcome {
        int r;
        int error_code;
        char error[ERROR_MESSAGE_MAX];
        usec_t elapsed;
        uint64_t size;
        int flags;
        char description[NBD_MAX_STRING + 1];
        bool has_description;
        size_t n_exports;
        int fds_before, fds_after;
        size_t heap_before, heap_after;
} Outcome;

static size_t heap_in_use(void) {
        return mallinfo2().uordblks;
}

/* One handshake against the server. Nothing that allocates runs between
 * the two measurements but the connection and the engine. */
static void handshake_once(const EvilServer *srv, const AdvCase *c, AdvGoal goal, Outcome *o) {
        HandshakeOptions opts = {
                .goal = adv_goal_to_handshake(goal),
                .export_name = goal == ADV_LIST ? NULL : "disk",
                .tls = c->tls,
                .tls_config = c->tls == TLS_MODE_OFF ? NULL : &psk_config,
        };
        Handshake hs;
        Conn *conn = NULL;
        usec_t start;

        memset(o, 0, sizeof(*o));
        o->fds_before = proc_count_fds(0);
        o->heap_before = heap_in_use();

        g_assert_cmpint(conn_new_fd(&conn, loopback_connect(srv->port)), ==, 0);
        conn_set_deadline(conn, deadline_after(DEADLINE_USEC));
        handshake_init(&hs, conn, &opts);

        start = now_usec(CLOCK_MONOTONIC);
        o->r = handshake_run(&hs);
        o->elapsed = now_usec(CLOCK_MONOTONIC) - start;

        o->error_code = hs.error.code;
        memcpy(o->error, hs.error.message, sizeof(o->error));
        o->size = hs.info.size;
        o->flags = hs.info.flags;
        o->n_exports = hs.n_exports;
        if (goal == ADV_LIST && hs.n_exports > 0) {
                o->has_description = true;
                g_strlcpy(o->description, hs.exports[0].description, sizeof(o->description));
        } else if (hs.info.description) {
                o->has_description = true;
                g_strlcpy(o->description, hs.info.description, sizeof(o->description));
        }
        handshake_done(&hs);

        o->fds_after = proc_count_fds(0);
        o->heap_after = heap_in_use();
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
        EvilServer srv;
        Outcome o;

        g_assert_cmpint(evil_server_start(&srv, c->server, c->tls == TLS_MODE_OFF ? NULL : ADV_PSK_HEX), ==, 0);
        handshake_once(&srv, c, cg->goal, &o);
        verdict = evil_server_verdict(&srv, 10000);
        evil_server_stop(&srv);

        g_test_message("%s/%s: r=%d (%s) in %" PRIu64 " ms, client left with \"%s\": %s",
                       c->name, adv_goal_to_string(cg->goal), o.r, o.r < 0 ? g_strerror(-o.r) : "ok",
                       o.elapsed / USEC_PER_MSEC, verdict ?: "?", o.r < 0 ? o.error : "");

        /* The outcome. */
        g_assert_cmpint(o.r, ==, e->error);
        if (e->error < 0) {
                g_assert_cmpint(o.error_code, ==, e->error);
                adv_check_message(e, o.error);
                g_assert_cmpstr(adv_bus_error_name(o.r), ==, adv_bus_error_name(e->error));
#ifdef HAVE_BUS_ERROR
                g_assert_cmpstr(nbdlink_bus_error_name_from_errno(o.r), ==, adv_bus_error_name(e->error));
#endif
        } else {
                if (e->check_size)
                        g_assert_cmpuint(o.size, ==, e->size);
                if (e->flags >= 0)
                        g_assert_cmpint(o.flags, ==, e->flags);
                if (e->n_exports >= 0)
                        g_assert_cmpuint(o.n_exports, ==, (size_t) e->n_exports);
                if (e->description) {
                        g_assert_true(o.has_description);
                        g_assert_cmpstr(o.description, ==, e->description);
                }
                if (o.has_description)
                        g_assert_true(adv_is_clean_text(o.description));
        }

        adv_check_elapsed(c, o.elapsed, DEADLINE_USEC, MARGIN_USEC);
        adv_check_verdict(e, verdict);

        /* Nothing left behind. */
        g_assert_cmpint(o.fds_after, ==, o.fds_before);
        g_assert_cmpuint(o.heap_after, ==, o.heap_before);
}

/* GnuTLS and libc set some things up on first use and keep them: do that
 * before anything is measured. */
static void warm_up(void) {
        static const AdvCase *good_tls = NULL;

        for (size_t i = 0; i < adv_n_cases; i++)
                if (g_str_equal(adv_cases[i].name, "good-tls"))
                        good_tls = &adv_cases[i];
        g_assert_nonnull(good_tls);

        for (AdvGoal g = 0; g < _ADV_GOAL_MAX; g++) {
                EvilServer srv;
                Outcome o;

                g_assert_cmpint(evil_server_start(&srv, good_tls->server, ADV_PSK_HEX), ==, 0);
                handshake_once(&srv, good_tls, g, &o);
                g_free(evil_server_verdict(&srv, 10000));
                evil_server_stop(&srv);
                g_assert_cmpint(o.r, ==, 0);
        }
}

/* Freed chunks in glibc's per-thread cache still count as in use, which
 * would make the heap look leaky: run with the cache turned off. */
static void ensure_no_tcache(char **argv) {
        const char *t = getenv("GLIBC_TUNABLES");

        if (t && strstr(t, "glibc.malloc.tcache_count=0"))
                return;
        g_autofree char *v = t && *t ? g_strdup_printf("%s:glibc.malloc.tcache_count=0", t)
                                     : g_strdup("glibc.malloc.tcache_count=0");
        setenv("GLIBC_TUNABLES", v, 1);
        execv("/proc/self/exe", argv);
        g_error("cannot re-execute with GLIBC_TUNABLES: %s", g_strerror(errno));
}

int main(int argc, char *argv[]) {
        g_autofree CaseGoal *cgs = NULL;
        size_t n = 0;

        ensure_no_tcache(argv);
        g_test_init(&argc, &argv, NULL);
        /* One misbehaviour handled wrongly must not hide the others. */
        g_test_set_nonfatal_assertions();

        cgs = g_new0(CaseGoal, adv_n_cases * _ADV_GOAL_MAX);
        for (size_t i = 0; i < adv_n_cases; i++)
                for (AdvGoal g = 0; g < _ADV_GOAL_MAX; g++) {
                        g_autofree char *path = NULL;

                        if (!adv_cases[i].expect[g].on)
                                continue;
                        cgs[n] = (CaseGoal) { &adv_cases[i], g };
                        path = g_strdup_printf("/adversarial/%s/%s", adv_cases[i].name, adv_goal_to_string(g));
                        g_test_add_data_func(path, &cgs[n], test_case);
                        n++;
                }

        warm_up();
        return g_test_run();
}
