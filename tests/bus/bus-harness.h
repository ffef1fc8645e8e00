/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The bus suite's fixture: a private system-like dbus-daemon with the
 * project's bus policy and the real nbdlinkd on it, started once per test
 * program and stopped whatever happens (children die with the test). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Include this after nbdlink's headers: GLib redefines MIN/MAX itself. */
#include <gio/gio.h>
#include <glib.h>

typedef struct Fixture {
        char *dir;
        char *address;
        GPid bus_pid;
        GPid daemon_pid;
} Fixture;

extern Fixture fx;

/* For g_spawn*: the child dies with the test (PR_SET_PDEATHSIG). */
void child_setup(gpointer data);
/* NBDLINK_SOURCE_ROOT and NBDLINK_BUILD_ROOT from the test environment. */
const char *srcdir(void);
const char *builddir(void);

/* Starts dbus-daemon and nbdlinkd (--timeout-default=5), waits until the
 * name is owned, and points DBUS_SYSTEM_BUS_ADDRESS of this process at the
 * bus (children inherit it). */
void start_all(void);
/* The same with more nbdlinkd options (NULL-terminated, or NULL). */
void start_all_with_args(const char *const *daemon_args);
/* Stops dbus-daemon and starts a new one at the same address, as when the
 * system bus goes away under nbdlinkd (which is left running). */
void restart_bus(void);
/* Kills both, removes the directory. */
void stop_all(void);
/* The exit status of pid, or -1 after SIGKILL when it did not exit in time. */
int wait_exit(GPid pid, int timeout_ms);

/* How many descriptors and threads nbdlinkd has now (/proc/PID/fd, task). */
int daemon_fds(void);
int daemon_threads(void);
/* Waits up to within_ms (a worker thread exits a moment after its answer)
 * for nbdlinkd's descriptors and threads to be back at fds and threads;
 * returns whether they were, and the last counts seen. */
bool daemon_wait_counts(int fds, int threads, int within_ms, int *ret_fds, int *ret_threads);
/* A test case, the last of a program: SIGTERM, and nbdlinkd must exit 0
 * within 10 s (under ASan its leak check is part of that status). */
void test_daemon_sigterm_exits_0(void);

/* Calls method of the bus driver (org.freedesktop.DBus) on c with params,
 * within 2 s; the reply of reply_type, or NULL and error set. */
GVariant *bus_driver_call(GDBusConnection *c, const char *method, GVariant *params, const char *reply_type,
                          GError **error);
bool name_has_owner(GDBusConnection *c, const char *name);
GDBusConnection *gdbus_connect(void);
sd_bus *sd_connect(void);
