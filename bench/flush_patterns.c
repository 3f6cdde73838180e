// Costs of the ways to make a new 512 KiB file and an index-like append durable, on the file
// system of DIR (ADR 012). Not a test; build and run by hand:
//   cc -O2 -o /tmp/flush_patterns bench/flush_patterns.c
//   /tmp/flush_patterns DIR [COUNT] [BLOCK_DEVICE]   (e.g. vda: also counts device flushes)
// Patterns, each on COUNT new files in a fresh subdirectory of DIR:
//   limit     write + fdatasync (the benchmark's write+fdatasync limit)
//   per-file  write, rename, fdatasync file, fsync dir, append 4 KiB to a log + fdatasync it
//             (the ADR 009 path: three flushes)
//   syncfs    write, rename, append 4 KiB to the log, one syncfs (the ADR 012 path)
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

// Completed flush requests of a block device (/sys/block/DEV/stat, field 16), or -1.
static long device_flushes(const char* dev) {
  if (dev == NULL) return -1;
  char path[256];
  snprintf(path, sizeof path, "/sys/block/%s/stat", dev);
  FILE* f = fopen(path, "r");
  if (f == NULL) return -1;
  long v[17] = {0};
  int n = 0;
  while (n < 17 && fscanf(f, "%ld", &v[n]) == 1) ++n;
  fclose(f);
  return n >= 16 ? v[15] : -1;
}

static int run(const char* name, int mode, const char* root, int count, const char* dev) {
  char dir[2048], spool[4096], store[4096], log_path[4096];
  snprintf(dir, sizeof dir, "%s/flush-%s-%d", root, name, (int)getpid());
  snprintf(spool, sizeof spool, "%s/spool", dir);
  snprintf(store, sizeof store, "%s/store", dir);
  snprintf(log_path, sizeof log_path, "%s/log", dir);
  if (mkdir(dir, 0755) != 0 || mkdir(spool, 0755) != 0 || mkdir(store, 0755) != 0) {
    perror("mkdir");
    return 1;
  }
  const size_t size = 512 * 1024;
  char* data = malloc(size);
  memset(data, 7, size);
  int log_fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0644);
  int store_fd = open(store, O_RDONLY | O_DIRECTORY);
  if (log_fd < 0 || store_fd < 0) {
    perror("open");
    return 1;
  }
  sync();
  const long flushes0 = device_flushes(dev);
  const double t0 = now();
  for (int i = 0; i < count; ++i) {
    char from[4200], to[4200];
    snprintf(from, sizeof from, "%s/%d.part", spool, i);
    snprintf(to, sizeof to, "%s/%d.dcm", store, i);
    int fd = open(mode == 0 ? to : from, O_RDWR | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || write(fd, data, size) != (ssize_t)size) {
      perror("write");
      return 1;
    }
    int rc = 0;
    if (mode == 0) {
      rc = fdatasync(fd);
    } else if (mode == 1) {
      rc |= rename(from, to);
      rc |= fdatasync(fd);
      rc |= fsync(store_fd);
      rc |= write(log_fd, data, 4096) != 4096;
      rc |= fdatasync(log_fd);
    } else {
      rc |= rename(from, to);
      rc |= write(log_fd, data, 4096) != 4096;
      rc |= syncfs(store_fd);
    }
    close(fd);
    if (rc != 0) {
      perror(name);
      return 1;
    }
  }
  const double seconds = now() - t0;
  const long flushes1 = device_flushes(dev);
  printf("%-9s %7.0f files/s  %6.3f ms/file", name, count / seconds, seconds * 1000 / count);
  if (flushes0 >= 0 && flushes1 >= 0) {
    printf("  %.2f device flushes/file", (double)(flushes1 - flushes0) / count);
  }
  printf("\n");
  free(data);
  close(log_fd);
  close(store_fd);
  char cmd[4200];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  return system(cmd) == 0 ? 0 : 1;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s DIR [COUNT] [BLOCK_DEVICE]\n", argv[0]);
    return 2;
  }
  const int count = argc > 2 ? atoi(argv[2]) : 500;
  const char* dev = argc > 3 ? argv[3] : NULL;
  int rc = 0;
  for (int round = 0; round < 2 && rc == 0; ++round) {
    rc |= run("limit", 0, argv[1], count, dev);
    rc |= run("per-file", 1, argv[1], count, dev);
    rc |= run("syncfs", 2, argv[1], count, dev);
  }
  return rc;
}
