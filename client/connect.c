/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The subcommands that reach a server: attach, exports and info. They share
 * TARGET parsing and the TLS options. Credential files are opened here, as
 * the calling user, and travel to the daemon as descriptors, so that the
 * daemon never opens a user's files with root's rights. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "commands.h"
#include "common.h"
#include "escape.h"
#include "format.h"
#include "json.h"
#include "nbd-flags.h"
#include "polkit-agent.h"
#include "props.h"
#include "nbd-uri.h"
#include "utf8.h"

/* The daemon's defaults and limits, checked here too so that a typo is a
 * usage error before anything is opened. */
#define DEFAULT_TIMEOUT_SEC 30u
#define USEC_PER_SEC_U64 UINT64_C(1000000)

typedef enum Verb {
        VERB_ATTACH,
        VERB_EXPORTS,
        VERB_INFO,
} Verb;

typedef struct ConnectArgs {
        Verb verb;
        const char *verb_name;

        const char *tls_mode;   /* NULL (daemon's default), "off", "on", "require" */
        const char *ca, *cert, *key, *psk, *psk_user, *tls_hostname;
        uint32_t timeout;       /* 0: not given */

        /* attach only */
        const char *device;
        bool read_only, no_ktls, persist;
        const char *kernel_interface;   /* NULL: the daemon's default */
        uint32_t connections, block_size, dead_timeout;
        uint32_t io_timeout;    /* UINT32_MAX: not given (0 means never) */

        /* info only: print the size alone, or answer one question with
         * the exit status alone (nbdinfo --size, --can, --is). */
        bool size_only;
        const NbdCapability *question;

        NbdTarget *target;
        const char *export_name;

        /* Descriptors opened as the caller, handed to the daemon. */
        int ca_fd, cert_fd, key_fd, psk_fd, socket_fd;
} ConnectArgs;

static void connect_args_done(ConnectArgs *a) {
        nbd_target_free(a->target);
        safe_close(a->ca_fd);
        safe_close(a->cert_fd);
        safe_close(a->key_fd);
        safe_close(a->psk_fd);
        safe_close(a->socket_fd);
}

static void help(Verb verb) {
        switch (verb) {
        case VERB_ATTACH:
                printf("Usage: nbdlink attach [OPTIONS] TARGET [EXPORT]\n\n"
                       "Attach an NBD export as a local block device and print its node.\n\n"
                       "TARGET is an NBD URI (nbd://HOST[:PORT]/EXPORT, nbds://..., \n"
                       "nbd+unix:///EXPORT?socket=PATH, nbds+unix://...), HOST[:PORT] or unix:PATH.\n\n"
                       "Options:\n"
                       "  -d --device DEV      Use this device (/dev/nbdN or nbdN); default: first free\n"
                       "  -r --read-only       Attach read-only\n"
                       "  -c --connections N   Open N connections (server must allow multi-conn)\n"
                       "     --block-size N    Logical block size in bytes (default: 512, or the\n"
                       "                       server's minimum if larger)\n"
                       "     --io-timeout=SEC  Fail a request the server leaves unanswered SEC s\n"
                       "                       (default 0: never; a vanished server is still noticed)\n"
                       "     --persist         Reconnect when the connection is lost\n"
                       "     --dead-timeout=SEC  With --persist: give up after SEC s (default 60)\n"
                       "     --no-ktls         Relay TLS in user space, never in the kernel\n"
                       "     --kernel-interface=IF  auto (default), netlink (the device outlives\n"
                       "                       nbdlinkd) or ioctl (it ends with nbdlinkd)\n");
                break;
        case VERB_EXPORTS:
                printf("Usage: nbdlink exports [OPTIONS] TARGET\n\n"
                       "List the exports a server offers.\n\n"
                       "Options:\n");
                break;
        case VERB_INFO:
                printf("Usage: nbdlink info [OPTIONS] TARGET [EXPORT]\n\n"
                       "Show an export's size, flags and block sizes without attaching it.\n\n"
                       "Options:\n"
                       "     --size           Print only the size in bytes\n"
                       "     --can WHAT       Exit 0 if the export can WHAT, 2 if not, printing nothing:\n"
                       "                       connect, read, write, flush, fua, trim, zero, fast-zero,\n"
                       "                       multi-conn, cache\n"
                       "     --is WHAT        The same for read-only, rotational, tls\n");
                break;
        default:
                return;
        }
        printf("  -t --timeout S       Give up connecting and negotiating after S seconds\n"
               "                       (default 30; not the I/O timeout, see --io-timeout)\n"
               "     --tls[=MODE]      TLS: off, on (if the server offers it), require (default with --tls)\n"
               "     --ca FILE         CA certificate(s) to verify the server (PEM)\n"
               "     --cert FILE       Client certificate (PEM); needs --key\n"
               "     --key FILE        Client private key (PEM)\n"
               "     --psk FILE        Pre-shared keys file, as written by psktool\n"
               "     --psk-user NAME   PSK identity (default: the URI's user name)\n"
               "     --tls-hostname H  Name to verify in the server's certificate\n"
               COMMON_OPTIONS_HELP);
}

