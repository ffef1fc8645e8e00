/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs a command-line program of the project (the nbdlink client, the
 * GDBus example) as a child and collects its exit status and output, for
 * the tests that check what such a program prints: unit/test-cli-args,
 * unit/test-docs, bus/test-cli, bus/test-example and vm/test-vm-cli. */
#pragma once

#include <glib.h>

typedef struct CliResult {
        int status;     /* the exit status */
        char *out;      /* all of stdout */
        char *err;      /* all of stderr */
} CliResult;

/* The nbdlink binary of this build: $NBDLINK_BUILD_ROOT/client/nbdlink. */
const char *cli_nbdlink_path(void);

/* A child_setup for GLib spawns of such a program: stdin from /dev/null,
 * so that it never asks for a password; SIGKILL when the test dies; uid and
 * gid nobody when as_nobody is GINT_TO_POINTER(TRUE) (exit status 100 when
 * that fails). */
void cli_child_setup(gpointer as_nobody);

/* Runs exe with args (NULL-terminated) in this process's environment under
 * cli_child_setup() and waits for it. Logs the command and what it did
 * (g_test_message()); fails the test unless it started and exited. */
CliResult cli_run(const char *exe, gboolean as_nobody, const char *const *args);

/* Asserts that r failed the way nbdlink reports an error: exit status 1,
 * nothing on stdout, stderr beginning with prefix and ending with suffix
 * (either may be ""). */
void cli_assert_failed(const CliResult *r, const char *prefix, const char *suffix);

/* A line of nbdlink monitor without the time stamped on it: the text
 * form's leading "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM ", JSON's last key
 * "timestamp" (microseconds since the epoch). Fails the test when the
 * stamp is missing or malformed. */
char *cli_monitor_untimed(const char *line);

/* Frees what r holds. */
void cli_result_clear(CliResult *r);
