/*
 * A VFS over the default one that gathers the write-ahead log's writes of a
 * commit into one write. SQLite writes each WAL frame as two pwrite calls (a
 * 24-byte header, then the page), so a commit of 100 messages, some 200
 * dirty index pages, made 400 system calls; here it makes one, at the sync.
 *
 * Only used with synchronous = FULL: then SQLite syncs the log (xSync) after
 * a commit's frames and before it publishes them in the WAL index, which is
 * when the buffer is written. With NORMAL there is no sync at commit, and
 * readers on other connections would look for frames still in the buffer.
 * Anything that looks at the file (read, size, truncate, close, file
 * control) writes the buffer first, so the file always reads as if written
 * through. A crash loses what is buffered: frames of a commit not yet
 * synced, which a crash could lose anyway, and never an acknowledged one.
 */
#include "sq.h"

#include <stdlib.h>
#include <string.h>

/* Larger runs (a transaction spilling its cache) are written in pieces. */
#define SQ_VFS_MAX_BUF (8 * 1024 * 1024)

typedef struct sq_vfile {
  sqlite3_file base;
  sqlite3_file *real; /* the default VFS's file, allocated after this struct */
  int wal;            /* a WAL file: writes are gathered */
  char *buf;
  size_t len, cap;
  sqlite3_int64 off; /* file offset of buf[0] */
} sq_vfile;

static sqlite3_vfs sq_vfs;
static sqlite3_vfs *sq_root;
static pthread_mutex_t sq_vfs_lock = PTHREAD_MUTEX_INITIALIZER;
static int sq_vfs_users;

/* Our part of a file, rounded up so that the real file after it is aligned. */
#define SQ_VFILE_SIZE ((sizeof(sq_vfile) + 15) & ~(size_t)15)

#define REAL(f) (((sq_vfile *)(f))->real)
#define RM(f) (REAL(f)->pMethods)

/* The unix VFS writes at most 128 KiB - 1 in one call (it masks the length
 * with 0x1ffff and reports a short write as a full disk), so the run goes
 * out in pieces of 30 pages. */
#define SQ_VFS_CHUNK (30 * 4096)

static int sq_vflush(sq_vfile *f) {
  int rc = SQLITE_OK;

  for (size_t done = 0; done < f->len && rc == SQLITE_OK; done += SQ_VFS_CHUNK) {
    size_t n = f->len - done < SQ_VFS_CHUNK ? f->len - done : SQ_VFS_CHUNK;

    rc = f->real->pMethods->xWrite(f->real, f->buf + done, (int)n,
                                   f->off + (sqlite3_int64)done);
  }
  f->len = 0;
  return rc;
}

static int sq_vclose(sqlite3_file *file) {
  sq_vfile *f = (sq_vfile *)file;
  int rc = sq_vflush(f);
  int rc2 = f->real->pMethods->xClose(f->real);

  free(f->buf);
  f->buf = NULL;
  f->cap = 0;
  return rc != SQLITE_OK ? rc : rc2;
}

static int sq_vread(sqlite3_file *file, void *p, int amt, sqlite3_int64 off) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xRead(REAL(file), p, amt, off);
}

/* Appends to the run when the write continues it; otherwise writes the run
 * and starts a new one. */
static int sq_vwrite(sqlite3_file *file, const void *p, int amt, sqlite3_int64 off) {
  sq_vfile *f = (sq_vfile *)file;
  size_t n = (size_t)amt;
  int rc;

  if (!f->wal)
    return RM(file)->xWrite(f->real, p, amt, off);
  if (f->len != 0 && (off != f->off + (sqlite3_int64)f->len || f->len + n > SQ_VFS_MAX_BUF)) {
    rc = sq_vflush(f);
    if (rc != SQLITE_OK)
      return rc;
  }
  if (n > SQ_VFS_MAX_BUF)
    return RM(file)->xWrite(f->real, p, amt, off);
  if (f->len + n > f->cap) {
    size_t cap = f->cap != 0 ? f->cap : 256 * 1024;
    char *grown;

    while (cap < f->len + n)
      cap *= 2;
    grown = realloc(f->buf, cap);
    if (grown == NULL) {
      /* No room to gather: write through. */
      rc = sq_vflush(f);
      return rc != SQLITE_OK ? rc : RM(file)->xWrite(f->real, p, amt, off);
    }
    f->buf = grown;
    f->cap = cap;
  }
  if (f->len == 0)
    f->off = off;
  memcpy(f->buf + f->len, p, n);
  f->len += n;
  return SQLITE_OK;
}

