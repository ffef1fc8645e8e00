/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Connects to an NBD server: name resolution off-thread so that it obeys
 * the deadline, then staggered parallel connects to every address (Happy
 * Eyeballs, RFC 8305). The host syntax is common/address.c's. */

#include <arpa/inet.h>
#include <fcntl.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "contract.h"
#include "error-text.h"
#include "nbd-protocol.h"
#include "net.h"
#include "util/macro.h"

/* RFC 8305 recommends 250 ms between connection attempts. */
#define NET_ATTEMPT_DELAY_USEC (250 * USEC_PER_MSEC)
/* A resolver can return many addresses; trying more than this many is no
 * longer about reachability. */
#define NET_MAX_ADDRESSES 16


/* Errno a failed connect() or SO_ERROR becomes, as docs/errors.md has it:
 * routing problems read as "host not found". */
static int map_connect_errno(int e) {
        switch (e) {
        case ECONNREFUSED:
                return -ECONNREFUSED;
        case ETIMEDOUT:
                return -ETIMEDOUT;
        case ENETUNREACH:
        case EHOSTUNREACH:
        case EHOSTDOWN:
        case ENETDOWN:
        case EADDRNOTAVAIL:
        case EAFNOSUPPORT:
        case ENOENT:            /* unix socket path does not exist */
        case ENOTDIR:
                return -EHOSTUNREACH;
        case ENOMEM:
        case ENOBUFS:
                return -ENOMEM;
        default:
                return -EIO;
        }
}

/* Which failure to report when every address failed: the one that says
 * most about the server (a refusal proves the host is there). */
static int error_rank(int r) {
        switch (r) {
        case -ECONNREFUSED:
                return 4;
        case -ETIMEDOUT:
                return 3;
        case -EHOSTUNREACH:
                return 1;
        default:
                return 2;
        }
}

static int finish_socket(int fd, int family) {
        int flags;

        if (family == AF_INET || family == AF_INET6) {
                /* The handshake is many small request/reply exchanges and
                 * the kernel sends small NBD requests: never wait for Nagle. */
                static const int one = 1;

                if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
                        return -errno;
        }

        /* Hand out a blocking socket, as an ordinary connect() would; users
         * that want non-blocking I/O (Conn) set it themselves. */
        flags = fcntl(fd, F_GETFL);
        if (flags < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
                return -errno;
        return 0;
}

static const char *sockaddr_to_string(const struct sockaddr *sa, char *buf, size_t size) {
        char host[INET6_ADDRSTRLEN] = "?";

        if (sa->sa_family == AF_INET6) {
                (void) inet_ntop(AF_INET6, &((const struct sockaddr_in6 *) sa)->sin6_addr, host, sizeof(host));
                (void) snprintf(buf, size, "[%s]", host);
        } else if (sa->sa_family == AF_INET) {
                (void) inet_ntop(AF_INET, &((const struct sockaddr_in *) sa)->sin_addr, host, sizeof(host));
                (void) snprintf(buf, size, "%s", host);
        } else
                (void) snprintf(buf, size, "?");
        return buf;
}

typedef struct Attempt {
        int fd;
        const struct addrinfo *ai;
} Attempt;

/* RFC 8305 §4: alternate address families so that one broken family costs
 * one attempt delay, not one per address. */
static size_t order_addresses(const struct addrinfo *list, const struct addrinfo **out, size_t max) {
        const struct addrinfo *first[NET_MAX_ADDRESSES], *other[NET_MAX_ADDRESSES];
        size_t n_first = 0, n_other = 0, n = 0;
        int family = list ? list->ai_family : AF_UNSPEC;

        for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
                if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
                        continue;
                if (ai->ai_family == family && n_first < NET_MAX_ADDRESSES)
                        first[n_first++] = ai;
                else if (ai->ai_family != family && n_other < NET_MAX_ADDRESSES)
                        other[n_other++] = ai;
        }

        for (size_t i = 0; n < max && (i < n_first || i < n_other); i++) {
                if (i < n_first && n < max)
                        out[n++] = first[i];
                if (i < n_other && n < max)
                        out[n++] = other[i];
        }
        return n;
}

static bool fd_readable(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLIN };

        return fd >= 0 && poll(&p, 1, 0) > 0;
}

/* The attempts of one connect, racing: those in flight, and the most
 * telling failure so far. */
