/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A ListExports or Probe call in flight. Main thread only. */
#pragma once

#include <systemd/sd-bus.h>

#include "caller-watch.h"
#include "manager.h"
#include "worker.h"

struct Query {
        Manager *manager;
        Query *next;
        Worker *worker;
        uid_t uid;                      /* the caller's, for limits.c */
        sd_bus_message *call;           /* answered when the worker reports */
        CallerWatch *caller;            /* the caller, whose leaving cancels the query */
};

Query *query_free(Query *q);
/* Unlinks q from its manager and frees it; the last one out of an exiting
 * daemon ends the event loop. */
void query_remove(Query *q);
/* Answers the call from the worker's DONE (or FAILED) event. May free q. */
void query_on_worker_event(Query *q, WorkerEvent *e);
