/* Broken on purpose: the entry point is misspelt, so the object exports no
 * eim_plugin_describe; the loader must refuse it naming the symbol. */
#include "fixture.h"

EIM_EXPORT const eim_plugin_desc *eim_plugin_descriptor(void);
const eim_plugin_desc *eim_plugin_descriptor(void) {
  static const eim_plugin_desc desc = {
      .size = sizeof(eim_plugin_desc),
      .abi_major = EIM_ABI_MAJOR,
      .abi_minor = EIM_ABI_MINOR,
      .name = "broken-no-symbol",
      .version = "0.0.1",
      .init = fixture_init,
      .fini = fixture_fini,
      .filter = &fixture_filter_ops,
  };
  return &desc;
}
