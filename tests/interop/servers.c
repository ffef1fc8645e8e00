/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Starting and stopping real NBD servers for the test suites: fork/exec
 * with PR_SET_PDEATHSIG, a guard process for servers that daemonize,
 * readiness by polling for the NBD greeting, never by sleeping. */

#include "servers.h"

#include "loopback.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_USEC (20 * G_USEC_PER_SEC)
#define STOP_GRACE_USEC (5 * G_USEC_PER_SEC)
#define START_ATTEMPTS 5

static char *scratch_dir;

const char *test_scratch_dir(void) {
        if (!scratch_dir) {
                GError *error = NULL;

                scratch_dir = g_dir_make_tmp("nbdlink-test-XXXXXX", &error);
                g_assert_no_error(error);
        }
        return scratch_dir;
}

char *test_scratch_subdir(const char *name) {
        char *t = g_build_filename(test_scratch_dir(), name, NULL);
        char *dir = g_strconcat(t, "-XXXXXX", NULL);

        g_free(t);
        if (!g_mkdtemp(dir))
                g_error("cannot create a directory below %s: %s", test_scratch_dir(), g_strerror(errno));
        return dir;
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                (void) rmdir(path);
        else
                (void) unlink(path);
        return 0;
}

static void remove_tree(const char *dir) {
        if (dir)
                (void) nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

void test_servers_cleanup(void) {
        remove_tree(scratch_dir);
        g_clear_pointer(&scratch_dir, g_free);
}

char *test_write_file(const char *dir, const char *name, const char *contents) {
        GError *error = NULL;
        char *path = g_build_filename(dir, name, NULL);

        g_file_set_contents(path, contents, -1, &error);
        g_assert_no_error(error);
        return path;
}

char *test_make_image(const char *dir, const char *name, uint64_t size) {
        char *path = g_build_filename(dir, name, NULL);
        FILE *f = fopen(path, "we");
        char block[4096];

        if (!f)
                g_error("cannot create %s: %s", path, g_strerror(errno));
        for (uint64_t off = 0; off < size; off += sizeof(block)) {
                size_t n = MIN(sizeof(block), size - off);

                /* Every block says where it is, so a wrong offset shows. */
                memset(block, 0, sizeof(block));
                g_snprintf(block, sizeof(block), "nbdlink test image %s block %" G_GUINT64_FORMAT "\n",
                           name, off / sizeof(block));
                if (fwrite(block, 1, n, f) != n)
                        g_error("cannot write %s: %s", path, g_strerror(errno));
        }
        if (fclose(f) != 0)
                g_error("cannot write %s: %s", path, g_strerror(errno));
        return path;
}

/* Some distributions put nbd-server in /usr/sbin, which an unprivileged
 * PATH may lack. */
static char *find_program(const char *name) {
        char *path = g_find_program_in_path(name);

        if (!path && !strchr(name, '/')) {
                path = g_build_filename("/usr/sbin", name, NULL);
                if (!g_file_test(path, G_FILE_TEST_IS_EXECUTABLE))
                        g_clear_pointer(&path, g_free);
        }
        if (!path)
                g_error("%s is not installed (tools/install-deps installs it)", name);
        return path;
}

char *test_tool_version(const char *const *argv) {
        char *out = NULL, *err = NULL, *line;
        GError *error = NULL;
        char **args = g_strdupv((char **) argv);
        int status;

        g_free(args[0]);
        args[0] = find_program(argv[0]);
        if (!g_spawn_sync(NULL, args, NULL, 0, NULL, NULL, &out, &err, &status, &error))
                g_error("cannot run %s (tools/install-deps installs it): %s", argv[0], error->message);
        g_strfreev(args);

        line = g_strdup(out && *out ? out : err);
        g_free(out);
        g_free(err);
        line[strcspn(line, "\n")] = 0;
        return line;
}

void test_log_server_versions(void) {
        static const char *const tools[][3] = {
                { "nbdkit", "--version", NULL },
                { "nbd-server", "-V", NULL },
                { "qemu-nbd", "--version", NULL },
                { "certtool", "--version", NULL },
        };

        for (size_t i = 0; i < G_N_ELEMENTS(tools); i++) {
                char *v = test_tool_version(tools[i]);

                g_test_message("%s: %s", tools[i][0], v);
                g_free(v);
        }
}

/* Connects to 127.0.0.1:port, reads the NBD greeting and, for newstyle,
 * leaves politely with NBD_OPT_ABORT so that the server logs no error. */
static bool probe_greeting(uint16_t port) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
        unsigned char buf[18];
        size_t got = 0;
        bool ok = false;
        gint64 deadline = g_get_monotonic_time() + G_USEC_PER_SEC;
        int fd;

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return false;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0 && errno != EINPROGRESS)
                goto out;

        while (got < sizeof(buf)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                gint64 left = deadline - g_get_monotonic_time();
                ssize_t n;

                if (left <= 0 || poll(&p, 1, (int) (left / 1000) + 1) <= 0)
                        goto out;
                n = read(fd, buf + got, sizeof(buf) - got);
                if (n <= 0) {
                        if (n < 0 && (errno == EAGAIN || errno == EINTR))
                                continue;
                        /* An oldstyle server may send more; 16 bytes decide. */
                        break;
                }
                got += (size_t) n;
                if (got >= 16 && memcmp(buf + 8, "IHAVEOPT", 8) != 0)
                        break;
        }
        if (got < 16 || memcmp(buf, "NBDMAGIC", 8) != 0)
                goto out;
        ok = true;

        if (got == sizeof(buf) && memcmp(buf + 8, "IHAVEOPT", 8) == 0) {
                static const unsigned char abort_opt[16] = {
                        'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 0, 0, 2, 0, 0, 0, 0,
                };
                unsigned char cflags[4] = { 0, 0, 0, buf[17] & 3 };

                /* Best effort: readiness is already proven. */
                (void) !write(fd, cflags, sizeof(cflags));
                (void) !write(fd, abort_opt, sizeof(abort_opt));
                /* Wait for the ACK (or the hang-up) so that the server is
                 * done with us before we close. */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                (void) poll(&p, 1, 500);
        }
