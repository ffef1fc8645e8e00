/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The vm suite against the disks people have: partitioned images (MBR, GPT)
 * behind qemu-nbd, nbd-server and nbdkit, a server that caps its request
 * size, a server that ignores NBD_CMD_DISC, the read-only flag a user
 * left on a device, and TCP keepalive on the kernel's socket. Each case checks what the kernel shows the moment
 * Attach or Detach returns, and says so in TAP comments. */

#include <errno.h>
#include <fcntl.h>
#include <gio/gio.h>
#include <glib.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest-util.h"
#include "loopback.h"
#include "servers.h"

#define EXPORT          "disk"
#define IMAGE_BYTES     (64u * MiB)
#define BLOCK           4096u           /* pattern unit, and O_DIRECT alignment for any block size */
#define WINDOW          (64u * 1024)    /* what is read back per place */
#define DETACH_LIMIT_MS 15000.0         /* what the daemon promises */
#define DETACH_WAIT_MS  20000           /* how long we wait for it to keep its promise */
#define GONE_WAIT_MS    2000.0          /* the device's pid may outlive the reply by a moment */
#define DEAF_BYTES      (16u * MiB)

static GDBusConnection *bus;
static GSubprocess *daemon_proc;
static const char *deaf_server_path;

/* ---- small helpers ------------------------------------------------------ */

/* The number in a sysfs file; FALSE when the file is not there. */
static gboolean sysfs_u64(guint64 *ret, const char *format, ...) G_GNUC_PRINTF(2, 3);
static gboolean sysfs_u64(guint64 *ret, const char *format, ...) {
        g_autofree char *path = NULL, *text = NULL;
        va_list ap;

        va_start(ap, format);
        path = g_strdup_vprintf(format, ap);
        va_end(ap);
        if (!g_file_get_contents(path, &text, NULL, NULL))
                return FALSE;
        *ret = g_ascii_strtoull(text, NULL, 10);
        return TRUE;
}

static guint64 logical_block_size(const char *name) {
        guint64 v = 0;

        if (!sysfs_u64(&v, "/sys/block/%s/queue/logical_block_size", name))
                g_error("/sys/block/%s/queue/logical_block_size is missing", name);
        return v;
}

static gint compare_names(gconstpointer a, gconstpointer b) {
        return g_strcmp0(*(const char *const *) a, *(const char *const *) b);
}

/* The partitions the kernel made of nbdN: "nbdNp1 start S size Z, ...", or
 * "none". */
static char *partitions_seen(const char *name) {
        g_autofree char *dir_path = g_strdup_printf("/sys/block/%s", name);
        g_autofree char *prefix = g_strdup_printf("%sp", name);
        g_autoptr(GDir) dir = g_dir_open(dir_path, 0, NULL);
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        GString *s = g_string_new(NULL);
        const char *e;

        while (dir && (e = g_dir_read_name(dir)))
                if (g_str_has_prefix(e, prefix))
                        g_ptr_array_add(names, g_strdup(e));
        g_ptr_array_sort(names, compare_names);
        for (guint i = 0; i < names->len; i++) {
                const char *p = names->pdata[i];
                guint64 start = 0, size = 0;

                (void) sysfs_u64(&start, "/sys/block/%s/%s/start", name, p);
                (void) sysfs_u64(&size, "/sys/block/%s/%s/size", name, p);
                g_string_append_printf(s, "%s%s start %" G_GUINT64_FORMAT " size %" G_GUINT64_FORMAT,
                                       i ? ", " : "", p, start, size);
        }
        if (s->len == 0)
                g_string_append(s, "none");
        return g_string_free(s, FALSE);
}

/* One O_DIRECT pread or pwrite of all of buf at off (a write is followed by
 * fsync); 0 or -errno, -EIO for a short transfer. Failures are results
 * here, not reasons to stop. */
static int direct_io(const char *path, gboolean writing, void *buf, size_t len, off_t off) {
        int fd = open(path, (writing ? O_WRONLY : O_RDONLY) | O_DIRECT | O_CLOEXEC);
        ssize_t n;
        int r = 0;

        if (fd < 0)
                return -errno;
        n = writing ? pwrite(fd, buf, len, off) : pread(fd, buf, len, off);
        if (n < 0)
                r = -errno;
        else if ((size_t) n != len)
                r = -EIO;
        if (r == 0 && writing && fsync(fd) < 0)
                r = -errno;
        close(fd);
        return r;
}

/* Deterministic data: block i of the stream `seed`, BLOCK bytes each, so
 * that any window can be regenerated and a wrong offset shows. */
static void fill_blocks(uint8_t *buf, size_t len, uint64_t seed, uint64_t first_block) {
        for (size_t i = 0; i < len / BLOCK; i++)
                fill_pattern(buf + i * BLOCK, BLOCK, seed, first_block + i);
}

