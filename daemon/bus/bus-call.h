/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Method calls answered later. A call keeps every descriptor it carried
 * for as long as it is referenced, and sd-bus cannot say how many that is
 * (a sender may add descriptors no argument names): holding the call for
 * the minutes an attach or a query may take would let any caller make the
 * daemon hold hundreds of descriptors. So the daemon holds a stand-in. */
#pragma once

#include <systemd/sd-bus.h>

/* A sealed method call with the sender, cookie, path, interface, member
 * and reply flag of `call`, but no body and no descriptors: what
 * sd_bus_reply_method_return() and sd_bus_reply_method_error() need to
 * answer `call`. The caller drops its reference to `call` once it has
 * read the arguments; the descriptors go with it. */
int bus_call_stand_in(sd_bus_message *call, sd_bus_message **ret);
