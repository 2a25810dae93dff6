/* The node id: chosen once per data directory and kept in <data_dir>/node-id,
 * so a restarted node keeps its consumer group and its presence identity. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kq.h"

#define KQ_PATH_MAX 4096

/* Reads the id file into id[KQ_NODE_ID_MAX + 1]. Returns 0, -ENOENT when the
 * file does not exist, or another negative errno; -EINVAL when its content
 * is not a valid id. */
static int read_id(const char *path, char *id) {
  char buf[KQ_NODE_ID_MAX + 8];
  ssize_t n;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -errno;
  n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n < 0) return -EIO;
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
    n--;
  buf[n] = '\0';
  if (!kq_is_name(buf, KQ_NODE_ID_MAX)) return -EINVAL;
  memcpy(id, buf, (size_t)n + 1);
  return 0;
}

/* Writes a new random id to a temporary file and links it into place, so a
 * reader never sees half an id and two processes starting at once agree on
 * the first one written. Returns 0, -EEXIST when another won, or -errno. */
static int create_id(const char *path, char *id) {
  unsigned char rnd[8];
  char tmp[KQ_PATH_MAX];
  int fd, rc = 0;

  if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) return -EIO;
  for (size_t i = 0; i < sizeof rnd; i++)
    snprintf(id + 2 * i, 3, "%02x", rnd[i]);
  if (snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid()) >= (int)sizeof tmp)
    return -ENAMETOOLONG;
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -errno;
  if (dprintf(fd, "%s\n", id) < 0 || fsync(fd) != 0) rc = -errno;
  close(fd);
  if (rc == 0 && link(tmp, path) != 0) rc = -errno;
  unlink(tmp);
  return rc;
}

int kq_node_id_load(kq_config *cfg, const eim_host *host, eim_err *err) {
  const char *dir = host->config_get(host, "data_dir");
  char path[KQ_PATH_MAX];
  int rc;

  if (dir == NULL || dir[0] == '\0')
    return eim_err_set(err, EIM_EINVAL,
                       "node_id is not set and the server has no data_dir to keep one in");
  if (snprintf(path, sizeof path, "%s/node-id", dir) >= (int)sizeof path)
    return eim_err_set(err, EIM_EINVAL, "data_dir is too long");
  if (mkdir(dir, 0700) != 0 && errno != EEXIST)
    return eim_err_set(err, EIM_EINTERNAL, "cannot create %s: %s", dir, strerror(errno));

  rc = read_id(path, cfg->node_id);
  if (rc == -ENOENT) {
    rc = create_id(path, cfg->node_id);
    if (rc == -EEXIST) rc = read_id(path, cfg->node_id);
  }
  if (rc == -EINVAL)
    return eim_err_set(err, EIM_EINVAL, "%s does not hold a valid node id", path);
  if (rc != 0)
    return eim_err_set(err, EIM_EINTERNAL, "%s: %s", path, strerror(-rc));
  return EIM_OK;
}
