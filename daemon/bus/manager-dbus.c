/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The org.nbdlink.NBD1.Manager interface: Attach, AttachWithOptions,
 * Detach, ListExports, Probe, Version. Every handler goes parse → validate
 * → authorize → act → reply; the reply of the long ones comes when their
 * worker reports (device.c, query.c). */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "address.h"
#include "auth.h"
#include "bus-call.h"
#include "bus-error.h"
#include "caller-watch.h"
#include "config.h"
#include "device-name.h"
#include "device-node.h"
#include "device-persist.h"
#include "device.h"
#include "call-limits.h"
#include "log.h"
#include "nbd-uri.h"
#include "manager.h"
#include "options.h"
#include "persist.h"
#include "query.h"
#include "udev-properties.h"

/* The CA directory for a request made now: looked at per request, so that
 * an administrator can create the default one without a restart. */
static const char *manager_tls_ca_dir(Manager *m) {
        struct stat st;

        if (!m->tls_ca_dir)
                return NULL;
        if (m->tls_ca_dir_optional && (stat(m->tls_ca_dir, &st) < 0 || !S_ISDIR(st.st_mode)))
                return NULL;
        return m->tls_ca_dir;
}

/* ---- the caller going away --------------------------------------------- */

static void on_device_caller_gone(void *userdata) {
        Device *d = userdata;

        /* Nobody is waiting for this attach any more. */
        log_info("Caller of attach on %s went away, cancelling.", d->node);
        d->caller = caller_watch_free(d->caller);
        if (d->state != DEVICE_ATTACHED) {
                device_set_state(d, DEVICE_DETACHING);
                worker_stop(d->worker);
        }
}

static void on_query_caller_gone(void *userdata) {
        Query *q = userdata;

        q->caller = caller_watch_free(q->caller);
        worker_stop(q->worker);
}

/* ---- methods ----------------------------------------------------------- */

static int pick_device(Manager *m, int index, const char *name, Error *error) {
        int r;

        if (!nbd_module_loaded()) {
                return error_set(error, -ENODEV, "device %s: the nbd kernel module is not loaded",
                                *name ? name : "(any)");
        }

        if (index >= 0) {
                if (device_find(m, index)) {
                        return error_set(error, -EBUSY, "device nbd%d is already attached or being attached", index);
                }
                r = nbd_device_is_free(index);
                if (r == 0) {
                        return error_set(error, -EBUSY, "device nbd%d is in use", index);
                }
                if (r < 0) {
                        return error_set(error, -ENODEV, "device nbd%d: no such device", index);
                }
                return index;
        }

        for (int i = 0; i <= NBD_MAX_DEVICE_INDEX; i++) {
                if (device_find(m, i))
                        continue;
                r = nbd_device_is_free(i);
                if (r == -ENOENT)
                        break;
                if (r > 0)
                        return i;
        }
        return error_set(error, -EBUSY, "no free nbd device");
}

/* The checks of an attach that need no authorization: the device name,
 * export, host and the options that go together. Unless the ioctls are
 * asked for, also the backend identifier, which tells a device the kernel
 * runs for us from one someone else attached at the same index since. */
static int validate_attach(uid_t uid, const char *device, const char *host, const char *export_name,
                           const AttachOptions *options, int *ret_index, char **ret_backend, Error *error) {
        if (device_name_parse(device, ret_index) < 0)
                return error_set(error, -EINVAL, "device '%.64s' is not \"\", nbdN or /dev/nbdN (N up to 4 digits)", device);
        if (validate_export_name(export_name, error) < 0)
                return -EINVAL;
        if (!(options->socket_fd >= 0 && !*host) && validate_host(host, uid == 0, error) < 0)
                return -EINVAL;
        if (options->socket_fd >= 0 && *host)
                return error_set(error, -EINVAL, "pass either a host or the option 'socket', not both");
        if (options->dead_timeout_sec > 0 && !options->persist)
                return error_set(error, -EINVAL, "option 'dead-timeout' needs 'persist'");
        if (options->persist && options->socket_fd >= 0)
                return error_set(error, -EINVAL, "option 'persist' needs a host to reconnect to, not a caller's 'socket'");
        /* TLS of a persistent device must not depend on nbdlinkd staying
         * alive: only kTLS, where the kernel holds the session, qualifies
         * (device-persist.c explains). */
        if (options->persist && options->tls != TLS_MODE_OFF && !options->tls_ktls)
                return error_set(error, -EOPNOTSUPP,
                                 "option 'persist' with TLS needs 'tls-ktls': the TLS relay would die with nbdlinkd");
        if (options->persist && options->kernel_interface == KERNEL_INTERFACE_IOCTL)
                return error_set(error, -EINVAL, "option 'persist' needs the netlink interface, not 'ioctl'");
        if (options->kernel_interface == KERNEL_INTERFACE_IOCTL)
                return 0;
        if (options->socket_fd >= 0) {
                int r = persist_backend_id("(socket)", export_name, ret_backend);
                return r < 0 ? error_set(error, r, "cannot name the backend: %s", strerror(-r)) : 0;
        }
        return device_persist_backend(host, options->port, export_name, ret_backend, error);
}

