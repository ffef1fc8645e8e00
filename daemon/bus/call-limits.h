/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What the calls of one uid may hold while they wait, and all uids together
 * (LIMIT_* of contract.h). Counted from the manager's own lists each time,
 * so that a count can never drift from what is really held. Root is never
 * counted nor limited. Main thread only. */
#pragma once

#include <sys/types.h>

#include "error-text.h"
#include "manager.h"

/* 0 when `uid` may start one more query (ListExports, Probe); else
 * NBDLINK_ERR_LIMIT_EXCEEDED with `error` saying which limit. */
int limits_check_query(Manager *m, uid_t uid, Error *error);
/* The same for an attach, counting attaches not yet answered. */
int limits_check_attach(Manager *m, uid_t uid, Error *error);