typedef struct Race {
        const struct addrinfo *addrs[NET_MAX_ADDRESSES];
        size_t n;                       /* addresses to try */
        Attempt attempts[NET_MAX_ADDRESSES];
        size_t n_started;
        usec_t next_start;              /* when the next attempt is due */
        int best;                       /* the failure to report, mapped; 0: none yet */
        int best_errno;
        const struct addrinfo *best_ai;
} Race;

static void race_failed(Race *race, const struct addrinfo *ai, int e) {
        int m = map_connect_errno(e);

        if (race->best == 0 || error_rank(m) > error_rank(race->best)) {
                race->best = m;
                race->best_errno = e;
                race->best_ai = ai;
        }
}

static size_t race_in_flight(const Race *race) {
        size_t k = 0;

        for (size_t i = 0; i < race->n_started; i++)
                if (race->attempts[i].fd >= 0)
                        k++;
        return k;
}

static void race_close(Race *race, int except) {
        for (size_t i = 0; i < race->n_started; i++)
                if ((int) i != except)
                        race->attempts[i].fd = safe_close(race->attempts[i].fd);
}

/* Starts the next address's attempt. Returns its index when it connected
 * at once, else -1; a failure frees the turn for the next address. */
static int race_start_next(Race *race, usec_t now) {
        const struct addrinfo *ai = race->addrs[race->n_started];
        Attempt *a = &race->attempts[race->n_started++];
        int r;

        *a = (Attempt) { .fd = -EBADF, .ai = ai };
        a->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (a->fd < 0)
                r = -errno;
        else if (connect(a->fd, ai->ai_addr, ai->ai_addrlen) < 0)
                r = errno == EINPROGRESS ? 0 : -errno;
        else
                return (int) (race->n_started - 1);

        if (r < 0) {
                a->fd = safe_close(a->fd);
                race_failed(race, ai, -r);
                race->next_start = now;
        } else
                race->next_start = now + NET_ATTEMPT_DELAY_USEC;
        return -1;
}

/* Looks at the attempts poll() found ready. Returns the index of one that
 * connected, else -1; the others that failed are closed. */
static int race_reap(Race *race, const struct pollfd *pfd, const size_t *map, size_t n_pfd) {
        for (size_t k = 0; k < n_pfd; k++) {
                Attempt *a = &race->attempts[map[k]];
                socklen_t sl = sizeof(int);
                int e = 0;

                if (pfd[k].revents == 0)
                        continue;
                if (getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &e, &sl) < 0)
                        e = errno;
                if (e == 0)
                        return (int) map[k];
                a->fd = safe_close(a->fd);
                race->next_start = now_usec(CLOCK_MONOTONIC);
                race_failed(race, a->ai, e);
        }
        return -1;
}

/* No attempt won: the deadline passed with attempts in flight, or every
 * one failed. */
static int race_lost(Race *race, const char *host, uint16_t port, usec_t deadline, Error *error) {
        char addr_buf[INET6_ADDRSTRLEN + 2];

        if (race_in_flight(race) > 0 || race->best == 0 ||
            (race->n_started < race->n && deadline != USEC_INFINITY && now_usec(CLOCK_MONOTONIC) >= deadline)) {
                race_close(race, -1);
                return error_set(error, -ETIMEDOUT, "connect: timed out connecting to %s port %u", host, port);
        }
        return error_set(error, race->best,
                         "connect: cannot connect to %s port %u%s%s%s: %s",
                         host, port,
                         race->n > 1 ? " (" : "",
                         race->n > 1 && race->best_ai ?
                                 sockaddr_to_string(race->best_ai->ai_addr, addr_buf, sizeof(addr_buf)) : "",
                         race->n > 1 ? ")" : "",
                         strerror(race->best_errno));
}

