/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Files the daemon keeps about its devices, written so that a reader (the
 * next nbdlinkd, udev) sees the old file or the new one, never half of
 * one. */
#pragma once

#include <sys/types.h>

/* Writes text to dir/name: a temporary file .name.XXXXXX in dir (made,
 * mode 0755, when missing; its parent must exist), given mode (left 0600 if
 * that fails), written
 * whole, fsync()ed and renamed over dir/name. The temporary file goes on
 * any failure. 0 or negative errno. */
int write_file_atomic(const char *dir, const char *name, const char *text, mode_t mode);
