/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "contract.h"
#include "device.h"
#include "call-limits.h"
#include "query.h"

static int check(const char *what, uid_t uid, unsigned n_uid, unsigned max_uid,
                 unsigned n_total, unsigned max_total, Error *error) {
        if (n_uid >= max_uid)
                return error_set(error, NBDLINK_ERR_LIMIT_EXCEEDED,
                                 "uid %u already has %u %s in progress (at most %u)",
                                 (unsigned) uid, n_uid, what, max_uid);
        if (n_total >= max_total)
                return error_set(error, NBDLINK_ERR_LIMIT_EXCEEDED,
                                 "%u %s of unprivileged callers are in progress, the most nbdlinkd allows",
                                 n_total, what);
        return 0;
}

int limits_check_query(Manager *m, uid_t uid, Error *error) {
        unsigned n_uid = 0, n_total = 0;

        if (uid == 0)
                return 0;
        for (Query *q = m->queries; q; q = q->next)
                if (q->uid != 0) {
                        n_total++;
                        n_uid += q->uid == uid;
                }
        return check("queries", uid, n_uid, LIMIT_QUERIES_PER_UID, n_total, LIMIT_QUERIES_TOTAL, error);
}

int limits_check_attach(Manager *m, uid_t uid, Error *error) {
        unsigned n_uid = 0, n_total = 0;

        if (uid == 0)
                return 0;
        /* Devices whose worker is busy on the caller's behalf: connecting,
         * negotiating, or detaching (an attach cancelled by its caller's
         * leaving stays here until its worker has let go of the server).
         * A device that is up, or reconnecting on its own, holds no
         * caller's call and does not count. */
        for (Device *d = m->devices; d; d = d->next)
                if (d->owner_uid != 0 && d->state != DEVICE_ATTACHED && d->state != DEVICE_RECONNECTING) {
                        n_total++;
                        n_uid += d->owner_uid == uid;
                }
        return check("attaches", uid, n_uid, LIMIT_ATTACHES_PER_UID, n_total, LIMIT_ATTACHES_TOTAL, error);
}
