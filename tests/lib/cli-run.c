/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A project program run as a child, its status and output collected (see
 * cli-run.h). */

#include "cli-run.h"

#include <fcntl.h>
#include <glib/gstdio.h>
#include <stdlib.h>
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534

const char *cli_nbdlink_path(void) {
        static char *path = NULL;

        if (!path) {
                const char *root = g_getenv("NBDLINK_BUILD_ROOT");

                g_assert_nonnull(root);
                path = g_build_filename(root, "client", "nbdlink", NULL);
        }
        return path;
}

void cli_child_setup(gpointer as_nobody) {
        int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (fd >= 0)
                (void) dup2(fd, STDIN_FILENO);
        if (GPOINTER_TO_INT(as_nobody) &&
            (setgroups(0, NULL) < 0 || setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0))
                _exit(100);
}

/* A copy of exe that nobody can run: the build tree may lie in a directory
 * other users cannot enter (a clone in /root). One per program, in a
 * directory of its own that the process removes at exit. */
static char *copy_dir;
static GHashTable *copies;      /* exe → its copy */

static void remove_copies(void) {
        g_autoptr(GDir) d = NULL;
        const char *name;

        if (!copy_dir)
                return;
        d = g_dir_open(copy_dir, 0, NULL);
        while (d && (name = g_dir_read_name(d))) {
                g_autofree char *p = g_build_filename(copy_dir, name, NULL);
                (void) g_unlink(p);
        }
        (void) g_rmdir(copy_dir);
        g_clear_pointer(&copy_dir, g_free);
        g_clear_pointer(&copies, g_hash_table_unref);
}

static const char *runnable_by_nobody(const char *exe) {
        g_autofree char *base = g_path_get_basename(exe), *data = NULL;
        g_autoptr(GError) error = NULL;
        char *copy;
        gsize len;

        if (!copy_dir) {
                copy_dir = g_dir_make_tmp("nbdlink-run-XXXXXX", &error);
                g_assert_no_error(error);
                g_assert_cmpint(g_chmod(copy_dir, 0755), ==, 0);
                copies = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                atexit(remove_copies);
        }
        copy = g_hash_table_lookup(copies, exe);
        if (copy)
                return copy;

        copy = g_build_filename(copy_dir, base, NULL);
        g_assert_true(g_file_get_contents(exe, &data, &len, &error));
        g_assert_true(g_file_set_contents(copy, data, (gssize) len, &error));
        g_assert_cmpint(g_chmod(copy, 0755), ==, 0);
        g_hash_table_insert(copies, g_strdup(exe), copy);
        return copy;
}

CliResult cli_run(const char *exe, gboolean as_nobody, const char *const *args) {
        g_autoptr(GPtrArray) argv = g_ptr_array_new();
        g_autoptr(GError) error = NULL;
        g_autofree char *cmd = NULL;
        CliResult r = {};
        int wait_status;

        g_ptr_array_add(argv, (char *) (as_nobody ? runnable_by_nobody(exe) : exe));
        for (const char *const *a = args; *a; a++)
                g_ptr_array_add(argv, (char *) *a);
        g_ptr_array_add(argv, NULL);
        cmd = g_strjoinv(" ", (char **) argv->pdata);

        /* From "/": nobody may not be able to enter the test's directory. */
        if (!g_spawn_sync(as_nobody ? "/" : NULL, (char **) argv->pdata, NULL, G_SPAWN_DEFAULT, cli_child_setup,
                          GINT_TO_POINTER(as_nobody), &r.out, &r.err, &wait_status, &error))
                g_error("spawn %s: %s", exe, error->message);
        g_assert_true(WIFEXITED(wait_status));
        r.status = WEXITSTATUS(wait_status);
        {
                /* Arguments and output may be deliberately broken UTF-8 or
                 * carry controls: escaped, they cannot break the TAP stream. */
                g_autofree char *c = g_strescape(cmd, NULL), *o = g_strescape(r.out, NULL),
                                *e = g_strescape(r.err, NULL);
                g_test_message("%s%s exited %d; stdout: %s; stderr: %s", as_nobody ? "(as nobody) " : "", c,
                               r.status, o, e);
        }
        return r;
}

void cli_assert_failed(const CliResult *r, const char *prefix, const char *suffix) {
        g_assert_cmpint(r->status, ==, 1);
        g_assert_cmpstr(r->out, ==, "");
        if (!g_str_has_prefix(r->err, prefix) || !g_str_has_suffix(r->err, suffix))
                g_error("stderr '%s' is not '%s...%s'", r->err, prefix, suffix);
}

void cli_result_clear(CliResult *r) {
        g_clear_pointer(&r->out, g_free);
        g_clear_pointer(&r->err, g_free);
}

char *cli_monitor_untimed(const char *line) {
        static const char text_stamp[] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}[+-][0-9]{2}:[0-9]{2} ";
        static const char json_stamp[] = ",\"timestamp\":[0-9]{16}}$";
        g_autoptr(GMatchInfo) mi = NULL;
        g_autoptr(GRegex) re = NULL;
        gint start, end;

        g_assert_nonnull(line);
        re = g_regex_new(line[0] == '{' ? json_stamp : text_stamp, 0, 0, NULL);
        if (!g_regex_match(re, line, 0, &mi))
                g_error("monitor line without its time stamp: %s", line);
        g_assert_true(g_match_info_fetch_pos(mi, 0, &start, &end));
        if (line[0] == '{')
                return g_strdup_printf("%.*s}", start, line);
        return g_strdup(line + end);
}