/* Writes len bytes of stream `seed` at off and reads them back, both with
 * O_DIRECT; TRUE when the checksums match. Says what went wrong. */
static gboolean round_trip(const char *dev, size_t len, off_t off, uint64_t seed) {
        g_autofree uint8_t *out = alloc_aligned(len), *in = alloc_aligned(len);
        g_autofree char *wrote = NULL, *came_back = NULL;
        int r;

        fill_blocks(out, len, seed, (uint64_t) off / BLOCK);
        wrote = g_compute_checksum_for_data(G_CHECKSUM_SHA256, out, len);
        r = direct_io(dev, TRUE, out, len, off);
        if (r < 0) {
                g_test_message("%s: O_DIRECT write of %zu KiB at %jd KiB failed: %s", dev, len / 1024,
                               (intmax_t) off / 1024, g_strerror(-r));
                return FALSE;
        }
        memset(in, 0, len);
        r = direct_io(dev, FALSE, in, len, off);
        if (r < 0) {
                g_test_message("%s: O_DIRECT read of %zu KiB at %jd KiB failed: %s", dev, len / 1024,
                               (intmax_t) off / 1024, g_strerror(-r));
                return FALSE;
        }
        came_back = g_compute_checksum_for_data(G_CHECKSUM_SHA256, in, len);
        if (!g_str_equal(came_back, wrote)) {
                g_test_message("%s: %zu KiB at %jd KiB came back different (sha256 %.16s… written, %.16s… read)",
                               dev, len / 1024, (intmax_t) off / 1024, wrote, came_back);
                return FALSE;
        }
        return TRUE;
}

static gboolean device_object_exists(const char *name) {
        g_autofree char *path = g_strconcat(MANAGER_PATH "/devices/", name, NULL);
        g_autoptr(GVariant) r = g_dbus_connection_call_sync(bus, BUS_NAME, path,
                        "org.freedesktop.DBus.Properties", "GetAll", g_variant_new("(s)", DEVICE_IFACE),
                        NULL, G_DBUS_CALL_FLAGS_NONE, -1, NULL, NULL);
        return r != NULL;
}

/* Attach(device, 127.0.0.1:port, "disk") or AttachWithOptions; on failure
 * the test is marked failed, the error logged, and NULL returned. */
static char *attach_to(const char *device, guint16 port, GVariant *options, const char *what) {
        g_autofree char *host = g_strdup_printf("127.0.0.1:%u", port);
        g_autoptr(GError) error = NULL;
        char *dev = attach_call(bus, device, host, EXPORT, options, NULL, NULL, &error);

        if (!dev) {
                g_dbus_error_strip_remote_error(error);
                g_test_message("%s: Attach(%s) failed: %s", what, device, error->message);
                g_test_fail();
        }
        return dev;
}

/* A device nobody has used in this boot yet: no partitions left over from
 * an earlier case can stand in for the ones expected. */
static void require_unused(const char *name) {
        g_autofree char *parts = partitions_seen(name);

        if (device_running(name) || !g_str_equal(parts, "none"))
                g_error("%s is not fresh (running %d, partitions %s)", name, device_running(name), parts);
}

static TestServer *nbdkit_memory(void) {
        return test_nbdkit_start("memory", "64M", NULL);
}

/* ---- 1. partitioned images ------------------------------------------- */

typedef struct Part {
        guint64 start, size;    /* 512-byte sectors */
} Part;

typedef struct Table {
        const char *name;       /* for messages and the file name */
        const char *label;      /* sfdisk's */
        Part parts[2];
        uint64_t seed;          /* partition k holds stream seed + k */
        char *image;
} Table;

static Table tables[] = {
        { "mbr", "dos", { { 2048, 16384 }, { 20480, 24576 } }, 0x3b5d0000, NULL },
        { "gpt", "gpt", { { 4096, 12288 }, { 18432, 32768 } }, 0x69770000, NULL },
};

/* Runs argv with input on stdin; fails the test unless it exits 0. */
static char *run_with_input(const char *const *argv, const char *input) {
        g_autoptr(GSubprocess) p = child_spawn(G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                               G_SUBPROCESS_FLAGS_STDERR_PIPE, argv);
        g_autoptr(GError) error = NULL;
        g_autofree char *err = NULL;
        char *out = NULL;

        g_subprocess_communicate_utf8(p, input, NULL, &out, &err, &error);
        g_assert_no_error(error);
        if (!g_subprocess_get_successful(p))
                g_error("%s failed (status %d): %s%s", argv[0], g_subprocess_get_status(p), out ? out : "",
                        err ? err : "");
        return out;
}

