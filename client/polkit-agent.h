/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A polkit text agent (pkttyagent) for the duration of a call, so that an
 * interactive authorization can ask for the password on this terminal. */
#pragma once

#include <sys/types.h>

/* Starts pkttyagent when a password may be asked (see may_ask_password())
 * and stdin and stdout are terminals and we are not root; waits until it
 * has registered. Sets *ret_pid to its pid, or 0 when none was started.
 * Failing to start an agent is not an error: the call goes on without. */
void polkit_agent_open(pid_t *ret_pid);
void polkit_agent_close(pid_t pid);
