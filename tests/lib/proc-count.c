/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors and threads of a process, from /proc (see proc-count.h). */

#include "proc-count.h"

#include <dirent.h>
#include <errno.h>
#include <glib.h>
#include <stdio.h>

/* Nothing here keeps memory: test-adversarial counts between two
 * measurements of the heap. */
static unsigned count_entries(pid_t pid, const char *what) {
        char path[64];
        struct dirent *de;
        unsigned n = 0;
        DIR *d;

        if (pid > 0)
                snprintf(path, sizeof(path), "/proc/%d/%s", (int) pid, what);
        else
                snprintf(path, sizeof(path), "/proc/self/%s", what);
        d = opendir(path);
        if (!d)
                g_error("cannot read %s: %s", path, g_strerror(errno));
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

unsigned proc_count_fds(pid_t pid) {
        return count_entries(pid, "fd");
}

unsigned proc_count_threads(pid_t pid) {
        return count_entries(pid, "task");
}
