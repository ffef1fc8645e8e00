/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Descriptors, threads and memory of a process, from /proc (see
 * proc-count.h). */

#include "proc-count.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void proc_path(char *buf, size_t size, pid_t pid, const char *what) {
        if (pid > 0)
                snprintf(buf, size, "/proc/%d/%s", (int) pid, what);
        else
                snprintf(buf, size, "/proc/self/%s", what);
}

/* Nothing here keeps memory: test-adversarial counts between two
 * measurements of the heap. -1 when the directory cannot be read. */
static int try_count_entries(pid_t pid, const char *what) {
        char path[64];
        struct dirent *de;
        int n = 0;
        DIR *d;

        proc_path(path, sizeof(path), pid, what);
        d = opendir(path);
        if (!d)
                return -1;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        n++;
        closedir(d);
        return n;
}

static unsigned count_entries(pid_t pid, const char *what) {
        int n = try_count_entries(pid, what);

        if (n < 0)
                g_error("cannot read /proc/%d/%s: %s", (int) pid, what, g_strerror(errno));
        return (unsigned) n;
}

unsigned proc_count_fds(pid_t pid) {
        return count_entries(pid, "fd");
}

unsigned proc_count_threads(pid_t pid) {
        return count_entries(pid, "task");
}

int proc_try_count_fds(pid_t pid) {
        return try_count_entries(pid, "fd");
}

long proc_status_value(pid_t pid, const char *key) {
        char path[64], line[256];
        size_t n = strlen(key);
        long v = -1;
        FILE *f;

        proc_path(path, sizeof(path), pid, "status");
        f = fopen(path, "re");
        if (!f)
                return -1;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, key, n) == 0 && line[n] == ':') {
                        v = strtol(line + n + 1, NULL, 10);
                        break;
                }
        fclose(f);
        return v;
}

int proc_reset_peak_rss(pid_t pid) {
        char path[64];
        int fd, r = 0;

        proc_path(path, sizeof(path), pid, "clear_refs");
        fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        if (write(fd, "5", 1) != 1)
                r = -errno;
        close(fd);
        return r;
}
