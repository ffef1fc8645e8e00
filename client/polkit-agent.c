/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Runs pkttyagent next to nbdlink, as systemctl does: the agent answers
 * polkit's authentication requests for this session on the terminal, and
 * tells us through --notify-fd when it is ready. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common.h"
#include "polkit-agent.h"

#ifndef PKTTYAGENT
#define PKTTYAGENT "/usr/bin/pkttyagent"
#endif

/* How long to wait for the agent to register before going on without. */
#define AGENT_READY_TIMEOUT_MSEC 5000

void polkit_agent_open(pid_t *ret_pid) {
        int pipefd[2];
        pid_t pid;

        *ret_pid = 0;
        if (!may_ask_password() || !isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || geteuid() == 0)
                return;
        if (access(PKTTYAGENT, X_OK) < 0)
                return;
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return;

        pid = fork();
        if (pid < 0) {
                safe_close(pipefd[0]);
                safe_close(pipefd[1]);
                return;
        }
        if (pid == 0) {
                char fdstr[16];
                int fd;

                /* The agent must not outlive us. */
                (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
                safe_close(pipefd[0]);
                fd = fcntl(pipefd[1], F_DUPFD, 3);      /* without O_CLOEXEC */
                if (fd < 0)
                        _exit(EXIT_FAILED);
                snprintf(fdstr, sizeof(fdstr), "%d", fd);
                execl(PKTTYAGENT, PKTTYAGENT, "--notify-fd", fdstr, "--fallback", (char *) NULL);
                _exit(EXIT_FAILED);
        }

        safe_close(pipefd[1]);
        /* The agent writes or closes the descriptor once registered. */
        struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
        (void) poll(&p, 1, AGENT_READY_TIMEOUT_MSEC);
        safe_close(pipefd[0]);
        *ret_pid = pid;
}

void polkit_agent_close(pid_t pid) {
        if (pid <= 0)
                return;
        (void) kill(pid, SIGTERM);
        while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
}
