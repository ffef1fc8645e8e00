/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Loopback listeners, connections and free ports (see loopback.h). */

#include "loopback.h"

#include <arpa/inet.h>
#include <glib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

/* A socket bound to 127.0.0.1 at a port the kernel chose. */
static int bind_any_port(int type_flags, uint16_t *ret_port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | type_flags, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        g_assert_cmpint(getsockname(fd, (struct sockaddr *) &sa, &len), ==, 0);
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

int loopback_listen(int type_flags, int backlog, uint16_t *ret_port) {
        int fd = bind_any_port(type_flags, ret_port);

        g_assert_cmpint(listen(fd, backlog), ==, 0);
        return fd;
}

int loopback_connect(uint16_t port) {
        struct sockaddr_in sa = {
                .sin_family = AF_INET,
                .sin_port = htons(port),
                .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
        };
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

        g_assert_cmpint(fd, >=, 0);
        g_assert_cmpint(connect(fd, (struct sockaddr *) &sa, sizeof(sa)), ==, 0);
        return fd;
}

uint16_t loopback_free_port(void) {
        uint16_t port;

        close(bind_any_port(0, &port));
        return port;
}
