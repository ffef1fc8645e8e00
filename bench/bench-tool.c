/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The timing half of bench/: attach latency (method call or command start to
 * a successful O_DIRECT read of block 0), many attaches at once, and a
 * process's memory. Runs as root inside the benchmark guest; prints one
 * "key value" line per figure for bench/guest-bench to collect. */

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#define BUS_NAME "org.nbdlink.NBD1"
#define MANAGER_PATH "/org/nbdlink/NBD1"
#define MANAGER_IFACE "org.nbdlink.NBD1.Manager"
#define MAX_DEVICES 256

static double now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void die(const char *what, int r) {
        fprintf(stderr, "bench-tool: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return x < y ? -1 : x > y;
}

static void print_stats(const char *key, double *v, int n) {
        qsort(v, (size_t) n, sizeof(double), cmp_double);
        printf("%s_median_ms %.1f\n%s_min_ms %.1f\n%s_max_ms %.1f\n", key, v[n / 2], key, v[0], key, v[n - 1]);
}

/* Until block 0 reads with O_DIRECT: the moment a user can start working.
 * No sleeping: a sleep would be counted against whoever is measured. */
static void wait_block0(const char *dev) {
        static char buf[4096] __attribute__((aligned(4096)));
        double deadline = now_ms() + 30000;

        for (;;) {
                int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);
                if (fd >= 0) {
                        ssize_t n = pread(fd, buf, sizeof(buf), 0);
                        close(fd);
                        if (n == (ssize_t) sizeof(buf))
                                return;
                }
                if (now_ms() > deadline) {
                        fprintf(stderr, "bench-tool: block 0 of %s never became readable\n", dev);
                        exit(1);
                }
                sched_yield();
        }
}

static bool running(const char *dev) {
        char path[128];

        snprintf(path, sizeof(path), "/sys/block/%s/pid", strrchr(dev, '/') ? strrchr(dev, '/') + 1 : dev);
        return access(path, F_OK) == 0;
}

static void wait_stopped(const char *dev) {
        double deadline = now_ms() + 30000;

        while (running(dev)) {
                if (now_ms() > deadline) {
                        fprintf(stderr, "bench-tool: %s did not stop\n", dev);
                        exit(1);
                }
                usleep(5000);
        }
}

static int run_argv(char **argv) {
        int status;
        pid_t pid = fork();

        if (pid < 0)
                die("fork", errno);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY);
                dup2(null, 1);
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                die("waitpid", errno);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

static sd_bus *bus_open(void) {
        sd_bus *bus = NULL;
        int r = sd_bus_open_system(&bus);

        if (r < 0)
                die("connecting to the system bus", r);
        return bus;
}

/* Sends Attach/AttachWithOptions for device on host (async); "connections" > 1
 * goes into the options. */
static int attach_async(sd_bus *bus, const char *device, const char *host, const char *export,
                        unsigned connections, sd_bus_slot **slot, sd_bus_message_handler_t cb, void *userdata) {
        sd_bus_message *m = NULL;
        int r;

        r = sd_bus_message_new_method_call(bus, &m, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "AttachWithOptions");
        if (r >= 0)
                r = sd_bus_message_append(m, "sss", device, host, export);
        if (r >= 0)
                r = connections > 1 ? sd_bus_message_append(m, "a{sv}", 1, "connections", "u", connections)
                                    : sd_bus_message_append(m, "a{sv}", 0);
        if (r >= 0)
                r = sd_bus_call_async(bus, slot, m, cb, userdata, 120 * 1000 * 1000);
        sd_bus_message_unref(m);
        return r;
}

typedef struct Pending {
        char device[64];
        bool done;
        double t_reply;
        char error[512];
} Pending;

static int on_attach_reply(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Pending *p = userdata;
        const sd_bus_error *e = sd_bus_message_get_error(m);
        const char *object, *dev;

        p->done = true;
        p->t_reply = now_ms();
        if (e) {
                snprintf(p->error, sizeof(p->error), "%s: %s", e->name, e->message);
                return 0;
        }
        if (sd_bus_message_read(m, "os", &object, &dev) < 0)
                snprintf(p->error, sizeof(p->error), "cannot read the reply");
        else
                snprintf(p->device, sizeof(p->device), "%s%s", strncmp(dev, "/dev/", 5) ? "/dev/" : "", dev);
        return 0;
}

