/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite's fault and leak-cycle cases, run as root inside the QEMU
 * guest: the server killed, the network cut and the daemon stopped while a
 * writer is busy on /dev/nbdN (each must end cleanly, with no synced data
 * lost), then 1000 attach/detach cycles with the daemon's fds, threads and
 * RSS sampled every 100. */

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "guest-util.h"
#include "loopback.h"
#include "proc-count.h"

#define EXPORT        "disk"

#define KiB 1024u

/* The disk behind every fault case: a known pattern synced first, then a
 * writer working through the rest while the fault happens. */
#define DISK_BYTES    (64u * MiB)
#define KNOWN_BYTES   (4u * MiB)
#define CHUNK         (256u * KiB)
#define SYNC_EVERY    4u                        /* chunks between fdatasync() */
#define N_CHUNKS      ((DISK_BYTES - KNOWN_BYTES) / CHUNK)
#define FAULT_AFTER   (2u * MiB / CHUNK)        /* synced chunks before the fault */
#define IO_TIMEOUT_S  3u                        /* the attach's `timeout` option */

/* The private network for the cut: the server lives in its own namespace
 * behind a veth pair with addresses that exist only in this guest. */
#define NETNS         "nbdlink-fault"
#define VETH_HOST     "nbdf0"
#define VETH_PEER     "nbdf1"
#define ADDR_HOST     "10.213.0.1"
#define ADDR_PEER     "10.213.0.2"

#define LEAK_CYCLES   1000
#define LEAK_EVERY    100

static GDBusConnection *bus;
static GSubprocess *daemon_proc;
static const char *daemon_path;

/* ---- small helpers ---------------------------------------------------- */

/* The kernel's side of "cleaned up": no receiving task, no size. */
static void wait_device_clean(const char *name, double within_ms) {
        double deadline = now_ms() + within_ms;

        while (device_running(name) || device_size(name) != 0) {
                if (now_ms() > deadline)
                        g_error("%s not cleaned up: pid %s, size %" G_GUINT64_FORMAT, name,
                                device_running(name) ? "present" : "gone", device_size(name));
                g_usleep(10 * 1000);
        }
}

/* ---- servers ---------------------------------------------------------- */

typedef struct {
        GSubprocess *proc;
        const char *addr;
        guint16 port;
} Server;

/* nbdkit serving `file` (or a memory disk when file is NULL) on addr,
 * inside the fault namespace when netns is set. */
static void server_start(Server *s, const char *addr, gboolean netns, const char *file) {
        g_autofree char *port = NULL, *file_arg = NULL;
        GPtrArray *argv = g_ptr_array_new();

        s->addr = addr;
        s->port = loopback_free_port();
        port = g_strdup_printf("%u", s->port);
        if (netns) {
                g_ptr_array_add(argv, (char *) "ip");
                g_ptr_array_add(argv, (char *) "netns");
                g_ptr_array_add(argv, (char *) "exec");
                g_ptr_array_add(argv, (char *) NETNS);
        }
        g_ptr_array_add(argv, (char *) "nbdkit");
        g_ptr_array_add(argv, (char *) "--foreground");
        g_ptr_array_add(argv, (char *) "--exit-with-parent");
        g_ptr_array_add(argv, (char *) "--ipaddr");
        g_ptr_array_add(argv, (char *) addr);
        g_ptr_array_add(argv, (char *) "--port");
        g_ptr_array_add(argv, port);
        if (file) {
                file_arg = g_strconcat("file=", file, NULL);
                g_ptr_array_add(argv, (char *) "file");
                g_ptr_array_add(argv, file_arg);
        } else {
                g_ptr_array_add(argv, (char *) "memory");
                g_ptr_array_add(argv, (char *) "64M");
        }
        g_ptr_array_add(argv, NULL);
        s->proc = nbdkit_start_listening((const char *const *) argv->pdata, addr, s->port, 20000);
        g_ptr_array_free(argv, TRUE);
}

