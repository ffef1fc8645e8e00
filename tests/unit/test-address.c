/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The host syntax of the bus API (nbd_address_parse) and net_connect()
 * against sockets this test listens on, on loopback only. */

/* The project's headers come first: util/macro.h defines MIN/MAX, which
 * glib.h then redefines (with #undef) without a warning. */
#include "loopback.h"
#include "nbd-protocol.h"
#include "net.h"
#include "util/macro.h"

#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/un.h>

#define ERROR_SIZE 512

/* ---- parsing ---- */

typedef struct ValidCase {
        const char *input;
        uint16_t port_override;
        const char *host;       /* NULL: a unix socket */
        uint16_t port;
        const char *unix_path;
} ValidCase;

static const ValidCase valid_cases[] = {
        { "example.com",                0, "example.com",       NBD_DEFAULT_PORT, NULL },
        { "example.com:1234",           0, "example.com",       1234, NULL },
        { "Server_01.example-net.org",  0, "Server_01.example-net.org", NBD_DEFAULT_PORT, NULL },
        { "localhost:65535",            0, "localhost",         65535, NULL },
        { "localhost:1",                0, "localhost",         1, NULL },
        { "localhost:00080",            0, "localhost",         80, NULL },
        { "1.2.3.4",                    0, "1.2.3.4",           NBD_DEFAULT_PORT, NULL },
        { "1.2.3.4:99",                 0, "1.2.3.4",           99, NULL },
        { "[::1]:10810",                0, "::1",               10810, NULL },
        { "[::1]",                      0, "::1",               NBD_DEFAULT_PORT, NULL },
        { "[2001:db8::1]:443",          0, "2001:db8::1",       443, NULL },
        { "[fe80::1%eth0]:5000",        0, "fe80::1%eth0",      5000, NULL },
        { "::1",                        0, "::1",               NBD_DEFAULT_PORT, NULL },
        { "2001:db8:0:0:0:0:0:1",       0, "2001:db8:0:0:0:0:0:1", NBD_DEFAULT_PORT, NULL },
        { "::ffff:192.0.2.1",           0, "::ffff:192.0.2.1",  NBD_DEFAULT_PORT, NULL },
        { "fe80::1%lo",                 0, "fe80::1%lo",        NBD_DEFAULT_PORT, NULL },
        { "example.com:99",           100, "example.com",       100, NULL },
        { "example.com",              100, "example.com",       100, NULL },
        { "[::1]:99",                 100, "::1",               100, NULL },
        { "unix:/run/nbd.sock",         0, NULL,                0, "/run/nbd.sock" },
        { "unix:/tmp/a b:c",            0, NULL,                0, "/tmp/a b:c" },
        /* A host named "unix", as nbd_address_format() writes it. */
        { "unix:10810",                 0, "unix",              10810, NULL },
        { "unix",                       0, "unix",              NBD_DEFAULT_PORT, NULL },
};

static void test_parse_valid(void) {
        for (size_t i = 0; i < ELEMENTSOF(valid_cases); i++) {
                const ValidCase *c = &valid_cases[i];
                NbdAddress a = {};
                Error error = {};
                int r;

                r = nbd_address_parse(&a, c->input, c->port_override, &error);
                if (r < 0)
                        g_error("\"%s\" was rejected: %s", c->input, error.message);
                g_assert_cmpstr(a.host, ==, c->host);
                g_assert_cmpstr(a.unix_path, ==, c->unix_path);
                if (c->host)
                        g_assert_cmpuint(a.port, ==, c->port);
                nbd_address_done(&a);
                g_assert_null(a.host);
                g_assert_null(a.unix_path);
        }
}

static void test_parse_max_length(void) {
        char s[NBD_MAX_HOST + 2];
        Error error = {};
        NbdAddress a = {};

        memset(s, 'a', NBD_MAX_HOST);
        s[NBD_MAX_HOST] = 0;
        g_assert_cmpint(nbd_address_parse(&a, s, 0, &error), ==, 0);
        g_assert_cmpuint(strlen(a.host), ==, NBD_MAX_HOST);
        nbd_address_done(&a);

        s[NBD_MAX_HOST] = 'a';
        s[NBD_MAX_HOST + 1] = 0;
        g_assert_cmpint(nbd_address_parse(&a, s, 0, &error), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error.message, "host: "));
        g_assert_nonnull(strstr(error.message, "255"));
}

