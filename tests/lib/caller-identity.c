/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Becoming a test user, and the start time polkit keys agents by (see
 * caller-identity.h). */

#include "caller-identity.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int caller_become_user(const char *program, const char *name) {
        struct passwd *pw = getpwnam(name);

        if (!pw) {
                fprintf(stderr, "%s: no user %s\n", program, name);
                return -ESRCH;
        }
        /* Groups first: once the uid is dropped there is no way back to
         * change them. */
        if (setgroups(0, NULL) < 0 ||
            setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
            setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
                int r = -errno;

                fprintf(stderr, "%s: failed to become %s: %s\n", program, name, strerror(-r));
                return r;
        }
        return 0;
}

int caller_process_start_time(uint64_t *ret) {
        char buf[1024], *p;
        FILE *f;
        size_t n;

        f = fopen("/proc/self/stat", "re");
        if (!f)
                return -errno;
        n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        /* The command name in parentheses may hold spaces: count from the
         * last ')'. */
        p = strrchr(buf, ')');
        if (!p)
                return -EIO;
        /* After "pid (comm)" come the fields 3..; the start time is field 22. */
        for (int field = 2; field < 21; field++) {
                p = strchr(p + 1, ' ');
                if (!p)
                        return -EIO;
        }
        *ret = strtoull(p + 1, NULL, 10);
        return 0;
}