/* A tmpfs file (the guest's /tmp) outlives any nbdkit serving it. */
static char *backing_file_new(void) {
        g_autoptr(GError) error = NULL;
        char *path = NULL;
        int fd = g_file_open_tmp("nbdlink-fault-XXXXXX.img", &path, &error);

        g_assert_no_error(error);
        g_assert_cmpint(ftruncate(fd, DISK_BYTES), ==, 0);
        close(fd);
        return path;
}

/* ---- the daemon and its bus ------------------------------------------- */

static void daemon_ready(void) {
        if (!daemon_proc)
                daemon_proc = daemon_start_on_bus(bus, daemon_path);
}

static pid_t daemon_pid(void) {
        const char *id = g_subprocess_get_identifier(daemon_proc);

        g_assert_nonnull(id);
        return (pid_t) atoi(id);
}

/* AttachWithOptions with an optional kernel I/O timeout (`io-timeout`, and
 * the same `timeout` for connect and handshake); returns /dev/nbdN and the
 * object path. */
static char *attach(const Server *s, guint timeout_s, char **ret_object) {
        g_autofree char *host = g_strdup_printf("%s:%u", s->addr, s->port);
        g_autoptr(GError) error = NULL;
        GVariantBuilder b;
        char *dev;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        /* These are the faults of the ioctl path, where a worker waits in
         * NBD_DO_IT and its end tells what happened; a device the kernel
         * runs through netlink (the default) is vm-persist's. */
        g_variant_builder_add(&b, "{sv}", "kernel-interface", g_variant_new_string("ioctl"));
        if (timeout_s) {
                g_variant_builder_add(&b, "{sv}", "timeout", g_variant_new_uint32(timeout_s));
                g_variant_builder_add(&b, "{sv}", "io-timeout", g_variant_new_uint32(timeout_s));
        }
        dev = attach_call(bus, "", host, EXPORT, g_variant_builder_end(&b), NULL, ret_object, &error);
        g_assert_no_error(error);
        g_assert_true(device_running(dev));
        return dev;
}

/* The object must be gone from the daemon's tree, not merely unannounced. */
static void assert_object_gone(const char *object) {
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, object,
                        "org.freedesktop.DBus.Properties", "Get",
                        g_variant_new("(ss)", DEVICE_IFACE, "State"), NULL,
                        G_DBUS_CALL_FLAGS_NONE, 30000, NULL, &error);
        g_autofree char *remote = NULL;

        g_assert_null(r);
        g_assert_nonnull(error);
        remote = g_dbus_error_get_remote_error(error);
        g_test_message("%s after the fault: %s", object, remote);
        g_assert_true(g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownObject") == 0 ||
                      g_strcmp0(remote, "org.freedesktop.DBus.Error.UnknownInterface") == 0 ||
                      g_strcmp0(remote, "org.freedesktop.DBus.Error.ServiceUnknown") == 0);
}

/* ---- signals ---------------------------------------------------------- */

static gboolean wake(gpointer data) {
        return G_SOURCE_CONTINUE;
}

/* Runs the main loop until done() says so; fails the test after within_ms. */
static void wait_for(gboolean (*done)(gpointer), gpointer data, double within_ms, const char *what) {
        double deadline = now_ms() + within_ms;
        guint tick = g_timeout_add(20, wake, NULL);

        while (!done(data)) {
                if (now_ms() > deadline)
                        g_error("%s did not happen within %.0f s", what, within_ms / 1000);
                g_main_context_iteration(NULL, TRUE);
        }
        g_source_remove(tick);
}

/* ---- the writer ------------------------------------------------------- */

typedef struct {
        const char *dev;
        uint64_t seed;
        pthread_t thread;
        /* written by the writer, read by the test */
        gint synced;            /* chunks known to be on the server */
        gint attempted;         /* chunks whose write was started */
        gint finished;          /* the thread is about to return */
        gint wrapped;           /* reached the end of the disk before the fault */
        int error;              /* errno of the first failure */
        double error_ms;
} Writer;

static uint64_t chunk_offset(guint i) {
        return KNOWN_BYTES + (uint64_t) i * CHUNK;
}

