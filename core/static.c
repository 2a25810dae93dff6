#include "static.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "api.h"
#include "errors.h"
#include "hmap.h"
#include "log.h"

enum { STATIC_MAX_FILES = 512, STATIC_MAX_BYTES = 32 << 20, STATIC_MAX_DEPTH = 8 };

typedef struct {
  char *data;
  size_t len;
  const char *type;
  char etag[32];
} sfile;

static eim_hmap files; /* "/path" -> sfile */
static size_t total_bytes;

static const char placeholder[] =
    "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>ExampleIM</title></head><body><h1>ExampleIM</h1>"
    "<p>The server is running. The HTTP API is under <code>/api/v1</code>, the WebSocket at "
    "<code>/ws</code>, health at <a href=\"/healthz\">/healthz</a> and metrics at "
    "<a href=\"/metrics\">/metrics</a>.</p></body></html>";

static const char *content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } types[] = {
      {".html", "text/html; charset=utf-8"}, {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
      {".json", "application/json"}, {".svg", "image/svg+xml"}, {".png", "image/png"},
      {".ico", "image/x-icon"}, {".webmanifest", "application/manifest+json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
    if (strcmp(dot, types[i].ext) == 0) return types[i].type;
  return "application/octet-stream";
}

static int load_file(const char *path, const char *url) {
  FILE *fp = fopen(path, "rb");
  if (fp == NULL) return -1;
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || st.st_size < 0 ||
      total_bytes + (size_t)st.st_size > STATIC_MAX_BYTES || files.len >= STATIC_MAX_FILES) {
    fclose(fp);
    EIM_LOG_E("msg=\"web file skipped: over the size or count limit\" file=%s", path);
    return -1;
  }
  sfile *f = calloc(1, sizeof *f);
  if (f == NULL) {
    fclose(fp);
    return -1;
  }
  f->len = (size_t)st.st_size;
  f->data = malloc(f->len ? f->len : 1);
  if (f->data == NULL || fread(f->data, 1, f->len, fp) != f->len) {
    fclose(fp);
    free(f->data);
    free(f);
    return -1;
  }
  fclose(fp);
  f->type = content_type(url);
  /* FNV-1a of the content: a strong validator for If-None-Match. */
  unsigned long long h = 1469598103934665603ULL;
  for (size_t i = 0; i < f->len; i++) h = (h ^ (unsigned char)f->data[i]) * 1099511628211ULL;
  snprintf(f->etag, sizeof f->etag, "\"%016llx\"", h);
  total_bytes += f->len;
  if (eim_hmap_put(&files, url, f) != 0) {
    free(f->data);
    free(f);
    return -1;
  }
  return 0;
}

static int load_dir(const char *dir, const char *url, int depth) {
  if (depth > STATIC_MAX_DEPTH) return 0;
  DIR *d = opendir(dir);
  if (d == NULL) return -1;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (e->d_name[0] == '.') continue;
    char path[4096], u[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    snprintf(u, sizeof u, "%s/%s", url, e->d_name);
    struct stat st;
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) load_dir(path, u, depth + 1);
    else if (S_ISREG(st.st_mode)) load_file(path, u);
  }
  closedir(d);
  return 0;
}

int eim_static_load(const char *dir) {
  eim_hmap_init(&files);
  if (dir == NULL || dir[0] == '\0') return 0;
  if (load_dir(dir, "", 0) != 0) {
    /* The web client is optional: the API works without it. */
    EIM_LOG_W("msg=\"cannot read web_dir; serving the built-in page\" dir=%s error=\"%s\"", dir,
              strerror(errno));
    return 0;
  }
  EIM_LOG_I("msg=\"web client loaded\" dir=%s files=%zu bytes=%zu", dir, files.len, total_bytes);
  return 0;
}

void eim_static_serve(eim_http_conn *c, const eim_http_req *req) {
  int head = strcmp(req->method, "HEAD") == 0;
  const char *path = req->path;
  if (strcmp(path, "/") == 0) path = "/index.html";
  sfile *f = eim_hmap_get(&files, path);
  if (f == NULL && strcmp(path, "/index.html") == 0 && files.len == 0) {
    eim_http_respond(c, 200, "text/html; charset=utf-8", placeholder, head ? 0 : sizeof placeholder - 1,
                     "Cache-Control: no-cache\r\nX-Content-Type-Options: nosniff\r\n");
    return;
  }
  if (f == NULL) {
    eim_api_error(c, EIM_PE_NOT_FOUND, "no such file");
    return;
  }
  char headers[512];
  /* Revalidate every time: files are small, and a new server version must
   * never be mixed with an old cached module. */
  snprintf(headers, sizeof headers,
           "Cache-Control: no-cache\r\nETag: %s\r\nX-Content-Type-Options: nosniff\r\n"
           "Content-Security-Policy: default-src 'self'; connect-src 'self' ws: wss:; "
           "img-src 'self' data:; style-src 'self'; frame-ancestors 'none'\r\n"
           "Referrer-Policy: no-referrer\r\n",
           f->etag);
  const char *inm = eim_http_header(req, "if-none-match");
  if (inm != NULL && strcmp(inm, f->etag) == 0) {
    eim_http_respond(c, 304, f->type, "", 0, headers);
    return;
  }
  eim_http_respond(c, 200, f->type, f->data, head ? 0 : f->len, headers);
}

void eim_static_free(void) {
  sfile *f;
  for (size_t it = 0; eim_hmap_next(&files, &it, NULL, (void **)&f);) {
    free(f->data);
    free(f);
  }
  eim_hmap_free(&files);
  total_bytes = 0;
}