/* The device of an authorized attach: its node opened, its properties set,
 * its worker made (not started). Takes the options' descriptors and the
 * backend. */
static int make_device(Manager *m, sd_bus_message *msg, uid_t uid, int index, const char *device,
                       const char *host, const char *export_name, AttachOptions *options, char **backend,
                       Device **ret, Error *error) {
        _cleanup_(device_freep) Device *d = NULL;
        _cleanup_close_ int dev_fd = -EBADF;
        WorkerRequest req;
        bool netlink = false;
        int r;

        index = pick_device(m, index, device, error);
        if (index < 0)
                return index;

        /* Through netlink the kernel runs the device without us, so it
         * outlives nbdlinkd; and the LINK_DEAD events that tell when its
         * connection is lost come through the same family. */
        if (options->kernel_interface != KERNEL_INTERFACE_IOCTL) {
                r = manager_netlink_watch(m);
                netlink = r >= 0;
                if (!netlink && (options->persist || options->kernel_interface == KERNEL_INTERFACE_NETLINK))
                        return error_set(error, -EOPNOTSUPP, "the kernel offers no nbd netlink family (%s), "
                                         "which %s needs", strerror(-r),
                                         options->persist ? "option 'persist'" : "kernel-interface 'netlink'");
        }
        r = nbd_device_open(index, &dev_fd, error);
        if (r < 0)
                return r;

        r = device_new(&d, m, index, uid, sd_bus_message_get_sender(msg));
        if (r < 0)
                return error_set(error, r, "cannot allocate device");
        d->requested_by = auth_describe_caller(m->driver_bus, msg, uid);
        d->host = strdup(*host ? host : "(socket)");
        d->export_name = strdup(export_name);
        d->persistent = options->persist;
        d->survives = netlink;          /* until the worker says how it went */
        d->read_only = options->read_only;
        if (!d->host || !d->export_name)
                return error_set(error, -ENOMEM, "out of memory");
        /* The port connected to, wherever it came from (option, host
         * string, or the default); 0 for a unix socket or a given socket. */
        d->port = options->port;
        if (*host) {
                _cleanup_(nbd_address_done) NbdAddress a = {};
                if (nbd_address_parse(&a, host, options->port, NULL) >= 0 && !a.unix_path)
                        d->port = a.port;
        }
        if (netlink) {
                r = device_remember_request(d, *backend, options);
                if (r < 0)
                        return error_set(error, r, "out of memory");
        }

        req = (WorkerRequest) {
                .kind = WORKER_ATTACH,
                .host = *host ? strdup(host) : NULL,
                .export_name = strdup(export_name),
                .options = *options,
                .dev_fd = TAKE_FD(dev_fd),
                .dev_index = index,
                .tls_ca_dir = manager_tls_ca_dir(m),
                .ops = m->kernel_ops,
                .ops_userdata = m->kernel_userdata,
                .netlink = netlink,
                .persist = {
                        .enabled = options->persist,
                        .dead_timeout_sec = options->persist ? (options->dead_timeout_sec ?: PERSIST_DEFAULT_DEAD_TIMEOUT_SEC) : 0,
                        .backend = netlink ? TAKE_PTR(*backend) : NULL,
                },
        };
        attach_options_init(options, m->default_timeout_sec);   /* moved into req */
        r = worker_new(&d->worker, &req, &m->queue, d);
        if (r < 0)
                return error_set(error, r, "cannot allocate worker");

        *ret = TAKE_PTR(d);
        return 0;
}

/* Starts the worker of a new device and announces it; the caller's leaving
 * cancels the attach until it is answered. */
