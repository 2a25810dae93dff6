/* Aho-Corasick automaton over "symbols": every folded code point that occurs
 * in some term gets a dense symbol number, every code point that folds to
 * it shares the number, separators get SYM_SEP when they are skipped, and
 * everything else is 0. A two-level page table maps code points to symbols,
 * so the scan neither folds nor hashes to classify a character, and a
 * character in no term sends the automaton straight back to the root.
 *
 * Transitions: a double array. A state is the index of its record, and the
 * child of state s on symbol a is t = rec[s].base + a when rec[t].check == s:
 * a lookup, hit or miss, is one record (often none, thanks to a mask of the
 * child symbols), and a hit has already loaded the child's own record. The
 * root's base is 0, so the root's child on symbol a, where every failure
 * chain ends, is record a, which the scan prefetches a character ahead.
 * States are placed breadth first, so the shallow states every scan visits
 * sit close together. A state's output length, kept in its record, is the
 * length of the longest term that is a suffix of the state, so a
 * character's longest occurrence costs no further load. */
#include "matcher.h"

#include <stdlib.h>
#include <string.h>

#include "fold.h"
#include "utf8.h"

#define SYM_SEP 1u /* terms' symbols are 2 .. nsym */
#define PAGE_SLOTS (0x110000u >> 8)

#define FREE UINT32_MAX
#define ROOT_CHECK (UINT32_MAX - 1) /* the root has no parent */
#define NONE UINT32_MAX
#define RETIRED (UINT32_MAX - 1)
#define PLACE_TRIES 16

/* A record is 16 bytes, four to a cache line: the failure state and the
 * output length share a word, which bounds the automaton's size. */
#define LINK_BITS 25
#define LINK_STATE ((1u << LINK_BITS) - 1)
#define MAX_RECORDS (1u << LINK_BITS)

typedef struct fs_rec {
  uint32_t check; /* the parent state; FREE: no state here */
  uint32_t base;  /* children at rec[base + symbol] */
  uint32_t link;  /* failure state (low LINK_BITS), output length (high) */
  uint32_t mask;  /* bit (a % 32) set for every child symbol a: most misses
                     are answered without touching another record */
} fs_rec;

_Static_assert(EIM_FS_TERM_MAX_CPS < (1u << (32 - LINK_BITS)), "out fits in link");

struct eim_fs_matcher {
  uint16_t page_of[PAGE_SLOTS]; /* code point >> 8 -> page; page 0 is all 0 */
  uint32_t *pages;              /* npages * 256 symbols */
  uint32_t npages, page_cap;
  uint32_t nsym; /* the highest symbol; records 0 .. nsym always exist */
  fs_rec *rec;     /* the root at 0, states below ncells */
  uint32_t ncells;
  uint32_t nstates;
};

/* Build-time goto function: (state, symbol) -> child, hashed. */
typedef struct fs_edge {
  uint32_t from, sym, to; /* to == 0: empty slot (the root is nobody's child) */
} fs_edge;

typedef struct fs_pair {
  uint32_t sym, to;
} fs_pair;

/* Scratch used only while building. */
typedef struct fs_build {
  uint32_t *cps;      /* folded terms, concatenated */
  size_t *off;        /* term i is cps[off[i]] .. */
  uint8_t *len;       /* .. of len[i] code points */
  fs_edge *edges;
  uint32_t edge_mask;
  uint32_t *root_next; /* the root's children, by symbol */
  uint32_t *first_child, *next_sibling, *sym_of, *queue, *new_id;
  uint8_t *term_len;  /* depth of a state that ends a term, else 0 */
  fs_pair *pairs;
  size_t cell_cap;
  uint32_t *next_free, *prev_free; /* candidate free records, in index order */
  uint32_t free_head, free_tail;
  uint8_t *tries; /* failed placements starting at a free record */
} fs_build;

static inline uint32_t sym_get(const eim_fs_matcher *m, uint32_t cp) {
  return m->pages[((uint32_t)m->page_of[cp >> 8] << 8) | (cp & 0xFF)];
}

