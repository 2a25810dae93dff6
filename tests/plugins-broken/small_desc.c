/* Broken on purpose: a descriptor that stops after the store member, as if
 * built against a pre-release header. The object really is that small, so a
 * loader that reads past `size` trips ASan in the sanitized build; the
 * loader must refuse it ("descriptor"). */
#include "fixture.h"

typedef struct short_desc {
  uint32_t size;
  uint16_t abi_major, abi_minor;
  const char *name;
  const char *version;
  int (*init)(void **, const eim_host *, const eim_opt *, size_t, eim_err *);
  void (*fini)(void *);
  const eim_auth_ops *auth;
  const eim_store_ops *store;
} short_desc;

EIM_EXPORT const eim_plugin_desc *eim_plugin_describe(void);
const eim_plugin_desc *eim_plugin_describe(void) {
  static const short_desc desc = {
      .size = sizeof(short_desc),
      .abi_major = EIM_ABI_MAJOR,
      .abi_minor = EIM_ABI_MINOR,
      .name = "broken-small-desc",
      .version = "0.0.1",
      .init = fixture_init,
      .fini = fixture_fini,
  };
  _Static_assert(sizeof(short_desc) < EIM_PLUGIN_DESC_MIN_SIZE, "must be too small");
  return (const eim_plugin_desc *)(const void *)&desc;
}
