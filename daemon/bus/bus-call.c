/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>

#include "bus-call.h"
#include "util/macro.h"

int bus_call_stand_in(sd_bus_message *call, sd_bus_message **ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *s = NULL;
        const char *sender;
        uint64_t cookie;
        int r;

        if (sd_bus_message_is_method_call(call, NULL, NULL) <= 0)
                return -EINVAL;
        r = sd_bus_message_get_cookie(call, &cookie);
        if (r < 0)
                return r;

        r = sd_bus_message_new_method_call(sd_bus_message_get_bus(call), &s, NULL,
                                           sd_bus_message_get_path(call),
                                           sd_bus_message_get_interface(call),
                                           sd_bus_message_get_member(call));
        if (r < 0)
                return r;
        /* The reply goes to the sender, and refers to the call's cookie. */
        sender = sd_bus_message_get_sender(call);
        if (sender) {
                r = sd_bus_message_set_sender(s, sender);
                if (r < 0)
                        return r;
        }
        r = sd_bus_message_set_expect_reply(s, sd_bus_message_get_expect_reply(call));
        if (r < 0)
                return r;
        r = sd_bus_message_seal(s, cookie, 0);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(s);
        return 0;
}