static int sym_set(eim_fs_matcher *m, uint32_t cp, uint32_t sym) {
  uint32_t slot = cp >> 8;
  if (m->page_of[slot] == 0) {
    if (m->npages == m->page_cap) {
      uint32_t cap = m->page_cap * 2;
      uint32_t *p = realloc(m->pages, (size_t)cap * 256 * sizeof *p);
      if (p == NULL)
        return EIM_ENOMEM;
      m->pages = p;
      m->page_cap = cap;
    }
    memset(m->pages + (size_t)m->npages * 256, 0, 256 * sizeof *m->pages);
    m->page_of[slot] = (uint16_t)m->npages++;
  }
  m->pages[((uint32_t)m->page_of[slot] << 8) | (cp & 0xFF)] = sym;
  return EIM_OK;
}

static inline uint32_t edge_hash(uint32_t from, uint32_t sym) {
  uint32_t h = (from * 0x9E3779B1u + sym) * 0x85EBCA6Bu;
  return h ^ (h >> 15);
}

static uint32_t edge_get(const fs_build *b, uint32_t from, uint32_t sym) {
  uint32_t i = edge_hash(from, sym) & b->edge_mask;
  for (;;) {
    const fs_edge *e = &b->edges[i];
    if (e->from == from && e->sym == sym)
      return e->to;
    if (e->to == 0)
      return 0;
    i = (i + 1) & b->edge_mask;
  }
}

static void edge_put(fs_build *b, uint32_t from, uint32_t sym, uint32_t to) {
  uint32_t i = edge_hash(from, sym) & b->edge_mask;
  while (b->edges[i].to != 0)
    i = (i + 1) & b->edge_mask;
  b->edges[i].from = from;
  b->edges[i].sym = sym;
  b->edges[i].to = to;
}

static inline uint32_t fail_of(const fs_rec *r) { return r->link & LINK_STATE; }
static inline uint32_t out_of(const fs_rec *r) { return r->link >> LINK_BITS; }

/* The child of state s on symbol sym, or 0. Every base + symbol is a
 * record (see layout), so there is no bounds test. */
static inline uint32_t child(const fs_rec *rec, uint32_t s, uint32_t sym) {
  const fs_rec *r = &rec[s];
  uint32_t t;
  if (((r->mask >> (sym & 31)) & 1) == 0)
    return 0;
  t = r->base + sym;
  return rec[t].check == s ? t : 0;
}

/* Folds every term into b->cps, checking it. */
static int fold_terms(fs_build *b, const char *const *terms, const size_t *lens,
                      size_t n, unsigned flags, size_t *total, size_t *bad_term,
                      eim_err *err) {
  size_t i, bytes = 0, t = 0;

  for (i = 0; i < n; i++) {
    if (lens[i] > SIZE_MAX / sizeof(uint32_t) - bytes)
      return eim_err_set(err, EIM_ENOMEM, "term list too large");
    bytes += lens[i];
  }
  b->cps = malloc((bytes ? bytes : 1) * sizeof *b->cps);
  b->off = malloc((n ? n : 1) * sizeof *b->off);
  b->len = malloc(n ? n : 1);
  if (b->cps == NULL || b->off == NULL || b->len == NULL)
    return eim_err_set(err, EIM_ENOMEM, "out of memory");

  for (i = 0; i < n; i++) {
    const unsigned char *p = (const unsigned char *)terms[i];
    size_t j = 0, k = 0;
    while (j < lens[i]) {
      uint32_t cp;
      size_t d = eim_fs_utf8_decode(p + j, lens[i] - j, &cp);
      if (d == 0) {
        *bad_term = i;
        return eim_err_set(err, EIM_EINVAL, "term is not valid UTF-8");
      }
      j += d;
      cp = eim_fs_fold(cp);
      if ((flags & EIM_FS_SKIP_SEPARATORS) && eim_fs_is_separator(cp))
        continue;
      if (k == EIM_FS_TERM_MAX_CPS) {
        *bad_term = i;
        return eim_err_set(err, EIM_EINVAL, "term longer than %d characters",
                           EIM_FS_TERM_MAX_CPS);
      }
      b->cps[t + k++] = cp;
    }
    if (k == 0) {
      *bad_term = i;
      return eim_err_set(err, EIM_EINVAL, "term has no character to match");
    }
    b->off[i] = t;
    b->len[i] = (uint8_t)k;
    t += k;
  }
  if (t >= MAX_RECORDS) /* every state needs a record */
    return eim_err_set(err, EIM_ETOOBIG, "word list too large for one automaton");
  *total = t;
  return EIM_OK;
}

