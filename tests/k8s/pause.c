/* The pod sandbox ("pause") process of the test node's pods, built locally because the registry.k8s.io
 * pause image cannot be pulled here. Same behaviour as Kubernetes' build/pause/linux/pause.c: hold the
 * pod's namespaces open, reap zombies (it is PID 1 when the pod shares its PID namespace), and exit at
 * once on SIGINT or SIGTERM so a sandbox stops without waiting for SIGKILL.
 * Built with `gcc -static` by tests/k8s/node-images.sh. */
#include <signal.h>
#include <stddef.h>
#include <sys/wait.h>
#include <unistd.h>

static void quit(int sig) {
  (void)sig;
  _exit(0);
}

static void reap(int sig) {
  (void)sig;
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

int main(void) {
  struct sigaction on_quit = {.sa_handler = quit};
  struct sigaction on_child = {.sa_handler = reap, .sa_flags = SA_NOCLDSTOP};
  sigaction(SIGINT, &on_quit, NULL);
  sigaction(SIGTERM, &on_quit, NULL);
  sigaction(SIGCHLD, &on_child, NULL);
  for (;;) {
    pause();
  }
}
