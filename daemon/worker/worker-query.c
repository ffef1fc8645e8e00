/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The ListExports and Probe job: one connection, a handshake that lists or
 * describes, then goodbye; the results go to the main thread with DONE. */

#include <errno.h>

#include "connect-many.h"
#include "worker-internal.h"

static void *query_thread(void *userdata) {
        Worker *w = userdata;
        _cleanup_(nbd_address_done) NbdAddress addr = {};
        _cleanup_(tls_creds_done) TlsCreds creds = {};
        Error error = {};
        Handshake hs = {};
        usec_t deadline = deadline_after(w->req.options.timeout_sec * USEC_PER_SEC);
        int r;

        r = worker_prepare(w, &addr, &creds, &error);
        if (r < 0) {
                worker_post_failure(w, r, "%s", error.message);
                return NULL;
        }

        r = connect_many(&(ConnectManyParams) {
                                .n = 1,
                                .addr = &addr,
                                .socks = &w->req.options.socket_fd,
                                .handshake = {
                                        .goal = w->req.kind == WORKER_LIST ? HANDSHAKE_LIST : HANDSHAKE_INFO,
                                        .export_name = w->req.export_name ?: "",
                                        .tls = w->req.options.tls,
                                        .tls_config = &creds.config,
                                        .max_list_bytes = w->req.max_list_bytes,
                                },
                                .deadline = deadline,
                                .cancelled = &w->cancelled,
                                .cancel_fd = &w->cancel_fd,
                                .publish = worker_publish_cb,
                                .userdata = w,
                         }, &hs, &error);
        if (r < 0) {
                worker_post_failure(w, r, "%s", r == -ECANCELED ? "cancelled" : error.message);
                return NULL;
        }

        worker_publish_sock(w, 0, -EBADF);
        worker_post_done(w, &hs.info, TAKE_PTR(hs.exports), hs.n_exports);
        hs.n_exports = 0;
        handshake_done(&hs);
        return NULL;
}

int worker_start_query(Worker *w) {
        return worker_spawn(w, query_thread);
}
