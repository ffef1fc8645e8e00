/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The configuration file of a private dbus-daemon that behaves like the
 * system bus: the bus suite's harness and the polkit suite's world (also
 * the vm suite's polkit cases) each start one with it. */
#pragma once

/* Writes to path a configuration for a bus of type "system" listening on
 * the unix socket socket_path: Debian's system.conf reduced, so everyone
 * may connect, nobody may own a name and method calls are denied unless a
 * policy punches a hole. default_rules (XML, may be "") go at the end of
 * the default policy; rest (other policies, <include>, <includedir>) after
 * it. The file is readable by all. Fails the test when it cannot be
 * written. */
void bus_config_write(const char *path, const char *socket_path, const char *default_rules, const char *rest);