static int launch_device(Manager *m, Device *d, sd_bus_message *msg, Error *error) {
        int r;

        r = caller_watch_new(m->bus, sd_bus_message_get_sender(msg), on_device_caller_gone, d, &d->caller);
        if (r < 0)
                return error_set(error, r, "cannot track caller: %s", strerror(-r));
        /* Answered later, without holding the call's descriptors. */
        r = bus_call_stand_in(msg, &d->attach_call);
        if (r < 0)
                return error_set(error, r, "cannot keep the call: %s", strerror(-r));

        if (d->persistent)
                /* Not fatal here: without nbd's netlink family the attach
                 * itself fails with the reason. */
                (void) manager_netlink_watch(m);
        device_write_udev_properties(d);
        r = worker_start_attach(d->worker);
        if (r < 0) {
                (void) udev_properties_remove(m->state_dir, d->index);
                return error_set(error, r, "cannot start worker thread: %s", strerror(-r));
        }

        d->announced = true;
        d->next = m->devices;
        m->devices = d;
        (void) sd_bus_emit_interfaces_added(m->bus, d->path, NBDLINK_DEVICE_INTERFACE, NULL);
        return 0;
}

/* The caller's uid (bus_sender_uid()), or the bus error that says why
 * there is none. One synchronous question to the bus driver: asked once
 * per call, and handed on. */
static int caller_uid(Manager *m, sd_bus_message *msg, uid_t *ret, sd_bus_error *error) {
        int r = bus_sender_uid(m->driver_bus, msg, ret);
        if (r < 0)
                return nbdlink_bus_error_setf(error, -EACCES, "cannot tell who is calling: %s", strerror(-r));
        return 0;
}

static int do_attach(sd_bus_message *msg, Manager *m, uid_t uid, const char *device, const char *host,
                     const char *export_name, AttachOptions *options, sd_bus_error *error) {
        _cleanup_(device_freep) Device *d = NULL;
        _cleanup_free_ char *backend = NULL;
        Error err = {};
        char node[32];
        int index, r;

        r = validate_attach(uid, device, host, export_name, options, &index, &backend, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r, err.message);
        /* Before polkit, so that nobody is asked for a password for a call
         * that would be refused anyway; checked again after (below), since
         * others may have started meanwhile. */
        if (!polkit_registry_knows(m->polkit, msg)) {
                r = limits_check_attach(m, uid, &err);
                if (r < 0)
                        return nbdlink_bus_error_set(error, r, err.message);
        }

        /* The details are what a password dialog shows. */
        (void) snprintf(node, sizeof(node), "/dev/nbd%d", index);
        const char *details[] = {
                "device", index >= 0 ? node : "the first free /dev/nbdN",
                "host", *host ? host : "a connection the caller opened",
                "export", export_name,
                NULL };
        r = auth_check(m->polkit, msg, uid, ACTION_ATTACH, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        if (m->exiting)
                return nbdlink_bus_error_set(error, -ECANCELED, "nbdlinkd is shutting down");
        r = limits_check_attach(m, uid, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r, err.message);

        r = make_device(m, msg, uid, index, device, host, export_name, options, &backend, &d, &err);
        if (r >= 0)
                r = launch_device(m, d, msg, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r, err.message);

        /* The reply follows when the worker reports. */
        TAKE_PTR(d);
        return 1;
}

static int method_attach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(attach_options_done) AttachOptions options;
        const char *device, *host, *export_name;
        uid_t uid;
        int tls, r;

        attach_options_init(&options, m->default_timeout_sec);
        r = sd_bus_message_read(msg, "sssb", &device, &host, &export_name, &tls);
        if (r < 0)
                return r;
        /* TLS asked for by a yes/no: never quietly fall back to plaintext. */
        options.tls = tls ? TLS_MODE_REQUIRE : TLS_MODE_OFF;

        r = caller_uid(m, msg, &uid, error);
        if (r < 0)
                return r;
        return do_attach(msg, m, uid, device, host, export_name, &options, error);
}

static int method_attach_with_options(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(attach_options_done) AttachOptions options;
        const char *device, *host, *export_name;
        Error err = {};
        uid_t uid;
        int r;

        attach_options_init(&options, m->default_timeout_sec);
        r = sd_bus_message_read(msg, "sss", &device, &host, &export_name);
        if (r < 0)
                return r;
        r = attach_options_parse(msg, OPTIONS_ATTACH, &options, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r == -ENOMEM ? r : -EINVAL, err.message);

        r = caller_uid(m, msg, &uid, error);
        if (r < 0)
                return r;
        return do_attach(msg, m, uid, device, host, export_name, &options, error);
}

