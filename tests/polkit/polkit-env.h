/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The world the polkit suite runs in, shared with the vm suite: private mount
 * and pid namespaces, the suite's users and groups, nbdlink's policy and the
 * suite's rules where polkitd looks, a bus configured like the system bus,
 * the real polkitd and nbdlinkd on it, and callers as other users. */
#pragma once

#include <gio/gio.h>

#define POLKIT_ENV_SERVICE_NAME "org.nbdlink.PolkitTest1"
#define POLKIT_ENV_NBDLINKD_NAME "org.nbdlink.NBD1"

/* What polkit-test-client prints for the errors the suites expect. */
#define ERR_NOT_AUTHORIZED "ERROR org.nbdlink.NBD1.Error.NotAuthorized: "
#define ERR_INTERACTIVE    "ERROR org.freedesktop.DBus.Error.InteractiveAuthorizationRequired: "
#define ERR_NO_SUCH_DEVICE "ERROR org.nbdlink.NBD1.Error.NoSuchDevice: "
#define ERR_NOT_ATTACHED   "ERROR org.nbdlink.NBD1.Error.NotAttached: "

typedef struct PolkitEnvOptions {
        const char *nbdlinkd;           /* the daemon to start on the bus */
        gboolean test_service;          /* start polkit-test-service too */
        gboolean capture_log;           /* nbdlinkd's stdout and stderr into
                                         * polkit_env_nbdlinkd_log(), not the
                                         * test log */
} PolkitEnvOptions;

/* Puts the rest of the program into new mount and pid namespaces, with a
 * tmpfs on `tmpdir` (a mkdtemp() template) and DBUS_SYSTEM_BUS_ADDRESS naming
 * the suite's bus. Call first thing in main(), before any thread exists and
 * before g_test_init(): the calling process stays outside, waits and exits
 * with the tests' status. */
void polkit_env_enter(char *tmpdir);

/* Builds the world inside the namespaces and starts the bus, nbdlinkd (and
 * the test service); polkitd is started on demand. Aborts on failure. */
void polkit_env_setup(const PolkitEnvOptions *options);

/* Stops everything; FALSE when nbdlinkd or the service did not exit cleanly
 * (under the sanitizers, that is how a leak or a bad access shows). */
gboolean polkit_env_teardown(void);

void polkit_env_set_polkitd(gboolean running);

/* The suite's own connection to the bus, as root. */
GDBusConnection *polkit_env_bus(void);
GSubprocess *polkit_env_nbdlinkd(void);
/* The file nbdlinkd's output goes to with capture_log (appended to across
 * restarts), else NULL. */
const char *polkit_env_nbdlinkd_log(void);
/* Stops nbdlinkd with SIGTERM, waits until its name is gone, starts it
 * again and waits until it owns the name. FALSE when the old one did not
 * exit cleanly. */
gboolean polkit_env_restart_nbdlinkd(void);
const char *polkit_env_policy(void);
/* A directory on the namespace's own tmpfs, gone with the namespace. */
const char *polkit_env_dir(void);

gboolean polkit_env_name_has_owner(const char *name);
void polkit_env_wait_for_name(const char *name, gboolean owned);

/* Runs polkit-test-client as `user` (NULL: root) with `call` and returns
 * what it printed, without the final newline: "OK", "LEFT" or
 * "ERROR <name>: <message>". leave_after_ms < 0: wait for the answer. */
char *polkit_env_run_client(const char *user, gboolean interactive, int leave_after_ms, const char *const *call);

/* A client that is its own authentication agent (polkit-test-client
 * --agent): read what it prints line by line, and tell it when to leave. */
typedef struct AgentClient {
        GSubprocess *process;
        GDataInputStream *out;
} AgentClient;

void agent_client_start(AgentClient *c, const char *user, const char *const *call);
char *agent_client_read_line(AgentClient *c);
void agent_client_leave(AgentClient *c);
void agent_client_finish(AgentClient *c);
