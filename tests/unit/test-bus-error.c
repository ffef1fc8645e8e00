/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The error table of docs/errors.md, both ways: errno → name through
 * nbdlink_bus_error_set(), name → errno through the registered map. */

#include <errno.h>
#include <string.h>

#include "bus-error.h"

/* After nbdlink headers: GLib redefines MIN/MAX itself. */
#include <glib.h>

static const struct {
        const char *name;
        int error;
} table[] = {
        { "NotAuthorized",     EACCES },
        { "InvalidArgument",   EINVAL },
        { "NoSuchDevice",      ENODEV },
        { "DeviceBusy",        EBUSY },
        { "NotAttached",       ENXIO },
        { "ConnectionRefused", ECONNREFUSED },
        { "HostNotFound",      EHOSTUNREACH },
        { "TimedOut",          ETIMEDOUT },
        { "ExportNotFound",    ENOENT },
        { "ServerPolicy",      EPERM },
        { "TLSRequired",       EPROTONOSUPPORT },
        { "TLSFailed",         ECONNABORTED },
        { "ProtocolError",     EPROTO },
        { "Unsupported",       EOPNOTSUPP },
        { "TooLarge",          EFBIG },
        { "LimitExceeded",     EUSERS },
        { "Cancelled",         ECANCELED },
        { "Failed",            EIO },
};

static void test_table(void) {
        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);
        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);  /* twice is fine */

        for (size_t i = 0; i < G_N_ELEMENTS(table); i++) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                g_autofree char *name = g_strconcat("org.nbdlink.NBD1.Error.", table[i].name, NULL);

                g_assert_cmpint(nbdlink_bus_error_set(&e, -table[i].error, "device nbd0: it failed"),
                                ==, -table[i].error);
                g_assert_cmpstr(e.name, ==, name);
                g_assert_cmpstr(e.message, ==, "device nbd0: it failed");
                g_assert_cmpint(sd_bus_error_get_errno(&e), ==, table[i].error);
                sd_bus_error_free(&e);

                /* And from the name alone, as a client receives it. */
                sd_bus_error_set_const(&e, name, "x");
                g_assert_cmpint(sd_bus_error_get_errno(&e), ==, table[i].error);
                sd_bus_error_free(&e);
        }
        /* The whole map is the table, nothing more. */
        size_t n = 0;
        for (const sd_bus_error_map *m = nbdlink_bus_error_map; m->name; m++)
                n++;
        g_assert_cmpuint(n, ==, G_N_ELEMENTS(table));
}

/* The daemon's limits answer by failure code, never by an errno that
 * could also come from a socket or the kernel. */
static void test_limit_exceeded(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        g_assert_cmpint(nbdlink_bus_error_set(&e, NBDLINK_ERR_LIMIT_EXCEEDED, "uid 1000 already has 4 queries"),
                        ==, NBDLINK_ERR_LIMIT_EXCEEDED);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_LIMIT_EXCEEDED);
        g_assert_cmpstr(e.message, ==, "uid 1000 already has 4 queries");
        sd_bus_error_free(&e);

        g_assert_cmpint(nbdlink_bus_error_set(&e, -ENOBUFS, NULL), ==, -ENOBUFS);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_FAILED);
        sd_bus_error_free(&e);
}

/* Names in messages come from callers and servers: their controls arrive
 * escaped, so that a terminal or a dialog shows what they are. */
static void test_message_controls(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        nbdlink_bus_error_set(&e, -ENOENT, "export 'a\x1b[8mb\xc2\x9b\xe2\x80\xae' not found");
        g_assert_cmpstr(e.message, ==, "export 'a\\x1b[8mb\\u009B\\u202E' not found");
        sd_bus_error_free(&e);
}

static void test_unknown_errno(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        g_assert_cmpint(nbdlink_bus_error_register(), ==, 0);
        g_assert_cmpint(nbdlink_bus_error_set(&e, -ENOMEDIUM, NULL), ==, -ENOMEDIUM);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_FAILED);
        g_assert_cmpstr(e.message, ==, strerror(ENOMEDIUM));
        sd_bus_error_free(&e);

        /* A positive value is a caller bug; it still never reads as success. */
        g_assert_cmpint(nbdlink_bus_error_set(&e, 0, "oops"), ==, -EIO);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_FAILED);
        sd_bus_error_free(&e);

        g_assert_cmpint(nbdlink_bus_error_setf(&e, -EBUSY, "device %s: busy", "nbd3"), ==, -EBUSY);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_DEVICE_BUSY);
        g_assert_cmpstr(e.message, ==, "device nbd3: busy");
        sd_bus_error_free(&e);
}

/* A message that is not UTF-8 (cut inside a character upstream, or a
 * stray byte) is mended, not lost: sd-bus would refuse to send it. */
static void test_message_not_utf8(void) {
        sd_bus_error e = SD_BUS_ERROR_NULL;

        g_assert_cmpint(nbdlink_bus_error_set(&e, -ECONNABORTED, "tls: no key for user \"\xed\x90\""), ==,
                        -ECONNABORTED);
        g_assert_cmpstr(e.name, ==, NBDLINK_ERROR_TLS_FAILED);
        g_assert_cmpstr(e.message, ==, "tls: no key for user \"\\xed\\x90\"");
        sd_bus_error_free(&e);

        g_assert_cmpint(nbdlink_bus_error_set(&e, -EPROTO, "server said \xff\xfe caf\xc3\xa9"), ==, -EPROTO);
        g_assert_cmpstr(e.message, ==, "server said \\xff\\xfe caf\xc3\xa9");
        sd_bus_error_free(&e);
}

int main(int argc, char *argv[]) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/bus-error/table", test_table);
        g_test_add_func("/bus-error/limit-exceeded", test_limit_exceeded);
        g_test_add_func("/bus-error/message-controls", test_message_controls);
        g_test_add_func("/bus-error/unknown-errno", test_unknown_errno);
        g_test_add_func("/bus-error/message-not-utf8", test_message_not_utf8);
        return g_test_run();
}
