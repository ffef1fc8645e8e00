/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* nbdlink: the command-line client of nbdlinkd. Parses the options that
 * come before the subcommand and hands the rest to it. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "common.h"
#include "config.h"

static void help(void) {
        printf("Usage: nbdlink [OPTIONS] COMMAND [ARGS...]\n\n"
               "Attach remote NBD exports as local /dev/nbdN block devices through nbdlinkd.\n\n"
               "Commands:\n"
               "  attach TARGET [EXPORT]   Attach an export and print the device node\n"
               "  detach DEVICE...         Detach devices (--all: every device of this user)\n"
               "  list                     List attached devices\n"
               "  status DEVICE            Show whether a device is connected, and its owner\n"
               "  exports TARGET           List the exports a server offers\n"
               "  info TARGET [EXPORT]     Show an export's size and flags without attaching\n"
               "  monitor                  Print device events until interrupted\n"
               "  open URI                 Attach, mount through udisks2, print the mount points\n\n"
               "TARGET: nbd://HOST[:PORT]/EXPORT, nbds://..., nbd+unix:///EXPORT?socket=PATH,\n"
               "        nbds+unix://..., HOST[:PORT] or unix:PATH\n\n"
               "Options:\n"
               "  -h --help            Show this help (nbdlink COMMAND --help for a command's)\n"
               "  -V --version         Show the version\n"
               "     --json            Print one JSON document instead of a table\n"
               "     --no-ask-password Do not ask for a password (polkit)\n\n"
               "Exit status: 0 success, 1 the operation failed, 2 usage error;\n"
               "info --can/--is: 2 no; status: 3 not connected.\n"
               "See nbdlink(1).\n");
}

static const struct {
        const char *name;
        int (*run)(int argc, char **argv);
} commands[] = {
        { "attach",  cmd_attach },
        { "detach",  cmd_detach },
        { "list",    cmd_list },
        { "status",  cmd_status },
        { "exports", cmd_exports },
        { "info",    cmd_info },
        { "monitor", cmd_monitor },
        { "open",    cmd_open },
};

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "help",            no_argument, NULL, 'h' },
                { "version",         no_argument, NULL, 'V' },
                { "json",            no_argument, NULL, 0x100 },
                { "no-ask-password", no_argument, NULL, 0x101 },
                {}
        };
        int c;

        opterr = 0;
        /* '+': stop at the subcommand; its options are its own. */
        while ((c = getopt_long(argc, argv, "+:hV", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return EXIT_OK;
                case 'V':
                        printf("nbdlink %s\n", PACKAGE_VERSION);
                        return EXIT_OK;
                case 0x100:
                        arg_json = true;
                        break;
                case 0x101:
                        arg_ask_password = false;
                        break;
                case '?':
                case ':':
                        return getopt_failure(NULL, c, argv);
                default:
                        return usage_error(NULL, "unexpected option");
                }

        if (optind >= argc)
                return usage_error(NULL, "missing command");

        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (strcmp(argv[optind], commands[i].name) == 0)
                        return commands[i].run(argc - optind, argv + optind);

        return usage_error(NULL, "unknown command '%s'", argv[optind]);
}