/* Numbers the folded code points of the terms, then gives every code point
 * that folds to a numbered one the same number, and marks the separators
 * when they are skipped. */
static int assign_symbols(eim_fs_matcher *m, const fs_build *b, size_t total,
                          unsigned flags) {
  size_t t, r;
  uint32_t c;

  m->page_cap = 16;
  m->pages = calloc((size_t)m->page_cap * 256, sizeof *m->pages);
  if (m->pages == NULL)
    return EIM_ENOMEM;
  m->npages = 1;
  m->nsym = SYM_SEP;
  for (t = 0; t < total; t++)
    if (sym_get(m, b->cps[t]) == 0 && sym_set(m, b->cps[t], ++m->nsym) != EIM_OK)
      return EIM_ENOMEM;
  for (r = 0; r < eim_fs_nspecial; r++) {
    for (c = eim_fs_special[r].lo; c <= eim_fs_special[r].hi; c++) {
      uint32_t f = eim_fs_fold(c), s;
      if ((flags & EIM_FS_SKIP_SEPARATORS) && eim_fs_is_separator(f)) {
        if (sym_set(m, c, SYM_SEP) != EIM_OK)
          return EIM_ENOMEM;
      } else if (f != c && (s = sym_get(m, f)) != 0) {
        if (sym_set(m, c, s) != EIM_OK)
          return EIM_ENOMEM;
      }
    }
  }
  return EIM_OK;
}

/* Inserts the terms into a trie with hashed edges (old state numbers). */
static int build_trie(eim_fs_matcher *m, fs_build *b, size_t n, size_t total) {
  size_t i, k, cap = total + 1, slots = 16;

  while (slots < 2 * total)
    slots *= 2;
  if (slots > (size_t)UINT32_MAX)
    return EIM_ENOMEM;
  b->edges = calloc(slots, sizeof *b->edges);
  b->edge_mask = (uint32_t)(slots - 1);
  b->root_next = calloc((size_t)m->nsym + 1, sizeof *b->root_next);
  b->first_child = calloc(cap, sizeof *b->first_child);
  b->next_sibling = calloc(cap, sizeof *b->next_sibling);
  b->sym_of = calloc(cap, sizeof *b->sym_of);
  b->term_len = calloc(cap, 1);
  if (b->edges == NULL || b->root_next == NULL || b->first_child == NULL ||
      b->next_sibling == NULL || b->sym_of == NULL || b->term_len == NULL)
    return EIM_ENOMEM;

  m->nstates = 1;
  for (i = 0; i < n; i++) {
    uint32_t st = 0;
    for (k = 0; k < b->len[i]; k++) {
      uint32_t a = sym_get(m, b->cps[b->off[i] + k]);
      uint32_t ch = st ? edge_get(b, st, a) : b->root_next[a];
      if (ch == 0) {
        ch = m->nstates++;
        b->sym_of[ch] = a;
        b->next_sibling[ch] = b->first_child[st];
        b->first_child[st] = ch;
        if (st)
          edge_put(b, st, a, ch);
        else
          b->root_next[a] = ch;
      }
      st = ch;
    }
    b->term_len[st] = b->len[i];
  }
  return EIM_OK;
}

static int pair_cmp(const void *x, const void *y) {
  const fs_pair *a = x, *b = y;
  return (a->sym > b->sym) - (a->sym < b->sym);
}

/* Makes sure records [0 .. n) exist; new ones are free and join the end
 * of the candidate list. */