static int sq_vtruncate(sqlite3_file *file, sqlite3_int64 size) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xTruncate(REAL(file), size);
}

static int sq_vsync(sqlite3_file *file, int flags) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xSync(REAL(file), flags);
}

static int sq_vfilesize(sqlite3_file *file, sqlite3_int64 *size) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xFileSize(REAL(file), size);
}

static int sq_vlock(sqlite3_file *file, int lock) {
  return RM(file)->xLock(REAL(file), lock);
}

static int sq_vunlock(sqlite3_file *file, int lock) {
  return RM(file)->xUnlock(REAL(file), lock);
}

static int sq_vcheck(sqlite3_file *file, int *out) {
  return RM(file)->xCheckReservedLock(REAL(file), out);
}

static int sq_vfcntl(sqlite3_file *file, int op, void *arg) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xFileControl(REAL(file), op, arg);
}

static int sq_vsector(sqlite3_file *file) {
  return RM(file)->xSectorSize(REAL(file));
}

static int sq_vdevchar(sqlite3_file *file) {
  return RM(file)->xDeviceCharacteristics(REAL(file));
}

static int sq_vshmmap(sqlite3_file *file, int pg, int pgsz, int extend, void volatile **p) {
  return RM(file)->xShmMap(REAL(file), pg, pgsz, extend, p);
}

static int sq_vshmlock(sqlite3_file *file, int offset, int n, int flags) {
  return RM(file)->xShmLock(REAL(file), offset, n, flags);
}

static void sq_vshmbarrier(sqlite3_file *file) {
  RM(file)->xShmBarrier(REAL(file));
}

static int sq_vshmunmap(sqlite3_file *file, int del) {
  return RM(file)->xShmUnmap(REAL(file), del);
}

static int sq_vfetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **p) {
  int rc = sq_vflush((sq_vfile *)file);

  return rc != SQLITE_OK ? rc : RM(file)->xFetch(REAL(file), off, amt, p);
}

static int sq_vunfetch(sqlite3_file *file, sqlite3_int64 off, void *p) {
  return RM(file)->xUnfetch(REAL(file), off, p);
}

/* Version 3 methods; the default unix VFS's files have all of them. */
static const sqlite3_io_methods sq_vmethods = {
    3,           sq_vclose,     sq_vread,       sq_vwrite,    sq_vtruncate, sq_vsync,
    sq_vfilesize, sq_vlock,     sq_vunlock,     sq_vcheck,    sq_vfcntl,    sq_vsector,
    sq_vdevchar, sq_vshmmap,    sq_vshmlock,    sq_vshmbarrier, sq_vshmunmap, sq_vfetch,
    sq_vunfetch,
};

static int sq_vopen(sqlite3_vfs *vfs, const char *name, sqlite3_file *file, int flags,
                    int *outflags) {
  sq_vfile *f = (sq_vfile *)file;
  int rc;

  (void)vfs;
  memset(f, 0, sizeof *f);
  f->real = (sqlite3_file *)((char *)f + SQ_VFILE_SIZE);
  f->wal = (flags & SQLITE_OPEN_WAL) != 0;
  rc = sq_root->xOpen(sq_root, name, f->real, flags, outflags);
  /* SQLite calls xClose when pMethods is set, even after a failure. */
  f->base.pMethods = f->real->pMethods != NULL ? &sq_vmethods : NULL;
  return rc;
}

static int sq_vdelete(sqlite3_vfs *vfs, const char *name, int syncdir) {
  (void)vfs;
  return sq_root->xDelete(sq_root, name, syncdir);
}

static int sq_vaccess(sqlite3_vfs *vfs, const char *name, int flags, int *out) {
  (void)vfs;
  return sq_root->xAccess(sq_root, name, flags, out);
}

