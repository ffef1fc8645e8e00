/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Loading GnuTLS on first use (gnutls-dl.h says why). */

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

#include "gnutls-dl.h"

/* The soname GnuTLS has kept since 3.0, the one the headers we build
 * against belong to. */
#define GNUTLS_SONAME "libgnutls.so.30"

#define GNUTLS_DL_DEFINE(name) __typeof__(name) *sym_##name = NULL;
GNUTLS_DL_SYMBOLS(GNUTLS_DL_DEFINE)
#undef GNUTLS_DL_DEFINE
gnutls_free_function *sym_gnutls_free_pointer = NULL;

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_result = -EOPNOTSUPP;
/* Written once inside load_once, read only after it. */
static char load_error[256] = "";

static void *find(void *dl, const char *name) {
        void *p = dlsym(dl, name);

        if (!p && !load_error[0])
                (void) snprintf(load_error, sizeof(load_error), "%s has no %s", GNUTLS_SONAME, name);
        return p;
}

static void load(void) {
        void *dl;

        /* RTLD_NODELETE: nothing ever unloads it; the pointers stay valid
         * for the life of the process. */
        dl = dlopen(GNUTLS_SONAME, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        if (!dl) {
                const char *why = dlerror();

                (void) snprintf(load_error, sizeof(load_error), "cannot load %s: %s", GNUTLS_SONAME,
                                why ? why : "unknown error");
                return;
        }

#define GNUTLS_DL_FIND(name) sym_##name = (__typeof__(name) *) find(dl, #name);
        GNUTLS_DL_SYMBOLS(GNUTLS_DL_FIND)
#undef GNUTLS_DL_FIND
        sym_gnutls_free_pointer = (gnutls_free_function *) find(dl, "gnutls_free");

        if (load_error[0])
                return;         /* one missing symbol fails them all */
        load_result = 0;
}

int dlopen_gnutls(Error *error) {
        (void) pthread_once(&load_once, load);
        if (load_result < 0)
                return error_set(error, load_result, "tls: TLS is not available: %s", load_error);
        return 0;
}