static int cells_reserve(eim_fs_matcher *m, fs_build *b, size_t n) {
  size_t cap = b->cell_cap ? b->cell_cap : 1024, i;
  fs_rec *r;
  uint32_t *nf, *pf;
  uint8_t *t;
  if (n <= b->cell_cap)
    return EIM_OK;
  while (cap < n)
    cap *= 2;
  if (n > MAX_RECORDS)
    return EIM_ETOOBIG;
  if (cap > MAX_RECORDS)
    cap = MAX_RECORDS;
  r = realloc(m->rec, cap * sizeof *r);
  if (r == NULL)
    return EIM_ENOMEM;
  m->rec = r;
  nf = realloc(b->next_free, cap * sizeof *nf);
  if (nf == NULL)
    return EIM_ENOMEM;
  b->next_free = nf;
  pf = realloc(b->prev_free, cap * sizeof *pf);
  if (pf == NULL)
    return EIM_ENOMEM;
  b->prev_free = pf;
  t = realloc(b->tries, cap);
  if (t == NULL)
    return EIM_ENOMEM;
  b->tries = t;
  memset(r + b->cell_cap, 0, (cap - b->cell_cap) * sizeof *r);
  memset(t + b->cell_cap, 0, cap - b->cell_cap);
  for (i = b->cell_cap; i < cap; i++) {
    r[i].check = FREE;
    pf[i] = b->free_tail;
    nf[i] = NONE;
    if (b->free_tail == NONE)
      b->free_head = (uint32_t)i;
    else
      nf[b->free_tail] = (uint32_t)i;
    b->free_tail = (uint32_t)i;
  }
  b->cell_cap = cap;
  return EIM_OK;
}

/* Takes free record t off the candidate list. */
static void unlink_free(fs_build *b, uint32_t t) {
  uint32_t prev = b->prev_free[t], next = b->next_free[t];
  if (prev == RETIRED)
    return;
  if (prev == NONE)
    b->free_head = next;
  else
    b->next_free[prev] = next;
  if (next == NONE)
    b->free_tail = prev;
  else
    b->prev_free[next] = prev;
  b->prev_free[t] = RETIRED;
}

/* Claims free record t for a child of parent; returns t. */
static uint32_t claim(eim_fs_matcher *m, fs_build *b, uint32_t t, uint32_t parent) {
  unlink_free(b, t);
  m->rec[t].check = parent;
  if (t >= m->ncells)
    m->ncells = t + 1;
  return t;
}

/* Places the children p[0..n) (sorted by symbol; .to holds old numbers) of
 * state s at the first base where all their records are free, and records
 * their new numbers in b->new_id. The first child goes to a record of the
 * candidate list; a record that failed PLACE_TRIES times leaves the list
 * (it stays free for later children), so a build stays near linear. Past
 * the last used record everything fits. */
static int place(eim_fs_matcher *m, fs_build *b, uint32_t s, const fs_pair *p,
                 uint32_t n) {
  uint32_t span = p[n - 1].sym - p[0].sym, at = b->free_head, k, base;
  int rc;
  for (;;) {
    uint32_t next;
    if (at == NONE) { /* every candidate tried: open new records */
      at = (uint32_t)b->cell_cap;
      if ((rc = cells_reserve(m, b, b->cell_cap + 1)) != EIM_OK)
        return rc;
    }
    if ((rc = cells_reserve(m, b, (size_t)at + span + 1)) != EIM_OK)
      return rc;
    if (at >= p[0].sym) { /* bases are never negative */
      base = at - p[0].sym;
      for (k = 1; k < n && m->rec[base + p[k].sym].check == FREE; k++)
        ;
      if (k == n)
        break;
    }
    next = b->next_free[at];
    if (++b->tries[at] >= PLACE_TRIES)
      unlink_free(b, at);
    at = next;
  }
  m->rec[s].base = base;
  for (k = 0; k < n; k++) {
    b->new_id[p[k].to] = claim(m, b, base + p[k].sym, s);
    m->rec[s].mask |= 1u << (p[k].sym & 31);
  }
  return EIM_OK;
}

/* Places the states breadth first: the root at 0 with base 0, so its
 * child on symbol a at a, then every other state's children where the
 * double array has room. */
