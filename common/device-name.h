/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Device names as the bus API and the command line take them: "", "nbdN"
 * or "/dev/nbdN". */
#pragma once

/* Parses "", "nbdN" or "/dev/nbdN" (N decimal, 1-4 digits, no leading
 * zero). *ret_index is -1 for "" (any free device). -EINVAL otherwise. */
int device_name_parse(const char *s, int *ret_index);
