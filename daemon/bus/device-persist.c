/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Persistent devices seen from outside a Device: the netlink multicast
 * watch for NBD_CMD_LINK_DEAD, the backend identifier, and finding the
 * devices again from their state files under /run/nbdlink when nbdlinkd
 * starts. What a Device does about it is device.c's.
 *
 * TLS and persistence. A persistent device must not depend on nbdlinkd
 * staying alive, so its TLS may only be carried by kTLS: the kernel holds
 * the session inside the socket it was given, and nbdlinkd dying changes
 * nothing for it. The user-space relay is refused (manager.c, and again in
 * the worker when kTLS turns out not to be usable): relay threads die with
 * the daemon, and although the kernel would then see a dead link and wait,
 * the data path would have depended on a process that was gone, and the
 * restarted daemon could not rebuild the session anyway -- see next.
 * Reconnecting needs a new TLS handshake with the caller's credentials,
 * which nbdlinkd keeps in memory only, never in the state file (a private
 * key or PSK does not belong in /run). So: while the nbdlinkd that attached
 * the device runs, a dead link is reconnected over TLS as over plaintext;
 * a device found again after a restart keeps working as long as its link
 * does, but when that link dies it is disconnected at once with a
 * Disconnected reason that says why, rather than leaving its I/O hanging
 * until the dead timeout for a reconnect that cannot happen. */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bus-error.h"
#include "device-node.h"
#include "device-persist.h"
#include "log.h"
#include "nbd-protocol.h"
#include "net.h"
#include "options.h"
#include "udev-properties.h"


static void on_link_dead(int index, void *userdata) {
        Manager *m = userdata;
        Device *d = device_find(m, index);

        /* Devices not ours (nbd-client's, or persistent ones of an
         * nbdlinkd that has not found them yet) are none of our business. */
        if (!d || !d->survives || m->exiting)
                return;
        switch (d->state) {
        case DEVICE_CONNECTING:
        case DEVICE_NEGOTIATING:
                /* Between NBD_CMD_CONNECT and its ATTACHED event. */
                d->link_dead = true;
                return;
        case DEVICE_ATTACHED:
                device_link_died(d);
                return;
        case DEVICE_RECONNECTING:       /* one of several connections: already on it */
        case DEVICE_DETACHING:
        case _DEVICE_STATE_MAX:
        default:
                return;
        }
}

static int on_netlink(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Manager *m = userdata;
        uint8_t buf[NBD_NL_BUFFER_SIZE];

        for (;;) {
                struct sockaddr_nl from = {};
                socklen_t fl = sizeof(from);
                ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *) &from, &fl);

                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == ENOBUFS)
                                /* Events were lost: nothing tells which
                                 * device died, so each one's next I/O will;
                                 * keep reading. */
                                log_warning("Netlink multicast overrun, some LINK_DEAD may be lost.");
                        else if (errno != EAGAIN)
                                log_error("Failed to read from nbd netlink: %m");
                        if (errno == ENOBUFS)
                                continue;
                        return 0;
                }
                /* Only the kernel multicasts nbd events. */
                if (from.nl_pid != 0)
                        continue;
                if (nbd_nl_parse_link_dead(buf, (size_t) n, m->netlink.family, on_link_dead, m) < 0)
                        log_warning("Ignoring a malformed nbd netlink message.");
        }
}

int manager_netlink_watch(Manager *m) {
        int r;

        if (m->netlink_source)
                return 0;
        if (m->netlink.fd < 0) {
                r = nbd_netlink_open(&m->netlink);
                if (r < 0)
                        return r;
        }
        r = nbd_netlink_subscribe(&m->netlink);
        if (r >= 0) {
                (void) fcntl(m->netlink.fd, F_SETFL, fcntl(m->netlink.fd, F_GETFL) | O_NONBLOCK);
                r = sd_event_add_io(m->event, &m->netlink_source, m->netlink.fd, EPOLLIN, on_netlink, m);
        }
        if (r < 0) {
                log_error("Failed to watch the nbd netlink group: %s", strerror(-r));
                nbd_netlink_close(&m->netlink);
        }
        return r;
}