enum {
        OPT_JSON = 0x100,
        OPT_NO_ASK_PASSWORD,
        OPT_TLS,
        OPT_CA,
        OPT_CERT,
        OPT_KEY,
        OPT_PSK,
        OPT_PSK_USER,
        OPT_TLS_HOSTNAME,
        OPT_BLOCK_SIZE,
        OPT_PERSIST,
        OPT_DEAD_TIMEOUT,
        OPT_IO_TIMEOUT,
        OPT_NO_KTLS,
        OPT_KERNEL_INTERFACE,
        OPT_SIZE,
        OPT_CAN,
        OPT_IS,
};

static const struct option connect_options[] = {
        { "help",            no_argument,       NULL, 'h' },
        { "json",            no_argument,       NULL, OPT_JSON },
        { "no-ask-password", no_argument,       NULL, OPT_NO_ASK_PASSWORD },
        { "timeout",         required_argument, NULL, 't' },
        { "tls",             optional_argument, NULL, OPT_TLS },
        { "ca",              required_argument, NULL, OPT_CA },
        { "cert",            required_argument, NULL, OPT_CERT },
        { "key",             required_argument, NULL, OPT_KEY },
        { "psk",             required_argument, NULL, OPT_PSK },
        { "psk-user",        required_argument, NULL, OPT_PSK_USER },
        { "tls-hostname",    required_argument, NULL, OPT_TLS_HOSTNAME },
        /* attach only; rejected for the others below */
        { "device",          required_argument, NULL, 'd' },
        { "read-only",       no_argument,       NULL, 'r' },
        { "connections",     required_argument, NULL, 'c' },
        { "block-size",      required_argument, NULL, OPT_BLOCK_SIZE },
        { "persist",         no_argument,       NULL, OPT_PERSIST },
        { "dead-timeout",    required_argument, NULL, OPT_DEAD_TIMEOUT },
        { "io-timeout",      required_argument, NULL, OPT_IO_TIMEOUT },
        { "no-ktls",         no_argument,       NULL, OPT_NO_KTLS },
        { "kernel-interface", required_argument, NULL, OPT_KERNEL_INTERFACE },
        /* info only */
        { "size",            no_argument,       NULL, OPT_SIZE },
        { "can",             required_argument, NULL, OPT_CAN },
        { "is",              required_argument, NULL, OPT_IS },
        {}
};

/* The options only attach takes. 1 when c was one of them (handled), 0
 * when it was not, else the usage error's exit status. */