static int layout(eim_fs_matcher *m, fs_build *b) {
  uint32_t head = 0, tail = 1, i, c;
  int rc;

  b->queue = malloc((size_t)m->nstates * sizeof *b->queue);
  b->new_id = malloc((size_t)m->nstates * sizeof *b->new_id);
  b->pairs = malloc((size_t)m->nstates * sizeof *b->pairs);
  if (b->queue == NULL || b->new_id == NULL || b->pairs == NULL)
    return EIM_ENOMEM;
  if ((rc = cells_reserve(m, b, (size_t)m->nsym + 1)) != EIM_OK)
    return rc;

  b->queue[0] = 0;
  while (head < tail) {
    uint32_t s = b->queue[head++];
    for (c = b->first_child[s]; c != 0; c = b->next_sibling[c])
      b->queue[tail++] = c;
  }
  b->new_id[0] = claim(m, b, 0, ROOT_CHECK);
  m->rec[0].mask = UINT32_MAX;
  for (c = b->first_child[0]; c != 0; c = b->next_sibling[c])
    b->new_id[c] = claim(m, b, b->sym_of[c], 0);
  for (i = 1; i < m->nstates; i++) {
    uint32_t s = b->queue[i], n = 0;
    for (c = b->first_child[s]; c != 0; c = b->next_sibling[c]) {
      b->pairs[n].sym = b->sym_of[c];
      b->pairs[n].to = c;
      n++;
    }
    if (n == 0)
      continue;
    qsort(b->pairs, n, sizeof *b->pairs, pair_cmp);
    if ((rc = place(m, b, b->new_id[s], b->pairs, n)) != EIM_OK)
      return rc;
  }
  for (i = 0; i < m->nstates; i++)
    m->rec[b->new_id[i]].link = (uint32_t)b->term_len[i] << LINK_BITS;
  /* Bases are below ncells and leaves have base 0, so with nsym more
   * records every base + symbol exists. */
  return cells_reserve(m, b, (size_t)m->ncells + m->nsym + 1);
}

/* Failure links and output lengths. In breadth-first order every state a
 * link can point to, and its output, is settled before it is needed. */
static void link_states(eim_fs_matcher *m, const fs_build *b) {
  uint32_t i, c;
  for (i = 0; i < m->nstates; i++) {
    uint32_t s = b->queue[i], p = b->new_id[s];
    for (c = b->first_child[s]; c != 0; c = b->next_sibling[c]) {
      uint32_t a = b->sym_of[c], id = b->new_id[c], f, g = 0;
      if (i != 0) {
        for (f = fail_of(&m->rec[p]);; f = fail_of(&m->rec[f])) {
          if (f == 0) {
            g = child(m->rec, 0, a);
            break;
          }
          if ((g = child(m->rec, f, a)) != 0)
            break;
        }
      }
      m->rec[id].link |= g;
      if (out_of(&m->rec[id]) == 0)
        m->rec[id].link |= out_of(&m->rec[g]) << LINK_BITS;
    }
  }
}

int eim_fs_matcher_build(const char *const *terms, const size_t *lens,
                         size_t n, unsigned flags, eim_fs_matcher **out,
                         size_t *bad_term, eim_err *err) {
  fs_build b;
  eim_fs_matcher *m;
  size_t total = 0, ignored;
  int rc;

  memset(&b, 0, sizeof b);
  b.free_head = b.free_tail = NONE;
  *out = NULL;
  if (bad_term == NULL)
    bad_term = &ignored;
  m = calloc(1, sizeof *m);
  if (m == NULL) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory");
    goto cleanup;
  }
  rc = fold_terms(&b, terms, lens, n, flags, &total, bad_term, err);
  if (rc != EIM_OK)
    goto cleanup;
  if (assign_symbols(m, &b, total, flags) != EIM_OK ||
      build_trie(m, &b, n, total) != EIM_OK) {
    rc = eim_err_set(err, EIM_ENOMEM, "out of memory building the automaton");
    goto cleanup;
  }
  rc = layout(m, &b);
  if (rc != EIM_OK) {
    eim_err_set(err, rc, rc == EIM_ETOOBIG ? "word list too large for one automaton"
                                           : "out of memory building the automaton");
    goto cleanup;
  }
  link_states(m, &b);
  *out = m;
  m = NULL;

cleanup:
  eim_fs_matcher_free(m);
  free(b.cps);
  free(b.off);
  free(b.len);
  free(b.edges);
  free(b.root_next);
  free(b.first_child);
  free(b.next_sibling);
  free(b.sym_of);
  free(b.queue);
  free(b.new_id);
  free(b.term_len);
  free(b.pairs);
  free(b.next_free);
  free(b.prev_free);
  free(b.tries);
  return rc;
}

