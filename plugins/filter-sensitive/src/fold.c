#include "fold.h"


const eim_fs_range eim_fs_special[] = {
    {0x0000, 0x017F},   /* ASCII, Latin-1, Latin Extended-A */
    {0x0370, 0x042F},   /* Greek and Cyrillic capitals */
    {0x2000, 0x2BFF},   /* punctuation and symbol blocks */
    {0x2E00, 0x2E7F},
    {0x3000, 0x303F},
    {0x30FB, 0x30FB},
    {0xFE00, 0xFFEE},   /* variation selectors to full-width forms */
    {0x1F000, 0x1FAFF},
};
const size_t eim_fs_nspecial = sizeof eim_fs_special / sizeof eim_fs_special[0];

uint32_t eim_fs_fold(uint32_t c) {
  if (c < 0x80)
    return (c >= 'A' && c <= 'Z') ? c + 0x20 : c;
  if (c < 0x100) {
    if (c == 0xB5) /* micro sign folds to Greek mu */
      return 0x3BC;
    return (c >= 0xC0 && c <= 0xDE && c != 0xD7) ? c + 0x20 : c;
  }
  if (c < 0x180) {
    /* Latin Extended-A pairs capitals with the next code point, starting on
     * an even code point in some runs and on an odd one in others. */
    if (c == 0x178)
      return 0xFF;
    if (c == 0x17F)
      return 's';
    if (c <= 0x12F || (c >= 0x132 && c <= 0x137) || (c >= 0x14A && c <= 0x177))
      return c | 1;
    if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
      return (c & 1) ? c + 1 : c;
    return c;
  }
  if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
    return c + 0x20;
  if (c == 0x3C2) /* final sigma */
    return 0x3C3;
  if (c >= 0x400 && c <= 0x40F)
    return c + 0x50;
  if (c >= 0x410 && c <= 0x42F)
    return c + 0x20;
  if (c == 0x3000)
    return 0x20;
  if (c >= 0xFF01 && c <= 0xFF5E)
    return eim_fs_fold(c - 0xFEE0);
  return c;
}

/* Ranges of separators above Latin-1, sorted. */
static const struct {
  uint32_t lo, hi;
} sep_ranges[] = {
    {0x2000, 0x206F},   /* general punctuation, spaces, zero-width */
    {0x20A0, 0x20CF},   /* currency */
    {0x2190, 0x243F},   /* arrows, mathematical, technical, control pictures */
    {0x2500, 0x27FF},   /* box drawing, shapes, misc symbols, dingbats */
    {0x2900, 0x2BFF},   /* arrows and mathematical symbols */
    {0x2E00, 0x2E7F},   /* supplemental punctuation */
    {0x3000, 0x3004},   /* CJK punctuation, minus the letter-like marks */
    {0x3008, 0x3020},
    {0x3030, 0x3030},
    {0x3036, 0x3037},
    {0x303D, 0x303F},
    {0x30FB, 0x30FB},   /* katakana middle dot */
    {0xFE00, 0xFE1F},   /* variation selectors, vertical forms */
    {0xFE30, 0xFE6F},   /* CJK compatibility and small forms */
    {0xFEFF, 0xFEFF},   /* zero-width no-break space */
    {0xFF5F, 0xFF65},   /* half-width punctuation */
    {0xFFE0, 0xFFEE},   /* full-width symbols */
    {0x1F000, 0x1FAFF}, /* emoji and pictographs */
};

int eim_fs_is_separator(uint32_t c) {
  size_t i;
  if (c < 0x80)
    return c <= 0x20 || c == 0x7F || (c >= 0x21 && c <= 0x2F) ||
           (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) ||
           (c >= 0x7B && c <= 0x7E);
  if (c < 0x100) {
    /* Latin-1 punctuation and symbols; not the letters (ª º µ), the
     * superscript digits or the fractions. */
    if (c <= 0xA9)
      return 1;
    return (c >= 0xAB && c <= 0xB1) || c == 0xB4 || (c >= 0xB6 && c <= 0xB8) ||
           c == 0xBB || c == 0xBF || c == 0xD7 || c == 0xF7;
  }
  for (i = 0; i < sizeof sep_ranges / sizeof sep_ranges[0]; i++) {
    if (c < sep_ranges[i].lo)
      return 0;
    if (c <= sep_ranges[i].hi)
      return 1;
  }
  return 0;
}
