/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Real NBD servers (nbdkit, nbd-server, qemu-nbd) for tests: started on
 * 127.0.0.1 with ports picked at run time, waited for by polling their
 * greeting under a deadline, and stopped whatever happens to the test. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct TestServer {
        char *name;             /* "nbdkit", for messages */
        pid_t pid;              /* the server (adopted by us if it daemonized) */
        pid_t guard;            /* kills a daemonized server if the test dies; 0: none */
        uint16_t port;          /* on 127.0.0.1 */
        char *dir;              /* the server's own scratch directory */
        char *log_path;         /* its stdout and stderr */
} TestServer;

/* A scratch directory for the whole test program, made on first use and
 * removed by test_servers_cleanup(). */
const char *test_scratch_dir(void);
/* A fresh directory below the scratch directory. */
char *test_scratch_subdir(const char *name);
/* Removes the scratch directory and everything in it. */
void test_servers_cleanup(void);

/* Writes contents to dir/name; returns the path. */
char *test_write_file(const char *dir, const char *name, const char *contents);

/* The first line that "argv..." prints (stdout, else stderr), for logging
 * which version of a tool ran; fails the test if the tool is missing. */
char *test_tool_version(const char *const *argv);
/* Logs the versions of nbdkit, nbd-server and qemu-nbd with g_test_message. */
void test_log_server_versions(void);

/* Starts a server. In argv, "@PORT@" is replaced by the chosen port and
 * "@DIR@" by the server's scratch directory. If pidfile_name is set the
 * server daemonizes and writes its pid to @DIR@/pidfile_name. Returns once
 * the server sent its NBD greeting on 127.0.0.1:port; retries with a new
 * port if the first was taken meanwhile; fails the test (with the server's
 * log) if it never gets ready. */
TestServer *test_server_start(const char *name, const char *const *argv, const char *pidfile_name);
/* The same, calling prepare(s, userdata) once the port is chosen and
 * before each start attempt (to write a configuration file that names the
 * port into s->dir, say). */
typedef void (*TestServerPrepare)(const TestServer *s, void *userdata);
TestServer *test_server_start_full(const char *name, const char *const *argv, const char *pidfile_name,
                                   TestServerPrepare prepare, void *userdata);
/* SIGTERM, then SIGKILL after a grace period; waits for it; removes its
 * directory. NULL is fine. */
void test_server_stop(TestServer *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(TestServer, test_server_stop)

/* The log so far (for failure messages). */
char *test_server_log(const TestServer *s);

/* nbdkit in the foreground with --exit-with-parent, on 127.0.0.1:port;
 * args: options, plugin and its parameters, NULL-terminated. */
TestServer *test_nbdkit_start(const char *first_arg, ...) G_GNUC_NULL_TERMINATED;
TestServer *test_nbdkit_startv(const char *const *args);

/* qemu-nbd serving image, persistent (-t) and shared by up to 8 clients,
 * with extra options (-x NAME, -r, --object, --tls-creds, ...). */
TestServer *test_qemu_nbd_start(const char *image, const char *first_arg, ...) G_GNUC_NULL_TERMINATED;

/* nbd-server with a generated configuration: a [generic] section that
 * listens on 127.0.0.1:port only, then export_sections verbatim (ini
 * sections such as "[name]\nexportname = /path\nreadonly = true\n").
 * nbd-server always daemonizes (its -d mode serves one client and exits
 * when a client hangs up early), so it runs under a guard process. */
TestServer *test_nbd_server_start(const char *export_sections);

/* Creates a file of the given size filled with a recognizable pattern. */
char *test_make_image(const char *dir, const char *name, uint64_t size);