/* The partitions `sfdisk --dump` reads back from an image, in order. */
static guint table_read_back(const char *image, Part *parts, guint max) {
        const char *argv[] = { "sfdisk", "--dump", image, NULL };
        g_autofree char *out = run_capture(argv);
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        guint n = 0;

        /* "IMAGE1 : start=        2048, size=       16384, type=83" */
        for (char **l = lines; *l; l++) {
                const char *p = strstr(*l, " : start=");

                if (!p)
                        continue;
                if (n == max || sscanf(p, " : start= %" SCNu64 ", size= %" SCNu64, &parts[n].start,
                                       &parts[n].size) != 2)
                        g_error("cannot make sense of sfdisk's line \"%s\"", *l);
                n++;
        }
        return n;
}

/* A 64 MiB raw image with t's table written by sfdisk, and in each
 * partition its own stream of blocks. */
static void image_make(Table *t, const char *dir) {
        g_autofree char *script = NULL, *ignored = NULL;
        g_autofree uint8_t *buf = alloc_aligned(MiB);
        Part back[4];
        int fd;

        t->image = g_strdup_printf("%s/%s.img", dir, t->name);
        fd = open(t->image, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0 || ftruncate(fd, IMAGE_BYTES) < 0)
                g_error("cannot create %s: %s", t->image, g_strerror(errno));
        close(fd);

        script = g_strdup_printf("label: %s\n"
                                 "start=%" G_GUINT64_FORMAT ", size=%" G_GUINT64_FORMAT "\n"
                                 "start=%" G_GUINT64_FORMAT ", size=%" G_GUINT64_FORMAT "\n",
                                 t->label, t->parts[0].start, t->parts[0].size, t->parts[1].start, t->parts[1].size);
        {
                const char *argv[] = { "sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", t->image, NULL };
                ignored = run_with_input(argv, script);
        }
        /* The table as sfdisk wrote it is what the kernel must show. */
        g_assert_cmpuint(table_read_back(t->image, back, G_N_ELEMENTS(back)), ==, 2);
        for (guint k = 0; k < 2; k++) {
                g_assert_cmpuint(back[k].start, ==, t->parts[k].start);
                g_assert_cmpuint(back[k].size, ==, t->parts[k].size);
        }

        fd = open(t->image, O_WRONLY | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        for (guint k = 0; k < 2; k++) {
                guint64 base = t->parts[k].start * 512, bytes = t->parts[k].size * 512;

                for (guint64 off = 0; off < bytes; off += MiB) {
                        size_t n = MIN(MiB, bytes - off);

                        fill_blocks(buf, n, t->seed + k, off / BLOCK);
                        if (pwrite(fd, buf, n, (off_t) (base + off)) != (ssize_t) n)
                                g_error("cannot write %s: %s", t->image, g_strerror(errno));
                }
        }
        g_assert_cmpint(close(fd), ==, 0);
        g_test_message("%s: %s table, p1 start %" G_GUINT64_FORMAT " size %" G_GUINT64_FORMAT
                       ", p2 start %" G_GUINT64_FORMAT " size %" G_GUINT64_FORMAT " (512-byte sectors)",
                       t->image, t->name, t->parts[0].start, t->parts[0].size, t->parts[1].start, t->parts[1].size);
}

/* Reads a WINDOW at off (bytes into the partition) from path, which is the
 * partition's node, or the whole disk when base is its start in bytes;
 * TRUE when it holds the partition's stream. */
static gboolean window_matches(const char *path, guint64 base, guint64 off, uint64_t seed, const char *what) {
        g_autofree uint8_t *got = alloc_aligned(WINDOW), *want = alloc_aligned(WINDOW);
        int r = direct_io(path, FALSE, got, WINDOW, (off_t) (base + off));

        if (r < 0) {
                g_test_message("%s: reading %s at %" G_GUINT64_FORMAT " KiB failed: %s", what, path,
                               (base + off) / 1024, g_strerror(-r));
                return FALSE;
        }
        fill_blocks(want, WINDOW, seed, off / BLOCK);
        for (size_t i = 0; i < WINDOW; i += BLOCK)
                if (memcmp(got + i, want + i, BLOCK) != 0) {
                        g_test_message("%s: %s at %" G_GUINT64_FORMAT " KiB does not hold the pattern written "
                                       "at %" G_GUINT64_FORMAT " KiB into the partition",
                                       what, path, (base + off + i) / 1024, (off + i) / 1024);
                        return FALSE;
                }
        return TRUE;
}

/* nbd-server in the foreground (-d): it serves one client in-process and
 * exits when that client is done. Before it serves anyone it works out DH
 * parameters for TLS, seconds to tens of seconds of emulated CPU here, so it
 * is started early and waited for patiently. */
typedef struct NbdServer {
        GSubprocess *proc;
        guint16 port;
        const char *image_name; /* for messages */
        char *log_path;
        double started_ms;
} NbdServer;

static void nbd_server_start(NbdServer *s, const char *dir, const Table *t) {
        g_autofree char *config_path = g_strdup_printf("%s/nbd-server-%s.conf", dir, t->name);
        g_autofree char *config = NULL;
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_MERGE);
        g_autoptr(GError) error = NULL;
        const char *argv[] = { "nbd-server", "-d", "-C", config_path, NULL };

        s->port = loopback_free_port();
        s->image_name = t->name;
        s->log_path = g_strdup_printf("%s/nbd-server-%s.log", dir, t->name);
        config = g_strdup_printf("[generic]\n"
                                 "port = %u\n"
                                 "listenaddr = 127.0.0.1\n"
                                 "\n"
                                 "[" EXPORT "]\n"
                                 "exportname = %s\n", s->port, t->image);
        g_file_set_contents(config_path, config, -1, &error);
        g_assert_no_error(error);

        g_subprocess_launcher_set_stdout_file_path(l, s->log_path);
        g_subprocess_launcher_set_child_setup(l, child_setup_die_with_parent, NULL, NULL);
        s->proc = g_subprocess_launcher_spawnv(l, argv, &error);
        if (!s->proc)
                g_error("start nbd-server: %s (tools/install-deps installs it)", error->message);
        s->started_ms = now_ms();
}