/* What an NBD URI says, as the arguments and options of an attach. A port
 * given both ways must agree, an option otherwise wins over the URI's
 * query; paths in the URI (tls-psk-file,
 * tls-certificates) are refused, since nbdlinkd opens no paths for a
 * caller: the files travel as descriptors in the options. */
static int attach_args_from_uri(const NbdTarget *t, uid_t uid, AttachOptions *o, char **ret_host, Error *error) {
        _cleanup_free_ char *host = NULL;

        if (t->tls_psk_file || t->tls_certificates)
                return error_set(error, -EINVAL, "uri: %s names a path, which nbdlinkd does not open for callers: "
                                 "pass the file as the option '%s'",
                                 t->tls_psk_file ? "tls-psk-file" : "tls-certificates",
                                 t->tls_psk_file ? "tls-psk" : "tls-ca");
        if (t->is_unix) {
                /* Either root names a path, or the caller hands over a
                 * socket it connected itself (option 'socket'). */
                if (o->socket_fd >= 0)
                        host = strdup("");
                else if (uid != 0)
                        return error_set(error, -EINVAL, "uri: unix sockets are reached by root only; "
                                         "pass a connected socket as the option 'socket' instead");
                else if (t->socket_path_len == 0 || t->socket_path[0] != '/')
                        return error_set(error, -EINVAL, "uri: the socket must be an absolute path");
                else
                        (void) asprintf(&host, "unix:%s", t->socket_path);
        } else {
                if (o->socket_fd >= 0)
                        return error_set(error, -EINVAL, "pass either a host in the URI or the option 'socket', not both");
                if (t->port != 0 && o->port != 0 && t->port != o->port)
                        return error_set(error, -EINVAL, "the URI's port %u and the option 'port' %u disagree",
                                         t->port, o->port);
                if (t->port != 0)
                        o->port = t->port;
                host = strdup(nbd_target_bus_host(t));
        }
        if (!host)
                return -ENOMEM;

        /* nbds: TLS or nothing, whatever the option 'tls' says. */
        if (t->tls_required)
                o->tls = TLS_MODE_REQUIRE;
        if (t->tls_hostname && !o->tls_hostname && !(o->tls_hostname = strdup(t->tls_hostname)))
                return -ENOMEM;
        if (t->username && !o->tls_username && !(o->tls_username = strdup(t->username)))
                return -ENOMEM;

        *ret_host = TAKE_PTR(host);
        return 0;
}

static int method_attach_uri(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        Manager *m = userdata;
        _cleanup_(attach_options_done) AttachOptions options;
        _cleanup_(nbd_target_freep) NbdTarget *t = NULL;
        _cleanup_free_ char *host = NULL, *device = NULL;
        char message[ERROR_MESSAGE_MAX];
        const char *uri;
        Error err = {};
        uid_t uid;
        int r;

        attach_options_init(&options, m->default_timeout_sec);
        r = sd_bus_message_read(msg, "s", &uri);
        if (r < 0)
                return r;
        r = attach_options_parse(msg, OPTIONS_ATTACH_URI, &options, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r == -ENOMEM ? r : -EINVAL, err.message);
        if (strlen(uri) > NBD_MAX_STRING)
                return nbdlink_bus_error_setf(error, -EINVAL, "uri of %zu bytes is longer than %u bytes",
                                              strlen(uri), NBD_MAX_STRING);
        /* The other forms of a target are nbdlink's, not URIs. */
        if (!strstr(uri, "://"))
                return nbdlink_bus_error_set(error, -EINVAL, "uri: not an NBD URI (nbd://, nbds://, nbd+unix://, nbds+unix://)");
        r = nbd_target_parse(&t, uri, message, sizeof(message));
        if (r < 0)
                return nbdlink_bus_error_set(error, r, message);

        r = caller_uid(m, msg, &uid, error);
        if (r < 0)
                return r;
        r = attach_args_from_uri(t, uid, &options, &host, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r, err.message);

        device = TAKE_PTR(options.device);
        return do_attach(msg, m, uid, strempty(device), host, t->export_name ?: "", &options, error);
}