out:
        close(fd);
        return ok;
}

static char **expand_argv(const char *const *argv, uint16_t port, const char *dir) {
        GPtrArray *a = g_ptr_array_new();
        char port_text[8];

        g_snprintf(port_text, sizeof(port_text), "%u", port);
        for (size_t i = 0; argv[i]; i++) {
                char **parts = g_strsplit(argv[i], "@PORT@", -1);
                char *s = g_strjoinv(port_text, parts);

                g_strfreev(parts);
                parts = g_strsplit(s, "@DIR@", -1);
                g_free(s);
                g_ptr_array_add(a, g_strjoinv(dir, parts));
                g_strfreev(parts);
        }
        g_ptr_array_add(a, NULL);
        return (char **) g_ptr_array_free(a, FALSE);
}

/* fork + exec with the log as stdout/stderr, its own process group (so the
 * whole group can be stopped) and SIGKILL when the test dies. */
static pid_t spawn(char **argv, const char *log_path) {
        pid_t parent = getpid(), pid;
        int log_fd, null_fd;

        log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (log_fd < 0 || null_fd < 0)
                g_error("cannot open %s: %s", log_path, g_strerror(errno));

        pid = fork();
        if (pid < 0)
                g_error("fork: %s", g_strerror(errno));
        if (pid == 0) {
                /* Only async-signal-safe calls from here on. */
                (void) setpgid(0, 0);
                if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
                        _exit(127);
                if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0)
                        _exit(127);
                execvp(argv[0], argv);
                (void) !write(2, "exec failed: ", 13);
                (void) !write(2, argv[0], strlen(argv[0]));
                (void) !write(2, "\n", 1);
                _exit(127);
        }
        close(log_fd);
        close(null_fd);
        return pid;
}

/* A server that daemonizes leaves our PR_SET_PDEATHSIG behind; this child
 * waits for the test process to go away (its pipe's write end closes with
 * it, however it dies) and then kills the server's process group. */
static pid_t spawn_guard(pid_t server, int *ret_pipe) {
        int p[2];
        pid_t pid;

        if (pipe2(p, O_CLOEXEC) < 0)
                g_error("pipe: %s", g_strerror(errno));
        pid = fork();
        if (pid < 0)
                g_error("fork: %s", g_strerror(errno));
        if (pid == 0) {
                char c;

                /* Hold no other descriptor, least of all other guards'
                 * write ends, which would keep them waiting. */
                (void) close_range(3, (unsigned) p[0] - 1, 0);
                (void) close_range((unsigned) p[0] + 1, ~0U, 0);
                (void) setpgid(0, 0);
                while (read(p[0], &c, 1) < 0 && errno == EINTR)
                        ;
                (void) kill(-server, SIGKILL);
                (void) kill(server, SIGKILL);
                _exit(0);
        }
        close(p[0]);
        *ret_pipe = p[1];
        return pid;
}

/* Guards' write ends: closed only when the test process exits. */
static GHashTable *guard_pipes;

static bool reap(pid_t pid, int *status) {
        pid_t r;

        do
                r = waitpid(pid, status, WNOHANG);
        while (r < 0 && errno == EINTR);
        if (r == pid)
                return true;
        /* Not our child (no subreaper): see whether it still exists. */
        return r < 0 && errno == ECHILD && kill(pid, 0) < 0 && errno == ESRCH;
}