/* Fails the test, with nbd-server's log, when it is gone or too slow. */
static void nbd_server_fail(const NbdServer *s, const char *why) {
        g_autofree char *log = NULL;

        (void) g_file_get_contents(s->log_path, &log, NULL, NULL);
        g_error("nbd-server for %s on port %u: %s; its log:\n%s", s->image_name, s->port, why,
                log ? log : "(none)");
}

/* Waits until the server sends its greeting, then leaves with NBD_OPT_ABORT
 * and waits for the hang-up: a probe that gave up early would make it exit
 * (it err()s out when a client leaves mid-handshake). */
static void nbd_server_wait_ready(NbdServer *s) {
        static const uint8_t leave[20] = {
                0, 0, 0, 3,                                     /* FIXED_NEWSTYLE | NO_ZEROES */
                'I', 'H', 'A', 'V', 'E', 'O', 'P', 'T', 0, 0, 0, 2, 0, 0, 0, 0,  /* NBD_OPT_ABORT */
        };
        double deadline = s->started_ms + 120000;
        uint8_t greeting[18], byte;
        size_t got = 0;
        int fd;

        while ((fd = connect_port("127.0.0.1", s->port)) < 0) {
                if (!g_subprocess_get_identifier(s->proc))
                        nbd_server_fail(s, "it exited before it listened");
                if (now_ms() > deadline)
                        nbd_server_fail(s, "it did not listen within 120 s");
                g_usleep(10 * 1000);
        }
        while (got < sizeof(greeting)) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (now_ms() > deadline)
                        nbd_server_fail(s, "no greeting within 120 s");
                if (poll(&p, 1, 100) < 1)
                        continue;
                n = read(fd, greeting + got, sizeof(greeting) - got);
                if (n <= 0)
                        nbd_server_fail(s, "it hung up before its greeting");
                got += (size_t) n;
        }
        if (memcmp(greeting, "NBDMAGICIHAVEOPT", 16) != 0)
                nbd_server_fail(s, "its greeting is not fixed newstyle");
        g_assert_cmpint(write(fd, leave, sizeof(leave)), ==, (ssize_t) sizeof(leave));
        {
                struct pollfd p = { .fd = fd, .events = POLLIN };

                g_assert_cmpint(poll(&p, 1, 30000), ==, 1);
                g_assert_cmpint(read(fd, &byte, 1), <=, 0);
        }
        close(fd);
        g_test_message("nbd-server for %s answered %.1f s after it started (DH parameters first)",
                       s->image_name, (now_ms() - s->started_ms) / 1000);
}

static void nbd_server_stop(NbdServer *s) {
        child_kill(&s->proc);
        g_clear_pointer(&s->log_path, g_free);
}

/* One server, one table, one device: what the kernel shows the moment
 * Attach returns. */
