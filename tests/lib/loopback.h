/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* TCP on 127.0.0.1 for tests: listeners, connections and free ports, the
 * port always chosen by the kernel at run time so that tests running at
 * once never meet on a fixed one. */
#pragma once

#include <stdint.h>

/* A TCP socket listening on 127.0.0.1 with the given backlog at a port the
 * kernel chose, which goes to *ret_port. type_flags are added to
 * SOCK_STREAM | SOCK_CLOEXEC (SOCK_NONBLOCK, or 0). Fails the test on
 * error. */
int loopback_listen(int type_flags, int backlog, uint16_t *ret_port);

/* A blocking TCP socket connected to 127.0.0.1:port; fails the test on
 * error. */
int loopback_connect(uint16_t port);

/* A port on 127.0.0.1 that was free a moment ago: bound, then closed, so
 * that nobody listens there until someone else takes it. */
uint16_t loopback_free_port(void);