static int connect_addrinfo(const struct addrinfo *list, const char *host, uint16_t port,
                            usec_t deadline, int cancel_fd, int *ret_fd, Error *error) {
        Race race = {};
        int winner = -1, fd, r;

        race.n = order_addresses(list, race.addrs, ELEMENTSOF(race.addrs));
        if (race.n == 0)
                return error_set(error, -EHOSTUNREACH,
                                 "connect: %s port %u: no IPv4 or IPv6 address", host, port);

        while (winner < 0) {
                /* One slot more than attempts: the cancel fd goes last. */
                struct pollfd pfd[NET_MAX_ADDRESSES + 1];
                size_t map[NET_MAX_ADDRESSES], n_pfd = 0;
                usec_t now = now_usec(CLOCK_MONOTONIC), wake;

                if (deadline != USEC_INFINITY && now >= deadline)
                        break;

                /* Start the next attempt when its turn has come, or at once
                 * when nothing is in flight any more. */
                if (race.n_started < race.n && (now >= race.next_start || race_in_flight(&race) == 0)) {
                        winner = race_start_next(&race, now);
                        continue;
                }

                for (size_t i = 0; i < race.n_started; i++)
                        if (race.attempts[i].fd >= 0) {
                                pfd[n_pfd] = (struct pollfd) { .fd = race.attempts[i].fd, .events = POLLOUT };
                                map[n_pfd++] = i;
                        }
                if (n_pfd == 0)
                        break;  /* every address failed */

                wake = deadline;
                if (race.n_started < race.n && race.next_start < wake)
                        wake = race.next_start;
                pfd[n_pfd] = (struct pollfd) { .fd = cancel_fd, .events = POLLIN };
                r = poll(pfd, n_pfd + 1, deadline_poll_timeout(wake));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        r = -errno;
                        race_close(&race, -1);
                        return error_set(error, -EIO, "connect: %s port %u: %s", host, port, strerror(-r));
                }
                if (pfd[n_pfd].revents != 0) {
                        race_close(&race, -1);
                        return error_set(error, -ECANCELED,
                                         "connect: cancelled while connecting to %s port %u", host, port);
                }
                winner = race_reap(&race, pfd, map, n_pfd);
        }

        if (winner < 0)
                return race_lost(&race, host, port, deadline, error);

        race_close(&race, winner);
        fd = race.attempts[winner].fd;
        r = finish_socket(fd, race.attempts[winner].ai->ai_family);
        if (r < 0) {
                safe_close(fd);
                return error_set(error, -EIO, "connect: %s port %u: cannot set up the socket: %s",
                                 host, port, strerror(-r));
        }
        *ret_fd = fd;
        return 0;
}

int net_connect_addrinfo(const struct addrinfo *list, const char *host, uint16_t port,
                         usec_t deadline, int *ret_fd, Error *error) {
        return connect_addrinfo(list, host, port, deadline, -EBADF, ret_fd, error);
}

/* getaddrinfo() has no timeout of its own, so it runs in a detached thread;
 * when the deadline passes first the caller walks away and whichever side
 * finishes last frees the shared state. Such threads outlive their calls,
 * so they are counted, and at LIMIT_RESOLVERS_TOTAL no more start. */
static atomic_uint resolvers_running;
typedef struct Resolve {
        pthread_mutex_t lock;
        unsigned n_ref;
        int notify[2];
        char *host;
        char service[8];
        int gai_error;
        int sys_errno;
        struct addrinfo *result;
} Resolve;

static void resolve_unref(Resolve *q) {
        bool last;

        pthread_mutex_lock(&q->lock);
        last = --q->n_ref == 0;
        pthread_mutex_unlock(&q->lock);
        if (!last)
                return;

        if (q->result)
                freeaddrinfo(q->result);
        safe_close(q->notify[0]);
        safe_close(q->notify[1]);
        free(q->host);
        pthread_mutex_destroy(&q->lock);
        free(q);
}

static void *resolve_thread(void *userdata) {
        Resolve *q = userdata;
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
                .ai_flags = AI_NUMERICSERV,
        };
        struct addrinfo *res = NULL;
        int g;

        g = getaddrinfo(q->host, q->service, &hints, &res);
        pthread_mutex_lock(&q->lock);
        q->gai_error = g;
        q->sys_errno = g == EAI_SYSTEM ? errno : 0;
        q->result = res;
        pthread_mutex_unlock(&q->lock);
        /* The pipe has room: one byte, written once. */
        (void) !write(q->notify[1], "x", 1);
        resolve_unref(q);
        atomic_fetch_sub(&resolvers_running, 1);
        return NULL;
}

unsigned net_resolvers_running(void) {
        return atomic_load(&resolvers_running);
}