static int parse_attach_option(ConnectArgs *a, int c) {
        int r;

        switch (c) {
        case 'd':
                if (!device_name_valid(optarg))
                        return usage_error(a->verb_name, "--device wants /dev/nbdN or nbdN, not '%s'", optarg);
                a->device = optarg;
                return 1;
        case 'r':
                a->read_only = true;
                return 1;
        case 'c':
                r = parse_uint32(optarg, 1, ATTACH_MAX_CONNECTIONS, &a->connections);
                if (r < 0)
                        return usage_error(a->verb_name, "--connections wants a number from 1 to %u, not '%s'",
                                           ATTACH_MAX_CONNECTIONS, optarg);
                return 1;
        case OPT_BLOCK_SIZE:
                r = parse_uint32(optarg, 512, 4096, &a->block_size);
                if (r < 0 || (a->block_size & (a->block_size - 1)) != 0)
                        return usage_error(a->verb_name,
                                           "--block-size wants a power of two from 512 to 4096, not '%s'", optarg);
                return 1;
        case OPT_PERSIST:
                a->persist = true;
                return 1;
        case OPT_DEAD_TIMEOUT:
                r = parse_uint32(optarg, 1, ATTACH_MAX_TIMEOUT_SEC, &a->dead_timeout);
                if (r < 0)
                        return usage_error(a->verb_name, "--dead-timeout wants seconds from 1 to %u, not '%s'",
                                           ATTACH_MAX_TIMEOUT_SEC, optarg);
                return 1;
        case OPT_IO_TIMEOUT:
                r = parse_uint32(optarg, 0, ATTACH_MAX_TIMEOUT_SEC, &a->io_timeout);
                if (r < 0)
                        return usage_error(a->verb_name, "--io-timeout wants seconds from 0 (never) to %u, not '%s'",
                                           ATTACH_MAX_TIMEOUT_SEC, optarg);
                return 1;
        case OPT_NO_KTLS:
                a->no_ktls = true;
                return 1;
        case OPT_KERNEL_INTERFACE:
                if (strcmp(optarg, "auto") != 0 && strcmp(optarg, "netlink") != 0 && strcmp(optarg, "ioctl") != 0)
                        return usage_error(a->verb_name, "--kernel-interface wants auto, netlink or ioctl, not '%s'",
                                           optarg);
                a->kernel_interface = optarg;
                return 1;
        default:
                return 0;
        }
}

/* The options only info takes, as parse_attach_option(). */
static int parse_info_option(ConnectArgs *a, int c) {
        bool is = c == OPT_IS;
        int r;

        switch (c) {
        case OPT_SIZE:
                a->size_only = true;
                return 1;
        case OPT_CAN:
        case OPT_IS:
                if (a->question)
                        return usage_error(a->verb_name, "only one --can or --is at a time");
                r = nbd_capability_lookup(is, optarg, &a->question);
                if (r == -EOPNOTSUPP)
                        return usage_error(a->verb_name,
                                           "--can %s: nbdlinkd's probe does not negotiate structured replies, "
                                           "so it cannot tell", optarg);
                if (r < 0) {
                        _cleanup_free_ char *names = nbd_capability_names(is);

                        return usage_error(a->verb_name, "--%s wants one of %s, not '%s'", is ? "is" : "can",
                                           strna(names), optarg);
                }
                return 1;
        default:
                return 0;
        }
}

static const char *option_name(int c) {
        for (const struct option *o = connect_options; o->name; o++)
                if (o->val == c)
                        return o->name;
        return "?";
}

static int parse_args(ConnectArgs *a, int argc, char **argv, bool *ret_help) {
        const char *optstring = a->verb == VERB_ATTACH ? ":ht:d:rc:" : ":ht:";
        int c, r;

        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, optstring, connect_options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        *ret_help = true;
                        return EXIT_OK;
                case OPT_JSON:
                        arg_json = true;
                        break;
                case OPT_NO_ASK_PASSWORD:
                        arg_ask_password = false;
                        break;
                case 't':
                        r = parse_uint32(optarg, 1, ATTACH_MAX_TIMEOUT_SEC, &a->timeout);
                        if (r < 0)
                                return usage_error(a->verb_name,
                                                   "--timeout wants a number of seconds from 1 to %u, not '%s'",
                                                   ATTACH_MAX_TIMEOUT_SEC, optarg);
                        break;
                case OPT_TLS:
                        if (!optarg || strcmp(optarg, "require") == 0)
                                a->tls_mode = "require";
                        else if (strcmp(optarg, "on") == 0 || strcmp(optarg, "off") == 0)
                                a->tls_mode = optarg;
                        else
                                return usage_error(a->verb_name,
                                                   "--tls wants off, on or require, not '%s'", optarg);
                        break;
                case OPT_CA:
                        a->ca = optarg;
                        break;
                case OPT_CERT:
                        a->cert = optarg;
                        break;
                case OPT_KEY:
                        a->key = optarg;
                        break;
                case OPT_PSK:
                        a->psk = optarg;
                        break;
                case OPT_PSK_USER:
                        a->psk_user = optarg;
                        break;
                case OPT_TLS_HOSTNAME:
                        a->tls_hostname = optarg;
                        break;
                case '?':
                case ':':
                        return getopt_failure(a->verb_name, c, argv);
                default:
                        r = parse_attach_option(a, c);
                        if (r == 1 && a->verb != VERB_ATTACH)
                                return usage_error(a->verb_name, "option '--%s' is only for attach", option_name(c));
                        if (r == 0) {
                                r = parse_info_option(a, c);
                                if (r == 1 && a->verb != VERB_INFO)
                                        return usage_error(a->verb_name, "option '--%s' is only for info",
                                                           option_name(c));
                        }
                        if (r == 0)
                                return usage_error(a->verb_name, "unexpected option");
                        if (r != 1)
                                return r;
                }
        }
        return -1;
}