/* O_DIRECT writes, chunk after chunk, with an fdatasync() every few: each
 * completed sync moves the mark below which nothing may be lost. Past the
 * end it keeps flushing, so that I/O is still in flight when the fault
 * comes. Ends at the first error. */
static void *writer_thread(void *data) {
        Writer *w = data;
        g_autofree uint8_t *buf = alloc_aligned(CHUNK);
        int fd = open(w->dev, O_WRONLY | O_DIRECT | O_CLOEXEC);
        guint i = 0;

        if (fd < 0) {
                w->error = errno;
                goto out;
        }
        for (;;) {
                if (i < N_CHUNKS) {
                        fill_pattern(buf, CHUNK, w->seed, i);
                        g_atomic_int_set(&w->attempted, i + 1);
                        if (pwrite(fd, buf, CHUNK, chunk_offset(i)) != (ssize_t) CHUNK) {
                                w->error = errno ?: EIO;
                                break;
                        }
                        i++;
                } else
                        g_atomic_int_set(&w->wrapped, 1);
                if (i % SYNC_EVERY == 0 || i == N_CHUNKS) {
                        if (fdatasync(fd) < 0) {
                                w->error = errno;
                                break;
                        }
                        g_atomic_int_set(&w->synced, i);
                }
        }
out:
        w->error_ms = now_ms();
        if (fd >= 0)
                close(fd);
        g_atomic_int_set(&w->finished, 1);
        return NULL;
}

static void writer_start(Writer *w, const char *dev, uint64_t seed) {
        *w = (Writer) { .dev = dev, .seed = seed };
        g_assert_cmpint(pthread_create(&w->thread, NULL, writer_thread, w), ==, 0);
}

static gboolean writer_progressed(gpointer data) {
        Writer *w = data;

        return g_atomic_int_get(&w->synced) >= (gint) FAULT_AFTER || g_atomic_int_get(&w->finished);
}

/* ---- data ------------------------------------------------------------- */