static const char *const invalid_cases[] = {
        "",
        "host:",
        "host:0",
        "host:65536",
        "host:99999",
        "host:123456",
        "host:12a",
        "host:-1",
        "host:+1",
        "host: 80",
        "host:0x50",
        ":80",
        "ho st",
        "host\n",
        "ho\tst",
        "ho\x01st",
        "host\x7f",
        "\x1b[31mhost",
        "host/x",
        "host@x",
        "-host",
        ".host",
        "h\xc3\xb4st",
        "[::1",
        "::1]",
        "host]",
        "[::1]x",
        "[::1]:",
        "[::1]:0",
        "[::1]:65536",
        "[::1]:port",
        "[]",
        "[]:80",
        "[example.com]:80",
        "[1.2.3.4]:80",
        "[[::1]]:80",
        "[::1]:80]",
        "1:2:3",
        "::1:80:",
        "example.com::80",
        "fe80::1%",
        "fe80::1%a/b",
        "unix:",
        "unix:relative/path",
};

static void test_parse_invalid(void) {
        for (size_t i = 0; i < ELEMENTSOF(invalid_cases); i++) {
                NbdAddress a = {};
                Error error = {};
                int r;

                r = nbd_address_parse(&a, invalid_cases[i], 0, &error);
                if (r != -EINVAL)
                        g_error("\"%s\": expected -EINVAL, got %d (host=%s)", invalid_cases[i], r, a.host);
                if (!g_str_has_prefix(error.message, "host: "))
                        g_error("\"%s\": message \"%s\" lacks the phase", invalid_cases[i], error.message);
                /* Nothing a caller sent may reach a log as a control character. */
                for (const char *p = error.message; *p; p++)
                        g_assert_false((unsigned char) *p < 0x20 || *p == 0x7f);
                g_assert_null(a.host);
                g_assert_null(a.unix_path);
        }
}

static void test_parse_null_and_long_unix(void) {
        Error error = {};
        char s[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 8];
        NbdAddress a = {};

        g_assert_cmpint(nbd_address_parse(&a, NULL, 0, &error), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error.message, "host: "));

        /* sun_path holds 107 characters and the terminating NUL. */
        memset(s, 'x', sizeof(s));
        memcpy(s, "unix:/", 6);
        s[5 + sizeof(((struct sockaddr_un *) NULL)->sun_path)] = 0;
        g_assert_cmpint(nbd_address_parse(&a, s, 0, &error), ==, -EINVAL);
        g_assert_true(g_str_has_prefix(error.message, "host: "));

        s[5 + sizeof(((struct sockaddr_un *) NULL)->sun_path) - 1] = 0;
        g_assert_cmpint(nbd_address_parse(&a, s, 0, &error), ==, 0);
        nbd_address_done(&a);

        /* A NULL error buffer is allowed. */
        g_assert_cmpint(nbd_address_parse(&a, "host:0", 0, NULL), ==, -EINVAL);
}

static void test_format(void) {
        static const struct { const char *in, *out; } cases[] = {
                { "example.com", "example.com:10809" },
                { "[::1]:99", "[::1]:99" },
                { "::1", "[::1]:10809" },
                { "10.0.0.1:5", "10.0.0.1:5" },
                { "unix:/run/x.sock", "unix:/run/x.sock" },
                { "unix", "unix:10809" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                NbdAddress a = {};
                char buf[NBD_MAX_HOST + 16];

                g_assert_cmpint(nbd_address_parse(&a, cases[i].in, 0, NULL), ==, 0);
                g_assert_cmpstr(nbd_address_format(&a, buf, sizeof(buf)), ==, cases[i].out);
                nbd_address_done(&a);
        }
}

/* ---- connecting ---- */

/* A listening TCP socket on the loopback address of the family, on a port
 * the kernel picks. */
static int listen_loopback(int family, int backlog, uint16_t *ret_port) {
        struct sockaddr_storage ss = {};
        socklen_t sl;
        int fd;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(fd, >=, 0);
        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

                s6->sin6_family = AF_INET6;
                s6->sin6_addr = in6addr_loopback;
                sl = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

                s4->sin_family = AF_INET;
                s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                sl = sizeof(*s4);
        }
        g_assert_cmpint(bind(fd, (struct sockaddr *) &ss, sl), ==, 0);
        g_assert_cmpint(listen(fd, backlog), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &ss, &sl), ==, 0);
        *ret_port = ntohs(family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                             : ((struct sockaddr_in *) &ss)->sin_port);
        return fd;
}