static int resolve_error(const char *host, uint16_t port, int g, int e, Error *error) {
        switch (g) {
        case EAI_MEMORY:
                return error_set(error, -ENOMEM, "connect: resolving %s: out of memory", host);
        case EAI_SYSTEM:
                return error_set(error, -EHOSTUNREACH,
                                 "connect: cannot resolve %s (port %u): %s", host, port, strerror(e));
        default:
                /* EAI_NONAME, EAI_AGAIN, EAI_FAIL, EAI_NODATA, ...: the name
                 * leads nowhere, now or for good. */
                return error_set(error, -EHOSTUNREACH,
                                 "connect: cannot resolve %s (port %u): %s", host, port, gai_strerror(g));
        }
}

/* Resolves host under the deadline, or until cancel_fd is readable. */
static int resolve(const char *host, uint16_t port, usec_t deadline, int cancel_fd,
                   struct addrinfo **ret, Error *error) {
        struct addrinfo hints = {
                .ai_family = AF_UNSPEC,
                .ai_socktype = SOCK_STREAM,
                .ai_protocol = IPPROTO_TCP,
                .ai_flags = AI_NUMERICSERV | AI_NUMERICHOST,
        };
        char service[8];
        pthread_attr_t attr;
        pthread_t t;
        Resolve *q;
        int g, r;

        (void) snprintf(service, sizeof(service), "%u", port);

        /* Literals need no resolver and no thread. */
        g = getaddrinfo(host, service, &hints, ret);
        if (g == 0)
                return 0;
        if (g != EAI_NONAME)
                return resolve_error(host, port, g, errno, error);

        /* Lookups pile up only while name service hangs, which then fails
         * every caller alike; this keeps them from also piling up threads. */
        if (atomic_fetch_add(&resolvers_running, 1) >= LIMIT_RESOLVERS_TOTAL) {
                atomic_fetch_sub(&resolvers_running, 1);
                return error_set(error, NBDLINK_ERR_LIMIT_EXCEEDED,
                                 "connect: cannot resolve %s: %u host name lookups are in progress already, "
                                 "the most nbdlinkd allows", host, LIMIT_RESOLVERS_TOTAL);
        }

        q = calloc(1, sizeof(*q));
        if (!q) {
                atomic_fetch_sub(&resolvers_running, 1);
                return -ENOMEM;
        }
        q->notify[0] = q->notify[1] = -EBADF;
        q->host = strdup(host);
        if (!q->host || pipe2(q->notify, O_CLOEXEC) < 0) {
                safe_close(q->notify[0]);
                safe_close(q->notify[1]);
                free(q->host);
                free(q);
                atomic_fetch_sub(&resolvers_running, 1);
                return -ENOMEM;
        }
        memcpy(q->service, service, sizeof(service));
        (void) pthread_mutex_init(&q->lock, NULL);
        q->n_ref = 2;

        r = -pthread_attr_init(&attr);
        if (r == 0) {
                (void) pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
                r = -pthread_create(&t, &attr, resolve_thread, q);
                (void) pthread_attr_destroy(&attr);
        }
        if (r < 0) {
                q->n_ref = 1;
                resolve_unref(q);
                atomic_fetch_sub(&resolvers_running, 1);
                return error_set(error, r, "connect: cannot start the resolver for %s: %s",
                                 host, strerror(-r));
        }

        for (;;) {
                struct pollfd p[2] = {
                        { .fd = q->notify[0], .events = POLLIN },
                        { .fd = cancel_fd, .events = POLLIN },
                };

                r = poll(p, 2, deadline_poll_timeout(deadline));
                if (r < 0 && errno == EINTR)
                        continue;
                if (r > 0 && p[0].revents == 0) {
                        /* The thread finishes on its own and drops its reference. */
                        resolve_unref(q);
                        return error_set(error, -ECANCELED,
                                         "connect: cancelled while resolving %s (port %u)", host, port);
                }
                break;
        }
        if (r <= 0) {
                resolve_unref(q);
                return error_set(error, -ETIMEDOUT,
                                 "connect: timed out resolving %s (port %u)", host, port);
        }

        pthread_mutex_lock(&q->lock);
        g = q->gai_error;
        r = q->sys_errno;
        *ret = TAKE_PTR(q->result);
        pthread_mutex_unlock(&q->lock);
        resolve_unref(q);

        if (g != 0)
                return resolve_error(host, port, g, r, error);
        return 0;
}

