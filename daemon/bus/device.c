/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.nbdlink.NBD1.Device objects: state, properties and signals of
 * each /dev/nbdN the daemon attaches, and what happens when its worker
 * reports. Main thread only. */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "auth.h"
#include "bus-call.h"
#include "bus-error.h"
#include "caller-watch.h"
#include "device-usage.h"
#include "device.h"
#include "log.h"
#include "udev-properties.h"
#include "nbd-protocol.h"
#include "util/time-util.h"

static const char *const state_table[_DEVICE_STATE_MAX] = {
        [DEVICE_CONNECTING] = "connecting",
        [DEVICE_NEGOTIATING] = "negotiating",
        [DEVICE_ATTACHED] = "attached",
        [DEVICE_RECONNECTING] = "reconnecting",
        [DEVICE_DETACHING] = "detaching",
};

Device *device_find(Manager *m, int index) {
        for (Device *d = m->devices; d; d = d->next)
                if (d->index == index)
                        return d;
        return NULL;
}

const char *device_state_to_string(DeviceState s) {
        return s >= 0 && s < _DEVICE_STATE_MAX ? state_table[s] : NULL;
}

int device_new(Device **ret, Manager *m, int index, uid_t owner, const char *sender) {
        _cleanup_(device_freep) Device *d = NULL;

        d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->manager = m;
        d->index = index;
        d->owner_uid = owner;
        d->state = DEVICE_CONNECTING;
        d->state_string = state_table[d->state];
        d->tls_mode = "none";
        if (asprintf(&d->path, NBDLINK_DEVICES_PATH "/nbd%d", index) < 0) {
                d->path = NULL;
                return -ENOMEM;
        }
        if (asprintf(&d->node, "/dev/nbd%d", index) < 0) {
                d->node = NULL;
                return -ENOMEM;
        }
        d->node_prop = d->node;
        d->sender = strdup(sender ?: "");
        if (!d->sender)
                return -ENOMEM;

        *ret = TAKE_PTR(d);
        return 0;
}

Device *device_free(Device *d) {
        if (!d)
                return NULL;
        d->worker = worker_free(d->worker);
        sd_bus_message_unref(d->attach_call);
        free(d->requested_by);
        for (size_t i = 0; i < d->n_detach_calls; i++)
                sd_bus_message_unref(d->detach_calls[i]);
        caller_watch_free(d->caller);
        free(d->path);
        free(d->node);
        free(d->host);
        free(d->export_name);
        free(d->sender);
        persist_state_done(&d->pstate);
        free(d);
        return NULL;
}

void device_set_state(Device *d, DeviceState s) {
        if (d->state == s)
                return;
        d->state = s;
        d->state_string = state_table[s];
        if (d->announced)
                (void) sd_bus_emit_properties_changed(d->manager->bus, d->path, NBDLINK_DEVICE_INTERFACE, "State", NULL);
}

void device_write_udev_properties(Device *d) {
        const UdevDeviceInfo info = {
                .index = d->index,
                .owner_uid = d->owner_uid,
                .host = d->host,
                .port = d->port,
                .export_name = d->export_name,
        };
        int r;

        r = udev_properties_write(d->manager->state_dir, &info);
        if (r < 0)
                /* The device works; desktops show it as a nameless system
                 * disk. */
                log_warning("Failed to write the udev properties of %s, ignoring: %s", d->node, strerror(-r));
}

void device_forget_udev_properties(Device *d) {
        int r = udev_properties_remove(d->manager->state_dir, d->index);
        if (r < 0)
                log_warning("Failed to remove the udev properties of %s: %s", d->node, strerror(-r));
}

void device_remove(Device *d) {
        Manager *m = d->manager;

        if (!d->left)
                device_forget_udev_properties(d);

        for (Device **p = &m->devices; *p; p = &(*p)->next)
                if (*p == d) {
                        *p = d->next;
                        break;
                }
        if (d->announced)
                (void) sd_bus_emit_interfaces_removed(m->bus, d->path, NBDLINK_DEVICE_INTERFACE, NULL);
        device_free(d);

        if (m->exiting && !m->devices && !m->queries)
                (void) sd_event_exit(m->event, 0);
}

void device_reply_detach_calls(Device *d) {
        for (size_t i = 0; i < d->n_detach_calls; i++) {
                (void) sd_bus_reply_method_return(d->detach_calls[i], NULL);
                d->detach_calls[i] = sd_bus_message_unref(d->detach_calls[i]);
        }
        d->n_detach_calls = 0;
}