static void wait_all(sd_bus *bus, Pending *p, int n) {
        for (;;) {
                int left = 0, r;

                for (int i = 0; i < n; i++)
                        left += !p[i].done;
                if (left == 0)
                        return;
                r = sd_bus_process(bus, NULL);
                if (r < 0)
                        die("processing the bus", r);
                if (r == 0 && sd_bus_wait(bus, UINT64_MAX) < 0)
                        die("waiting on the bus", errno);
        }
}

static void detach(sd_bus *bus, const char *dev) {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Detach", &e, NULL, "s", dev);

        if (r < 0) {
                fprintf(stderr, "bench-tool: Detach(%s): %s\n", dev, e.message ?: strerror(-r));
                exit(1);
        }
        sd_bus_error_free(&e);
}

/* When each State of the device was announced, relative to the call: the
 * daemon's phases without tracing it. ("connecting", the first, comes with
 * the object itself, not as a change.) */
static const char *const states[] = { "negotiating", "attached" };
#define N_STATES (sizeof(states) / sizeof(states[0]))

typedef struct Phases {
        double t0;
        double at[N_STATES];
} Phases;

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Phases *ph = userdata;
        const char *iface, *key, *value;
        double t = now_ms() - ph->t0;

        if (sd_bus_message_read(m, "s", &iface) < 0 || sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return 0;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                if (sd_bus_message_read(m, "s", &key) < 0)
                        return 0;
                if (strcmp(key, "State") == 0 && sd_bus_message_read(m, "v", "s", &value) >= 0) {
                        for (size_t i = 0; i < N_STATES; i++)
                                if (strcmp(value, states[i]) == 0 && ph->at[i] < 0)
                                        ph->at[i] = t;
                } else if (sd_bus_message_skip(m, "v") < 0)
                        return 0;
                if (sd_bus_message_exit_container(m) < 0)
                        return 0;
        }
        return 0;
}

/* latency-bus RUNS DEVICE HOST EXPORT CONNECTIONS */
static int cmd_latency_bus(int argc, char **argv) {
        int runs = atoi(argv[0]);
        unsigned connections = (unsigned) atoi(argv[4]);
        double t[256], t_reply[256], t_state[N_STATES][256];
        sd_bus *bus = bus_open();
        Phases ph;
        char path[128];
        int r;

        if (runs < 1 || runs > 256)
                die("runs", EINVAL);
        snprintf(path, sizeof(path), "%s/devices/%s", MANAGER_PATH,
                 strrchr(argv[1], '/') ? strrchr(argv[1], '/') + 1 : argv[1]);
        r = sd_bus_match_signal(bus, NULL, BUS_NAME, path, "org.freedesktop.DBus.Properties",
                                "PropertiesChanged", on_properties_changed, &ph);
        if (r < 0)
                die("adding a match", r);
        for (int i = 0; i < runs; i++) {
                Pending p = {};
                double t0 = now_ms();

                ph.t0 = t0;
                for (size_t k = 0; k < N_STATES; k++)
                        ph.at[k] = -1;
                r = attach_async(bus, argv[1], argv[2], argv[3], connections, NULL, on_attach_reply, &p);

                if (r < 0)
                        die("Attach", r);
                wait_all(bus, &p, 1);
                if (p.error[0]) {
                        fprintf(stderr, "bench-tool: Attach: %s\n", p.error);
                        return 1;
                }
                wait_block0(p.device);
                t[i] = now_ms() - t0;
                t_reply[i] = p.t_reply - t0;
                /* Signals sent before the reply are read before it. */
                for (size_t k = 0; k < N_STATES; k++)
                        t_state[k][i] = ph.at[k];
                detach(bus, p.device);
                wait_stopped(p.device);
        }
        for (size_t k = 0; k < N_STATES; k++) {
                char key[64];

                snprintf(key, sizeof(key), "state_%s", states[k]);
                print_stats(key, t_state[k], runs);
        }
        print_stats("reply", t_reply, runs);
        print_stats("attach", t, runs);
        sd_bus_flush_close_unref(bus);
        return 0;
}