/* Everything the command line says, checked against itself. */
static int resolve_args(ConnectArgs *a, int argc, char **argv) {
        char error[512] = "";
        size_t max_pos = a->verb == VERB_EXPORTS ? 1 : 2;
        const char *tls_certificates;
        bool have_x509, have_psk;
        int r;

        if (a->size_only && a->question)
                return usage_error(a->verb_name, "--size and --can or --is ask different questions: one at a time");
        if ((a->size_only || a->question) && arg_json)
                return usage_error(a->verb_name, "--json has nothing to add to --size, --can or --is");

        if (optind >= argc)
                return usage_error(a->verb_name, "missing TARGET");
        if ((size_t) (argc - optind) > max_pos)
                return usage_error(a->verb_name, "unexpected argument '%s'", argv[optind + max_pos]);

        r = nbd_target_parse(&a->target, argv[optind], error, sizeof(error));
        if (r == -ENOMEM)
                return log_errno(r, "parse target");
        if (r < 0)
                return usage_error(a->verb_name, "%s", error);

        if (optind + 1 < argc) {
                const char *e = argv[optind + 1];

                if (a->target->export_name)
                        return usage_error(a->verb_name,
                                           "the export is named twice, in the URI and as '%s'", e);
                if (strlen(e) > NBD_MAX_STRING)
                        return usage_error(a->verb_name, "export name is longer than %d bytes",
                                           NBD_MAX_STRING);
                if (!utf8_is_valid(e, strlen(e)))
                        return usage_error(a->verb_name, "export name is not valid UTF-8");
                a->export_name = e;
        } else
                a->export_name = strempty(a->target->export_name);

        /* Credentials: from options or from the URI's query, not both. */
        if (a->target->tls_psk_file) {
                if (a->psk)
                        return usage_error(a->verb_name, "--psk and the URI's tls-psk-file= both name a PSK file");
                a->psk = a->target->tls_psk_file;
        }
        if (a->target->username) {
                if (a->psk_user && strcmp(a->psk_user, a->target->username) != 0)
                        return usage_error(a->verb_name, "--psk-user and the URI's user name differ");
                a->psk_user = a->target->username;
        }
        if (a->target->tls_hostname) {
                if (a->tls_hostname && strcmp(a->tls_hostname, a->target->tls_hostname) != 0)
                        return usage_error(a->verb_name, "--tls-hostname and the URI's tls-hostname= differ");
                a->tls_hostname = a->target->tls_hostname;
        }
        tls_certificates = a->target->tls_certificates;
        if (tls_certificates && (a->ca || a->cert || a->key))
                return usage_error(a->verb_name,
                                   "the URI's tls-certificates= and --ca/--cert/--key cannot be combined");

        if (!!a->cert != !!a->key)
                return usage_error(a->verb_name, "--cert and --key go together");
        if (a->psk_user && !a->psk)
                return usage_error(a->verb_name, "a PSK user name needs a PSK file (--psk FILE)");

        have_x509 = a->ca || a->cert || tls_certificates;
        have_psk = !!a->psk;
        if (have_x509 && have_psk)
                return usage_error(a->verb_name, "choose X.509 certificates or a PSK, not both");
        if (a->target->tls_type == NBD_TLS_TYPE_PSK && !have_psk)
                return usage_error(a->verb_name, "the URI asks for tls-type=psk: give --psk FILE");
        if (a->target->tls_type == NBD_TLS_TYPE_X509 && have_psk)
                return usage_error(a->verb_name, "the URI asks for tls-type=x509 but --psk was given");

        if (a->target->tls_required) {
                if (a->tls_mode && strcmp(a->tls_mode, "off") == 0)
                        return usage_error(a->verb_name, "nbds:// URIs require TLS; --tls=off contradicts it");
                a->tls_mode = "require";
        }
        if (a->tls_mode && strcmp(a->tls_mode, "off") == 0 &&
            (have_x509 || have_psk || a->tls_hostname || a->target->tls_type != NBD_TLS_TYPE_UNSET))
                return usage_error(a->verb_name, "TLS settings given with --tls=off");
        /* Credentials say the user wants TLS: never fall back to plain text. */
        if (!a->tls_mode && (have_x509 || have_psk || a->target->tls_type != NBD_TLS_TYPE_UNSET))
                a->tls_mode = "require";

        return -1;
}