/* DetachWithOptions' options: "force" alone, for now. */
static int parse_detach_options(sd_bus_message *msg, bool *ret_force, Error *error) {
        bool force = false, seen = false;
        int r;

        r = sd_bus_message_enter_container(msg, 'a', "{sv}");
        if (r < 0)
                return error_set(error, r, "options must be a{sv}");
        while ((r = sd_bus_message_enter_container(msg, 'e', "sv")) > 0) {
                const char *key;
                int v;

                r = sd_bus_message_read_basic(msg, 's', &key);
                if (r < 0)
                        return error_set(error, r, "cannot read option key");
                if (strcmp(key, "force") != 0)
                        return error_set(error, -EINVAL, "unknown option '%.64s'", key);
                if (seen)
                        return error_set(error, -EINVAL, "option 'force' is given more than once");
                seen = true;
                r = sd_bus_message_read(msg, "v", "b", &v);
                if (r < 0)
                        return error_set(error, -EINVAL, "option 'force' must have type 'b'");
                force = v;
                r = sd_bus_message_exit_container(msg);
                if (r < 0)
                        return error_set(error, r, "cannot read option '%s'", key);
        }
        if (r < 0)
                return error_set(error, r, "cannot read options");
        r = sd_bus_message_exit_container(msg);
        if (r < 0)
                return error_set(error, r, "cannot read options");
        *ret_force = force;
        return 0;
}