int device_persist_backend(const char *host, uint16_t port, const char *export_name, char **ret,
                           Error *error) {
        _cleanup_(nbd_address_done) NbdAddress a = {};
        char buf[NBD_MAX_HOST + 64];
        int r;

        r = nbd_address_parse(&a, host, port, error);
        if (r < 0)
                return r;
        r = persist_backend_id(nbd_address_format(&a, buf, sizeof(buf)), export_name, ret);
        if (r < 0)
                return error_set(error, r, "cannot name the backend: %s", strerror(-r));
        return 0;
}

/* Whether sysfs and the kernel agree that nbd<index> still runs what s
 * describes. */
static bool kernel_still_has(const PersistState *s) {
        char path[64], backend[NBD_NL_BACKEND_MAX + 2] = "";
        FILE *f;
        bool ok;
        NbdNetlink nl = NBD_NETLINK_NULL;
        int index = s->index, connected = 0, r;

        /* Not the multicast socket: a request's wait for its answer would
         * swallow the LINK_DEAD events arriving meanwhile. */
        r = nbd_netlink_open(&nl);
        if (r >= 0)
                r = nbd_netlink_request(&nl, NBD_NL_STATUS, &(NbdNlConfig) { .index = s->index },
                                        &index, &connected);
        nbd_netlink_close(&nl);
        if (r < 0 || index != s->index || !connected)
                return false;

        /* The identifier tells our device from one attached by someone
         * else at the same index since. */
        (void) snprintf(path, sizeof(path), "/sys/block/nbd%d/backend", s->index);
        f = fopen(path, "re");
        if (!f)
                return false;
        ok = fgets(backend, sizeof(backend), f);
        fclose(f);
        backend[strcspn(backend, "\n")] = 0;
        return ok && strcmp(backend, s->backend) == 0;
}

static int restore_one(Manager *m, PersistState *s) {
        _cleanup_(device_freep) Device *d = NULL;
        Error err = {};
        WorkerRequest req;
        int dev_fd = -EBADF, r;

        r = nbd_device_open(s->index, &dev_fd, &err);
        if (r < 0) {
                log_error("Failed to open nbd%d: %s", s->index, err.message);
                return r;
        }
        r = device_new(&d, m, s->index, s->owner_uid, NULL);
        if (r < 0) {
                safe_close(dev_fd);
                return r;
        }
        d->host = strdup(s->host);
        d->export_name = strdup(s->export_name);
        if (!d->host || !d->export_name) {
                safe_close(dev_fd);
                return -ENOMEM;
        }
        d->port = s->port;
        d->persistent = s->reconnect;
        d->survives = true;
        d->size = s->size;
        d->flags = s->flags;
        d->block_size = s->block_size;
        d->connections = s->connections;
        d->read_only = s->read_only || (s->flags & NBD_FLAG_READ_ONLY);
        d->attached_since = s->attached_since;
        d->tls = s->tls;
        d->tls_mode = s->tls ? transport_mode_to_string(TRANSPORT_MODE_KTLS) : "none";
        d->restored_tls = s->tls;
        d->state = DEVICE_ATTACHED;
        d->state_string = device_state_to_string(d->state);

        req = (WorkerRequest) {
                .kind = WORKER_ATTACH,
                .host = strcmp(s->host, "(socket)") != 0 ? strdup(s->host) : NULL,
                .export_name = strdup(s->export_name),
                .dev_fd = dev_fd,
                .dev_index = s->index,
                .ops = m->kernel_ops,
                .ops_userdata = m->kernel_userdata,
                .netlink = true,
                .persist = {
                        .enabled = s->reconnect,
                        .dead_timeout_sec = s->dead_timeout_sec,
                        .backend = strdup(s->backend),
                },
        };
        attach_options_init(&req.options, s->timeout_sec);
        req.options.port = s->port;
        req.options.read_only = s->read_only;
        req.options.connections = s->connections;
        req.options.persist = s->reconnect;
        req.options.dead_timeout_sec = s->dead_timeout_sec;
        req.options.io_timeout_sec = s->io_timeout_sec;
        if (!req.host || !req.export_name || !req.persist.backend) {
                worker_request_done(&req);
                return -ENOMEM;
        }
        r = worker_new(&d->worker, &req, &m->queue, d);
        if (r < 0)
                return r;
        worker_adopt(d->worker, s->size, s->flags, s->block_size, s->connections);

        d->pstate = *s;
        *s = (PersistState) {};
        /* Still there unless /run was emptied; the next uevent of the
         * device (a resize, a partition table written) needs it. */
        device_write_udev_properties(d);
        d->announced = true;
        d->next = m->devices;
        m->devices = d;
        (void) sd_bus_emit_interfaces_added(m->bus, d->path, NBDLINK_DEVICE_INTERFACE, NULL);
        log_info("Found %s attached to export '%s' on %s, owned by UID %u.",
                d->node, d->export_name, d->host, d->owner_uid);

        /* The link died while nobody listened, or while the last nbdlinkd
         * was reconnecting. */
        if (d->pstate.dead_since != 0)
                device_link_died(d);
        TAKE_PTR(d);
        return 0;
}