/* Fills the listener's accept queue with connections nobody accepts, so
 * that the kernel drops further SYNs and a connect stays pending: the only
 * way to see a connect time out without leaving loopback. The fillers stay
 * open until the caller closes them. */
static GArray *fill_backlog(int family, uint16_t port) {
        GArray *fillers = g_array_new(FALSE, FALSE, sizeof(int));
        struct sockaddr_storage ss = {};
        socklen_t sl;

        if (family == AF_INET6) {
                struct sockaddr_in6 *s6 = (struct sockaddr_in6 *) &ss;

                *s6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = in6addr_loopback };
                sl = sizeof(*s6);
        } else {
                struct sockaddr_in *s4 = (struct sockaddr_in *) &ss;

                *s4 = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port) };
                s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                sl = sizeof(*s4);
        }

        for (unsigned i = 0; i < 16; i++) {
                int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                struct pollfd p = { .fd = fd, .events = POLLOUT };

                g_assert_cmpint(fd, >=, 0);
                if (connect(fd, (struct sockaddr *) &ss, sl) < 0)
                        g_assert_cmpint(errno, ==, EINPROGRESS);
                if (poll(&p, 1, 200) == 0) {
                        /* Pending: the queue is full. */
                        close(fd);
                        return fillers;
                }
                g_array_append_val(fillers, fd);
        }
        g_error("the accept queue of port %u never filled up", port);
}

static void close_fillers(GArray *fillers) {
        for (guint i = 0; i < fillers->len; i++)
                close(g_array_index(fillers, int, i));
        g_array_unref(fillers);
}

static uint16_t peer_port(int fd) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);

        g_assert_cmpint(getpeername(fd, (struct sockaddr *) &ss, &sl), ==, 0);
        return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *) &ss)->sin6_port
                                              : ((struct sockaddr_in *) &ss)->sin_port);
}

static int connect_string(const char *host, usec_t timeout, int *ret_fd, Error *error) {
        NbdAddress a = {};
        int r;

        g_assert_cmpint(nbd_address_parse(&a, host, 0, error), ==, 0);
        r = net_connect(&a, deadline_after(timeout), ret_fd, error);
        nbd_address_done(&a);
        return r;
}

static void test_connect_listening(void) {
        const char *prefixes[] = { "127.0.0.1:", "[::1]:", "localhost:" };
        const int families[] = { AF_INET, AF_INET6, AF_INET };

        for (size_t i = 0; i < ELEMENTSOF(prefixes); i++) {
                Error error = {};
                char *host;
                int lfd, fd = -EBADF, v = 0, flags;
                socklen_t sl = sizeof(v);
                uint16_t port;

                lfd = listen_loopback(families[i], 4, &port);
                host = g_strdup_printf("%s%u", prefixes[i], port);
                if (connect_string(host, 5 * USEC_PER_SEC, &fd, &error) < 0)
                        g_error("%s: %s", host, error.message);
                g_assert_cmpuint(peer_port(fd), ==, port);

                g_assert_cmpint(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &sl), ==, 0);
                g_assert_cmpint(v, !=, 0);
                flags = fcntl(fd, F_GETFD);
                g_assert_true(flags & FD_CLOEXEC);
                flags = fcntl(fd, F_GETFL);
                g_assert_false(flags & O_NONBLOCK);

                close(fd);
                close(lfd);
                g_free(host);
        }
}