static void device_attached(Device *d, const WorkerAttached *a) {
        const char *name = d->node + strlen("/dev/");

        d->size = a->size;
        d->flags = a->flags;
        d->block_size = a->block_size;
        d->connections = a->connections;
        /* Asked for, or the server's own say. */
        d->read_only = d->read_only || (a->flags & NBD_FLAG_READ_ONLY);
        d->tls = a->tls;
        d->tls_mode = transport_mode_to_string(a->transport_mode) ?: "none";
        d->attached_since = now_usec(CLOCK_REALTIME);
        d->state = DEVICE_ATTACHED;
        d->state_string = state_table[d->state];

        (void) sd_bus_emit_properties_changed(d->manager->bus, d->path, NBDLINK_DEVICE_INTERFACE,
                                              "State", "Size", "Flags", "BlockSize", "Connections",
                                              "ReadOnly", "TLS", "TLSMode", "AttachedSince", NULL);

        d->caller = caller_watch_free(d->caller);
        if (d->attach_call) {
                (void) sd_bus_reply_method_return(d->attach_call, "os", d->path, name);
                d->attach_call = sd_bus_message_unref(d->attach_call);
        }
        log_info("Attached %s to export '%s' on %s (%llu bytes), asked by %s.",
                d->node, d->export_name, d->host, (unsigned long long) d->size, strna(d->requested_by));
}

/* ---- persistent devices ---------------------------------------------- */

int device_remember_request(Device *d, const char *backend, const AttachOptions *o) {
        PersistState *s = &d->pstate;

        persist_state_done(s);
        *s = (PersistState) {
                .index = d->index,
                .owner_uid = d->owner_uid,
                .host = strdup(d->host),
                .port = d->port,
                .export_name = strdup(d->export_name),
                .backend = strdup(backend),
                .timeout_sec = o->timeout_sec,
                /* Without 'persist' nothing reconnects, so nothing is worth
                 * the kernel holding I/O for. */
                .dead_timeout_sec = o->persist ? (o->dead_timeout_sec ?: PERSIST_DEFAULT_DEAD_TIMEOUT_SEC) : 0,
                .io_timeout_sec = o->io_timeout_sec,
                .read_only = o->read_only,
                .reconnect = o->persist,
        };
        return s->host && s->export_name && s->backend ? 0 : -ENOMEM;
}

/* The device is gone for good: so is its state file. */
static void forget(Device *d) {
        int r = persist_state_remove(d->manager->state_dir, d->index);
        if (r < 0 && r != -ENOENT)
                log_error("Failed to remove the state file of %s: %s", d->node, strerror(-r));
}

static void save(Device *d) {
        int r = persist_state_write(d->manager->state_dir, &d->pstate);
        if (r < 0)
                /* The device works; only a restart of nbdlinkd would lose
                 * track of it. */
                log_warning("Failed to write the state file of %s, ignoring: %s", d->node, strerror(-r));
}

/* The kernel said the link of d died (or d was found dead at start, with
 * dead_since already set): from now on I/O waits, and we have until the
 * dead timeout to give the kernel new sockets. */
void device_link_died(Device *d) {
        const PersistState *s = &d->pstate;
        uint64_t now = now_usec(CLOCK_REALTIME), dead_for;
        usec_t deadline;
        int r;

        if (d->restored_tls || !d->persistent) {
                Manager *m = d->manager;
                _cleanup_free_ char *msg = NULL;

                /* No flush first: the link is dead, it would only wait. */
                r = m->kernel_ops->netlink(m->kernel_userdata, NBD_NL_DISCONNECT,
                                           &(NbdNlConfig) { .index = d->index }, NULL);
                if (r < 0)
                        log_error("Failed to disconnect %s with NBD_CMD_DISCONNECT: %s", d->node, strerror(-r));
                if (!d->persistent)
                        r = asprintf(&msg, "device %s: the connection to export '%s' on %s was lost, disconnected",
                                     d->node, d->export_name, d->host);
                else
                        r = asprintf(&msg, "device %s: link to export '%s' on %s died, and a TLS session cannot be "
                                     "rebuilt after a restart of nbdlinkd (credentials are not kept), disconnected",
                                     d->node, d->export_name, d->host);
                if (r < 0)
                        msg = NULL;
                log_warning("%s", strempty(msg));
                device_emit_disconnected(d, -ECONNRESET, msg);
                forget(d);
                device_reply_detach_calls(d);
                device_remove(d);
                return;
        }

        if (d->pstate.dead_since == 0) {
                d->pstate.dead_since = now;
                save(d);
        }
        dead_for = now > s->dead_since ? now - s->dead_since : 0;
        deadline = now_usec(CLOCK_MONOTONIC) + (s->dead_timeout_sec * USEC_PER_SEC > dead_for ?
                                                 s->dead_timeout_sec * USEC_PER_SEC - dead_for : 0);

        r = worker_reconnect(d->worker, d->size, d->flags, deadline);
        if (r < 0) {
                log_error("Failed to start reconnecting %s: %s", d->node, strerror(-r));
                return;
        }
        log_info("Link of %s died, reconnecting to export '%s' on %s.", d->node, d->export_name, d->host);
        device_set_state(d, DEVICE_RECONNECTING);
}