static void check_partitioned(const char *server, guint16 port, const Table *t, const char *device) {
        g_autofree char *what = g_strdup_printf("%s/%s", server, t->name);
        g_autofree char *dev = NULL, *seen = NULL;
        const char *name;
        guint64 lbs;

        require_unused(dev_name(device));
        dev = attach_to(device, port, NULL, what);
        if (!dev)
                return;
        name = dev_name(dev);

        /* No sleep, no settle: the daemon promises all of this by now. */
        lbs = logical_block_size(name);
        seen = partitions_seen(name);
        g_test_message("%s: %s logical_block_size %" G_GUINT64_FORMAT ", partitions: %s", what, dev, lbs, seen);
        g_assert_cmpuint(lbs, ==, 512);

        for (guint k = 0; k < 2; k++) {
                g_autofree char *part = g_strdup_printf("%sp%u", name, k + 1);
                g_autofree char *node = g_strdup_printf("/dev/%s", part);
                g_autofree char *pwhat = g_strdup_printf("%s %s", what, part);
                guint64 bytes = t->parts[k].size * 512, start = 0, size = 0;
                gboolean have_start = sysfs_u64(&start, "/sys/block/%s/%s/start", name, part);
                gboolean have_size = sysfs_u64(&size, "/sys/block/%s/%s/size", name, part);

                /* The server's data at the table's place, through the whole
                 * disk: tells a wrong partition from a wrong server. */
                if (!window_matches(dev, t->parts[k].start * 512, 0, t->seed + k, pwhat))
                        g_test_fail();

                if (!have_start || !have_size) {
                        g_test_message("%s: /sys/block/%s/%s is missing", pwhat, name, part);
                        g_test_fail();
                        continue;
                }
                g_assert_cmpuint(start, ==, t->parts[k].start);
                g_assert_cmpuint(size, ==, t->parts[k].size);
                if (!g_file_test(node, G_FILE_TEST_EXISTS)) {
                        g_test_message("%s: %s is missing", pwhat, node);
                        g_test_fail();
                        continue;
                }
                if (start != t->parts[k].start || size != t->parts[k].size)
                        continue;
                /* First, middle and last window of the partition. */
                if (!window_matches(node, 0, 0, t->seed + k, pwhat) ||
                    !window_matches(node, 0, (bytes / 2) / BLOCK * BLOCK, t->seed + k, pwhat) ||
                    !window_matches(node, 0, bytes - WINDOW, t->seed + k, pwhat))
                        g_test_fail();
                else
                        g_test_message("%s: %s reads back the pattern written into it", pwhat, node);
        }
        detach_and_wait(bus, dev);
}

static void test_partitions(void) {
        g_autofree char *dir = test_scratch_subdir("images");
        const char *const versions[][2] = {
                { "nbdkit", "--version" }, { "qemu-nbd", "--version" }, { "nbd-server", "-V" },
        };
        NbdServer nbd_servers[G_N_ELEMENTS(tables)] = { 0 };
        guint n = 0;

        for (size_t i = 0; i < G_N_ELEMENTS(versions); i++) {
                const char *argv[] = { versions[i][0], versions[i][1], NULL };
                g_autofree char *v = test_tool_version(argv);

                g_test_message("%s: %s", versions[i][0], v);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++)
                image_make(&tables[i], dir);
        /* Their start-up work overlaps with the other servers' cases. */
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++)
                nbd_server_start(&nbd_servers[i], dir, &tables[i]);

        /* A device of its own for each pair: nbd1 to nbd6. */
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
                g_autoptr(TestServer) s = test_nbdkit_start("file", tables[i].image, NULL);
                g_autofree char *device = g_strdup_printf("/dev/nbd%u", ++n);

                check_partitioned("nbdkit", s->port, &tables[i], device);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
                /* qemu-nbd advertises a preferred block size of 4096. */
                g_autoptr(TestServer) s = test_qemu_nbd_start(tables[i].image, "--export-name=" EXPORT, NULL);
                g_autofree char *device = g_strdup_printf("/dev/nbd%u", ++n);

                check_partitioned("qemu-nbd", s->port, &tables[i], device);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++) {
                g_autofree char *device = g_strdup_printf("/dev/nbd%u", ++n);

                nbd_server_wait_ready(&nbd_servers[i]);
                check_partitioned("nbd-server", nbd_servers[i].port, &tables[i], device);
                nbd_server_stop(&nbd_servers[i]);
        }
        for (size_t i = 0; i < G_N_ELEMENTS(tables); i++)
                g_clear_pointer(&tables[i].image, g_free);
}

/* ---- 2. a server that enforces a small maximum request --------------- */