static void test_connect_refused(void) {
        Error error = {};
        char *host, *port_text;
        int lfd, fd = -EBADF;
        uint16_t port;

        /* A port that was just free: bound, never listened on. */
        lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        {
                struct sockaddr_in s4 = { .sin_family = AF_INET };
                socklen_t sl = sizeof(s4);

                s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                g_assert_cmpint(bind(lfd, (struct sockaddr *) &s4, sl), ==, 0);
                g_assert_cmpint(getsockname(lfd, (struct sockaddr *) &s4, &sl), ==, 0);
                port = ntohs(s4.sin_port);
        }

        host = g_strdup_printf("127.0.0.1:%u", port);
        g_assert_cmpint(connect_string(host, 5 * USEC_PER_SEC, &fd, &error), ==, -ECONNREFUSED);
        g_assert_cmpint(fd, ==, -EBADF);
        g_test_message("%s", error.message);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, "127.0.0.1"));
        port_text = g_strdup_printf("port %u", port);
        g_assert_nonnull(strstr(error.message, port_text));
        close(lfd);
        g_free(port_text);
        g_free(host);
}

static void test_connect_unresolvable(void) {
        Error error = {};
        int fd = -EBADF;

        /* RFC 6761: ".invalid" never resolves. */
        g_assert_cmpint(connect_string("nonexistent.invalid:10809", 20 * USEC_PER_SEC, &fd, &error), ==, -EHOSTUNREACH);
        g_test_message("%s", error.message);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, "nonexistent.invalid"));
        g_assert_nonnull(strstr(error.message, "10809"));
}

static void test_connect_timeout(void) {
        Error error = {};
        char *host;
        int lfd, fd = -EBADF;
        GArray *fillers;
        uint16_t port;
        usec_t start, took;

        lfd = listen_loopback(AF_INET, 0, &port);
        fillers = fill_backlog(AF_INET, port);

        host = g_strdup_printf("127.0.0.1:%u", port);
        start = now_usec(CLOCK_MONOTONIC);
        g_assert_cmpint(connect_string(host, 300 * USEC_PER_MSEC, &fd, &error), ==, -ETIMEDOUT);
        took = now_usec(CLOCK_MONOTONIC) - start;
        g_test_message("%s (after %" G_GUINT64_FORMAT " ms)", error.message, (guint64) (took / USEC_PER_MSEC));
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, "127.0.0.1"));
        g_assert_cmpuint(took, >=, 290 * USEC_PER_MSEC);
        g_assert_cmpuint(took, <, 3 * USEC_PER_SEC);

        /* A deadline that has passed already. */
        g_assert_cmpint(net_connect(&(NbdAddress) { .host = (char *) "127.0.0.1", .port = port },
                                    now_usec(CLOCK_MONOTONIC) - 1, &fd, &error), ==, -ETIMEDOUT);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));

        close_fillers(fillers);
        close(lfd);
        g_free(host);
}

/* Writes to an eventfd after a short delay, as worker_stop() does. */
static void *cancel_later(void *userdata) {
        int efd = GPOINTER_TO_INT(userdata);
        uint64_t one = 1;

        g_usleep(100 * G_TIME_SPAN_MILLISECOND);
        g_assert_cmpint(write(efd, &one, sizeof(one)), ==, sizeof(one));
        return NULL;
}

