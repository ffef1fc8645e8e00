/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The decision between polkit's detach and detach-other actions: the uid
 * that attached a device (OwnerUID) against the uid that asks to detach it.
 * The bus and polkit sides of it are in the polkit suite. */
#include <glib.h>

#include "auth.h"

static void test_detach_own(void) {
        g_assert_cmpstr(auth_detach_action(1000, 1000), ==, "org.nbdlink.NBD1.detach");
        g_assert_cmpstr(auth_detach_action(65534, 65534), ==, "org.nbdlink.NBD1.detach");
}

/* Another uid, in either direction, and root's devices too: root is allowed
 * without polkit anyway, but a user detaching what root attached is
 * detaching another user's device. */
static void test_detach_other(void) {
        g_assert_cmpstr(auth_detach_action(1000, 1001), ==, "org.nbdlink.NBD1.detach-other");
        g_assert_cmpstr(auth_detach_action(1001, 1000), ==, "org.nbdlink.NBD1.detach-other");
        g_assert_cmpstr(auth_detach_action(1000, 0), ==, "org.nbdlink.NBD1.detach-other");
        g_assert_cmpstr(auth_detach_action(0, 1000), ==, "org.nbdlink.NBD1.detach-other");
}

/* The action names are the policy's. */
static void test_action_names(void) {
        g_assert_cmpstr(ACTION_ATTACH, ==, "org.nbdlink.NBD1.attach");
        g_assert_cmpstr(ACTION_DETACH, ==, "org.nbdlink.NBD1.detach");
        g_assert_cmpstr(ACTION_DETACH_OTHER, ==, "org.nbdlink.NBD1.detach-other");
        g_assert_cmpstr(ACTION_LIST, ==, "org.nbdlink.NBD1.list");
}

int main(int argc, char **argv) {
        g_test_init(&argc, &argv, NULL);
        g_test_add_func("/auth/detach/own", test_detach_own);
        g_test_add_func("/auth/detach/other", test_detach_other);
        g_test_add_func("/auth/action-names", test_action_names);
        return g_test_run();
}