char *test_server_log(const TestServer *s) {
        char *text = NULL;

        if (!g_file_get_contents(s->log_path, &text, NULL, NULL))
                return g_strdup("(no log)");
        return text;
}

static pid_t read_pidfile(const char *path) {
        char *text = NULL;
        guint64 v = 0;

        if (!g_file_get_contents(path, &text, NULL, NULL))
                return 0;
        g_strstrip(text);
        if (!g_ascii_string_to_unsigned(text, 10, 2, G_MAXINT32, &v, NULL))
                v = 0;
        g_free(text);
        return (pid_t) v;
}

typedef enum StartResult {
        START_READY,
        START_DIED,
        START_TIMEOUT,
} StartResult;

static StartResult wait_ready(TestServer *s, pid_t child, const char *pidfile) {
        gint64 deadline = g_get_monotonic_time() + READY_TIMEOUT_USEC;
        bool child_gone = false;
        int status;

        for (;;) {
                if (!child_gone && reap(child, &status)) {
                        child_gone = true;
                        /* A daemonizing server's first process exits 0
                         * once the daemon runs; anything else is death. */
                        if (!pidfile || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                                s->pid = 0;
                                return START_DIED;
                        }
                }
                if (pidfile && s->pid <= 0) {
                        pid_t p = read_pidfile(pidfile);

                        if (p > 0 && p != child) {
                                int fd;

                                s->pid = p;
                                s->guard = spawn_guard(p, &fd);
                                if (!guard_pipes)
                                        guard_pipes = g_hash_table_new(NULL, NULL);
                                g_hash_table_insert(guard_pipes, GINT_TO_POINTER(s->guard), GINT_TO_POINTER(fd));
                        }
                }
                if (pidfile && s->pid > 0 && reap(s->pid, &status)) {
                        s->pid = 0;
                        return START_DIED;
                }
                if ((!pidfile || s->pid > 0) && probe_greeting(s->port))
                        return START_READY;
                if (g_get_monotonic_time() > deadline)
                        return START_TIMEOUT;
                /* Polling interval, not a guess at start-up time. */
                g_usleep(20 * 1000);
        }
}

static void stop_pid(pid_t pid) {
        gint64 deadline;
        int status;

        if (pid <= 0)
                return;
        (void) kill(-pid, SIGTERM);
        (void) kill(pid, SIGTERM);
        deadline = g_get_monotonic_time() + STOP_GRACE_USEC;
        while (!reap(pid, &status)) {
                if (g_get_monotonic_time() > deadline) {
                        (void) kill(-pid, SIGKILL);
                        (void) kill(pid, SIGKILL);
                        while (!reap(pid, &status))
                                g_usleep(10 * 1000);
                        break;
                }
                g_usleep(10 * 1000);
        }
        /* Per-connection children that outlived their parent. */
        (void) kill(-pid, SIGKILL);
}

static void stop_guard(TestServer *s) {
        int status;

        if (s->guard <= 0)
                return;
        (void) kill(s->guard, SIGKILL);
        (void) waitpid(s->guard, &status, 0);
        if (guard_pipes) {
                gpointer fd;

                if (g_hash_table_lookup_extended(guard_pipes, GINT_TO_POINTER(s->guard), NULL, &fd)) {
                        close(GPOINTER_TO_INT(fd));
                        g_hash_table_remove(guard_pipes, GINT_TO_POINTER(s->guard));
                }
        }
        s->guard = 0;
}

TestServer *test_server_start(const char *name, const char *const *argv, const char *pidfile_name) {
        return test_server_start_full(name, argv, pidfile_name, NULL, NULL);
}

