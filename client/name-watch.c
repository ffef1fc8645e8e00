/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A well-known name's owner, from the bus driver's answers and
 * announcements only: the one sender that no client can pretend to be,
 * since dbus-daemon writes every message's sender itself. */
#include <errno.h>
#include <string.h>

#include "name-watch.h"

#define BUS_DRIVER "org.freedesktop.DBus"

struct NameWatch {
        char *name;
        char *owner;                    /* a unique name, or NULL */
        sd_bus_slot *slot;              /* the NameOwnerChanged match */
        name_watch_handler_t handler;
        void *userdata;
};

NameWatch *name_watch_free(NameWatch *w) {
        if (!w)
                return NULL;
        sd_bus_slot_unref(w->slot);
        free(w->name);
        free(w->owner);
        free(w);
        return NULL;
}

/* An owner that cannot be recorded is none: believing the previous one
 * would be worse than believing nobody. */
static void set_owner(NameWatch *w, const char *owner) {
        free(w->owner);
        w->owner = owner && *owner ? strdup(owner) : NULL;
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        NameWatch *w = userdata;
        const char *sender = sd_bus_message_get_sender(m), *name, *old_owner, *new_owner;

        /* Anyone can send a signal of this name to our unique name. */
        if (!sender || strcmp(sender, BUS_DRIVER) != 0)
                return 0;
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || strcmp(name, w->name) != 0)
                return 0;

        set_owner(w, new_owner);
        if (w->handler)
                w->handler(w->owner, w->userdata);
        return 0;
}

int name_watch_new(NameWatch **ret, sd_bus *bus, const char *name, name_watch_handler_t handler,
                   void *userdata) {
        _cleanup_(name_watch_freep) NameWatch *w = calloc(1, sizeof(*w));
        _cleanup_(sd_bus_error_free) sd_bus_error error = SD_BUS_ERROR_NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *rule = NULL;
        const char *owner;
        int r;

        if (!w)
                return -ENOMEM;
        w->name = strdup(name);
        if (!w->name)
                return -ENOMEM;
        w->handler = handler;
        w->userdata = userdata;

        if (asprintf(&rule, "type='signal',sender='" BUS_DRIVER "',path='/org/freedesktop/DBus',"
                     "interface='" BUS_DRIVER "',member='NameOwnerChanged',arg0='%s'", name) < 0)
                return -ENOMEM;
        r = sd_bus_add_match(bus, &w->slot, rule, on_name_owner_changed, w);
        if (r < 0)
                return r;

        /* Changes announced while this call is under way wait in sd-bus's
         * queue and are applied after its answer, in order: the owner ends
         * up the latest one either way. */
        r = sd_bus_call_method(bus, BUS_DRIVER, "/org/freedesktop/DBus", BUS_DRIVER, "GetNameOwner",
                               &error, &reply, "s", name);
        if (r < 0 && !sd_bus_error_has_name(&error, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                return r;
        if (r >= 0) {
                r = sd_bus_message_read(reply, "s", &owner);
                if (r < 0)
                        return r;
                w->owner = strdup(owner);
                if (!w->owner)
                        return -ENOMEM;
        }

        *ret = TAKE_PTR(w);
        return 0;
}

const char *name_watch_owner(const NameWatch *w) {
        return w->owner;
}

bool name_watch_sent_by_owner(const NameWatch *w, sd_bus_message *m) {
        const char *sender = sd_bus_message_get_sender(m);

        return w->owner && sender && strcmp(sender, w->owner) == 0;
}