/* The pattern every fault case writes and syncs before anything else. */
static void write_known(const char *dev, uint64_t seed) {
        g_autofree uint8_t *buf = alloc_aligned(MiB);
        int fd = open(dev, O_WRONLY | O_DIRECT | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        for (guint i = 0; i < KNOWN_BYTES / MiB; i++) {
                fill_pattern(buf, MiB, ~seed, i);
                g_assert_cmpint(pwrite(fd, buf, MiB, (off_t) i * MiB), ==, MiB);
        }
        g_assert_cmpint(fsync(fd), ==, 0);
        close(fd);
}

/* Re-reads through a fresh attach: the known pattern and every chunk the
 * writer saw synced must be there, byte for byte. */
static void verify(const char *dev, uint64_t seed, guint synced) {
        g_autofree uint8_t *buf = alloc_aligned(MiB), *want = alloc_aligned(MiB);
        int fd = open(dev, O_RDONLY | O_DIRECT | O_CLOEXEC);

        g_assert_cmpint(fd, >=, 0);
        for (guint i = 0; i < KNOWN_BYTES / MiB; i++) {
                fill_pattern(want, MiB, ~seed, i);
                g_assert_cmpint(pread(fd, buf, MiB, (off_t) i * MiB), ==, MiB);
                if (memcmp(buf, want, MiB) != 0)
                        g_error("%s: the known pattern's MiB %u was lost", dev, i);
        }
        for (guint i = 0; i < synced; i++) {
                fill_pattern(want, CHUNK, seed, i);
                g_assert_cmpint(pread(fd, buf, CHUNK, chunk_offset(i)), ==, CHUNK);
                if (memcmp(buf, want, CHUNK) != 0)
                        g_error("%s: chunk %u of %u synced ones was lost", dev, i, synced);
        }
        close(fd);
        g_test_message("%s: known pattern and %u synced chunks (%u KiB) intact",
                       dev, synced, synced * (CHUNK / KiB));
}

/* ---- the fault cases -------------------------------------------------- */

typedef struct {
        DeviceWatch *watch;
        Writer *writer;
        gboolean want_signal;
} Ending;

static gboolean ended(gpointer data) {
        Ending *e = data;

        return (!e->want_signal || (e->watch->disconnected && e->watch->removed)) &&
               g_atomic_int_get(&e->writer->finished);
}

typedef enum {
        FAULT_KILL_SERVER,
        FAULT_CUT_NETWORK,
        FAULT_SIGTERM,
} Fault;

typedef struct {
        const char *name;
        const char *error_name;         /* of Disconnected */
        double io_ended_ms;             /* from the fault to the writer's error */
} Outcome;

static Outcome outcomes[3];

static void netns_setup(void) {
        const char *modprobe[] = { "modprobe", "veth", NULL };
        const char *add_ns[] = { "ip", "netns", "add", NETNS, NULL };
        const char *add_link[] = { "ip", "link", "add", VETH_HOST, "type", "veth",
                                   "peer", "name", VETH_PEER, "netns", NETNS, NULL };
        const char *addr_host[] = { "ip", "addr", "add", ADDR_HOST "/30", "dev", VETH_HOST, NULL };
        const char *up_host[] = { "ip", "link", "set", VETH_HOST, "up", NULL };
        const char *addr_peer[] = { "ip", "-n", NETNS, "addr", "add", ADDR_PEER "/30", "dev", VETH_PEER, NULL };
        const char *up_peer[] = { "ip", "-n", NETNS, "link", "set", VETH_PEER, "up", NULL };
        const char *up_lo[] = { "ip", "-n", NETNS, "link", "set", "lo", "up", NULL };

        run_ok(modprobe);
        run_ok(add_ns);
        run_ok(add_link);
        run_ok(addr_host);
        run_ok(up_host);
        run_ok(addr_peer);
        run_ok(up_peer);
        run_ok(up_lo);
}

static void netns_teardown(void) {
        const char *del[] = { "ip", "netns", "del", NETNS, NULL };

        /* The peer end goes with the namespace, and its pair with it. */
        run_ok(del);
}

static void link_set(gboolean up) {
        const char *argv[] = { "ip", "link", "set", VETH_HOST, up ? "up" : "down", NULL };

        run_ok(argv);
}

static void run_fault(Fault fault, const char *expect_error) {
        g_autofree char *file = backing_file_new();
        g_autofree char *object = NULL, *dev = NULL, *dev2 = NULL;
        gboolean netns = fault == FAULT_CUT_NETWORK;
        const char *addr = netns ? ADDR_PEER : "127.0.0.1";
        uint64_t seed = ((uint64_t) g_random_int() << 32) | g_random_int();
        Outcome *out = &outcomes[fault];
        Server server = { 0 };
        Ending ending;
        DeviceWatch watch;
        Writer writer;
        double t_fault;
        guint synced;

        daemon_ready();
        if (netns)
                netns_setup();
        server_start(&server, addr, netns, file);
        dev = attach(&server, IO_TIMEOUT_S, &object);
        write_known(dev, seed);

        device_watch_start(&watch, bus, object);
        writer_start(&writer, dev, seed);
        wait_for(writer_progressed, &writer, 60000, "the writer's first syncs");
        g_assert_false(g_atomic_int_get(&writer.finished));

        t_fault = now_ms();
        switch (fault) {
        case FAULT_KILL_SERVER:
                child_kill(&server.proc);
                break;
        case FAULT_CUT_NETWORK:
                link_set(FALSE);
                break;
        case FAULT_SIGTERM:
                g_subprocess_send_signal(daemon_proc, SIGTERM);
                break;
        default:
                g_assert_not_reached();
        }

        /* The writer must fail, never hang: within the kernel's timeout
         * (plus TCG's slowness) when the network is cut, at once otherwise. */
        ending = (Ending) { .watch = &watch, .writer = &writer, .want_signal = TRUE };
        wait_for(ended, &ending, (IO_TIMEOUT_S + 30) * 1000.0, "the fault's end (writer error, Disconnected, InterfacesRemoved)");
        g_assert_cmpint(pthread_join(writer.thread, NULL), ==, 0);
        out->io_ended_ms = writer.error_ms - t_fault;
        synced = g_atomic_int_get(&writer.synced);
        g_test_message("writer: %s after %.0f ms; %u chunks synced, %d attempted%s",
                       g_strerror(writer.error), out->io_ended_ms, synced,
                       g_atomic_int_get(&writer.attempted),
                       g_atomic_int_get(&writer.wrapped) ? ", reached the end" : "");
        g_assert_cmpint(writer.error, ==, EIO);
        if (fault == FAULT_CUT_NETWORK) {
                /* "timeout-ish": the kernel's timeout ended it (not before
                 * it could fire), within a few of them. */
                g_assert_cmpfloat(out->io_ended_ms, >=, (IO_TIMEOUT_S - 1) * 1000.0);
                g_assert_cmpfloat(out->io_ended_ms, <, 4 * IO_TIMEOUT_S * 1000.0);
        }

        g_assert_true(watch.disconnected);
        g_assert_true(watch.removed);
        g_assert_cmpstr(watch.error_name, ==, expect_error);
        g_assert_nonnull(strstr(watch.message, dev_name(dev)));
        out->error_name = expect_error;
        device_watch_done(&watch);
        wait_device_clean(dev_name(dev), 30000);

        if (fault == FAULT_SIGTERM) {
                child_wait_exit_0(&daemon_proc);
                daemon_proc = daemon_start_on_bus(bus, daemon_path);
        }
        /* After SIGTERM: the new daemon must not bring it back either. */
        assert_object_gone(object);

        /* Back to a working path to the same bytes. */
        switch (fault) {
        case FAULT_KILL_SERVER:
                server_start(&server, addr, netns, file);
                break;
        case FAULT_CUT_NETWORK:
                link_set(TRUE);
                break;
        case FAULT_SIGTERM:
        default:
                break;
        }
        dev2 = attach(&server, 0, NULL);
        verify(dev2, seed, synced);
        detach_call(bus, dev2);
        wait_device_clean(dev_name(dev2), 30000);

        child_kill(&server.proc);
        if (netns)
                netns_teardown();
        g_unlink(file);
}

static void test_kill_server(void) {
        outcomes[FAULT_KILL_SERVER].name = "nbdkit SIGKILL mid-I/O";
        run_fault(FAULT_KILL_SERVER, ERROR_PREFIX "Failed");
}

static void test_cut_network(void) {
        outcomes[FAULT_CUT_NETWORK].name = "veth down > timeout";
        /* NBD_DO_IT returns 0 as when the server hangs up; the socket's
         * TCP state is what says the server fell silent. */
        run_fault(FAULT_CUT_NETWORK, ERROR_PREFIX "TimedOut");
}

static void test_sigterm(void) {
        outcomes[FAULT_SIGTERM].name = "nbdlinkd SIGTERM mid-I/O";
        run_fault(FAULT_SIGTERM, ERROR_PREFIX "Cancelled");
}

/* ---- leak cycles ------------------------------------------------------ */

/* What is checked is RssAnon, the heap and the stacks, where a leak
 * grows; VmRSS also counts pages of shared libraries, which grows once
 * when a path runs for the first time (printed, not checked). */
typedef struct {
        guint fds, threads, rss_kb, anon_kb;
} Sample;

static guint status_kb(pid_t pid, const char *key) {
        g_autofree char *path = g_strdup_printf("/proc/%d/status", (int) pid);
        g_autofree char *text = NULL, *needle = g_strdup_printf("\n%s:", key);
        const char *line;

        g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
        line = strstr(text, needle);
        g_assert_nonnull(line);
        return (guint) g_ascii_strtoull(line + strlen(needle), NULL, 10);
}

static Sample sample(pid_t pid) {
        /* One round trip: the daemon has finished with the last Detach's
         * event (its worker joined) before we look. */
        g_assert_true(bus_name_has_owner(bus));
        return (Sample) { proc_count_fds(pid), proc_count_threads(pid),
                          status_kb(pid, "VmRSS"), status_kb(pid, "RssAnon") };
}

/* A short-lived detach helper thread may still be on its way out. */
static Sample sample_settled(pid_t pid, const Sample *want) {
        Sample s = sample(pid);

        for (int i = 0; want && i < 100 && (s.fds != want->fds || s.threads != want->threads); i++) {
                g_usleep(10 * 1000);
                s = sample(pid);
        }
        return s;
}

static Sample leak_samples[LEAK_CYCLES / LEAK_EVERY + 1];

static void test_leak_cycles(void) {
        Server server = { 0 };
        Sample first = { 0 };
        pid_t pid;
        double t0, t100 = 0, attach_ms = 0, detach_ms = 0;

        daemon_ready();
        pid = daemon_pid();
        server_start(&server, "127.0.0.1", FALSE, NULL);

        leak_samples[0] = sample_settled(pid, NULL);
        g_print("# cycle 0: fds %u threads %u rss %u kB (anonymous %u kB)\n",
                leak_samples[0].fds, leak_samples[0].threads, leak_samples[0].rss_kb, leak_samples[0].anon_kb);
        t0 = now_ms();
        for (guint cycle = 1; cycle <= LEAK_CYCLES; cycle++) {
                double ta = now_ms();
                g_autofree char *dev = attach(&server, 0, NULL);
                double td = now_ms();

                /* Detach answers once the worker has ended and the device
                 * is free again: no waiting of our own. */
                detach_call(bus, dev);
                attach_ms += td - ta;
                detach_ms += now_ms() - td;
                if (cycle % LEAK_EVERY != 0)
                        continue;
                g_print("# cycles %u-%u: attach %.1f ms, detach %.1f ms on average\n",
                        cycle - LEAK_EVERY + 1, cycle, attach_ms / LEAK_EVERY, detach_ms / LEAK_EVERY);
                attach_ms = detach_ms = 0;

                /* Cycle 100's sample is the reference for the rest: it must
                 * not catch a descriptor or thread on its way out, so it
                 * waits for cycle 0's counts too (and keeps what it finds
                 * when they do not come back: that is a leak). */
                Sample s = sample_settled(pid, cycle == LEAK_EVERY ? &leak_samples[0] : &first);
                if (cycle == LEAK_EVERY) {
                        first = s;
                        t100 = now_ms() - t0;
                        g_print("# %u cycles took %.1f s\n", LEAK_EVERY, t100 / 1000);
                }
                leak_samples[cycle / LEAK_EVERY] = s;
                g_print("# cycle %u: fds %u threads %u rss %u kB (anonymous %u kB)\n", cycle, s.fds, s.threads,
                        s.rss_kb, s.anon_kb);
        }
        g_print("# %u cycles took %.1f s\n", LEAK_CYCLES, (now_ms() - t0) / 1000);

        for (guint i = 2; i <= LEAK_CYCLES / LEAK_EVERY; i++) {
                g_assert_cmpuint(leak_samples[i].fds, ==, first.fds);
                g_assert_cmpuint(leak_samples[i].threads, ==, first.threads);
        }
        g_assert_cmpuint(leak_samples[LEAK_CYCLES / LEAK_EVERY].anon_kb, <, first.anon_kb + 1024);
        child_kill(&server.proc);
}

static void print_outcomes(void) {
        for (guint i = 0; i < G_N_ELEMENTS(outcomes); i++)
                if (outcomes[i].error_name)
                        g_print("# fault %s: Disconnected(%s), writer EIO %.0f ms after the fault\n",
                                outcomes[i].name, outcomes[i].error_name, outcomes[i].io_ended_ms);
}

int main(int argc, char **argv) {
        int r;

        g_test_init(&argc, &argv, NULL);

        guest_require_root();
        daemon_path = guest_daemon_path();

        bus = guest_system_bus();

        g_test_add_func("/vm/faults/kill-server", test_kill_server);
        g_test_add_func("/vm/faults/cut-network", test_cut_network);
        g_test_add_func("/vm/faults/sigterm", test_sigterm);
        g_test_add_func("/vm/leaks/attach-detach-cycles", test_leak_cycles);
        r = g_test_run();

        print_outcomes();
        child_kill(&daemon_proc);
        g_object_unref(bus);
        return r;
}
