/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Prints the introspection XML of the Device vtable as the daemon serves
 * it, so the bus test can compare it with dbus/ without attaching a real
 * device: a peer-to-peer sd-bus pair, one side serving a Device object. */

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "device.h"

static sd_bus *server;
static volatile int done;

static void *serve(void *userdata) {
        while (!done) {
                int r = sd_bus_process(server, NULL);
                if (r < 0)
                        break;
                if (r == 0)
                        (void) sd_bus_wait(server, 100 * 1000);
        }
        return NULL;
}

int main(void) {
        static Device device = { .index = 0, .state_string = "attached", .tls_mode = "none" };
        sd_bus *client = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        sd_id128_t id = SD_ID128_MAKE(6e,62,64,6c,69,6e,6b,2d,74,65,73,74,2d,62,75,73);
        const char *xml;
        pthread_t t;
        int sv[2], r;

        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return 1;

        if (sd_bus_new(&server) < 0 || sd_bus_set_fd(server, sv[0], sv[0]) < 0 ||
            sd_bus_set_server(server, 1, id) < 0 || sd_bus_set_anonymous(server, 1) < 0 ||
            sd_bus_add_object_vtable(server, NULL, NBDLINK_DEVICES_PATH "/nbd0", NBDLINK_DEVICE_INTERFACE, device_vtable, &device) < 0 ||
            sd_bus_start(server) < 0)
                return 2;
        if (sd_bus_new(&client) < 0 || sd_bus_set_fd(client, sv[1], sv[1]) < 0 ||
            sd_bus_set_anonymous(client, 1) < 0 || sd_bus_start(client) < 0)
                return 3;
        if (pthread_create(&t, NULL, serve, NULL) != 0)
                return 4;

        r = sd_bus_call_method(client, NULL, NBDLINK_DEVICES_PATH "/nbd0", "org.freedesktop.DBus.Introspectable",
                               "Introspect", &error, &reply, "");
        if (r < 0) {
                fprintf(stderr, "Failed to introspect: %s\n", error.message ?: strerror(-r));
                return 5;
        }
        if (sd_bus_message_read(reply, "s", &xml) < 0)
                return 6;
        fputs(xml, stdout);

        done = 1;
        pthread_join(t, NULL);
        sd_bus_message_unref(reply);
        sd_bus_flush_close_unref(client);
        sd_bus_flush_close_unref(server);
        return 0;
}