/* The persistent attach was answered: what the request said is in pstate
 * already (device_remember_request()); now what the device runs with. */
static void remember(Device *d) {
        PersistState *s = &d->pstate;

        s->size = d->size;
        s->flags = d->flags;
        s->block_size = d->block_size;
        s->connections = d->connections;
        s->tls = d->tls;
        s->attached_since = d->attached_since;
        save(d);

        if (d->link_dead && d->state == DEVICE_ATTACHED && !d->manager->exiting) {
                d->link_dead = false;
                device_link_died(d);
        }
}

static void reconnected(Device *d, const WorkerAttached *a) {
        d->connections = a->connections;
        d->pstate.dead_since = 0;
        d->pstate.connections = d->connections;
        save(d);
        log_info("Reconnected %s to export '%s' on %s.", d->node, d->export_name, d->host);
        (void) sd_bus_emit_properties_changed(d->manager->bus, d->path, NBDLINK_DEVICE_INTERFACE, "Connections", NULL);
        device_set_state(d, DEVICE_ATTACHED);
}

static bool on_reconnect_event(Device *d, WorkerEvent *e) {
        Manager *m = d->manager;

        if (!d->persistent || e->kind != WORKER_RECONNECT)
                return false;

        switch (e->type) {
        case WORKER_EVENT_NEGOTIATING:
                return true;

        case WORKER_EVENT_ATTACHED:
                if (d->state == DEVICE_DETACHING) {
                        /* Detach came while the new sockets went in. */
                        d->pstate.dead_since = 0;
                        worker_stop(d->worker);
                        return true;
                }
                reconnected(d, &e->attached);
                if (m->exiting)
                        (void) device_leave(d);
                return true;

        case WORKER_EVENT_FAILED:
                if (m->exiting && e->error == -ECANCELED && d->n_detach_calls == 0) {
                        /* Left to the kernel, dead link and all: the state
                         * file (dead_since set) tells the next nbdlinkd to
                         * go on reconnecting. */
                        log_info("Leaving %s to the kernel while its link is dead.", d->node);
                        d->left = true;
                        device_remove(d);
                        return true;
                }
                if (d->n_detach_calls > 0 && e->error == -ECANCELED)
                        log_info("Detached %s while reconnecting.", d->node);
                else {
                        /* The dead timeout passed, or the server came back
                         * as something else: the device is gone. */
                        log_warning("Device %s disconnected: %s", d->node, strempty(e->message));
                        device_emit_disconnected(d, e->error, e->message);
                }
                forget(d);
                device_reply_detach_calls(d);
                device_remove(d);
                return true;

        case WORKER_EVENT_DONE:
        case WORKER_EVENT_ENDED:
        default:
                /* ENDED: a Detach of a device that had reconnected. */
                return false;
        }
}

bool device_leave(Device *d) {
        if (!d->survives)
                return false;

        switch (d->state) {
        case DEVICE_ATTACHED:
                /* The kernel runs it without us; the object goes, the
                 * state file stays for the next nbdlinkd. */
                log_info("Leaving %s attached to export '%s' on %s.", d->node, d->export_name, d->host);
                d->left = true;
                device_remove(d);
                return true;
        case DEVICE_RECONNECTING:
                /* The job ends with -ECANCELED, without disconnecting. */
                worker_leave(d->worker);
                return true;
        case DEVICE_CONNECTING:
        case DEVICE_NEGOTIATING:
        case DEVICE_DETACHING:
        case _DEVICE_STATE_MAX:
        default:
                return false;
        }
}


