/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caller-watch.h"

struct CallerWatch {
        char *name;
        sd_bus_slot *match_slot;
        sd_bus_slot *owner_slot;
        CallerGoneCallback callback;
        void *userdata;
        bool gone;
};

CallerWatch *caller_watch_free(CallerWatch *w) {
        if (!w)
                return NULL;
        sd_bus_slot_unref(w->match_slot);
        sd_bus_slot_unref(w->owner_slot);
        free(w->name);
        free(w);
        return NULL;
}

static void caller_gone(CallerWatch *w) {
        if (w->gone)
                return;
        w->gone = true;
        w->match_slot = sd_bus_slot_unref(w->match_slot);
        w->owner_slot = sd_bus_slot_unref(w->owner_slot);
        w->callback(w->userdata);       /* may free w */
}

static int on_name_owner_changed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CallerWatch *w = userdata;
        const char *name, *old_owner, *new_owner;

        /* A unique name never comes back: any change means it is gone. */
        if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) >= 0 && !*new_owner)
                caller_gone(w);
        return 0;
}

static int on_owner_reply(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CallerWatch *w = userdata;

        w->owner_slot = sd_bus_slot_unref(w->owner_slot);
        if (sd_bus_message_is_method_error(m, "org.freedesktop.DBus.Error.NameHasNoOwner"))
                caller_gone(w);
        return 0;
}

static int on_match_installed(sd_bus_message *m, void *userdata, sd_bus_error *error) {
        CallerWatch *w = userdata;
        int r;

        /* A watch that does not watch would keep a departed caller's work
         * going: better to end it. */
        if (sd_bus_message_is_method_error(m, NULL)) {
                caller_gone(w);
                return 0;
        }
        /* The bus handles our messages in order: this answer comes after
         * any departure that happened before the match was in place. */
        r = sd_bus_call_method_async(sd_bus_message_get_bus(m), &w->owner_slot, "org.freedesktop.DBus",
                                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetNameOwner",
                                     on_owner_reply, w, "s", w->name);
        if (r < 0)
                caller_gone(w);
        return 0;
}

int caller_watch_new(sd_bus *bus, const char *name, CallerGoneCallback callback, void *userdata,
                     CallerWatch **ret) {
        _cleanup_(caller_watch_freep) CallerWatch *w = NULL;
        char match[512];
        int r;

        if (!bus || !name || !callback || !ret)
                return -EINVAL;
        r = snprintf(match, sizeof(match),
                     "type='signal',sender='org.freedesktop.DBus',path='/org/freedesktop/DBus',"
                     "interface='org.freedesktop.DBus',member='NameOwnerChanged',arg0='%s'", name);
        if (r < 0 || (size_t) r >= sizeof(match))
                return -EINVAL;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->name = strdup(name);
        if (!w->name)
                return -ENOMEM;
        w->callback = callback;
        w->userdata = userdata;

        r = sd_bus_add_match_async(bus, &w->match_slot, match, on_name_owner_changed, on_match_installed, w);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(w);
        return 0;
}