static int open_file(const char *path, int dir_fd, int *ret) {
        _cleanup_close_ int fd = -EBADF;
        struct stat st;

        fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (S_ISDIR(st.st_mode))
                return -EISDIR;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        *ret = TAKE_FD(fd);
        return 0;
}

/* Opens credentials and the unix socket, as the user running nbdlink. */
static int open_resources(ConnectArgs *a) {
        const char *certs = a->target->tls_certificates;
        int r;

        if (a->ca && (r = open_file(a->ca, AT_FDCWD, &a->ca_fd)) < 0)
                return log_errno(r, "open CA certificate '%s'", a->ca);
        if (a->cert && (r = open_file(a->cert, AT_FDCWD, &a->cert_fd)) < 0)
                return log_errno(r, "open client certificate '%s'", a->cert);
        if (a->key && (r = open_file(a->key, AT_FDCWD, &a->key_fd)) < 0)
                return log_errno(r, "open client key '%s'", a->key);
        if (a->psk && (r = open_file(a->psk, AT_FDCWD, &a->psk_fd)) < 0)
                return log_errno(r, "open PSK file '%s'", a->psk);

        if (certs) {
                /* The directory layout libnbd and QEMU use. */
                _cleanup_close_ int dfd = open(certs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                int rc, rk;

                if (dfd < 0)
                        return log_errno(-errno, "open tls-certificates directory '%s'", certs);
                r = open_file("ca-cert.pem", dfd, &a->ca_fd);
                if (r < 0)
                        return log_errno(r, "open '%s/ca-cert.pem'", certs);
                rc = open_file("client-cert.pem", dfd, &a->cert_fd);
                if (rc < 0 && rc != -ENOENT)
                        return log_errno(rc, "open '%s/client-cert.pem'", certs);
                rk = open_file("client-key.pem", dfd, &a->key_fd);
                if (rk < 0 && rk != -ENOENT)
                        return log_errno(rk, "open '%s/client-key.pem'", certs);
                if ((rc == -ENOENT) != (rk == -ENOENT))
                        return log_errno(-ENOENT, "open '%s/%s'", certs,
                                         rc == -ENOENT ? "client-cert.pem" : "client-key.pem");
        }

        if (a->target->is_unix) {
                struct sockaddr_un sa = { .sun_family = AF_UNIX };
                _cleanup_close_ int fd = -EBADF;
                _cleanup_free_ char *name = nbd_target_to_string(a->target);

                /* The parser bounded the length; a leading NUL (abstract
                 * namespace) counts, so the address length is explicit. */
                memcpy(sa.sun_path, a->target->socket_path, a->target->socket_path_len);
                fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (fd < 0)
                        return log_errno(-errno, "create socket");
                if (connect(fd, (struct sockaddr *) &sa,
                            (socklen_t) (offsetof(struct sockaddr_un, sun_path) + a->target->socket_path_len +
                                         (a->target->socket_path[0] != 0))) < 0)
                        return log_errno(-errno, "connect to %s", strna(name));
                a->socket_fd = TAKE_FD(fd);
        }
        return 0;
}

static int append_fd(sd_bus_message *m, const char *key, int fd) {
        if (fd < 0)
                return 0;
        return sd_bus_message_append(m, "{sv}", key, "h", fd);
}

/* The a{sv} options of AttachWithOptions, ListExports and Probe. */
static int append_options(sd_bus_message *m, const ConnectArgs *a) {
        int r;

        r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r < 0)
                return r;

        if (a->target->port > 0 && (r = sd_bus_message_append(m, "{sv}", "port", "q", a->target->port)) < 0)
                return r;
        if (a->tls_mode && (r = sd_bus_message_append(m, "{sv}", "tls", "s", a->tls_mode)) < 0)
                return r;
        if (a->tls_hostname && (r = sd_bus_message_append(m, "{sv}", "tls-hostname", "s", a->tls_hostname)) < 0)
                return r;
        if ((r = append_fd(m, "tls-ca", a->ca_fd)) < 0 ||
            (r = append_fd(m, "tls-cert", a->cert_fd)) < 0 ||
            (r = append_fd(m, "tls-key", a->key_fd)) < 0 ||
            (r = append_fd(m, "tls-psk", a->psk_fd)) < 0 ||
            (r = append_fd(m, "socket", a->socket_fd)) < 0)
                return r;
        if (a->psk_user && (r = sd_bus_message_append(m, "{sv}", "tls-username", "s", a->psk_user)) < 0)
                return r;
        if (a->timeout > 0 && (r = sd_bus_message_append(m, "{sv}", "timeout", "u", a->timeout)) < 0)
                return r;

        if (a->verb == VERB_ATTACH) {
                if (a->read_only && (r = sd_bus_message_append(m, "{sv}", "read-only", "b", 1)) < 0)
                        return r;
                if (a->connections > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "connections", "u", a->connections)) < 0)
                        return r;
                if (a->block_size > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "block-size", "u", a->block_size)) < 0)
                        return r;
                if (a->no_ktls && (r = sd_bus_message_append(m, "{sv}", "tls-ktls", "b", 0)) < 0)
                        return r;
                if (a->persist && (r = sd_bus_message_append(m, "{sv}", "persist", "b", 1)) < 0)
                        return r;
                if (a->kernel_interface &&
                    (r = sd_bus_message_append(m, "{sv}", "kernel-interface", "s", a->kernel_interface)) < 0)
                        return r;
                if (a->dead_timeout > 0 &&
                    (r = sd_bus_message_append(m, "{sv}", "dead-timeout", "u", a->dead_timeout)) < 0)
                        return r;
                if (a->io_timeout != UINT32_MAX &&
                    (r = sd_bus_message_append(m, "{sv}", "io-timeout", "u", a->io_timeout)) < 0)
                        return r;
        }

        return sd_bus_message_close_container(m);
}