/* ---- the worker's events ---------------------------------------------- */

void device_on_worker_event(Device *d, WorkerEvent *e) {
        if (on_reconnect_event(d, e))
                return;

        switch (e->type) {
        case WORKER_EVENT_NEGOTIATING:
                if (d->state == DEVICE_CONNECTING)
                        device_set_state(d, DEVICE_NEGOTIATING);
                return;

        case WORKER_EVENT_ATTACHED:
                device_attached(d, &e->attached);
                d->survives = e->attached.netlink;
                if (d->survives)
                        remember(d);
                /* nbdlinkd leaves devices the kernel runs to the kernel. */
                if (d->manager->exiting && d->n_detach_calls == 0 && device_leave(d))
                        return;
                /* Detach arrived while it started: do it now. */
                if (d->n_detach_calls > 0 || d->manager->exiting) {
                        device_set_state(d, DEVICE_DETACHING);
                        worker_stop(d->worker);
                }
                return;

        case WORKER_EVENT_FAILED:
                log_error("Failed to attach %s: %s", d->node, strempty(e->message));
                if (d->attach_call) {
                        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
                        nbdlink_bus_error_set(&error, e->error, e->message);
                        (void) sd_bus_reply_method_error(d->attach_call, &error);
                        d->attach_call = sd_bus_message_unref(d->attach_call);
                }
                device_reply_detach_calls(d);
                device_remove(d);
                return;

        case WORKER_EVENT_ENDED:
                if (e->error < 0) {
                        /* Nobody asked: the server went away. */
                        log_warning("Device %s disconnected: %s", d->node, strempty(e->message));
                        device_emit_disconnected(d, e->error, e->message);
                } else if (d->manager->exiting && d->n_detach_calls == 0) {
                        /* Nobody asked either: whoever uses the device must
                         * still learn why it went away. */
                        _cleanup_free_ char *msg = NULL;

                        log_info("Detached %s: nbdlinkd is stopping.", d->node);
                        if (asprintf(&msg, "device %s: detached because nbdlinkd is stopping", d->node) < 0)
                                msg = NULL;
                        device_emit_disconnected(d, -ECANCELED, msg ?: "nbdlinkd is stopping");
                } else
                        log_info("Detached %s, asked by %s.", d->node, strna(d->requested_by));
                if (d->survives)
                        forget(d);
                /* The properties go before our descriptor closes: udev
                 * answers a writer's close with a "change" of its own,
                 * which would take them up again. */
                device_forget_udev_properties(d);
                /* Our own descriptor of the node goes before the answer:
                 * the kernel lets go of a device only with its last
                 * opener, and a caller that reattaches at once must find
                 * it free. */
                d->worker = worker_free(d->worker);
                device_reply_detach_calls(d);
                device_remove(d);
                return;

        case WORKER_EVENT_DONE:
        default:
                return;
        }
}

int device_detach(Device *d, sd_bus_message *msg, uid_t uid, bool force, sd_bus_error *error) {
        Error err = {};
        int r;

        /* Pulling a disk from under a file system loses what it had not
         * written yet and leaves it failing every later I/O: that takes the
         * caller saying so. One still attaching has no users yet. */
        if (!force && d->state == DEVICE_ATTACHED) {
                r = nbd_device_usage("", d->index, &err);
                if (r == -EBUSY)
                        return nbdlink_bus_error_setf(error, r, "device %s is in use: %s (detach with 'force' to detach anyway)",
                                                      d->node, err.message);
                if (r < 0)
                        log_warning("Cannot tell whether %s is in use, detaching: %s", d->node, strerror(-r));
        }

        if (d->n_detach_calls >= DEVICE_MAX_DETACH_CALLS)
                return nbdlink_bus_error_setf(error, -EBUSY, "device %s: too many Detach calls waiting", d->node);

        free(d->requested_by);
        d->requested_by = auth_describe_caller(d->manager->driver_bus, msg, uid);

        /* Answered when the device is gone, which may take a while: hold
         * no descriptors meanwhile. */
        r = bus_call_stand_in(msg, &d->detach_calls[d->n_detach_calls]);
        if (r < 0)
                return nbdlink_bus_error_setf(error, r, "cannot keep the call: %s", strerror(-r));
        d->n_detach_calls++;
        if (d->state == DEVICE_DETACHING)
                return 1;

        device_set_state(d, DEVICE_DETACHING);
        worker_stop(d->worker);
        return 1;
}
