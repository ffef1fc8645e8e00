/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The system-like dbus-daemon configuration the bus and polkit suites
 * share (see bus-config.h). */

#include "bus-config.h"

#include <glib.h>
#include <sys/stat.h>

void bus_config_write(const char *path, const char *socket_path, const char *default_rules, const char *rest) {
        g_autofree char *conf = NULL;
        g_autoptr(GError) error = NULL;

        conf = g_strdup_printf(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN\"\n"
                " \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n"
                "<busconfig>\n"
                "  <type>system</type>\n"
                "  <listen>unix:path=%s</listen>\n"
                "  <auth>EXTERNAL</auth>\n"
                "  <policy context=\"default\">\n"
                "    <allow user=\"*\"/>\n"
                "    <deny own=\"*\"/>\n"
                "    <deny send_type=\"method_call\"/>\n"
                "    <allow send_type=\"signal\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"method_return\"/>\n"
                "    <allow send_requested_reply=\"true\" send_type=\"error\"/>\n"
                "    <allow receive_type=\"method_call\"/>\n"
                "    <allow receive_type=\"method_return\"/>\n"
                "    <allow receive_type=\"error\"/>\n"
                "    <allow receive_type=\"signal\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus\"/>\n"
                "    <allow send_destination=\"org.freedesktop.DBus\" send_interface=\"org.freedesktop.DBus.Introspectable\"/>\n"
                "%s"
                "  </policy>\n"
                "%s"
                "</busconfig>\n",
                socket_path, default_rules, rest);
        g_file_set_contents(path, conf, -1, &error);
        g_assert_no_error(error);
        /* Whoever the bus daemon runs as reads it. */
        g_assert_cmpint(chmod(path, 0644), ==, 0);
}
