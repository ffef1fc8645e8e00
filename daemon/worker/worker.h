/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* One thread per job: attach a device (connect, handshake, kernel hand-off,
 * then NBD_DO_IT until it ends), or run a short ListExports/Probe
 * handshake. Workers never touch sd-bus: they post WorkerEvents to a
 * WorkerQueue whose eventfd the main loop watches. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "attach-options.h"
#include "handshake.h"
#include "kernel.h"
#include "ktls.h"
#include "net.h"

typedef struct Worker Worker;

/* Detach: the flush of what the page cache holds is waited for this long
 * (a server that stopped answering cannot hold a Detach forever); then
 * NBD_DISCONNECT sends NBD_CMD_DISC, and a server that has not closed the
 * connection this long afterwards is cut off with NBD_CLEAR_SOCK. */
#define DETACH_FLUSH_WAIT_SEC 30u
#define DETACH_GRACE_SEC 3u

typedef enum WorkerKind {
        WORKER_ATTACH,
        WORKER_LIST,
        WORKER_PROBE,
        WORKER_RECONNECT,               /* a persistent device lost its link: new sockets, same export */
} WorkerKind;

typedef enum WorkerEventType {
        WORKER_EVENT_NEGOTIATING,       /* connected, handshake under way */
        WORKER_EVENT_ATTACHED,          /* the device runs (partitions scanned); RECONNECT: it has new sockets */
        WORKER_EVENT_FAILED,            /* the job failed: error, message; thread ends (RECONNECT: the
                                         * device was disconnected, unless the worker was told to leave it) */
        WORKER_EVENT_DONE,              /* ListExports/Probe results are ready; thread ends */
        WORKER_EVENT_ENDED,             /* an attached device stopped; thread ends */
} WorkerEventType;

/* What the device runs with, as ATTACHED reports it. */
typedef struct WorkerAttached {
        uint64_t size;                  /* the export's, as the server said */
        uint16_t flags;                 /* transmission flags */
        uint32_t block_size;
        uint32_t connections;
        bool tls;
        TransportMode transport_mode;   /* how the kernel's sockets carry TLS */
        bool netlink;                   /* handed over with NBD_CMD_CONNECT: outlives nbdlinkd */
} WorkerAttached;

/* One thing a job has to say, with everything the main thread needs to act
 * on it: the event owns its results, and the main thread never looks into
 * the Worker. */
typedef struct WorkerEvent {
        WorkerEventType type;
        WorkerKind kind;                /* the job that posted it */
        void *owner;                    /* the userdata given to worker_new() */
        int error;                      /* FAILED, ENDED: negative errno (ENDED: 0 when detached on request) */
        char *message;                  /* FAILED, ENDED */
        WorkerAttached attached;        /* ATTACHED */
        NbdExportInfo info;             /* DONE: Probe's answer */
        NbdExportEntry *exports;        /* DONE: ListExports' answer */
        size_t n_exports;

        Worker *worker;                 /* the poster, for worker_free() to withdraw what it left */
        struct WorkerEvent *next;
} WorkerEvent;

/* A mutex-protected list of events and an eventfd that says "look". */
typedef struct WorkerQueue {
        pthread_mutex_t lock;
        int event_fd;
        WorkerEvent *head, *tail;
} WorkerQueue;

int worker_queue_init(WorkerQueue *q);
void worker_queue_done(WorkerQueue *q);
/* Takes the oldest queued event, or NULL (and resets the eventfd) when
 * there is none. One at a time: handling an event may free a Worker, and
 * worker_free() withdraws the events it still had queued. */
WorkerEvent *worker_queue_pop(WorkerQueue *q);
void worker_event_free(WorkerEvent *e);

/* The persistent (netlink) path. */
typedef struct WorkerPersist {
        bool enabled;                   /* reconnect a dead link (implies netlink below) */
        uint32_t dead_timeout_sec;
        char *backend;                  /* owned: NBD_ATTR_BACKEND_IDENTIFIER */
        /* RECONNECT only: what the server must still offer, and until when
         * to keep trying (CLOCK_MONOTONIC). */
        uint64_t size;
        uint16_t flags;
        usec_t deadline;
} WorkerPersist;

typedef struct WorkerRequest {
        WorkerKind kind;
        char *host;                     /* as the caller wrote it; NULL with a socket */
        char *export_name;
        AttachOptions options;          /* owned: fds, strings */
        const char *tls_ca_dir;         /* CAs when options has no tls-ca; borrowed from the Manager */
        size_t max_list_bytes;          /* ListExports: see HandshakeOptions; 0 is the most */
        /* attach only */
        int dev_fd;                     /* owned */
        int dev_index;
        const KernelOps *ops;
        void *ops_userdata;
        /* Hand the device over with NBD_CMD_CONNECT, so that the kernel
         * runs it without a thread of ours and it outlives nbdlinkd; the
         * ioctl sequence otherwise. A device whose TLS ends up on the
         * user-space relay takes the ioctls all the same: the relay dies
         * with nbdlinkd, and so would the device. */
        bool netlink;
        WorkerPersist persist;
} WorkerRequest;


/* Takes ownership of what req holds (fds, strings) even on failure. */
int worker_new(Worker **ret, WorkerRequest *req, WorkerQueue *queue, void *userdata);
/* Joins the thread (which must have posted its last event, or be about to). */
Worker *worker_free(Worker *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

/* Starts the attach job (WORKER_ATTACH) or the query job (WORKER_LIST,
 * WORKER_PROBE) on a new worker. 0 or negative errno. */
int worker_start_attach(Worker *w);
int worker_start_query(Worker *w);

/* Stops the job from the main thread without blocking: an attach in
 * progress is cancelled (its sockets shut down, so blocking I/O ends, and
 * it fails with -ECANCELED); a running device is flushed and disconnected
 * from a short-lived thread. Returns true if the device was running. */
bool worker_stop(Worker *w);

/* nbdlinkd is exiting: a persistent device stays with the kernel, so a
 * reconnect in progress is cancelled without NBD_CMD_DISCONNECT. */
void worker_leave(Worker *w);

/* Persistent devices, main thread. worker_reconnect() starts the
 * WORKER_RECONNECT job on the worker of an attached device whose link
 * died: its earlier thread (ended) is joined, and the new one must find
 * the export with size and flags again before deadline (CLOCK_MONOTONIC).
 * -EBUSY while a detach or another job runs. */
int worker_reconnect(Worker *w, uint64_t size, uint16_t flags, usec_t deadline);
/* Makes a fresh worker (never started) stand for a device the kernel
 * already runs, attached by an earlier nbdlinkd: worker_stop() then
 * disconnects it, worker_reconnect() works on it. */
void worker_adopt(Worker *w, uint64_t size, uint16_t flags, uint32_t block_size, uint32_t connections);

void worker_request_done(WorkerRequest *req);
