/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device names as the bus API and the command line take them. */

#include <errno.h>
#include <string.h>

#include "device-name.h"

int device_name_parse(const char *s, int *ret_index) {
        const char *p;
        int n = 0;
        size_t len;

        if (!s)
                return -EINVAL;
        if (!*s) {
                *ret_index = -1;
                return 0;
        }

        if (strncmp(s, "/dev/", 5) == 0)
                s += 5;
        if (strncmp(s, "nbd", 3) != 0)
                return -EINVAL;
        p = s + 3;

        len = strlen(p);
        if (len < 1 || len > 4)
                return -EINVAL;
        /* One spelling per device, so "nbd01" cannot dodge a busy check. */
        if (len > 1 && p[0] == '0')
                return -EINVAL;
        for (size_t i = 0; i < len; i++) {
                if (p[i] < '0' || p[i] > '9')
                        return -EINVAL;
                n = n * 10 + (p[i] - '0');
        }

        *ret_index = n;
        return 0;
}