/* The udev properties of devices no nbdlinkd runs any more (one killed
 * with its ioctl devices, a device left to the kernel that ended while no
 * nbdlinkd ran) would name an owner for whatever attaches at that index
 * next, another tool's device included. Only those of devices with a
 * state file stay. */
static void sweep_udev_properties(Manager *m) {
        _cleanup_free_ int *states = NULL, *props = NULL;
        _cleanup_free_ char *dir = NULL;
        size_t n_states = 0, n_props = 0;

        if (asprintf(&dir, "%s/" UDEV_PROPERTIES_SUBDIR, m->state_dir) < 0) {
                dir = NULL;
                return;
        }
        if (persist_state_list(m->state_dir, &states, &n_states) < 0 ||
            persist_state_list(dir, &props, &n_props) < 0)
                return;
        for (size_t i = 0; i < n_props; i++) {
                bool kept = device_find(m, props[i]);

                for (size_t j = 0; !kept && j < n_states; j++)
                        kept = states[j] == props[i];
                if (!kept) {
                        log_info("Removing the udev properties of nbd%d, which no nbdlinkd runs.", props[i]);
                        (void) udev_properties_remove(m->state_dir, props[i]);
                }
        }
}

static int restore_all(Manager *m) {
        _cleanup_free_ int *list = NULL;
        size_t n = 0;
        int r;

        r = persist_state_list(m->state_dir, &list, &n);
        if (r < 0) {
                log_error("Failed to list %s: %s", m->state_dir, strerror(-r));
                return r;
        }
        if (n == 0)
                return 0;

        /* Watch before asking, so that no LINK_DEAD falls between the
         * STATUS answer and the subscription. */
        r = manager_netlink_watch(m);
        if (r < 0 && m->netlink.fd < 0) {
                /* Without the nbd module loaded no device survived. */
                log_warning("No nbd netlink family (%s): forgetting %zu persistent device(s).",
                        strerror(-r), n);
                for (size_t i = 0; i < n; i++)
                        (void) persist_state_remove(m->state_dir, list[i]);
                return 0;
        }

        for (size_t i = 0; i < n; i++) {
                _cleanup_(persist_state_done) PersistState s = {};

                r = persist_state_read(m->state_dir, list[i], &s);
                if (r < 0 || s.index != list[i] || device_find(m, s.index) || !kernel_still_has(&s)) {
                        log_info("Forgetting stale state of nbd%d.", list[i]);
                        (void) persist_state_remove(m->state_dir, list[i]);
                        continue;
                }
                r = restore_one(m, &s);
                if (r < 0)
                        /* The file stays: the device runs, and the next
                         * start may do better. */
                        log_error("Failed to restore nbd%d: %s", list[i], strerror(-r));
        }
        return 0;
}

int manager_restore_persistent(Manager *m) {
        int r = restore_all(m);

        sweep_udev_properties(m);
        return r;
}
