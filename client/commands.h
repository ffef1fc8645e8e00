/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The subcommands. Each gets argv starting at its own name, parses its
 * options, and returns the process exit status (EXIT_OK, EXIT_FAILED,
 * EXIT_USAGE, and info's EXIT_FALSE, status's EXIT_NOT_CONNECTED). */
#pragma once

int cmd_attach(int argc, char **argv);
int cmd_exports(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_detach(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_open(int argc, char **argv);
int cmd_status(int argc, char **argv);

/* Options every subcommand takes besides its own. */
#define COMMON_OPTIONS_HELP                                                     \
        "  -h --help            Show this help\n"                               \
        "     --json            Print one JSON document instead of a table\n"   \
        "     --no-ask-password Do not ask for a password (polkit)\n"
