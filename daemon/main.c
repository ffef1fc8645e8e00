/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlinkd: takes org.nbdlink.NBD1 on the system bus and attaches NBD
 * exports to /dev/nbdN for its callers. SIGTERM and SIGINT detach every
 * device cleanly before it exits, but persistent ones, which it finds again
 * at the next start. */

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "device-name.h"
#include "device-node.h"
#include "device-persist.h"
#include "log.h"
#include "manager.h"
#include "options.h"
#include "persist.h"

/* Where the administrator puts the CAs to trust when a caller passes none
 * (tls-ca). The default is used only while it exists, so that a machine
 * without it trusts the system store. */
#define TLS_CA_DIR_DEFAULT SYSCONFDIR "/nbdlink/ca"

static uint32_t arg_timeout_default = ATTACH_DEFAULT_TIMEOUT_SEC;
static const char *arg_tls_ca_dir = TLS_CA_DIR_DEFAULT;
static bool arg_tls_ca_dir_optional = true;
static const char *arg_state_dir = PERSIST_STATE_DIR;

static void help(void) {
        printf("%s [OPTIONS...]\n\n"
               "Attach remote NBD exports as /dev/nbdN on behalf of D-Bus callers.\n\n"
               "  -h --help                 Show this help\n"
               "     --version              Show package version\n"
               "     --timeout-default=SEC  Connect+handshake deadline when a caller\n"
               "                            gives none (default %u)\n"
               "     --tls-ca-dir=DIR       CAs to trust when a caller passes no tls-ca;\n"
               "                            \"\" for none (then the system trust store)\n"
               "                            (default, while it exists:\n"
               "                            %s)\n"
               "     --state-dir=DIR        Where persistent devices are remembered\n"
               "                            (default %s)\n"
               "\nThe bus is the system bus, or $DBUS_SYSTEM_BUS_ADDRESS when set.\n",
               program_invocation_short_name, ATTACH_DEFAULT_TIMEOUT_SEC, TLS_CA_DIR_DEFAULT, PERSIST_STATE_DIR);
}

static int parse_argv(int argc, char *argv[]) {
        enum {
                ARG_VERSION = 0x100,
                ARG_TIMEOUT_DEFAULT,
                ARG_TLS_CA_DIR,
                ARG_STATE_DIR,
        };
        static const struct option options[] = {
                { "help",            no_argument,       NULL, 'h'                 },
                { "version",         no_argument,       NULL, ARG_VERSION         },
                { "timeout-default", required_argument, NULL, ARG_TIMEOUT_DEFAULT },
                { "tls-ca-dir",      required_argument, NULL, ARG_TLS_CA_DIR      },
                { "state-dir",       required_argument, NULL, ARG_STATE_DIR       },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_VERSION:
                        printf("nbdlinkd %s\n", PACKAGE_VERSION);
                        return 0;
                case ARG_TIMEOUT_DEFAULT: {
                        char *end;
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || *end || end == optarg || v < 1 || v > ATTACH_MAX_TIMEOUT_SEC) {
                                log_error("Failed to parse --timeout-default=%s: must be 1..%u seconds",
                                        optarg, ATTACH_MAX_TIMEOUT_SEC);
                                return -EINVAL;
                        }
                        arg_timeout_default = (uint32_t) v;
                        break;
                }
                case ARG_TLS_CA_DIR: {
                        struct stat st;

                        arg_tls_ca_dir_optional = false;
                        if (!*optarg) {
                                arg_tls_ca_dir = NULL;
                                break;
                        }
                        /* Named explicitly: a typo must not silently mean
                         * "trust the system store" instead. */
                        if (optarg[0] != '/') {
                                log_error("Failed to use --tls-ca-dir=%s: not an absolute path", optarg);
                                return -EINVAL;
                        }
                        if (stat(optarg, &st) < 0) {
                                log_error("Failed to use --tls-ca-dir=%s: %m", optarg);
                                return -EINVAL;
                        }
                        if (!S_ISDIR(st.st_mode)) {
                                log_error("Failed to use --tls-ca-dir=%s: not a directory", optarg);
                                return -EINVAL;
                        }
                        arg_tls_ca_dir = optarg;
                        break;
                }
                case ARG_STATE_DIR:
                        if (optarg[0] != '/') {
                                log_error("--state-dir= needs an absolute path.");
                                return -EINVAL;
                        }
                        arg_state_dir = optarg;
                        break;
                case '?':
                        return -EINVAL;
                default:
                        abort();
                }

        if (optind < argc) {
                log_error("%s takes no arguments.", program_invocation_short_name);
                return -EINVAL;
        }
        return 1;
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Manager *m = userdata;

        log_info("Received %s, detaching all devices but persistent ones.", strsignal((int) si->ssi_signo));
        manager_shutdown(m);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        sigset_t mask;
        int r;

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        /* One malloc arena for all threads: glibc would give each device's
         * thread an arena of its own, and every arena keeps the pages it
         * touched (measured in bench/: ~100 KiB per device). The threads
         * allocate little and rarely, so sharing one costs nothing. */
        (void) mallopt(M_ARENA_MAX, 1);

        /* Blocked before any thread exists, so every thread inherits it and
         * only the event loop's signalfd sees them. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) {
                log_error("Failed to block signals: %m");
                return EXIT_FAILURE;
        }
        /* A server closing mid-write must be an EPIPE, not our death. */
        (void) signal(SIGPIPE, SIG_IGN);

        r = manager_new(&m, arg_timeout_default);
        if (r < 0) {
                log_error("Failed to set up: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        m->tls_ca_dir = arg_tls_ca_dir;
        m->tls_ca_dir_optional = arg_tls_ca_dir_optional;

        r = sd_event_add_signal(m->event, NULL, SIGTERM, on_signal, m);
        if (r >= 0)
                r = sd_event_add_signal(m->event, NULL, SIGINT, on_signal, m);
        if (r < 0) {
                log_error("Failed to watch signals: %s", strerror(-r));
                return EXIT_FAILURE;
        }

        free(m->state_dir);
        m->state_dir = strdup(arg_state_dir);
        if (!m->state_dir) {
                log_error("Failed to set up: %s", strerror(ENOMEM));
                return EXIT_FAILURE;
        }

        r = manager_start(m);
        if (r < 0)
                return EXIT_FAILURE;

        /* Persistent devices of an earlier nbdlinkd come back as objects;
         * a failure here costs those objects, not the daemon. */
        (void) manager_restore_persistent(m);

        log_info("nbdlinkd %s running.", PACKAGE_VERSION);
        /* Type=notify: ready once the name is ours. Not Type=dbus, under
         * which systemd stops the service, detaching every device, the
         * moment the name is gone, even while nbdlinkd connects again. */
        (void) sd_notify(false, "READY=1\nSTATUS=Running.");
        r = sd_event_loop(m->event);
        if (r < 0) {
                log_error("Failed to run event loop: %s", strerror(-r));
                return EXIT_FAILURE;
        }
        log_info("nbdlinkd exiting.");
        return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