static void test_connect_cancel(void) {
        Error error = {};
        NbdAddress a = { .host = (char *) "127.0.0.1" };
        int lfd, efd, fd = -EBADF;
        GArray *fillers;
        pthread_t t;
        usec_t start, took;

        efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        g_assert_cmpint(efd, >=, 0);
        lfd = listen_loopback(AF_INET, 0, &a.port);
        fillers = fill_backlog(AF_INET, a.port);

        /* The connect hangs (full backlog) with a long deadline: the cancel
         * fd has to end it, not the deadline. */
        g_assert_cmpint(pthread_create(&t, NULL, cancel_later, GINT_TO_POINTER(efd)), ==, 0);
        start = now_usec(CLOCK_MONOTONIC);
        g_assert_cmpint(net_connect_cancellable(&a, deadline_after(20 * USEC_PER_SEC), efd, &fd,
                                                &error), ==, -ECANCELED);
        took = now_usec(CLOCK_MONOTONIC) - start;
        g_assert_cmpint(pthread_join(t, NULL), ==, 0);
        g_test_message("%s (after %" G_GUINT64_FORMAT " ms)", error.message, (guint64) (took / USEC_PER_MSEC));
        g_assert_true(g_str_has_prefix(error.message, "connect: cancelled"));
        g_assert_nonnull(strstr(error.message, "127.0.0.1"));
        g_assert_cmpuint(took, >=, 90 * USEC_PER_MSEC);
        g_assert_cmpuint(took, <, 2 * USEC_PER_SEC);
        g_assert_cmpint(fd, ==, -EBADF);

        /* Once cancelled, always cancelled: nothing is tried, not even
         * the resolver. */
        error.message[0] = 0;
        g_assert_cmpint(net_connect_cancellable(&(NbdAddress) { .host = (char *) "nonexistent.invalid", .port = 1 },
                                                deadline_after(20 * USEC_PER_SEC), efd, &fd,
                                                &error), ==, -ECANCELED);
        g_assert_true(g_str_has_prefix(error.message, "connect: cancelled"));

        /* Without a cancel fd it is the deadline again. */
        g_assert_cmpint(net_connect_cancellable(&a, deadline_after(200 * USEC_PER_MSEC), -EBADF, &fd,
                                                &error), ==, -ETIMEDOUT);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));

        close_fillers(fillers);
        close(lfd);
        close(efd);
}

/* Two addresses by hand, as a resolver would return them for a name with
 * an IPv6 and an IPv4 address. */
typedef struct TwoAddresses {
        struct addrinfo ai[2];
        struct sockaddr_in6 s6;
        struct sockaddr_in s4;
} TwoAddresses;

static void two_addresses(TwoAddresses *t, bool v6_first, uint16_t port6, uint16_t port4) {
        *t = (TwoAddresses) {};
        t->s6 = (struct sockaddr_in6) { .sin6_family = AF_INET6, .sin6_port = htons(port6), .sin6_addr = in6addr_loopback };
        t->s4 = (struct sockaddr_in) { .sin_family = AF_INET, .sin_port = htons(port4) };
        t->s4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);

        struct addrinfo *a6 = &t->ai[v6_first ? 0 : 1], *a4 = &t->ai[v6_first ? 1 : 0];
        *a6 = (struct addrinfo) { .ai_family = AF_INET6, .ai_socktype = SOCK_STREAM,
                                  .ai_addr = (struct sockaddr *) &t->s6, .ai_addrlen = sizeof(t->s6) };
        *a4 = (struct addrinfo) { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM,
                                  .ai_addr = (struct sockaddr *) &t->s4, .ai_addrlen = sizeof(t->s4) };
        t->ai[0].ai_next = &t->ai[1];
}

static void test_connect_happy_eyeballs(void) {
        Error error = {};
        int lfd6, lfd4, fd = -EBADF;
        uint16_t port6, port4;
        GArray *fillers;
        TwoAddresses t;
        usec_t start, took;

        /* The first address hangs (full backlog); the second, started
         * 250 ms later, wins. */
        lfd6 = listen_loopback(AF_INET6, 0, &port6);
        fillers = fill_backlog(AF_INET6, port6);
        lfd4 = listen_loopback(AF_INET, 4, &port4);
        two_addresses(&t, true, port6, port4);

        start = now_usec(CLOCK_MONOTONIC);
        if (net_connect_addrinfo(t.ai, "dual.example", 1, deadline_after(5 * USEC_PER_SEC), &fd, &error) < 0)
                g_error("%s", error.message);
        took = now_usec(CLOCK_MONOTONIC) - start;
        g_test_message("second address won after %" G_GUINT64_FORMAT " ms", (guint64) (took / USEC_PER_MSEC));
        g_assert_cmpuint(peer_port(fd), ==, port4);
        g_assert_cmpuint(took, >=, 240 * USEC_PER_MSEC);
        g_assert_cmpuint(took, <, 2 * USEC_PER_SEC);
        close(fd);

        /* A deadline shorter than the attempt delay: the second address is
         * never tried and the result is a timeout naming the server. */
        g_assert_cmpint(net_connect_addrinfo(t.ai, "dual.example", 1, deadline_after(100 * USEC_PER_MSEC), &fd, &error), ==, -ETIMEDOUT);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, "dual.example"));

        close_fillers(fillers);
        close(lfd6);
        close(lfd4);
}