static int connect_unix(const char *path, usec_t deadline, int *ret_fd, Error *error) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        usec_t left;
        struct timeval tv = {};
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return error_set(error, -EINVAL, "connect: unix:%s: path too long", path);
        strcpy(sa.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return error_set(error, -EIO, "connect: unix:%s: cannot create a socket: %m", path);

        /* An AF_UNIX connect only waits when the listener's backlog is full;
         * SO_SNDTIMEO bounds that wait (it then fails with EAGAIN). */
        if (deadline != USEC_INFINITY) {
                usec_t n = now_usec(CLOCK_MONOTONIC);

                if (n >= deadline)
                        return error_set(error, -ETIMEDOUT,
                                         "connect: timed out connecting to unix:%s", path);
                left = deadline - n;
                tv.tv_sec = (time_t) (left / USEC_PER_SEC);
                tv.tv_usec = (suseconds_t) (left % USEC_PER_SEC);
                if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
                        return error_set(error, -EIO, "connect: unix:%s: %m", path);
        }

        for (;;) {
                if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) >= 0)
                        break;
                if (errno == EINTR)
                        continue;
                if (errno == EAGAIN || errno == EINPROGRESS)
                        return error_set(error, -ETIMEDOUT,
                                         "connect: timed out connecting to unix:%s", path);
                r = errno;
                return error_set(error, map_connect_errno(r),
                                 "connect: cannot connect to unix:%s: %s", path, strerror(r));
        }

        tv = (struct timeval) {};
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int net_connect_cancellable(const NbdAddress *a, usec_t deadline, int cancel_fd,
                            int *ret_fd, Error *error) {
        struct addrinfo *list = NULL;
        int r;

        if (!a || !ret_fd)
                return -EINVAL;
        if (fd_readable(cancel_fd))
                return error_set(error, -ECANCELED, "connect: cancelled");
        /* An AF_UNIX connect waits only while the listener's backlog is
         * full, bounded by the deadline; it is not polled for cancelling. */
        if (a->unix_path)
                return connect_unix(a->unix_path, deadline, ret_fd, error);
        if (!a->host || a->port == 0)
                return error_set(error, -EINVAL, "connect: no host or port");

        r = resolve(a->host, a->port, deadline, cancel_fd, &list, error);
        if (r < 0)
                return r;

        r = connect_addrinfo(list, a->host, a->port, deadline, cancel_fd, ret_fd, error);
        freeaddrinfo(list);
        return r;
}

int net_connect(const NbdAddress *a, usec_t deadline, int *ret_fd, Error *error) {
        return net_connect_cancellable(a, deadline, -EBADF, ret_fd, error);
}

int net_tcp_peer_ended(int fd) {
        struct tcp_info info = {};
        socklen_t len = sizeof(info);
        int protocol = 0;
        socklen_t plen = sizeof(protocol);

        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &plen) < 0)
                return negative_errno();
        if (protocol != IPPROTO_TCP)
                return -EPROTOTYPE;
        if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) < 0)
                return negative_errno();

        switch (info.tcpi_state) {
        case TCP_CLOSE_WAIT:    /* its FIN came, we have not closed yet */
        case TCP_LAST_ACK:      /* its FIN came, then ours went */
        case TCP_CLOSING:       /* both at once */
        case TCP_CLOSE:         /* reset */
                return 1;
        default:
                /* ESTABLISHED, or FIN_WAIT_1/2 after our own shutdown: the
                 * server said nothing, it just stopped answering. */
                return 0;
        }
}

int net_set_keepalive(int fd) {
        static const struct {
                int level, name, value;
        } table[] = {
                { SOL_SOCKET,  SO_KEEPALIVE,     1 },
                { IPPROTO_TCP, TCP_KEEPIDLE,     NET_KEEPALIVE_IDLE_SEC },
                { IPPROTO_TCP, TCP_KEEPINTVL,    NET_KEEPALIVE_INTERVAL_SEC },
                { IPPROTO_TCP, TCP_KEEPCNT,      NET_KEEPALIVE_COUNT },
                { IPPROTO_TCP, TCP_USER_TIMEOUT, NET_USER_TIMEOUT_SEC * 1000 },
        };
        int protocol = 0;
        socklen_t len = sizeof(protocol);

        if (getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0)
                return negative_errno();
        if (protocol != IPPROTO_TCP)
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(table); i++)
                if (setsockopt(fd, table[i].level, table[i].name, &table[i].value, sizeof(table[i].value)) < 0)
                        return negative_errno();
        return 0;
}
