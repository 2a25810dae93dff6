/* Throughput of the filter-sensitive matcher + masking path on generated
 * data: a deterministic list of mixed Chinese and Latin terms and fixed-size
 * mixed-script messages, some of which contain a term. Reports the best of
 * several runs in MB/s and messages/s, for plain and skip_separators
 * automata. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mask.h"
#include "matcher.h"

#define POOL 5000  /* CJK characters, from U+4E00 */
#define VOCAB 2000 /* Latin words */

typedef struct bench_opts {
  size_t terms, messages, size, runs;
  unsigned hit_pct;
  unsigned long long seed;
  int uniform; /* text model: see usage() */
} bench_opts;

static unsigned long long rng;
static unsigned pool_rank[POOL];  /* frequency rank -> character */
static double pool_cdf[POOL], vocab_cdf[VOCAB];
static char vocab[VOCAB][12];

static unsigned long long next(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

static size_t below(size_t n) { return (size_t)(next() % n); }

/* Cumulative Zipf (s = 1) distribution over n ranks. */
static void zipf_cdf(double *cdf, size_t n) {
  double sum = 0;
  size_t i;
  for (i = 0; i < n; i++)
    sum += 1.0 / (double)(i + 1);
  cdf[0] = 1.0 / sum;
  for (i = 1; i < n; i++)
    cdf[i] = cdf[i - 1] + 1.0 / (double)(i + 1) / sum;
}

static size_t zipf(const double *cdf, size_t n) {
  double u = (double)(next() >> 11) / 9007199254740992.0;
  size_t lo = 0, hi = n - 1;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    if (cdf[mid] < u)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

static size_t put_cp(char *p, unsigned cp) {
  p[0] = (char)(0xE0 | (cp >> 12));
  p[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
  p[2] = (char)(0x80 | (cp & 0x3F));
  return 3;
}

/* One term into p (at least 32 bytes): half Chinese (2-4 characters drawn
 * uniformly from the pool), half Latin (4-8 random letters). */
static size_t gen_term(char *p) {
  size_t n = 0, k, len;
  if (next() & 1) {
    len = 2 + below(3);
    for (k = 0; k < len; k++)
      n += put_cp(p + n, 0x4E00 + (unsigned)below(POOL));
  } else {
    len = 4 + below(5);
    for (k = 0; k < len; k++)
      p[n++] = (char)('a' + below(26));
  }
  return n;
}

static void gen_model(void) {
  size_t i, k;
  for (i = 0; i < POOL; i++)
    pool_rank[i] = (unsigned)i;
  for (i = POOL - 1; i > 0; i--) {
    size_t j = below(i + 1);
    unsigned t = pool_rank[i];
    pool_rank[i] = pool_rank[j];
    pool_rank[j] = t;
  }
  zipf_cdf(pool_cdf, POOL);
  zipf_cdf(vocab_cdf, VOCAB);
  for (i = 0; i < VOCAB; i++) {
    size_t len = 2 + below(8);
    for (k = 0; k < len; k++)
      vocab[i][k] = (char)('a' + below(26));
    vocab[i][len] = '\0';
  }
}

/* One message of exactly size bytes: runs of Chinese characters and Latin
 * words with punctuation, and with probability hit_pct% one term (Latin
 * ones in random case) somewhere in it. */
static void gen_message(const bench_opts *o, char *p, char (*terms)[32], const size_t *lens) {
  size_t n = 0, hit_at = below(100) < o->hit_pct ? below(o->size / 2) : (size_t)-1;
  while (n + 32 < o->size) {
    if (n >= hit_at) {
      size_t t = below(o->terms), k;
      for (k = 0; k < lens[t]; k++) {
        char c = terms[t][k];
        p[n++] = (c >= 'a' && c <= 'z' && (next() & 1)) ? (char)(c - 32) : c;
      }
      hit_at = (size_t)-1;
    } else if (next() & 1) {
      size_t k, len = 1 + below(6);
      for (k = 0; k < len; k++) {
        unsigned c = o->uniform ? (unsigned)below(POOL) : pool_rank[zipf(pool_cdf, POOL)];
        n += put_cp(p + n, 0x4E00 + c);
      }
      if (next() % 4 == 0)
        n += (size_t)sprintf(p + n, "，");
    } else {
      if (o->uniform) {
        size_t k, len = 2 + below(8);
        for (k = 0; k < len; k++)
          p[n++] = (char)('a' + below(26));
      } else {
        const char *w = vocab[zipf(vocab_cdf, VOCAB)];
        memcpy(p + n, w, strlen(w));
        n += strlen(w);
      }
      p[n++] = (next() % 5 == 0) ? ',' : ' ';
    }
  }
  while (n < o->size)
    p[n++] = (char)('a' + below(26));
}

/* CPU time of this thread: the machine may be shared, and time spent
 * descheduled says nothing about the matcher. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int run_mode(const bench_opts *o, const char *const *tp, const size_t *lens,
                    const char *msgs, unsigned flags) {
  eim_fs_matcher *m = NULL;
  eim_fs_spans sp = {0};
  eim_err err;
  char *out = malloc(o->size * 4);
  double t0 = now_s(), build_s, best = 1e30;
  size_t r, i, hits = 0, sink = 0, bad;

  if (out == NULL ||
      eim_fs_matcher_build(tp, lens, o->terms, flags, &m, &bad, &err) != EIM_OK) {
    fprintf(stderr, "build failed: %s\n", out ? err.msg : "out of memory");
    free(out);
    return 1;
  }
  build_s = now_s() - t0;
  for (r = 0; r < o->runs; r++) {
    double t;
    hits = 0;
    t0 = now_s();
    for (i = 0; i < o->messages; i++) {
      const char *text = msgs + i * o->size;
      if (eim_fs_find(m, text, o->size, &sp) != EIM_OK)
        return 1;
      if (sp.n > 0) {
        size_t len = eim_fs_masked_len(text, o->size, &sp, 1);
        eim_fs_mask(text, o->size, &sp, "*", 1, out);
        sink += (unsigned char)out[len - 1];
        hits++;
      }
    }
    t = now_s() - t0;
    if (t < best)
      best = t;
  }
  printf("%-5s states=%zu build=%.1fms masked=%.1f%% best=%.3fs  %.1f MB/s  %.2f M msg/s"
         "  (checksum %zu)\n",
         flags ? "skip" : "plain", eim_fs_matcher_states(m), build_s * 1e3,
         100.0 * (double)hits / (double)o->messages, best,
         (double)(o->messages * o->size) / best / 1e6, (double)o->messages / best / 1e6,
         sink % 10);
  eim_fs_spans_free(&sp);
  eim_fs_matcher_free(m);
  free(out);
  return 0;
}

static void usage(void) {
  fprintf(stderr,
          "usage: bench-filter-sensitive [--terms N] [--messages N] [--size BYTES]\n"
          "         [--hit-pct P] [--runs N] [--seed S] [--uniform 0|1]\n"
          "defaults: 10000 terms, 100000 messages of 200 bytes, 10%% with an inserted\n"
          "term, best of 15 runs, seed 42. Text model: Chinese characters and Latin\n"
          "words with natural (Zipf) frequencies; --uniform 1 draws characters and\n"
          "letters uniformly at random instead, a harder case for the automaton.\n");
}

int main(int argc, char **argv) {
  bench_opts o = {10000, 100000, 200, 15, 10, 42, 0};
  char(*terms)[32];
  const char **tp;
  size_t *lens, i;
  char *msgs;
  int a, rc;

  for (a = 1; a + 1 < argc; a += 2) {
    unsigned long long v = strtoull(argv[a + 1], NULL, 10);
    if (strcmp(argv[a], "--terms") == 0 && v > 0)
      o.terms = v;
    else if (strcmp(argv[a], "--messages") == 0 && v > 0)
      o.messages = v;
    else if (strcmp(argv[a], "--size") == 0 && v >= 64)
      o.size = v;
    else if (strcmp(argv[a], "--hit-pct") == 0 && v <= 100)
      o.hit_pct = (unsigned)v;
    else if (strcmp(argv[a], "--runs") == 0 && v > 0)
      o.runs = v;
    else if (strcmp(argv[a], "--seed") == 0 && v > 0)
      o.seed = v;
    else if (strcmp(argv[a], "--uniform") == 0 && v <= 1)
      o.uniform = (int)v;
    else
      break;
  }
  if (a < argc) {
    usage();
    return 2;
  }
  rng = o.seed;
  terms = malloc(o.terms * sizeof *terms);
  tp = malloc(o.terms * sizeof *tp);
  lens = malloc(o.terms * sizeof *lens);
  msgs = malloc(o.messages * o.size);
  if (terms == NULL || tp == NULL || lens == NULL || msgs == NULL) {
    fprintf(stderr, "out of memory\n");
    return 1;
  }
  for (i = 0; i < o.terms; i++) {
    lens[i] = gen_term(terms[i]);
    tp[i] = terms[i];
  }
  gen_model();
  for (i = 0; i < o.messages; i++)
    gen_message(&o, msgs + i * o.size, terms, lens);

  printf("terms=%zu messages=%zu size=%zu hit-pct=%u runs=%zu seed=%llu text=%s\n",
         o.terms, o.messages, o.size, o.hit_pct, o.runs, o.seed,
         o.uniform ? "uniform" : "natural");
  rc = run_mode(&o, tp, lens, msgs, 0) || run_mode(&o, tp, lens, msgs, EIM_FS_SKIP_SEPARATORS);
  free(terms);
  free(tp);
  free(lens);
  free(msgs);
  return rc;
}