static void test_max_request(void) {
        static const struct { size_t len; off_t off; } io[] = {
                { 1 * MiB, 0 },
                { 4 * MiB, 8 * MiB + 4096 },    /* not 64 KiB-aligned: the split must cope */
                { 1 * MiB, 31 * MiB },
                { 4 * MiB, 60 * MiB },          /* the end of the disk */
        };
        g_autoptr(TestServer) server = NULL;
        g_autofree char *dev = NULL;
        guint64 max_kb = 0, max_hw_kb = 0;
        const char *name;
        guint ok = 0;

        require_unused("nbd7");
        server = test_nbdkit_start("--filter=blocksize-policy", "memory", "64M", "blocksize-minimum=512",
                                   "blocksize-preferred=4096", "blocksize-maximum=65536",
                                   "blocksize-error-policy=error", NULL);
        g_test_message("nbdkit memory 64M, blocksize-policy: minimum 512, preferred 4096, maximum 65536, "
                       "oversized requests are errors");
        dev = attach_to("/dev/nbd7", server->port, NULL, "blocksize-policy");
        if (!dev)
                return;
        name = dev_name(dev);

        g_assert_true(sysfs_u64(&max_kb, "/sys/block/%s/queue/max_sectors_kb", name));
        g_assert_true(sysfs_u64(&max_hw_kb, "/sys/block/%s/queue/max_hw_sectors_kb", name));
        g_test_message("%s: max_sectors_kb %" G_GUINT64_FORMAT ", max_hw_sectors_kb %" G_GUINT64_FORMAT
                       ", logical_block_size %" G_GUINT64_FORMAT, dev, max_kb, max_hw_kb, logical_block_size(name));
        g_assert_cmpuint(max_kb, <=, 64);

        for (size_t i = 0; i < G_N_ELEMENTS(io); i++)
                if (round_trip(dev, io[i].len, io[i].off, 0x5eed0000 + i))
                        ok++;
        g_test_message("%s: %u of %zu O_DIRECT round trips (1 and 4 MiB) came back intact",
                       dev, ok, G_N_ELEMENTS(io));
        g_assert_cmpuint(ok, ==, G_N_ELEMENTS(io));
        detach_and_wait(bus, dev);
}

/* ---- 3. a server that ignores NBD_CMD_DISC --------------------------- */

/* The deaf server on a listening socket made here, so that it is ready the
 * moment it is started. */
static GSubprocess *deaf_server_start(guint16 *ret_port) {
        g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
        g_autoptr(GError) error = NULL;
        g_autofree char *size = g_strdup_printf("%u", DEAF_BYTES);
        const char *argv[] = { deaf_server_path, "3", size, NULL };
        GSubprocess *p;
        int fd = loopback_listen(0, 8, ret_port);

        g_subprocess_launcher_set_child_setup(l, child_setup_die_with_parent, NULL, NULL);
        g_subprocess_launcher_take_fd(l, fd, 3);
        p = g_subprocess_launcher_spawnv(l, argv, &error);
        if (!p)
                g_error("start %s: %s", deaf_server_path, error->message);
        return p;
}

static void test_deaf_server(void) {
        const char *device = "/dev/nbd8";
        g_autoptr(GSubprocess) deaf = NULL;
        g_autoptr(TestServer) normal = NULL;
        g_autoptr(GError) error = NULL;
        g_autoptr(GVariant) reply = NULL;
        g_autofree char *dev = NULL, *again = NULL;
        double t0, detach_ms, gone_ms;
        guint16 port;

        require_unused("nbd8");
        deaf = deaf_server_start(&port);
        dev = attach_to(device, port, NULL, "deaf-server");
        if (!dev) {
                child_kill(&deaf);
                return;
        }
        g_assert_cmpstr(dev, ==, device);
        g_assert_true(round_trip(dev, 64 * 1024, 0, 0xdeaf0000));
        g_assert_true(round_trip(dev, 64 * 1024, MiB, 0xdeaf0001));

        t0 = now_ms();
        reply = g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Detach",
                                            g_variant_new("(s)", dev), NULL, G_DBUS_CALL_FLAGS_NONE,
                                            DETACH_WAIT_MS, NULL, &error);
        detach_ms = now_ms() - t0;
        if (error) {
                g_test_message("Detach(%s) from a server that ignores NBD_CMD_DISC: no success after %.1f s: %s",
                               dev, detach_ms / 1000, error->message);
                g_test_fail();
        } else
                g_test_message("Detach(%s) from a server that ignores NBD_CMD_DISC returned after %.1f s",
                               dev, detach_ms / 1000);
        g_assert_cmpfloat(detach_ms, <, DETACH_LIMIT_MS);

        g_assert_false(device_object_exists("nbd8"));
        while (device_running("nbd8") && now_ms() - t0 - detach_ms < GONE_WAIT_MS)
                g_usleep(10 * 1000);
        gone_ms = now_ms() - t0 - detach_ms;
        if (device_running("nbd8")) {
                g_test_message("/sys/block/nbd8/pid still there %.1f s after Detach returned", gone_ms / 1000);
                g_test_fail();
        } else
                g_test_message("/sys/block/nbd8/pid gone %.0f ms after Detach returned", gone_ms);

        /* The device is free for the next user. */
        normal = nbdkit_memory();
        again = attach_to(device, normal->port, NULL, "nbdkit after the deaf server");
        if (again) {
                g_assert_true(round_trip(again, 64 * 1024, 0, 0xdeaf0002));
                g_test_message("%s attached again to nbdkit", again);
                detach_and_wait(bus, again);
        }

        /* Whatever happened, the server's hang-up ends the device. */
        child_kill(&deaf);
        wait_device_stopped("nbd8");
        while (device_object_exists("nbd8") && now_ms() - t0 < 60000)
                g_usleep(10 * 1000);
}