static int do_detach(sd_bus_message *msg, Manager *m, const char *device, bool force, sd_bus_error *error) {
        Device *d;
        uid_t uid;
        int index, r;

        if (device_name_parse(device, &index) < 0 || index < 0)
                return nbdlink_bus_error_setf(error, -EINVAL,
                                              "device '%.64s' is not nbdN or /dev/nbdN (N up to 4 digits)", device);

        r = caller_uid(m, msg, &uid, error);
        if (r < 0)
                return r;
        d = device_find(m, index);
        char node[32];
        (void) snprintf(node, sizeof(node), "/dev/nbd%d", index);
        const char *details[] = { "device", node, "host", d ? d->host : "", "export", d ? d->export_name : "", NULL };
        r = auth_check(m->polkit, msg, uid, auth_detach_action(uid, d ? d->owner_uid : uid), details, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        if (!d)
                return nbdlink_bus_error_setf(error, -ENXIO, "device /dev/nbd%d is not attached by nbdlinkd", index);

        return device_detach(d, msg, uid, force, error);
}

static int method_detach(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *device;
        int r;

        r = sd_bus_message_read(msg, "s", &device);
        if (r < 0)
                return r;
        return do_detach(msg, userdata, device, false, error);
}

static int method_detach_with_options(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *device;
        Error err = {};
        bool force = false;
        int r;

        r = sd_bus_message_read(msg, "s", &device);
        if (r < 0)
                return r;
        r = parse_detach_options(msg, &force, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r == -ENOMEM ? r : -EINVAL, err.message);
        return do_detach(msg, userdata, device, force, error);
}

static int start_query(sd_bus_message *msg, Manager *m, WorkerKind kind, const char *host,
                       const char *export_name, sd_bus_error *error) {
        _cleanup_(attach_options_done) AttachOptions options;
        Error err = {};
        WorkerRequest req;
        Query *q;
        uid_t uid;
        int r;

        attach_options_init(&options, m->default_timeout_sec);
        r = attach_options_parse(msg, OPTIONS_QUERY, &options, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r == -ENOMEM ? r : -EINVAL, err.message);

        r = caller_uid(m, msg, &uid, error);
        if (r < 0)
                return r;
        if (export_name && validate_export_name(export_name, &err) < 0)
                return nbdlink_bus_error_set(error, -EINVAL, err.message);
        if (!(options.socket_fd >= 0 && !*host) && validate_host(host, uid == 0, &err) < 0)
                return nbdlink_bus_error_set(error, -EINVAL, err.message);
        if (options.socket_fd >= 0 && *host)
                return nbdlink_bus_error_set(error, -EINVAL, "pass either a host or the option 'socket', not both");
        if (!polkit_registry_knows(m->polkit, msg)) {
                r = limits_check_query(m, uid, &err);
                if (r < 0)
                        return nbdlink_bus_error_set(error, r, err.message);
        }

        const char *details[] = { "host", *host ? host : "a connection the caller opened",
                                  "export", strempty(export_name), NULL };
        r = auth_check(m->polkit, msg, uid, ACTION_LIST, details, error);
        if (r <= 0)
                return r < 0 ? r : 1;

        if (m->exiting)
                return nbdlink_bus_error_set(error, -ECANCELED, "nbdlinkd is shutting down");
        r = limits_check_query(m, uid, &err);
        if (r < 0)
                return nbdlink_bus_error_set(error, r, err.message);

        q = calloc(1, sizeof(*q));
        if (!q)
                return -ENOMEM;
        q->manager = m;
        q->uid = uid;
        req = (WorkerRequest) {
                .kind = kind,
                .host = *host ? strdup(host) : NULL,
                .export_name = export_name ? strdup(export_name) : NULL,
                .options = options,
                .dev_fd = -EBADF,
                .dev_index = -1,
                .tls_ca_dir = manager_tls_ca_dir(m),
                /* The list is memory held on the caller's behalf twice
                 * over (read, then the reply): a stranger gets far less. */
                .max_list_bytes = uid == 0 ? NBD_MAX_LIST_BYTES : NBD_MAX_LIST_BYTES_UNPRIVILEGED,
        };
        attach_options_init(&options, m->default_timeout_sec);  /* moved into req */
        r = worker_new(&q->worker, &req, &m->queue, q);
        if (r >= 0)
                r = caller_watch_new(m->bus, sd_bus_message_get_sender(msg), on_query_caller_gone, q, &q->caller);
        if (r >= 0)
                /* Answered later, without holding the call's descriptors. */
                r = bus_call_stand_in(msg, &q->call);
        if (r >= 0)
                r = worker_start_query(q->worker);
        if (r < 0) {
                query_free(q);
                return nbdlink_bus_error_setf(error, r, "cannot start query: %s", strerror(-r));
        }

        q->next = m->queries;
        m->queries = q;
        return 1;
}

static int method_list_exports(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *host;
        int r;

        r = sd_bus_message_read(msg, "s", &host);
        if (r < 0)
                return r;
        return start_query(msg, userdata, WORKER_LIST, host, NULL, error);
}

static int method_probe(sd_bus_message *msg, void *userdata, sd_bus_error *error) {
        const char *host, *export_name;
        int r;

        r = sd_bus_message_read(msg, "ss", &host, &export_name);
        if (r < 0)
                return r;
        return start_query(msg, userdata, WORKER_PROBE, host, export_name, error);
}

static int property_get_version(sd_bus *bus, const char *path, const char *interface, const char *property,
                                sd_bus_message *reply, void *userdata, sd_bus_error *error) {
        return sd_bus_message_append(reply, "s", PACKAGE_VERSION);
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Version", "s", property_get_version, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_METHOD_WITH_NAMES("Attach", "sssb",
                                 SD_BUS_PARAM(device) SD_BUS_PARAM(host) SD_BUS_PARAM(export) SD_BUS_PARAM(tls),
                                 "os", SD_BUS_PARAM(object) SD_BUS_PARAM(device),
                                 method_attach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AttachWithOptions", "sssa{sv}",
                                 SD_BUS_PARAM(device) SD_BUS_PARAM(host) SD_BUS_PARAM(export) SD_BUS_PARAM(options),
                                 "os", SD_BUS_PARAM(object) SD_BUS_PARAM(device),
                                 method_attach_with_options, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("AttachURI", "sa{sv}", SD_BUS_PARAM(uri) SD_BUS_PARAM(options),
                                 "os", SD_BUS_PARAM(object) SD_BUS_PARAM(device),
                                 method_attach_uri, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Detach", "s", SD_BUS_PARAM(device), "", "",
                                 method_detach, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("DetachWithOptions", "sa{sv}", SD_BUS_PARAM(device) SD_BUS_PARAM(options), "", "",
                                 method_detach_with_options, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("ListExports", "sa{sv}", SD_BUS_PARAM(host) SD_BUS_PARAM(options),
                                 "a(ss)", SD_BUS_PARAM(exports),
                                 method_list_exports, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Probe", "ssa{sv}",
                                 SD_BUS_PARAM(host) SD_BUS_PARAM(export) SD_BUS_PARAM(options),
                                 "a{sv}", SD_BUS_PARAM(info),
                                 method_probe, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_VTABLE_END
};
