/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every vm guest program needs: children that die with the test,
 * loopback ports, nbdkit start-up, O_DIRECT I/O with checksums, the nbd
 * devices' sysfs state, nbdlinkd on the guest's bus and its signals. Each
 * helper fails the test itself when something it needs goes wrong. */

#pragma once

#include <gio/gio.h>
#include <gio/gunixfdlist.h>
#include <glib.h>
#include <stddef.h>
#include <stdint.h>

#define BUS_NAME      "org.nbdlink.NBD1"
#define MANAGER_PATH  "/org/nbdlink/NBD1"
#define MANAGER_IFACE "org.nbdlink.NBD1.Manager"
#define DEVICE_IFACE  "org.nbdlink.NBD1.Device"
#define ERROR_PREFIX  "org.nbdlink.NBD1.Error."

#define MiB (1024u * 1024u)

/* ---- the guest program ------------------------------------------------- */

/* Fails the test unless it runs as root, as vm-run starts it in the guest. */
void guest_require_root(void);

/* The nbdlinkd to test, from NBDLINKD; fails the test when it is not set. */
const char *guest_daemon_path(void);

/* The guest's system bus, where nbdlinkd runs. */
GDBusConnection *guest_system_bus(void);

/* ---- time and children ------------------------------------------------ */

/* Milliseconds on the monotonic clock. */
double now_ms(void);

/* A child_setup for GLib spawns: the child gets SIGKILL when the test dies,
 * so that servers and the daemon never outlive a crashed test. */
void child_setup_die_with_parent(gpointer data);

/* Starts argv (searched in PATH) with the given flags; fails the test if it
 * cannot be started. */
GSubprocess *child_spawn(GSubprocessFlags flags, const char *const *argv);

/* Runs argv to completion and returns its stdout; fails the test, with the
 * status and stderr, unless it exits 0. */
char *run_capture(const char *const *argv);

/* run_capture() for commands whose output does not matter. */
void run_ok(const char *const *argv);

/* SIGKILL, reap and drop *p; nothing when *p is NULL. */
void child_kill(GSubprocess **p);

/* Waits for *p (already told to stop), asserts a clean exit 0 and drops it. */
void child_wait_exit_0(GSubprocess **p);

/* ---- loopback ports --------------------------------------------------- */

/* A connected socket to addr:port (IPv4), or -errno. */
int connect_port(const char *addr, guint16 port);

/* Polls until something listens on addr:port; fails the test after
 * within_ms, naming `what`. */
void wait_port_open(const char *addr, guint16 port, double within_ms, const char *what);

/* Starts nbdkit with argv (argv[0] may be "ip" for `ip netns exec ...`)
 * and waits until it listens on addr:port. */
GSubprocess *nbdkit_start_listening(const char *const *argv, const char *addr, guint16 port,
                                    double within_ms);

/* ---- data through a device -------------------------------------------- */

/* A 4096-aligned buffer for O_DIRECT; free with g_free()/free(). */
void *alloc_aligned(size_t size);

/* Fast, good-enough random bytes from a xorshift state: urandom would cost
 * more emulated CPU than the I/O being measured. */
void fill_random(uint8_t *buf, size_t len, uint64_t *state);

/* Deterministic bytes for (seed, index): what was written can be
 * regenerated for a comparison instead of being kept. */
void fill_pattern(uint8_t *buf, size_t len, uint64_t seed, uint64_t index);

/* Writes `bytes` (a multiple of 1 MiB) of random data at offset 0, with
 * O_DIRECT and fsync unless `buffered`, and returns their SHA-256. Stores
 * the throughput of the I/O alone in *ret_mbps when that is not NULL. */
char *write_random_sum(const char *dev, size_t bytes, gboolean buffered, double *ret_mbps);

/* Reads `bytes` (a multiple of 1 MiB) from offset 0 with O_DIRECT and
 * returns their SHA-256; the throughput of the reads goes to *ret_mbps when
 * that is not NULL. */
char *read_direct_sum(const char *dev, size_t bytes, double *ret_mbps);

/* The same reads without a checksum: MB/s of the device alone. */
double read_direct_mbps(const char *dev, size_t bytes);

/* Polls until block 0 can be read with O_DIRECT: the moment a user of the
 * device could start working. */
void wait_block0(const char *dev);

/* ---- the kernel's view of nbd devices ------------------------------------ */

/* "nbd3" for "/dev/nbd3" (and for "nbd3"). */
const char *dev_name(const char *dev);

/* A configured nbd device has a pid in sysfs (the task in NBD_DO_IT); dev
 * is "/dev/nbdN" or "nbdN". */
gboolean device_running(const char *dev);

/* The size in 512-byte sectors, 0 when not configured. */
guint64 device_size(const char *dev);

/* Waits up to 30 s for the device's pid to go. */
void wait_device_stopped(const char *dev);

/* ---- nbdlinkd on the guest's bus ------------------------------------------ */

/* A round trip to the bus daemon: what was sent before (match rules) is in
 * place afterwards. */
void bus_round_trip(GDBusConnection *bus);

/* Whether nbdlinkd's name has an owner on the bus. */
gboolean bus_name_has_owner(GDBusConnection *bus);

/* Starts nbdlinkd and waits up to 30 s for it to take its name; fails the
 * test if it exits first. */
GSubprocess *daemon_start_on_bus(GDBusConnection *bus, const char *daemon_path);

/* Calls Attach(device, host, export, false) when options is NULL, else
 * AttachWithOptions (options may be floating; fds may be NULL). On success
 * returns "/dev/nbdN" (the contract also allows "nbdN"), checks the object
 * path that came with it and stores it in *ret_object if wanted; on failure
 * returns NULL and the error. */
char *attach_call(GDBusConnection *bus, const char *device, const char *host, const char *export,
                  GVariant *options, GUnixFDList *fds, char **ret_object, GError **error);

/* Calls Detach(dev) and asserts that it succeeded; the device may still be
 * stopping. */
void detach_call(GDBusConnection *bus, const char *dev);

/* detach_call(), then waits until the kernel has let the device go. */
void detach_and_wait(GDBusConnection *bus, const char *dev);

/* Asserts that error is the remote D-Bus error `name` and, if must_mention
 * is set, that its message contains it. */
void assert_bus_error(GError *error, const char *name, const char *must_mention);

/* The end of a device object: its Disconnected(name, message) signal and
 * InterfacesRemoved for it. Subscribed without a sender filter: after a
 * SIGTERM the daemon's unique name is gone by the time GDBus would look it
 * up. */
typedef struct DeviceWatch {
        GDBusConnection *bus;
        char *object;
        gboolean disconnected, removed;
        char *error_name, *message;     /* of Disconnected */
        double disconnected_ms;         /* now_ms() when it came */
        guint sub_disconnected, sub_removed;
} DeviceWatch;

/* Subscribes and makes sure the match rules are in place before returning,
 * so that a quick event is not missed. */
void device_watch_start(DeviceWatch *w, GDBusConnection *bus, const char *object);

/* Runs the default main context until both signals came or within_ms
 * passed; returns whether both came. */
gboolean device_watch_wait_gone(DeviceWatch *w, double within_ms);

/* Unsubscribes and frees what the watch holds. */
void device_watch_done(DeviceWatch *w);