/* ---- 4. read-only state left behind ----------------------------------- */

static char *blockdev_getro(const char *dev) {
        const char *argv[] = { "blockdev", "--getro", dev, NULL };

        return g_strstrip(run_capture(argv));
}

/* O_DIRECT write of one block at 0: 0 or -errno (from open or write). */
static int try_write(const char *dev) {
        g_autofree uint8_t *buf = alloc_aligned(BLOCK);

        memset(buf, 0xa5, BLOCK);
        return direct_io(dev, TRUE, buf, BLOCK, 0);
}

static void test_read_only_state(void) {
        const char *device = "/dev/nbd9";
        g_autoptr(TestServer) server = NULL;
        g_autofree char *dev = NULL, *ro = NULL;
        GVariantBuilder b;
        int r;

        require_unused("nbd9");
        server = nbdkit_memory();

        /* Someone marks the device read-only and leaves it so. */
        dev = attach_to(device, server->port, NULL, "writable");
        if (!dev)
                return;
        {
                const char *argv[] = { "blockdev", "--setro", dev, NULL };
                run_ok(argv);
        }
        ro = blockdev_getro(dev);
        g_test_message("%s: blockdev --setro, then --getro prints %s", dev, ro);
        detach_and_wait(bus, dev);
        g_clear_pointer(&dev, g_free);
        g_clear_pointer(&ro, g_free);

        /* The next writable attach must not inherit it. */
        dev = attach_to(device, server->port, NULL, "writable again");
        if (!dev)
                return;
        ro = blockdev_getro(dev);
        r = try_write(dev);
        g_test_message("%s attached writable after --setro: --getro prints %s, O_DIRECT write %s", dev, ro,
                       r < 0 ? g_strerror(-r) : "succeeded");
        g_assert_cmpstr(ro, ==, "0");
        g_assert_cmpint(r, ==, 0);
        detach_and_wait(bus, dev);
        g_clear_pointer(&dev, g_free);
        g_clear_pointer(&ro, g_free);

        /* Asked for read-only: the kernel must refuse writes. */
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        g_variant_builder_add(&b, "{sv}", "read-only", g_variant_new_boolean(TRUE));
        dev = attach_to(device, server->port, g_variant_builder_end(&b), "read-only=true");
        if (!dev)
                return;
        ro = blockdev_getro(dev);
        r = try_write(dev);
        g_test_message("%s attached with read-only=true: --getro prints %s, O_DIRECT write %s", dev, ro,
                       r < 0 ? g_strerror(-r) : "succeeded");
        g_assert_cmpstr(ro, ==, "1");
        g_assert_true(r == -EPERM || r == -EROFS);
        detach_and_wait(bus, dev);
}

/* The data socket the kernel holds keeps a server that vanished without a
 * word from pinning the device: TCP keepalive is on (ss shows its timer).
 * And the object says where the device is attached from. */
static void test_keepalive(void) {
        const char *device = "/dev/nbd7";
        g_autoptr(TestServer) server = NULL;
        g_autofree char *dev = NULL, *filter = NULL, *out = NULL;

        require_unused("nbd7");
        server = nbdkit_memory();
        dev = attach_to(device, server->port, NULL, "plain");
        if (!dev)
                return;
        filter = g_strdup_printf("( dport = :%u )", server->port);
        {
                const char *argv[] = { "ss", "-tnoH", "state", "established", filter, NULL };
                out = run_capture(argv);
        }
        g_strstrip(out);
        g_test_message("%s: the daemon's connection to nbdkit: %s", dev, out);
        g_assert_nonnull(strstr(out, "timer:(keepalive,"));

        /* The Port property names the port connected to, here given in
         * the host string rather than as the option 'port'. */
        {
                g_autofree char *path = g_strdup_printf("/org/nbdlink/NBD1/devices/%s", dev + strlen("/dev/"));
                g_autoptr(GError) error = NULL;
                g_autoptr(GVariant) v = g_dbus_connection_call_sync(bus, BUS_NAME, path,
                                                                   "org.freedesktop.DBus.Properties", "Get",
                                                                   g_variant_new("(ss)", DEVICE_IFACE, "Port"),
                                                                   G_VARIANT_TYPE("(v)"), G_DBUS_CALL_FLAGS_NONE,
                                                                   -1, NULL, &error);
                g_autoptr(GVariant) port = NULL;

                g_assert_no_error(error);
                g_variant_get(v, "(v)", &port);
                g_test_message("%s: Port property %u (server on %u)", dev, g_variant_get_uint16(port), server->port);
                g_assert_cmpuint(g_variant_get_uint16(port), ==, server->port);
        }
        detach_and_wait(bus, dev);
}

/* ---- 6. a device in use --------------------------------------------- */