/* Long enough for the daemon's own deadline plus a polkit dialog. */
static uint64_t call_timeout(const ConnectArgs *a) {
        uint64_t s = (a->timeout ?: DEFAULT_TIMEOUT_SEC) + 30;

        if (may_ask_password())
                s += 300;
        return s * USEC_PER_SEC_U64;
}

static int print_attach(sd_bus_message *reply) {
        _cleanup_free_ char *node = NULL;
        const char *object, *device;
        int r;

        r = sd_bus_message_read(reply, "os", &object, &device);
        if (r < 0)
                return log_errno(r, "parse Attach reply");
        node = device_node(device);
        if (!node)
                return log_errno(-ENOMEM, "format device node");
        device = node;

        if (arg_json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                json_begin_object(&w);
                json_key(&w, "device");
                json_string(&w, device);
                json_key(&w, "object");
                json_string(&w, object);
                json_end_object(&w);
                json_finish(&w);
        } else {
                /* The daemon's text, even here: scripts read this line. */
                fputs_escaped(device, stdout);
                fputc('\n', stdout);
        }
        return EXIT_OK;
}

static int print_exports(sd_bus_message *reply) {
        _cleanup_(table_freep) Table *t = NULL;
        JsonWriter w;
        int r;

        r = sd_bus_message_enter_container(reply, 'a', "(ss)");
        if (r < 0)
                return log_errno(r, "parse ListExports reply");

        if (arg_json) {
                json_init(&w, stdout, true);
                json_begin_array(&w);
        } else {
                r = table_new(&t, 2, (const char *const[]) { "EXPORT", "DESCRIPTION" });
                if (r < 0)
                        return log_errno(r, "allocate table");
        }

        for (;;) {
                const char *name, *desc;

                r = sd_bus_message_read(reply, "(ss)", &name, &desc);
                if (r < 0)
                        return log_errno(r, "parse ListExports reply");
                if (r == 0)
                        break;

                if (arg_json) {
                        json_begin_object(&w);
                        json_key(&w, "name");
                        json_string(&w, name);
                        json_key(&w, "description");
                        json_string(&w, desc);
                        json_end_object(&w);
                } else {
                        /* The default export has an empty name; show that it exists. */
                        if ((r = table_add(t, *name ? name : "\"\"")) < 0 ||
                            (r = table_add(t, *desc ? desc : "-")) < 0)
                                return log_errno(r, "allocate table");
                }
        }

        if (arg_json) {
                json_end_array(&w);
                json_finish(&w);
        } else if ((r = table_print(t, stdout)) < 0)
                return log_errno(r, "print table");
        return EXIT_OK;
}

