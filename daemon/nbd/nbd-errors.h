/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Numbers the server sends that mean errors, turned into errno: option
 * replies (NBD_REP_ERR_*) as docs/errors.md's error table maps them, and the
 * transmission phase's NBD_E* values. */
#pragma once

#include <stdint.h>

/* Negative errno for an NBD_REP_ERR_* reply type: UNKNOWN → -ENOENT,
 * POLICY → -EPERM, TLS_REQD → -EPROTONOSUPPORT, UNSUP → -EOPNOTSUPP, ...;
 * an error type nbdlink does not know → -EIO. */
int nbd_rep_error_to_errno(uint32_t type);
/* "NBD_REP_ERR_POLICY", or NULL for an unknown type. */
const char *nbd_rep_error_to_string(uint32_t type);
/* Positive errno for a transmission-phase error value; unknown → EINVAL. */
int nbd_transmission_error_to_errno(uint32_t nbd_error);