void eim_fs_matcher_free(eim_fs_matcher *m) {
  if (m == NULL)
    return;
  free(m->pages);
  free(m->rec);
  free(m);
}

size_t eim_fs_matcher_states(const eim_fs_matcher *m) { return m->nstates; }

/* Follows failure links until sym can be taken, or the root cannot take
 * it either. */
static inline uint32_t step(const fs_rec *rec, uint32_t st, uint32_t sym) {
  uint32_t to;
  while ((to = child(rec, st, sym)) == 0 && st != 0)
    st = fail_of(&rec[st]);
  return to;
}

/* The symbol of the character at *i, moving *i past it. */
static inline uint32_t next_sym(const uint16_t *page_of, const uint32_t *pages,
                                const uint32_t *ascii, const unsigned char *p, size_t len,
                                size_t *i) {
  const unsigned char *s = p + *i;
  uint32_t cp;
  size_t k;
  if (s[0] < 0x80)
    return ascii[p[(*i)++]];
  /* Three-byte sequences (most of CJK) checked with one branch. */
  if ((s[0] & 0xF0) == 0xE0 && len - *i >= 3) {
    cp = ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    if ((((s[1] & 0xC0) ^ 0x80) | ((s[2] & 0xC0) ^ 0x80)) == 0 && cp >= 0x800 &&
        (cp & 0xF800) != 0xD800) {
      *i += 3;
      return pages[((uint32_t)page_of[cp >> 8] << 8) | (cp & 0xFF)];
    }
  }
  k = eim_fs_utf8_decode(s, len - *i, &cp);
  *i += k ? k : 1;
  return k ? pages[((uint32_t)page_of[cp >> 8] << 8) | (cp & 0xFF)] : 0;
}

/* Where the occurrence of `out` term characters ending at byte `end`
 * starts: walks back over its characters, not counting separators. Only
 * called on a match, so the scan keeps no history. The occurrence holds no
 * invalid UTF-8 (that would have reset the automaton). */
static size_t match_start(const eim_fs_matcher *m, const unsigned char *p, size_t end,
                          unsigned out) {
  size_t at = end;
  while (out > 0) {
    uint32_t cp;
    size_t k;
    do
      at--;
    while ((p[at] & 0xC0) == 0x80);
    k = eim_fs_utf8_decode(p + at, end - at, &cp);
    if (k == 0 || sym_get(m, cp) != SYM_SEP)
      out--;
  }
  return at;
}

/* Feeds one symbol, of the character ending at byte end, to the automaton
 * in state *st, reporting an occurrence that ends there. */
static inline void feed(const eim_fs_matcher *m, const fs_rec *rec, uint32_t *st, uint32_t sym, const unsigned char *p, size_t end,
                        eim_fs_match_cb cb, void *ctx) {
  if (sym > SYM_SEP) {
    unsigned out;
    *st = step(rec, *st, sym);
    out = out_of(&rec[*st]);
    if (out != 0)
      cb(ctx, match_start(m, p, end, out), end);
  } else if (sym == 0) {
    *st = 0;
  }
}

void eim_fs_matcher_scan(const eim_fs_matcher *m, const char *text, size_t len,
                         eim_fs_match_cb cb, void *ctx) {
  /* Locals, so the callback does not force reloads: the matcher is
   * read-only. */
  const fs_rec *rec = m->rec;
  const uint16_t *page_of = m->page_of;
  const uint32_t *pages = m->pages;
  const uint32_t *ascii = pages + ((uint32_t)page_of[0] << 8);
  const unsigned char *p = (const unsigned char *)text;
  size_t i = 0;
  uint32_t st = 0, sym;

  if (len == 0)
    return;
  /* Decoding runs one character ahead of the automaton. */
  sym = next_sym(page_of, pages, ascii, p, len, &i);
  while (i < len) {
    size_t end = i;
    uint32_t next = next_sym(page_of, pages, ascii, p, len, &i);
    /* Failure chains end at the root, whose child on the next symbol is
     * the record of that number: start loading it now. */
    __builtin_prefetch(&rec[next]);
    feed(m, rec, &st, sym, p, end, cb, ctx);
    sym = next;
  }
  feed(m, rec, &st, sym, p, len, cb, ctx);
}