/* The URI of the probed export: nbds:// when the probe used TLS. Only
 * what names the export, none of the credentials. NULL when out of memory. */
static char *info_uri(const ConnectArgs *a, bool tls) {
        const NbdTarget *t = a->target;

        if (t->is_unix)
                return nbd_uri_format(tls, NULL, 0, t->socket_path, t->socket_path_len, a->export_name);
        return nbd_uri_format(tls, t->host, t->port, NULL, 0, a->export_name);
}

/* "0x014d (has-flags, send-flush, ...)" for the table. Caller frees. */
static char *flags_to_string(uint16_t flags) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        const char *sep = " (";

        if (!f)
                return NULL;
        fprintf(f, "0x%04x", (unsigned) flags);
        for (unsigned bit = 0; bit < 16; bit++)
                if (flags & (1u << bit)) {
                        char b[NBD_FLAG_NAME_MAX];

                        fprintf(f, "%s%s", sep, nbd_flag_name(bit, b));
                        sep = ", ";
                }
        if (flags)
                fputc(')', f);
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

/* info --size and info --can/--is: the one answer, nothing else. */
static int print_answer(const Prop *props, size_t n, const ConnectArgs *a) {
        const Prop *size = props_find(props, n, "size"), *flags = props_find(props, n, "flags"),
                   *tls = props_find(props, n, "tls");

        if (a->size_only) {
                if (!size || size->type != 't')
                        return log_errno(-EBADMSG, "probe: the daemon sent no size");
                printf("%" PRIu64 "\n", size->u);
                return EXIT_OK;
        }
        if (!flags || flags->type != 'q' || !tls || tls->type != 'b')
                return log_errno(-EBADMSG, "probe: the daemon sent no flags");
        return nbd_capability_test(a->question, (uint16_t) flags->u, tls->b) ? EXIT_OK : EXIT_FALSE;
}

static int print_info(sd_bus_message *reply, const ConnectArgs *a) {
        Prop *props = NULL;
        size_t n = 0;
        const Prop *tls;
        _cleanup_free_ char *uri = NULL;
        int r;

        r = props_read(reply, &props, &n);
        if (r < 0)
                return log_errno(r, "parse Probe reply");

        if (a->size_only || a->question) {
                r = print_answer(props, n, a);
                props_free(props, n);
                return r;
        }

        tls = props_find(props, n, "tls");
        uri = info_uri(a, tls && tls->type == 'b' && tls->b);
        if (!uri) {
                r = -ENOMEM;
                goto finish;
        }

        if (arg_json) {
                JsonWriter w;

                json_init(&w, stdout, true);
                json_begin_object(&w);
                json_key(&w, "export");
                json_string(&w, a->export_name);
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *k = json_key_from_bus_name(props[i].key);

                        json_key(&w, k ?: props[i].key);
                        prop_json_value(&w, props + i);
                        if (strcmp(props[i].key, "flags") == 0 && props[i].type == 'q') {
                                json_key(&w, "flag_names");
                                nbd_flags_json(&w, (uint16_t) props[i].u);
                        }
                }
                json_key(&w, "uri");
                json_string(&w, uri);
                json_end_object(&w);
                json_finish(&w);
        } else {
                _cleanup_(table_freep) Table *t = NULL;

                r = table_new(&t, 2, (const char *const[]) { "PROPERTY", "VALUE" });
                if (r < 0)
                        goto finish;
                r = table_add(t, "export");
                if (r >= 0)
                        r = table_add(t, *a->export_name ? a->export_name : "\"\"");
                for (size_t i = 0; r >= 0 && i < n; i++) {
                        _cleanup_free_ char *v = NULL;
                        char buf[FORMAT_SIZE_MAX + 32];

                        if (strcmp(props[i].key, "size") == 0 && props[i].type == 't') {
                                char sz[FORMAT_SIZE_MAX];

                                snprintf(buf, sizeof(buf), "%s (%" PRIu64 " bytes)",
                                         format_size(sz, props[i].u), props[i].u);
                                v = strdup(buf);
                        } else if (strcmp(props[i].key, "flags") == 0 && props[i].type == 'q')
                                v = flags_to_string((uint16_t) props[i].u);
                        else
                                v = prop_to_string(props + i);
                        r = table_add(t, props[i].key);
                        if (r >= 0)
                                r = table_add(t, v ? (*v ? v : "-") : "?");
                }
                if (r >= 0)
                        r = table_add(t, "uri");
                if (r >= 0)
                        r = table_add(t, uri);
                if (r >= 0)
                        r = table_print(t, stdout);
        }

