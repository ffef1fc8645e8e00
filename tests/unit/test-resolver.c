/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Host name lookups that hang: the lookup a call's deadline walks away from
 * goes on in the background, and LIMIT_RESOLVERS_TOTAL caps how many.
 * Name service is made to hang for this process alone: in a mount
 * namespace of its own, /etc/resolv.conf names 127.0.0.1, where a UDP
 * socket takes the questions and never answers. */

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <unistd.h>

#include "contract.h"
#include "net.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>
#include <glib/gstdio.h>

static int deaf_dns = -1;

static void hang_name_service(void) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(53),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        g_autofree char *dir = g_dir_make_tmp("nbdlink-resolver-XXXXXX", NULL);
        g_autofree char *conf = g_build_filename(dir, "resolv.conf", NULL);
        g_autofree char *nss = g_build_filename(dir, "nsswitch.conf", NULL);

        g_assert_nonnull(dir);
        g_assert_true(g_file_set_contents(conf, "nameserver 127.0.0.1\noptions timeout:30 attempts:1\n", -1, NULL));
        g_assert_true(g_file_set_contents(nss, "hosts: dns\n", -1, NULL));

        g_assert_cmpint(unshare(CLONE_NEWNS), ==, 0);
        g_assert_cmpint(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), ==, 0);
        g_assert_cmpint(mount(conf, "/etc/resolv.conf", NULL, MS_BIND, NULL), ==, 0);
        g_assert_cmpint(mount(nss, "/etc/nsswitch.conf", NULL, MS_BIND, NULL), ==, 0);
        /* The mounts keep the files; nothing else needs their names. */
        g_assert_cmpint(g_unlink(conf), ==, 0);
        g_assert_cmpint(g_unlink(nss), ==, 0);
        g_assert_cmpint(g_rmdir(dir), ==, 0);

        deaf_dns = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        g_assert_cmpint(deaf_dns, >=, 0);
        if (bind(deaf_dns, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                g_error("cannot bind 127.0.0.1:53 for the deaf name server: %m");
}

static int lookup(const char *host, Error *error) {
        NbdAddress a = {};
        int fd = -EBADF, r;

        g_assert_cmpint(nbd_address_parse(&a, host, 10809, error), ==, 0);
        r = net_connect(&a, deadline_after(100 * USEC_PER_MSEC), &fd, error);
        g_assert_cmpint(fd, <, 0);
        nbd_address_done(&a);
        return r;
}

static void test_limit(void) {
        Error error = {};

        g_assert_cmpuint(net_resolvers_running(), ==, 0);
        for (unsigned i = 0; i < LIMIT_RESOLVERS_TOTAL; i++) {
                g_autofree char *host = g_strdup_printf("hang-%u.nbdlink.test", i);

                g_assert_cmpint(lookup(host, &error), ==, -ETIMEDOUT);
                g_assert_nonnull(strstr(error.message, "timed out resolving"));
        }
        /* Each walked away from its lookup, which still runs. */
        g_assert_cmpuint(net_resolvers_running(), ==, LIMIT_RESOLVERS_TOTAL);

        g_assert_cmpint(lookup("one-more.nbdlink.test", &error), ==, NBDLINK_ERR_LIMIT_EXCEEDED);
        g_assert_nonnull(strstr(error.message, "host name lookups are in progress already"));
        g_assert_cmpuint(net_resolvers_running(), ==, LIMIT_RESOLVERS_TOTAL);

        /* Literals need no lookup and are never refused. */
        g_assert_cmpint(lookup("127.0.0.1", &error), !=, NBDLINK_ERR_LIMIT_EXCEEDED);
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        hang_name_service();
        g_test_add_func("/resolver/limit", test_limit);
        return g_test_run();
}