static GError *detach_with(const char *dev, gboolean force) {
        g_autoptr(GVariant) reply = NULL;
        GVariantBuilder b;
        GError *error = NULL;

        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        if (force)
                g_variant_builder_add(&b, "{sv}", "force", g_variant_new_boolean(TRUE));
        reply = g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "DetachWithOptions",
                                            g_variant_new("(sa{sv})", dev, &b), NULL,
                                            G_DBUS_CALL_FLAGS_NONE, 60000, NULL, &error);
        return error;
}

/* Detach refuses what a file system, a holder or an exclusive opener
 * uses, names the reason, and 'force' overrides. */
static void test_detach_in_use(void) {
        const char *device = "/dev/nbd10";
        g_autofree char *dir = test_scratch_subdir("mnt");
        g_autoptr(TestServer) server = NULL;
        g_autofree char *dev = NULL, *path = NULL;
        GError *error = NULL;
        int fd;

        require_unused("nbd10");
        server = nbdkit_memory();
        dev = attach_to(device, server->port, NULL, "in use");
        if (!dev)
                return;
        {
                const char *mkfs[] = { "mkfs.ext4", "-q", "-F", dev, NULL };
                const char *mount[] = { "mount", dev, dir, NULL };
                run_ok(mkfs);
                run_ok(mount);
        }
        path = g_build_filename(dir, "kept", NULL);
        g_assert_true(g_file_set_contents(path, "written before the detach", -1, NULL));

        /* Mounted: refused, by both Detach methods, and still attached. */
        error = detach_with(dev, FALSE);
        assert_bus_error(error, "org.nbdlink.NBD1.Error.DeviceBusy", "is mounted on");
        g_clear_error(&error);
        g_assert_null(g_dbus_connection_call_sync(bus, BUS_NAME, MANAGER_PATH, MANAGER_IFACE, "Detach",
                                                  g_variant_new("(s)", dev), NULL, G_DBUS_CALL_FLAGS_NONE,
                                                  60000, NULL, &error));
        assert_bus_error(error, "org.nbdlink.NBD1.Error.DeviceBusy", "is mounted on");
        g_clear_error(&error);
        g_assert_true(device_running(dev_name(dev)));
        {
                const char *umount[] = { "umount", dir, NULL };
                run_ok(umount);
        }

        /* Open exclusively (what a mount elsewhere or a swap area does). */
        fd = open(dev, O_RDONLY | O_EXCL | O_CLOEXEC);
        g_assert_cmpint(fd, >=, 0);
        error = detach_with(dev, FALSE);
        assert_bus_error(error, "org.nbdlink.NBD1.Error.DeviceBusy", "open exclusively");
        g_clear_error(&error);
        close(fd);

        /* Mounted again, and forced: detached, the mount left to fail. */
        {
                const char *mount[] = { "mount", dev, dir, NULL };
                run_ok(mount);
        }
        error = detach_with(dev, TRUE);
        g_assert_no_error(error);
        g_assert_false(device_object_exists(dev_name(dev)));
        g_test_message("%s: DetachWithOptions(force) of a mounted device detached it", dev);
        /* The kernel lets the device go with its last opener, the mount. */
        {
                const char *umount[] = { "umount", "-l", dir, NULL };
                run_ok(umount);
        }
        wait_device_stopped(dev);
}

int main(int argc, char **argv) {
        g_autofree char *sfdisk = NULL;
        int r;

        g_test_init(&argc, &argv, NULL);
        /* Each case reports everything it saw and detaches what it
         * attached, failed or not, so that one broken promise neither
         * hides the others nor leaves a device behind for the next case. */
        g_test_set_nonfatal_assertions();

        guest_require_root();
        deaf_server_path = g_getenv("NBDLINK_DEAF_SERVER");
        if (!deaf_server_path || !*deaf_server_path)
                g_error("NBDLINK_DEAF_SERVER does not name the deaf-server program (tests/vm/meson.build sets it)");
        sfdisk = g_find_program_in_path("sfdisk");
        if (!sfdisk)
                g_error("sfdisk is missing: install Debian's fdisk package");

        bus = guest_system_bus();
        daemon_proc = daemon_start_on_bus(bus, guest_daemon_path());

        g_test_add_func("/vm-disks/partitions", test_partitions);
        g_test_add_func("/vm-disks/max-request-size", test_max_request);
        g_test_add_func("/vm-disks/deaf-server", test_deaf_server);
        g_test_add_func("/vm-disks/read-only-state", test_read_only_state);
        g_test_add_func("/vm-disks/keepalive", test_keepalive);
        g_test_add_func("/vm-disks/detach-in-use", test_detach_in_use);
        r = g_test_run();

        g_subprocess_send_signal(daemon_proc, SIGTERM);
        (void) g_subprocess_wait(daemon_proc, NULL, NULL);
        g_clear_object(&daemon_proc);
        test_servers_cleanup();
        g_object_unref(bus);
        return r;
}