static void test_connect_all_refused(void) {
        Error error = {};
        int lfd6, lfd4, fd = -EBADF;
        uint16_t port6, port4;
        TwoAddresses t;
        usec_t start, took;

        /* Take two ports and free them again: both addresses refuse, and a
         * refusal moves on to the next address without waiting 250 ms. */
        lfd6 = listen_loopback(AF_INET6, 1, &port6);
        lfd4 = listen_loopback(AF_INET, 1, &port4);
        close(lfd6);
        close(lfd4);
        two_addresses(&t, false, port6, port4);

        start = now_usec(CLOCK_MONOTONIC);
        g_assert_cmpint(net_connect_addrinfo(t.ai, "dual.example", 7, deadline_after(5 * USEC_PER_SEC), &fd, &error), ==, -ECONNREFUSED);
        took = now_usec(CLOCK_MONOTONIC) - start;
        g_test_message("%s", error.message);
        g_assert_cmpuint(took, <, 240 * USEC_PER_MSEC);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, "dual.example port 7"));

        /* No usable address at all. */
        g_assert_cmpint(net_connect_addrinfo(NULL, "empty.example", 7, USEC_INFINITY, &fd, &error), ==, -EHOSTUNREACH);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
}

static void test_connect_unix(void) {
        Error error = {};
        char *dir, *path, *host;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int lfd, fd = -EBADF;

        dir = g_dir_make_tmp("nbdlink-net-XXXXXX", NULL);
        g_assert_nonnull(dir);
        path = g_build_filename(dir, "sock", NULL);
        host = g_strconcat("unix:", path, NULL);

        g_assert_cmpint(connect_string(host, 5 * USEC_PER_SEC, &fd, &error), ==, -EHOSTUNREACH);
        g_test_message("%s", error.message);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));
        g_assert_nonnull(strstr(error.message, path));

        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(lfd, >=, 0);
        g_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
        g_assert_cmpint(bind(lfd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);

        /* Bound but not listening. */
        g_assert_cmpint(connect_string(host, 5 * USEC_PER_SEC, &fd, &error), ==, -ECONNREFUSED);
        g_assert_true(g_str_has_prefix(error.message, "connect: "));

        g_assert_cmpint(listen(lfd, 4), ==, 0);
        if (connect_string(host, 5 * USEC_PER_SEC, &fd, &error) < 0)
                g_error("%s", error.message);
        g_assert_cmpint(fd, >=, 0);
        g_assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);

        close(lfd);
        g_unlink(path);
        g_rmdir(dir);
        g_free(host);
        g_free(path);
        g_free(dir);
}

/* A connected loopback pair: *client and *server. */
static void tcp_pair(int *client, int *server) {
        uint16_t port;
        int l = loopback_listen(0, 1, &port);

        *client = loopback_connect(port);
        *server = accept4(l, NULL, NULL, SOCK_CLOEXEC);
        g_assert_cmpint(*server, >=, 0);
        close(l);
}

/* Waits until the FIN or reset sent from the other end has arrived. */
static void wait_hangup(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

        g_assert_cmpint(poll(&p, 1, 5000), ==, 1);
}

static void test_peer_ended_server_closed(void) {
        int c, s;

        tcp_pair(&c, &s);
        g_assert_cmpint(net_tcp_peer_ended(c), ==, 0);
        close(s);
        wait_hangup(c);
        g_assert_cmpint(net_tcp_peer_ended(c), ==, 1);
        /* What the kernel does when it sees the hang-up: shut down ours. */
        g_assert_cmpint(shutdown(c, SHUT_RDWR), ==, 0);
        g_assert_cmpint(net_tcp_peer_ended(c), ==, 1);
        close(c);
}

