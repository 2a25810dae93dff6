/* Broken on purpose: built for ABI major 2; the loader must refuse it
 * ("ABI major"). */
#include "fixture.h"

EIM_EXPORT const eim_plugin_desc *eim_plugin_describe(void);
const eim_plugin_desc *eim_plugin_describe(void) {
  static const eim_plugin_desc desc = {
      .size = sizeof(eim_plugin_desc),
      .abi_major = EIM_ABI_MAJOR + 1,
      .abi_minor = 0,
      .name = "broken-abi-major",
      .version = "0.0.1",
      .init = fixture_init,
      .fini = fixture_fini,
      .filter = &fixture_filter_ops,
  };
  return &desc;
}