finish:
        props_free(props, n);
        if (r < 0)
                return log_errno(r, "format Probe reply");
        return EXIT_OK;
}

/* Whether the command line asks --can or --is, looked for before parsing
 * it: there, 2 means "no", so a usage error must not say 2. */
static bool asks_question(int argc, char **argv) {
        for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                if (strcmp(argv[i], "--can") == 0 || strncmp(argv[i], "--can=", 6) == 0 ||
                    strcmp(argv[i], "--is") == 0 || strncmp(argv[i], "--is=", 5) == 0)
                        return true;
        return false;
}

static int run(Verb verb, const char *verb_name, int argc, char **argv) {
        _cleanup_(sd_bus_flush_close_unrefp) sd_bus *bus = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *where = NULL;
        sd_bus_error error = SD_BUS_ERROR_NULL;
        ConnectArgs a = {
                .verb = verb, .verb_name = verb_name,
                .ca_fd = -EBADF, .cert_fd = -EBADF, .key_fd = -EBADF,
                .psk_fd = -EBADF, .socket_fd = -EBADF,
                .io_timeout = UINT32_MAX,
        };
        bool show_help = false;
        const char *method;
        int r;

        r = parse_args(&a, argc, argv, &show_help);
        if (r < 0)
                r = resolve_args(&a, argc, argv);
        if (show_help)
                help(verb);
        /* As nbdinfo does: a usage error of a question is an error, 1. */
        if (r == EXIT_USAGE && verb == VERB_INFO && asks_question(argc, argv))
                r = EXIT_FAILED;
        if (r >= 0)
                goto finish;

        where = nbd_target_to_string(a.target);
        if (!where) {
                r = log_errno(-ENOMEM, "format target");
                goto finish;
        }

        r = open_resources(&a);
        if (r != 0)
                goto finish;

        r = bus_open(&bus);
        if (r < 0) {
                r = log_errno(r, "connect to the system bus");
                goto finish;
        }

        method = verb == VERB_ATTACH ? "AttachWithOptions" : verb == VERB_EXPORTS ? "ListExports" : "Probe";
        r = sd_bus_message_new_method_call(bus, &m, NBDLINK_BUS_NAME, NBDLINK_MANAGER_PATH, NBDLINK_MANAGER_INTERFACE,
                                           method);
        if (r >= 0 && verb == VERB_ATTACH)
                r = sd_bus_message_append(m, "s", strempty(a.device));
        if (r >= 0)
                r = sd_bus_message_append(m, "s", nbd_target_bus_host(a.target));
        if (r >= 0 && verb != VERB_EXPORTS)
                r = sd_bus_message_append(m, "s", a.export_name);
        if (r >= 0)
                r = append_options(m, &a);
        if (r < 0) {
                r = log_errno(r, "build %s call", method);
                goto finish;
        }

        pid_t agent;
        polkit_agent_open(&agent);
        r = sd_bus_call(bus, m, call_timeout(&a), &error, &reply);
        polkit_agent_close(agent);
        if (r < 0) {
                if (verb == VERB_EXPORTS)
                        r = log_bus_error(&error, r, "list exports of %s", where);
                else
                        r = log_bus_error(&error, r, "%s %s export '%s'",
                                          verb == VERB_ATTACH ? "attach" : "probe", where, a.export_name);
                goto finish;
        }

        switch (verb) {
        case VERB_ATTACH:
                r = print_attach(reply);
                break;
        case VERB_EXPORTS:
                r = print_exports(reply);
                break;
        case VERB_INFO:
        default:
                r = print_info(reply, &a);
                break;
        }

finish:
        sd_bus_error_free(&error);
        connect_args_done(&a);
        return r;
}

int cmd_attach(int argc, char **argv) {
        return run(VERB_ATTACH, "attach", argc, argv);
}

int cmd_exports(int argc, char **argv) {
        return run(VERB_EXPORTS, "exports", argc, argv);
}

int cmd_info(int argc, char **argv) {
        return run(VERB_INFO, "info", argc, argv);
}