static void test_peer_ended_server_reset(void) {
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        int c, s;

        tcp_pair(&c, &s);
        g_assert_cmpint(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), ==, 0);
        close(s);
        wait_hangup(c);
        g_assert_cmpint(net_tcp_peer_ended(c), ==, 1);
        close(c);
}

static void test_peer_ended_we_gave_up(void) {
        int c, s;

        /* The server is alive but says nothing; a timeout shuts ours down. */
        tcp_pair(&c, &s);
        g_assert_cmpint(shutdown(c, SHUT_RDWR), ==, 0);
        g_assert_cmpint(net_tcp_peer_ended(c), ==, 0);
        close(s);
        close(c);
}

static void test_peer_ended_not_tcp(void) {
        int sv[2];

        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(net_tcp_peer_ended(sv[0]), ==, -EPROTOTYPE);
        close(sv[0]);
        close(sv[1]);
        g_assert_cmpint(net_tcp_peer_ended(-1), ==, -EBADF);
}

static int sockopt(int fd, int level, int name) {
        int v = -1;
        socklen_t len = sizeof(v);

        g_assert_cmpint(getsockopt(fd, level, name, &v, &len), ==, 0);
        return v;
}

/* Every data socket notices a server that vanished without a word. */
static void test_keepalive(void) {
        int c, s, sv[2];

        tcp_pair(&c, &s);
        g_assert_cmpint(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), ==, 0);
        g_assert_cmpint(net_set_keepalive(c), ==, 0);
        g_assert_cmpint(sockopt(c, SOL_SOCKET, SO_KEEPALIVE), ==, 1);
        g_assert_cmpint(sockopt(c, IPPROTO_TCP, TCP_KEEPIDLE), ==, NET_KEEPALIVE_IDLE_SEC);
        g_assert_cmpint(sockopt(c, IPPROTO_TCP, TCP_KEEPINTVL), ==, NET_KEEPALIVE_INTERVAL_SEC);
        g_assert_cmpint(sockopt(c, IPPROTO_TCP, TCP_KEEPCNT), ==, NET_KEEPALIVE_COUNT);
        g_assert_cmpint(sockopt(c, IPPROTO_TCP, TCP_USER_TIMEOUT), ==, NET_USER_TIMEOUT_SEC * 1000);
        close(c);
        close(s);

        /* A unix socket's peer cannot vanish unnoticed: nothing to do. */
        g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
        g_assert_cmpint(net_set_keepalive(sv[0]), ==, 0);
        close(sv[0]);
        close(sv[1]);
        g_assert_cmpint(net_set_keepalive(-1), ==, -EBADF);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);

        g_test_add_func("/address/parse/valid", test_parse_valid);
        g_test_add_func("/address/parse/max-length", test_parse_max_length);
        g_test_add_func("/address/parse/invalid", test_parse_invalid);
        g_test_add_func("/address/parse/null-and-long-unix", test_parse_null_and_long_unix);
        g_test_add_func("/address/format", test_format);
        g_test_add_func("/net/connect/listening", test_connect_listening);
        g_test_add_func("/net/connect/refused", test_connect_refused);
        g_test_add_func("/net/connect/unresolvable", test_connect_unresolvable);
        g_test_add_func("/net/connect/timeout", test_connect_timeout);
        g_test_add_func("/net/connect/cancel", test_connect_cancel);
        g_test_add_func("/net/connect/happy-eyeballs", test_connect_happy_eyeballs);
        g_test_add_func("/net/connect/all-refused", test_connect_all_refused);
        g_test_add_func("/net/connect/unix", test_connect_unix);
        g_test_add_func("/net/keepalive", test_keepalive);
        g_test_add_func("/net/peer-ended/server-closed", test_peer_ended_server_closed);
        g_test_add_func("/net/peer-ended/server-reset", test_peer_ended_server_reset);
        g_test_add_func("/net/peer-ended/we-gave-up", test_peer_ended_we_gave_up);
        g_test_add_func("/net/peer-ended/not-tcp", test_peer_ended_not_tcp);

        return g_test_run();
}