static int sq_vfullpath(sqlite3_vfs *vfs, const char *name, int n, char *out) {
  (void)vfs;
  return sq_root->xFullPathname(sq_root, name, n, out);
}

static void *sq_vdlopen(sqlite3_vfs *vfs, const char *name) {
  (void)vfs;
  return sq_root->xDlOpen(sq_root, name);
}

static void sq_vdlerror(sqlite3_vfs *vfs, int n, char *msg) {
  (void)vfs;
  sq_root->xDlError(sq_root, n, msg);
}

static void (*sq_vdlsym(sqlite3_vfs *vfs, void *h, const char *sym))(void) {
  (void)vfs;
  return sq_root->xDlSym(sq_root, h, sym);
}

static void sq_vdlclose(sqlite3_vfs *vfs, void *h) {
  (void)vfs;
  sq_root->xDlClose(sq_root, h);
}

static int sq_vrandom(sqlite3_vfs *vfs, int n, char *out) {
  (void)vfs;
  return sq_root->xRandomness(sq_root, n, out);
}

static int sq_vsleep(sqlite3_vfs *vfs, int us) {
  (void)vfs;
  return sq_root->xSleep(sq_root, us);
}

static int sq_vcurrenttime(sqlite3_vfs *vfs, double *out) {
  (void)vfs;
  return sq_root->xCurrentTime(sq_root, out);
}

static int sq_vlasterror(sqlite3_vfs *vfs, int n, char *msg) {
  (void)vfs;
  return sq_root->xGetLastError(sq_root, n, msg);
}

static int sq_vcurrenttime64(sqlite3_vfs *vfs, sqlite3_int64 *out) {
  (void)vfs;
  return sq_root->xCurrentTimeInt64(sq_root, out);
}

/* Registers SQ_VFS_NAME over the default VFS (once per process, counted:
 * every store instance calls it at init and sq__vfs_release at fini, and
 * the last one unregisters it before the plugin can be unloaded). */
int sq__vfs_acquire(eim_err *err) {
  int rc = SQLITE_OK;

  pthread_mutex_lock(&sq_vfs_lock);
  if (sq_vfs_users == 0) {
    sq_root = sqlite3_vfs_find(NULL);
    if (sq_root == NULL || sq_root->iVersion < 2) {
      rc = SQLITE_ERROR;
    } else {
      memset(&sq_vfs, 0, sizeof sq_vfs);
      sq_vfs.iVersion = 2;
      sq_vfs.szOsFile = (int)SQ_VFILE_SIZE + sq_root->szOsFile;
      sq_vfs.mxPathname = sq_root->mxPathname;
      sq_vfs.zName = SQ_VFS_NAME;
      sq_vfs.xOpen = sq_vopen;
      sq_vfs.xDelete = sq_vdelete;
      sq_vfs.xAccess = sq_vaccess;
      sq_vfs.xFullPathname = sq_vfullpath;
      sq_vfs.xDlOpen = sq_vdlopen;
      sq_vfs.xDlError = sq_vdlerror;
      sq_vfs.xDlSym = sq_vdlsym;
      sq_vfs.xDlClose = sq_vdlclose;
      sq_vfs.xRandomness = sq_vrandom;
      sq_vfs.xSleep = sq_vsleep;
      sq_vfs.xCurrentTime = sq_vcurrenttime;
      sq_vfs.xGetLastError = sq_vlasterror;
      sq_vfs.xCurrentTimeInt64 = sq_vcurrenttime64;
      rc = sqlite3_vfs_register(&sq_vfs, 0);
    }
  }
  if (rc == SQLITE_OK)
    sq_vfs_users++;
  pthread_mutex_unlock(&sq_vfs_lock);
  if (rc != SQLITE_OK)
    return eim_err_set(err, EIM_EINTERNAL, "cannot register the SQLite VFS %s", SQ_VFS_NAME);
  return EIM_OK;
}

void sq__vfs_release(void) {
  pthread_mutex_lock(&sq_vfs_lock);
  if (sq_vfs_users > 0 && --sq_vfs_users == 0)
    sqlite3_vfs_unregister(&sq_vfs);
  pthread_mutex_unlock(&sq_vfs_lock);
}
