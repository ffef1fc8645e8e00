/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Server error numbers to errno. The option-reply table is docs/errors.md's
 * error table; the transmission table is the protocol's own list. */

#include <errno.h>

#include "nbd-errors.h"
#include "nbd-protocol.h"

int nbd_rep_error_to_errno(uint32_t type) {
        switch (type) {
        case NBD_REP_ERR_UNSUP:
        case NBD_REP_ERR_PLATFORM:
        case NBD_REP_ERR_BLOCK_SIZE_REQD:
        case NBD_REP_ERR_EXT_HEADER_REQD:
                /* Each says "this server cannot do what was asked here";
                 * nbdlink has no further fallback for any of them. */
                return -EOPNOTSUPP;
        case NBD_REP_ERR_POLICY:
                return -EPERM;
        case NBD_REP_ERR_INVALID:
        case NBD_REP_ERR_TOO_BIG:
                return -EINVAL;
        case NBD_REP_ERR_TLS_REQD:
                return -EPROTONOSUPPORT;
        case NBD_REP_ERR_UNKNOWN:
                return -ENOENT;
        case NBD_REP_ERR_SHUTDOWN:
                return -EIO;
        default:
                return -EIO;
        }
}

const char *nbd_rep_error_to_string(uint32_t type) {
        switch (type) {
        case NBD_REP_ERR_UNSUP:           return "NBD_REP_ERR_UNSUP";
        case NBD_REP_ERR_POLICY:          return "NBD_REP_ERR_POLICY";
        case NBD_REP_ERR_INVALID:         return "NBD_REP_ERR_INVALID";
        case NBD_REP_ERR_PLATFORM:        return "NBD_REP_ERR_PLATFORM";
        case NBD_REP_ERR_TLS_REQD:        return "NBD_REP_ERR_TLS_REQD";
        case NBD_REP_ERR_UNKNOWN:         return "NBD_REP_ERR_UNKNOWN";
        case NBD_REP_ERR_SHUTDOWN:        return "NBD_REP_ERR_SHUTDOWN";
        case NBD_REP_ERR_BLOCK_SIZE_REQD: return "NBD_REP_ERR_BLOCK_SIZE_REQD";
        case NBD_REP_ERR_TOO_BIG:         return "NBD_REP_ERR_TOO_BIG";
        case NBD_REP_ERR_EXT_HEADER_REQD: return "NBD_REP_ERR_EXT_HEADER_REQD";
        default:                          return NULL;
        }
}

int nbd_transmission_error_to_errno(uint32_t nbd_error) {
        switch (nbd_error) {
        case NBD_EPERM:     return EPERM;
        case NBD_EIO:       return EIO;
        case NBD_ENOMEM:    return ENOMEM;
        case NBD_EINVAL:    return EINVAL;
        case NBD_ENOSPC:    return ENOSPC;
        case NBD_EOVERFLOW: return EOVERFLOW;
        case NBD_ENOTSUP:   return ENOTSUP;
        case NBD_ESHUTDOWN: return ESHUTDOWN;
        default:            return EINVAL; /* as the spec tells clients to */
        }
}