TestServer *test_server_start_full(const char *name, const char *const *argv, const char *pidfile_name,
                                   TestServerPrepare prepare, void *userdata) {
        TestServer *s = g_new0(TestServer, 1);

        s->name = g_strdup(name);
        s->dir = test_scratch_subdir(name);
        s->log_path = g_build_filename(s->dir, "server.log", NULL);

        if (pidfile_name)
                /* The daemon becomes our child when its parent exits, so
                 * that we can wait for it (and no zombie is left behind). */
                (void) prctl(PR_SET_CHILD_SUBREAPER, 1);

        for (unsigned attempt = 1;; attempt++) {
                char *pidfile = pidfile_name ? g_build_filename(s->dir, pidfile_name, NULL) : NULL;
                char **args, *log, *program;
                StartResult r;
                pid_t child;

                if (pidfile)
                        (void) unlink(pidfile);
                /* The kernel's choice of a free port; the server binds it a
                 * moment later, and a failed start tries again. */
                s->port = loopback_free_port();
                if (prepare)
                        prepare(s, userdata);
                args = expand_argv(argv, s->port, s->dir);
                program = find_program(args[0]);
                g_free(args[0]);
                args[0] = program;
                child = spawn(args, s->log_path);
                if (!pidfile)
                        s->pid = child;
                r = wait_ready(s, child, pidfile);
                g_strfreev(args);
                g_free(pidfile);
                if (r == START_READY)
                        return s;

                log = test_server_log(s);
                if (r == START_TIMEOUT) {
                        stop_pid(s->pid > 0 ? s->pid : child);
                        stop_guard(s);
                        g_error("%s did not get ready on 127.0.0.1:%u within %d s; its log:\n%s",
                                name, s->port, (int) (READY_TIMEOUT_USEC / G_USEC_PER_SEC), log);
                }
                stop_guard(s);
                stop_pid(child);
                if (attempt >= START_ATTEMPTS)
                        g_error("%s exited before it got ready (%u attempts); its log:\n%s", name, attempt, log);
                /* Most likely the port was taken between
                 * loopback_free_port() and the server's bind(): try another. */
                g_test_message("%s exited before it got ready on port %u, trying another port; log:\n%s",
                               name, s->port, log);
                g_free(log);
                (void) truncate(s->log_path, 0);
        }
}

void test_server_stop(TestServer *s) {
        if (!s)
                return;
        stop_pid(s->pid);
        stop_guard(s);
        remove_tree(s->dir);
        g_free(s->dir);
        g_free(s->log_path);
        g_free(s->name);
        g_free(s);
}

static TestServer *start_with_prefix(const char *name, const char *const *prefix,
                                     const char *const *args, const char *const *suffix) {
        GPtrArray *a = g_ptr_array_new();
        TestServer *s;

        for (size_t i = 0; prefix && prefix[i]; i++)
                g_ptr_array_add(a, (char *) prefix[i]);
        for (size_t i = 0; args && args[i]; i++)
                g_ptr_array_add(a, (char *) args[i]);
        for (size_t i = 0; suffix && suffix[i]; i++)
                g_ptr_array_add(a, (char *) suffix[i]);
        g_ptr_array_add(a, NULL);
        s = test_server_start(name, (const char *const *) a->pdata, NULL);
        g_ptr_array_free(a, TRUE);
        return s;
}

static const char **collect_args(const char *first, va_list ap) {
        GPtrArray *a = g_ptr_array_new();

        for (const char *p = first; p; p = va_arg(ap, const char *))
                g_ptr_array_add(a, (char *) p);
        g_ptr_array_add(a, NULL);
        return (const char **) g_ptr_array_free(a, FALSE);
}

TestServer *test_nbdkit_startv(const char *const *args) {
        static const char *const prefix[] = {
                "nbdkit", "--foreground", "--exit-with-parent",
                "--ipaddr", "127.0.0.1", "--port", "@PORT@",
                "--verbose", NULL,
        };

        return start_with_prefix("nbdkit", prefix, args, NULL);
}

TestServer *test_nbdkit_start(const char *first_arg, ...) {
        const char **args;
        TestServer *s;
        va_list ap;

        va_start(ap, first_arg);
        args = collect_args(first_arg, ap);
        va_end(ap);
        s = test_nbdkit_startv(args);
        g_free(args);
        return s;
}

TestServer *test_qemu_nbd_start(const char *image, const char *first_arg, ...) {
        static const char *const prefix[] = {
                "qemu-nbd", "--format=raw", "--bind=127.0.0.1", "--port=@PORT@",
                "--persistent", "--shared=8", NULL,
        };
        const char *suffix[] = { image, NULL };
        const char **args;
        TestServer *s;
        va_list ap;

        va_start(ap, first_arg);
        args = collect_args(first_arg, ap);
        va_end(ap);
        s = start_with_prefix("qemu-nbd", prefix, args, suffix);
        g_free(args);
        return s;
}

static void write_nbd_server_config(const TestServer *s, void *userdata) {
        const char *export_sections = userdata;
        char *config, *path;

        /* nbd-server takes its port from the configuration only. */
        config = g_strdup_printf("[generic]\n"
                                 "port = %u\n"
                                 "listenaddr = 127.0.0.1\n"
                                 "allowlist = true\n"
                                 "\n%s",
                                 s->port, export_sections);
        path = test_write_file(s->dir, "config", config);
        g_free(config);
        g_free(path);
}

TestServer *test_nbd_server_start(const char *export_sections) {
        static const char *const argv[] = {
                "nbd-server", "-C", "@DIR@/config", "-p", "@DIR@/nbd-server.pid", NULL,
        };

        return test_server_start_full("nbd-server", argv, "nbd-server.pid",
                                      write_nbd_server_config, (void *) export_sections);
}
