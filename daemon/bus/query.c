/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A ListExports or Probe call in flight: its worker, the caller it answers,
 * and the answer built from the worker's DONE event. Main thread only. */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus-error.h"
#include "caller-watch.h"
#include "log.h"
#include "nbd-protocol.h"
#include "query.h"

Query *query_free(Query *q) {
        if (!q)
                return NULL;
        worker_free(q->worker);
        sd_bus_message_unref(q->call);
        caller_watch_free(q->caller);
        free(q);
        return NULL;
}

void query_remove(Query *q) {
        Manager *m = q->manager;

        for (Query **p = &m->queries; *p; p = &(*p)->next)
                if (*p == q) {
                        *p = q->next;
                        break;
                }
        query_free(q);
        if (m->exiting && !m->devices && !m->queries)
                (void) sd_event_exit(m->event, 0);
}

static int reply_query(Query *q, const WorkerEvent *e) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        r = sd_bus_message_new_method_return(q->call, &reply);
        if (r < 0)
                return r;

        if (e->kind == WORKER_LIST) {
                r = sd_bus_message_open_container(reply, 'a', "(ss)");
                if (r < 0)
                        return r;
                for (size_t i = 0; i < e->n_exports; i++) {
                        r = sd_bus_message_append(reply, "(ss)", e->exports[i].name,
                                                  strempty(e->exports[i].description));
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_close_container(reply);
        } else
                r = sd_bus_message_append(reply, "a{sv}", 9,
                                          "size", "t", e->info.size,
                                          "flags", "q", e->info.flags,
                                          "read-only", "b", (int) !!(e->info.flags & NBD_FLAG_READ_ONLY),
                                          "description", "s", strempty(e->info.description),
                                          "block-size-min", "u", e->info.block_min,
                                          "block-size-preferred", "u", e->info.block_preferred,
                                          "block-size-max", "u", e->info.block_max,
                                          "tls", "b", (int) e->info.tls,
                                          "name", "s", strempty(e->info.name));
        if (r < 0)
                return r;

        return sd_bus_send(NULL, reply, NULL);
}

void query_on_worker_event(Query *q, WorkerEvent *e) {
        int r;

        switch (e->type) {
        case WORKER_EVENT_DONE:
                r = reply_query(q, e);
                if (r < 0) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        log_error("Failed to send reply: %s", strerror(-r));
                        nbdlink_bus_error_setf(&error, r, "cannot build reply: %s", strerror(-r));
                        (void) sd_bus_reply_method_error(q->call, &error);
                }
                query_remove(q);
                return;
        case WORKER_EVENT_FAILED: {
                _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                nbdlink_bus_error_set(&error, e->error, e->message);
                (void) sd_bus_reply_method_error(q->call, &error);
                query_remove(q);
                return;
        }
        case WORKER_EVENT_NEGOTIATING:
        case WORKER_EVENT_ATTACHED:
        case WORKER_EVENT_ENDED:
        default:
                return;
        }
}
