/*
 * PID 1 of the kernel-test guest: mounts the pseudo file systems, loads the modules listed in
 * /modules/order, runs every program in /tests one after the other, and reports through
 * qemu's isa-debug-exit port (the qemu process then exits 1 if every program passed, 3 if one
 * failed), then powers off. It must never exit: PID 1 exiting panics the kernel.
 *
 * Each program runs its tests one at a time and with --include-ignored: the tests that need
 * a device are #[ignore]d (a host without the devices reports them as ignored), and here,
 * where every device exists, they run and fail if one is missing.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODULE_INIT_COMPRESSED_FILE 4

static void load_modules(void)
{
	FILE *order = fopen("/modules/order", "r");
	char name[256], path[512];

	if (!order)
		return;
	while (fgets(name, sizeof(name), order)) {
		name[strcspn(name, "\n")] = 0;
		if (!name[0])
			continue;
		snprintf(path, sizeof(path), "/modules/%s", name);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || syscall(SYS_finit_module, fd, "", MODULE_INIT_COMPRESSED_FILE) != 0)
			printf("VM: loading %s failed: %m\n", name);
		if (fd >= 0)
			close(fd);
	}
	fclose(order);
}

static int run(const char *path)
{
	pid_t pid = fork();
	int status;

	if (pid == 0) {
		char *argv[] = { (char *)path, "--test-threads=1", "--include-ignored", NULL };
		char *envp[] = { "PATH=/bin", "RUST_BACKTRACE=1", NULL };
		execve(path, argv, envp);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 126;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(void)
{
	int failures = 0, programs = 0;
	struct dirent *e;
	DIR *tests;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	load_modules();

	tests = opendir("/tests");
	while (tests && (e = readdir(tests))) {
		char path[512];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/tests/%s", e->d_name);
		printf("VM: running %s\n", e->d_name);
		fflush(stdout);
		int rc = run(path);
		printf("VM: %s exited %d\n", e->d_name, rc);
		programs++;
		failures += rc != 0;
	}
	if (programs == 0)
		failures = 1;
	printf("VM: %d programs, %d failed\n", programs, failures);
	fflush(stdout);
	if (ioperm(0xf4, 4, 1) == 0)
		outl(failures ? 1 : 0, 0xf4);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}
