// pid-at PID PROGRAM [ARG...]: runs PROGRAM as a process whose pid is PID, or exits 1 saying why not.
// For the tests that need a dead process's pid taken by another (a front killed with kill -9, then a stranger
// under its pid): clone3's set_tid asks the kernel for that pid exactly (Linux >= 5.5, CAP_SYS_ADMIN or
// CAP_CHECKPOINT_RESTORE), so no other fork on the machine can race for it as writing ns_last_pid can.
// It prints the pid on a line, waits for PROGRAM, and exits with its status; PROGRAM
// is killed with SIGKILL if pid-at dies first.
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct clone_args_v2 { // the kernel's struct clone_args up to set_tid_size (CLONE_ARGS_SIZE_VER1)
  uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size;
};

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: pid-at PID PROGRAM [ARG...]\n");
    return 2;
  }
  pid_t want = (pid_t)atol(argv[1]);
  pid_t parent = getpid();
  pid_t tids[1] = {want};
  struct clone_args_v2 args = {.exit_signal = SIGCHLD, .set_tid = (uint64_t)(uintptr_t)tids, .set_tid_size = 1};
  long pid = syscall(SYS_clone3, &args, sizeof args);
  if (pid < 0) {
    fprintf(stderr, "pid-at: clone3 with pid %d: %s\n", (int)want, strerror(errno));
    return 1;
  }
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    execvp(argv[2], argv + 2);
    fprintf(stderr, "pid-at: %s: %s\n", argv[2], strerror(errno));
    _exit(127);
  }
  printf("%ld\n", pid);
  fflush(stdout);
  int status;
  while (waitpid((pid_t)pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
