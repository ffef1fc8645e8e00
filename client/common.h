/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* What every subcommand shares: the global arguments, exit statuses,
 * error reporting in the one format the man page documents, the bus
 * connection, and the attached devices as read from the ObjectManager. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "contract.h"
#include "util/macro.h"


enum {
        EXIT_OK = 0,
        EXIT_FAILED = 1,
        EXIT_USAGE = 2,
        /* info --can/--is: the answer is no (nbdinfo's status for it). */
        EXIT_FALSE = 2,
        /* status: the device is not connected. Not nbd-client -c's 1,
         * which is every command's "failed" here. */
        EXIT_NOT_CONNECTED = 3,
};

/* Set from the command line before the subcommand runs. */
extern bool arg_json;
extern bool arg_ask_password;

/* Error output goes through escape.h's visible form, formatted line and
 * arguments alike: it quotes command lines, paths and the daemon's text. */

/* "nbdlink: <message>" and "Try 'nbdlink VERB --help' ..." on stderr.
 * Returns EXIT_USAGE. verb may be NULL for the top level. */
_printf_(2, 3) int usage_error(const char *verb, const char *fmt, ...);

/* Reports getopt_long()'s '?' (unknown option) or ':' (missing argument;
 * the option string must begin with ':') as a usage error. */
int getopt_failure(const char *verb, int c, char **argv);

/* "nbdlink: <what>: <strerror> (ENAME)". Returns EXIT_FAILED. */
_printf_(2, 3) int log_errno(int r, const char *fmt, ...);

/* "nbdlink: <what>: <message> (<error name>)" for a failed bus call;
 * falls back to r when the error is not set. Returns EXIT_FAILED. */
_printf_(3, 4) int log_bus_error(const sd_bus_error *e, int r, const char *fmt, ...);

/* Opens the system bus (DBUS_SYSTEM_BUS_ADDRESS is honoured), allows
 * interactive polkit authentication when stdin is a terminal and
 * --no-ask-password was not given, and registers the error names. */
int bus_open(sd_bus **ret);

/* Whether calls on this run may ask for a password. */
bool may_ask_password(void);

/* Parses a decimal number in [min, max]. 0 or -EINVAL/-ERANGE. */
int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret);

/* "/dev/nbdN", "nbdN" or "" as the bus API takes them (device-name.h). */
bool device_name_valid(const char *s);

/* A device on the command line of status: "/dev/nbdN" or "nbdN", or a
 * partition of one, "/dev/nbdNpM" or "nbdNpM" (M from 1, no leading
 * zero). N into *ret_index, M into *ret_partition (0 for the whole
 * device). -EINVAL for anything else, "" included. */
int device_arg_parse(const char *s, int *ret_index, int *ret_partition);

typedef struct DeviceInfo {
        char *object;
        char *device;
        char *host;
        char *export_name;
        char *tls_mode;
        char *state;
        uint64_t size;
        uint64_t attached_since;
        uint32_t block_size;
        uint32_t connections;
        uint32_t owner_uid;
        uint16_t port;
        uint16_t flags;
        bool tls;
        bool read_only;
        bool persistent;
        bool has_owner;
        /* One of the daemon's objects; false for a device another tool
         * attached, of which only device, size and read_only are known. */
        bool managed;
} DeviceInfo;

void device_info_done(DeviceInfo *d);

/* Reads an a{sv} (the message positioned at it), calling entry() for each
 * key with the message positioned at its variant, which entry() must read
 * or skip. Stops at the first negative return. */
int bus_read_dict(sd_bus_message *m, int (*entry)(sd_bus_message *m, const char *key, void *userdata),
                  void *userdata);
/* Reads a variant holding a string into a copy in *field, freeing what
 * *field held. */
int bus_read_string_variant(sd_bus_message *m, char **field);

/* Reads one a{sv} of org.nbdlink.NBD1.Device properties into d, skipping
 * unknown ones (the message must be positioned at the array). */
int device_info_read_properties(sd_bus_message *m, DeviceInfo *d);

/* Calls GetManagedObjects and returns the attached devices sorted by
 * device name. On a bus error returns negative errno and fills e. */
int devices_list(sd_bus *bus, DeviceInfo **ret, size_t *ret_n, sd_bus_error *e);
void devices_free(DeviceInfo *d, size_t n);

/* Adds to the n devices at *devs (the daemon's) the connected devices that
 * sysfs under root shows and the daemon does not have, as devices of
 * another tool (managed false), and sorts them all by name. */
int devices_add_others(DeviceInfo **devs, size_t *n, const char *root);

/* Owner uid as a user name when it has one (getpwuid_r()), else the
 * number. Caller frees; NULL when out of memory. */
char *uid_to_name(uint32_t uid);
/* Only the user name: NULL when the user database has none for uid, or
 * out of memory. */
char *uid_to_user_name(uint32_t uid);

/* The short name used in messages: "nbd0" for "/dev/nbd0". */
const char *device_short_name(const char *device);
/* The node, "/dev/nbd0", for "nbd0" or "/dev/nbd0" (the daemon answers
 * the short name; users and scripts want the node). NULL when out of
 * memory. */
char *device_node(const char *device);