/* latency-cmd RUNS DEV ATTACH-ARGV... -- DETACH-ARGV... */
static int cmd_latency_cmd(int argc, char **argv) {
        int runs = atoi(argv[0]);
        const char *dev = argv[1];
        char **attach_argv = argv + 2, **detach_argv = NULL;
        double t[256];

        for (int i = 2; i < argc; i++)
                if (strcmp(argv[i], "--") == 0) {
                        argv[i] = NULL;
                        detach_argv = argv + i + 1;
                }
        if (runs < 1 || runs > 256 || !detach_argv)
                die("usage", EINVAL);
        for (int i = 0; i < runs; i++) {
                double t0 = now_ms();
                int r = run_argv(attach_argv);

                if (r != 0) {
                        fprintf(stderr, "bench-tool: %s exited with %d\n", attach_argv[0], r);
                        return 1;
                }
                wait_block0(dev);
                t[i] = now_ms() - t0;
                (void) run_argv(detach_argv);
                wait_stopped(dev);
        }
        print_stats("attach", t, runs);
        return 0;
}

/* read4k RUNS DEV: the time of one 4 KiB O_DIRECT read (one round trip to
 * the server through the kernel), at offsets no earlier read touched. */
static int cmd_read4k(int argc, char **argv) {
        static char buf[4096] __attribute__((aligned(4096)));
        int runs = atoi(argv[0]);
        double t[256];
        int fd;

        if (runs < 1 || runs > 256)
                die("runs", EINVAL);
        fd = open(argv[1], O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (fd < 0)
                die(argv[1], errno);
        for (int i = 0; i < runs; i++) {
                double t0 = now_ms();

                if (pread(fd, buf, sizeof(buf), (off_t) (i + 1) * 1024 * 1024) != (ssize_t) sizeof(buf))
                        die("pread", errno);
                t[i] = now_ms() - t0;
        }
        close(fd);
        print_stats("read4k", t, runs);
        return 0;
}

/* spawn RUNS ARGV...: how long running a command takes. */
static int cmd_spawn(int argc, char **argv) {
        int runs = atoi(argv[0]);
        double t[256];

        if (runs < 1 || runs > 256)
                die("runs", EINVAL);
        for (int i = 0; i < runs; i++) {
                double t0 = now_ms();

                (void) run_argv(argv + 1);
                t[i] = now_ms() - t0;
        }
        print_stats("run", t, runs);
        return 0;
}

/* parallel N HOST EXPORT: attaches /dev/nbd0 … nbd(N-1) at once, reads block
 * 0 of each, prints the total time and the daemon's memory, detaches. */
static void print_rss(const char *key, pid_t pid);

/* One bus connection per attach, as 64 separate callers would have: the
 * daemon limits the attaches one caller may have in progress. */
static void wait_all_buses(sd_bus **buses, Pending *p, int n) {
        static struct pollfd pfd[MAX_DEVICES];

        for (;;) {
                int left = 0;

                for (int i = 0; i < n; i++) {
                        int r;

                        while ((r = sd_bus_process(buses[i], NULL)) > 0)
                                ;
                        if (r < 0)
                                die("processing the bus", r);
                        left += !p[i].done;
                        pfd[i] = (struct pollfd) { .fd = sd_bus_get_fd(buses[i]), .events = (short) sd_bus_get_events(buses[i]) };
                }
                if (left == 0)
                        return;
                if (poll(pfd, (nfds_t) n, 1000) < 0 && errno != EINTR)
                        die("poll", errno);
        }
}

static int cmd_parallel(int argc, char **argv) {
        int n = atoi(argv[0]);
        static Pending p[MAX_DEVICES];
        static sd_bus *buses[MAX_DEVICES];
        double t0, t_replies;
        pid_t pid = (pid_t) atoi(argv[3]);

        if (n < 1 || n > MAX_DEVICES)
                die("count", EINVAL);
        for (int i = 0; i < n; i++)
                buses[i] = bus_open();
        print_rss("rss_before", pid);
        t0 = now_ms();
        for (int i = 0; i < n; i++) {
                char dev[32];
                int r;

                snprintf(dev, sizeof(dev), "/dev/nbd%d", i);
                r = attach_async(buses[i], dev, argv[1], argv[2], 1, NULL, on_attach_reply, &p[i]);
                if (r < 0)
                        die("Attach", r);
        }
        wait_all_buses(buses, p, n);
        t_replies = now_ms() - t0;
        for (int i = 0; i < n; i++) {
                if (p[i].error[0]) {
                        fprintf(stderr, "bench-tool: Attach %d: %s\n", i, p[i].error);
                        return 1;
                }
                wait_block0(p[i].device);
        }
        printf("parallel_devices %d\nparallel_replies_ms %.1f\nparallel_total_ms %.1f\n", n, t_replies,
               now_ms() - t0);
        print_rss("rss_attached", pid);
        for (int i = 0; i < n; i++)
                detach(buses[i], p[i].device);
        for (int i = 0; i < n; i++) {
                wait_stopped(p[i].device);
                sd_bus_flush_close_unref(buses[i]);
        }
        return 0;
}

/* Resident memory from smaps: all of it, and the part in thread stacks
 * (glibc's default 8 MiB anonymous mappings), and the thread count. */
static void print_rss(const char *key, pid_t pid) {
        char path[64], line[512];
        long rss = 0, stacks = 0, size = 0, threads = 0, pss = 0, anon = 0;
        bool is_stack = false;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/smaps", (int) pid);
        f = fopen(path, "re");
        if (!f)
                die(path, errno);
        while (fgets(line, sizeof(line), f)) {
                unsigned long a, b;
                long v;

                if (isxdigit((unsigned char) line[0]) && !isupper((unsigned char) line[0]) &&
                    sscanf(line, "%lx-%lx ", &a, &b) == 2) {
                        size = (long) ((b - a) / 1024);
                        /* glibc's default thread stack: 8 MiB less the
                         * guard page, anonymous (no path). */
                        is_stack = (size == 8188 || size == 8192) && !strchr(line, '/') && strstr(line, "rw-p");
                } else if (sscanf(line, "Rss: %ld kB", &v) == 1) {
                        rss += v;
                        if (is_stack)
                                stacks += v;
                } else if (sscanf(line, "Pss: %ld kB", &v) == 1)
                        pss += v;
                else if (sscanf(line, "Anonymous: %ld kB", &v) == 1)
                        anon += v;
        }
        fclose(f);
        snprintf(path, sizeof(path), "/proc/%d/status", (int) pid);
        f = fopen(path, "re");
        if (f) {
                while (fgets(line, sizeof(line), f))
                        (void) sscanf(line, "Threads: %ld", &threads);
                fclose(f);
        }
        printf("%s_kib %ld\n%s_stacks_kib %ld\n%s_threads %ld\n%s_pss_kib %ld\n%s_anon_kib %ld\n",
               key, rss, key, stacks, key, threads, key, pss, key, anon);
}

int main(int argc, char **argv) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (argc >= 7 && strcmp(argv[1], "latency-bus") == 0)
                return cmd_latency_bus(argc - 2, argv + 2);
        if (argc >= 6 && strcmp(argv[1], "latency-cmd") == 0)
                return cmd_latency_cmd(argc - 2, argv + 2);
        if (argc == 4 && strcmp(argv[1], "read4k") == 0)
                return cmd_read4k(argc - 2, argv + 2);
        if (argc >= 4 && strcmp(argv[1], "spawn") == 0)
                return cmd_spawn(argc - 2, argv + 2);
        if (argc == 6 && strcmp(argv[1], "parallel") == 0)
                return cmd_parallel(argc - 2, argv + 2);
        if (argc == 3 && strcmp(argv[1], "rss") == 0) {
                print_rss("rss", (pid_t) atoi(argv[2]));
                return 0;
        }
        fprintf(stderr,
                "usage: bench-tool latency-bus RUNS DEVICE HOST EXPORT CONNECTIONS\n"
                "       bench-tool latency-cmd RUNS DEV ATTACH-COMMAND... -- DETACH-COMMAND...\n"
                "       bench-tool read4k RUNS DEV\n"
                "       bench-tool spawn RUNS COMMAND...\n"
                "       bench-tool parallel N HOST EXPORT DAEMON-PID\n"
                "       bench-tool rss PID\n");
        return 2;
}
